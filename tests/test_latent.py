"""Latent-variable models: the VAE's ELBO/IWAE bounds, the VQ-VAE's quantizer, and the VQ-VAE as
one generative model once its prior is attached (sampling, its bound, its score and figures).

Small networks on 28x28 inputs, float64 where a comparison needs it; the statistical checks
average many reparameterized draws and use tolerances from their standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.data import Split
from genzoo.models import ScoreSettings
from genzoo.models.base import pixel_log_prob
from genzoo.models.cond_gated_pixelcnn import CondGatedPixelCNN, CondGatedPixelCNNConfig
from genzoo.models.independent import Independent, IndependentConfig
from genzoo.models.vae import VAE, VAEConfig, iwae_nll
from genzoo.models.vqvae import VQVAE, VectorQuantizer, VQVAEConfig, code_usage, ema_update


def binary_batch(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    probs = torch.rand(1, 1, 28, 28, generator=generator).expand(n, -1, -1, -1)
    return torch.bernoulli(probs, generator=generator)  # (n, 1, 28, 28)


def small_vae(network: str = "mlp", seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(network=network, hidden=[32], channels=4, latent=4)).double().eval()


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """Mean and its standard error over the first dimension of (R, B) draws, averaged over B."""
    per_draw = values.mean(1)  # (R,)
    return per_draw.mean().item(), per_draw.std().item() / math.sqrt(len(per_draw))


# -- VAE ---------------------------------------------------------------------------------------

def test_iwae_with_one_sample_is_the_elbo_in_expectation():
    """L_1 (Monte Carlo log-weight) and the ELBO (analytic KL) have the same expectation."""
    model, x = small_vae(), binary_batch(4).double()
    R = 4000
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        mc = model.iwae_bound(x.repeat(R, 1, 1, 1), 1, generator=generator).view(R, 4)
        analytic = model.elbo(x.repeat(R, 1, 1, 1), generator=generator).view(R, 4)
    mc_mean, mc_se = mean_and_stderr(mc)
    an_mean, an_se = mean_and_stderr(analytic)
    assert abs(mc_mean - an_mean) < 4 * math.hypot(mc_se, an_se)
    assert mc_se > 0 and mc_se < 0.5, "too few draws for a meaningful comparison"


def test_iwae_bound_grows_with_k():
    """E[L_1] <= E[L_10] <= E[L_100], and the gain is well beyond the noise."""
    model, x = small_vae(seed=2), binary_batch(4, seed=3).double()
    with torch.no_grad():  # sharpen the decoder so that q(z|x) is far from the true posterior
        for parameter in model.decoder.parameters():
            parameter.mul_(4.0)
    generator = torch.Generator().manual_seed(4)
    stats = {}
    with torch.no_grad():
        for k, R in [(1, 3000), (10, 600), (100, 150)]:
            draws = model.iwae_bound(x.repeat(R, 1, 1, 1), k, chunk=50, generator=generator)
            stats[k] = mean_and_stderr(draws.view(R, 4))
    for small, large in [(1, 10), (10, 100)]:
        (m_small, se_small), (m_large, se_large) = stats[small], stats[large]
        assert m_large > m_small - 3 * math.hypot(se_small, se_large), stats
    assert stats[100][0] - stats[1][0] > 5 * math.hypot(stats[1][1], stats[100][1]), stats


def test_iwae_chunking_does_not_change_the_value():
    model, x = small_vae(), binary_batch(3).double()
    whole = model.iwae_bound(x, 23, chunk=None, generator=torch.Generator().manual_seed(7))
    for chunk in (1, 5, 23, 100):
        chunked = model.iwae_bound(x, 23, chunk=chunk, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-9)


def test_iwae_nll_is_per_image_and_reproducible():
    model, x = small_vae(), binary_batch(5).double()
    first = iwae_nll(model, x, k=20, batch_size=2, chunk=7, generator=torch.Generator().manual_seed(0))
    again = iwae_nll(model, x, k=20, batch_size=2, chunk=7, generator=torch.Generator().manual_seed(0))
    assert first.shape == (5,) and first.dtype == torch.float64
    assert torch.equal(first, again)
    assert torch.all(first > 0)


@pytest.mark.parametrize("network", ["mlp", "conv"])
@pytest.mark.parametrize("train_k", [1, 3])
def test_vae_loss_gradients_are_finite(network, train_k):
    torch.manual_seed(0)
    model = VAE(VAEConfig(network=network, hidden=[16], channels=4, latent=3, train_k=train_k))
    model.train()
    loss = model.loss(binary_batch(3))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert any(parameter.grad.abs().sum() > 0 for parameter in model.encoder.parameters())


def test_vae_log_prob_uses_val_k_and_sampling_shapes():
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden=[16], latent=3, val_k=5)).eval()
    x = binary_batch(2)
    assert model.log_prob(x).shape == (2,)
    samples = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 28, 28) and set(samples.unique().tolist()) <= {0.0, 1.0}
    means = model.sample(2, generator=torch.Generator().manual_seed(0), means=True)
    assert means.min() >= 0 and means.max() <= 1
    strip = model.interpolate(x[0], x[1], steps=5)
    assert strip.shape == (5, 1, 28, 28)
    ends = torch.sigmoid(model.decode(model.posterior(x)[0]))
    torch.testing.assert_close(strip[0], ends[0])
    torch.testing.assert_close(strip[-1], ends[1])
    assert model.interpolate(x, x.flip(0), steps=3).shape == (2, 3, 1, 28, 28)


def test_vae_rejects_unknown_network():
    with pytest.raises(ValueError, match="network must be one of"):
        VAE(VAEConfig(network="resnet"))
    with pytest.raises(ValueError, match="binarized"):
        VAE(VAEConfig(), levels=256)


# -- VQ-VAE ------------------------------------------------------------------------------------

def test_quantizer_picks_the_nearest_code():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(16, 3, restart_after=0).eval()
    quantizer.embedding.copy_(torch.randn(16, 3))
    z_e = torch.randn(5, 3, 4, 4)  # (B, D, H, W)
    out = quantizer(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    brute = torch.stack([((row - quantizer.embedding) ** 2).sum(1).argmin() for row in flat])
    assert torch.equal(out.codes.flatten(), brute)
    torch.testing.assert_close(out.z_q.permute(0, 2, 3, 1).reshape(-1, 3),
                               quantizer.embedding[brute])


def small_vqvae(**overrides) -> VQVAE:
    torch.manual_seed(0)
    config = VQVAEConfig(codes=8, code_dim=4, hidden=8, **overrides)
    return VQVAE(config)


@pytest.mark.parametrize("ema", [True, False])
def test_straight_through_gradient_reaches_the_encoder(ema):
    model = small_vqvae(ema=ema).train()
    logits, _ = model(binary_batch(2))
    reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, binary_batch(2), reduction="sum")
    reconstruction.backward()
    for name, parameter in model.encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    if not ema:  # the reconstruction alone does not train the codebook: the codebook loss does
        assert model.quantizer.embedding.grad is None or model.quantizer.embedding.grad.abs().sum() == 0


def test_ema_update_matches_a_hand_computed_example():
    cluster_size = torch.tensor([1.0, 1.0])
    embed_sum = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    flat = torch.tensor([[0.2, 0.0], [0.0, 0.4], [1.0, 2.0]])
    codes = torch.tensor([0, 0, 1])
    # counts n = [2, 1], sums [[0.2, 0.4], [1, 2]]; decay 0.5:
    # N = 0.5 [1, 1] + 0.5 [2, 1] = [1.5, 1.0];  m = 0.5 [[0, 0], [1, 1]] + 0.5 [[.2, .4], [1, 2]]
    size, total, codebook = ema_update(cluster_size, embed_sum, flat, codes, decay=0.5, epsilon=0.0)
    torch.testing.assert_close(size, torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(total, torch.tensor([[0.1, 0.2], [1.0, 1.5]]))
    torch.testing.assert_close(codebook, torch.tensor([[0.1 / 1.5, 0.2 / 1.5], [1.0, 1.5]]))
    # Laplace smoothing, epsilon 0.1: n = 2.5, N~ = (N + 0.1) / (2.5 + 2 * 0.1) * 2.5
    _, _, smoothed = ema_update(cluster_size, embed_sum, flat, codes, decay=0.5, epsilon=0.1)
    n0, n1 = 1.6 / 2.7 * 2.5, 1.1 / 2.7 * 2.5  # 1.48148..., 1.01852...
    torch.testing.assert_close(smoothed, torch.tensor([[0.1 / n0, 0.2 / n0], [1.0 / n1, 1.5 / n1]]))


def test_quantizer_forward_applies_the_ema_update_in_training_only():
    quantizer = VectorQuantizer(2, 2, decay=0.5, epsilon=0.0, restart_after=0)
    quantizer.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    quantizer.embed_sum.copy_(quantizer.embedding)
    z_e = torch.tensor([[0.2, 0.0], [0.0, 0.4], [1.0, 2.0]]).t().reshape(1, 2, 1, 3)  # (1, D, 1, 3)
    quantizer.eval()(z_e)
    assert torch.equal(quantizer.embedding, torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    out = quantizer.train()(z_e)
    assert out.codes.flatten().tolist() == [0, 0, 1]
    torch.testing.assert_close(quantizer.embedding, torch.tensor([[0.1 / 1.5, 0.2 / 1.5], [1.0, 1.5]]))


def test_dead_codes_are_restarted_at_encoder_outputs():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(4, 2, restart_after=3).train()
    quantizer.embedding.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]))
    quantizer.embed_sum.copy_(quantizer.embedding)
    z_e = torch.randn(2, 2, 3, 3) * 0.1  # every vector is nearest to code 0
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for step in range(2):
        quantizer(z_e)
        assert quantizer.unused_steps.tolist() == [0, step + 1, step + 1, step + 1]
    far = quantizer.embedding[1:].clone()
    quantizer(z_e)  # third unused step: codes 1-3 restart
    assert quantizer.unused_steps.tolist() == [0, 0, 0, 0]
    for code in (1, 2, 3):
        vector = quantizer.embedding[code]
        assert torch.isclose(flat, vector).all(1).any(), "restarted code is not a batch vector"
        torch.testing.assert_close(quantizer.embed_sum[code], vector)
        assert quantizer.cluster_size[code] == 1.0
    assert not torch.isclose(quantizer.embedding[1:], far).any()
    assert len(set(quantizer(z_e).codes.flatten().tolist())) > 1, "restarted codes are used"


def test_vqvae_shapes_loss_and_encode_decode():
    model = small_vqvae().eval()
    x = binary_batch(3)
    codes = model.encode(x)
    assert codes.shape == (3, 7, 7) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < 8
    assert model.code_shape == (1, 7, 7)
    logits = model.decode(codes)
    assert logits.shape == (3, 1, 28, 28)
    torch.testing.assert_close(model.decode(codes.unsqueeze(1).float()), logits)
    torch.testing.assert_close(logits, model(x)[0])  # encode -> decode = the forward pass
    assert model.validation_nll(x).shape == (3,)  # what picks the autoencoder's best epoch
    torch.testing.assert_close(model.validation_nll(x), -pixel_log_prob(logits, x, 2))
    with pytest.raises(ValueError, match="no prior"):  # log p(x) needs the prior over codes
        model.log_prob(x)
    model.attach_prior(random_prior())
    assert model.log_prob(x).shape == (3,)
    loss = model.train().loss(x)
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="codes must lie"):
        model.decode(torch.full((1, 7, 7), 8))


def test_code_usage_perplexity():
    assert code_usage(torch.arange(8), 8)["perplexity"] == pytest.approx(8.0)
    assert code_usage(torch.zeros(10, dtype=torch.long), 8) == {
        "perplexity": pytest.approx(1.0), "used_codes": 1, "usage": 1 / 8}
    model = small_vqvae().eval()
    assert 1.0 <= model.perplexity(binary_batch(2)) <= 8.0


# -- the VQ-VAE as one model: prior attached -------------------------------------------------------

def random_prior(codes: int = 8, seed: int = 1) -> Independent:
    """A prior over the (1, 7, 7) code grid that is far from uniform: independent codes with
    random logits (exact log-probabilities, so the bound can be checked term by term)."""
    prior = Independent(IndependentConfig(), image_shape=(1, 7, 7), levels=codes)
    with torch.no_grad():
        prior.logits.copy_(torch.randn(prior.logits.shape, generator=torch.Generator().manual_seed(seed)) * 2)
    return prior.eval()


def binary_split(n: int, seed: int = 0) -> Split:
    """A test split of n random 28x28 images with their fixed bits."""
    generator = torch.Generator().manual_seed(seed)
    gray = torch.randint(0, 256, (n, 1, 28, 28), generator=generator, dtype=torch.uint8)
    return Split(gray=gray, labels=torch.arange(n) % 10, binary=(gray > 127).to(torch.uint8))


def test_vqvae_samples_only_with_a_prior():
    model = small_vqvae().eval()
    with pytest.raises(ValueError, match="no prior"):
        model.sample(2)
    with pytest.raises(ValueError, match="no prior"):
        model.score(binary_split(4), ScoreSettings(), variant="binarized",
                    generator=torch.Generator().manual_seed(0))
    model.attach_prior(random_prior())
    images = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and set(images.unique().tolist()) <= {0.0, 1.0}
    again = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, again), "the generator alone drives both draws"
    codes, decoded = model.draw(5, generator=torch.Generator().manual_seed(1))
    assert codes.shape == (5, 1, 7, 7) and codes.min() >= 0 and codes.max() < 8
    assert decoded.shape == (5, 1, 28, 28) and set(decoded.unique().tolist()) <= {0.0, 1.0}


def test_a_prior_of_other_codes_is_refused():
    model = small_vqvae()
    with pytest.raises(ValueError, match="does not fit"):
        model.attach_prior(random_prior(codes=9))
    other_grid = Independent(IndependentConfig(), image_shape=(1, 4, 4), levels=8)
    with pytest.raises(ValueError, match="does not fit"):
        model.attach_prior(other_grid)
    assert model.prior is None


def test_vqvae_log_prob_is_the_bound_below_the_reconstruction_likelihood():
    """log p(x) >= log p_prior(z(x)) + log p(x | z(x)) = log_prob(x), and log p_prior <= 0."""
    model = small_vqvae().eval()
    parameters = model.num_parameters()
    prior = random_prior()
    model.attach_prior(prior)
    assert model.num_parameters() == parameters, "the prior's parameters are reported apart"
    x = binary_batch(6)
    codes = model.encode(x)
    reconstruction = pixel_log_prob(model.decode(codes), x, 2)  # log p(x | z(x)), (6,)
    prior_log_prob = prior.log_prob(codes.unsqueeze(1).float())  # log p_prior(z(x)), (6,)
    log_prob = model.log_prob(x)
    assert log_prob.shape == (6,)
    assert torch.all(prior_log_prob < 0)
    assert torch.all(log_prob <= reconstruction)
    torch.testing.assert_close(log_prob, reconstruction + prior_log_prob)
    assert prior_log_prob.max() - prior_log_prob.min() > 1, "weak test: the prior is near uniform"


def test_vqvae_score_is_the_bound_with_its_two_terms():
    model = small_vqvae().eval()
    model.attach_prior(random_prior(), model="independent", epoch=3, step=30)
    test = binary_split(7)
    settings = ScoreSettings(batch_size=3)  # batches that do not divide the split
    metrics = model.score(test, settings, variant="binarized",
                          generator=torch.Generator().manual_seed(0))
    assert metrics["nll_kind"] == "bound" and metrics["test_images"] == 7
    assert metrics["nll_conditional"] is False
    assert metrics["test_nll_nats"] == pytest.approx(
        metrics["reconstruction_nll_nats"] + metrics["prior_nll_nats"])
    x = test.images("binarized")
    per_image, _ = model.test_nll(test, settings, variant="binarized",
                                  generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(per_image, -model.log_prob(x).double(), rtol=1e-5, atol=1e-4)
    assert metrics["test_nll_nats"] == pytest.approx(per_image.mean().item())
    assert metrics["test_bits_per_dim"] == pytest.approx(metrics["test_nll_nats"] / (784 * math.log(2)))
    prior_nll = -model.prior.log_prob(model.encode(x).unsqueeze(1).float())
    assert metrics["prior_nll_nats"] == pytest.approx(prior_nll.mean().item(), rel=1e-5)
    assert metrics["prior_bits_per_code"] == pytest.approx(metrics["prior_nll_nats"] / (49 * math.log(2)))
    assert (metrics["prior_model"], metrics["prior_best_epoch"], metrics["prior_steps"]) == (
        "independent", 3, 30)
    assert metrics["prior_num_parameters"] == 8 * 49
    assert 1 <= metrics["code_perplexity"] <= 8 and metrics["codes"] == 8
    assert metrics["code_grid"] == [7, 7]


def test_vqvae_figures_sample_through_the_prior():
    model = small_vqvae().eval()
    model.attach_prior(random_prior())
    figures = model.figures(binary_split(16), n=4, nrow=2, variant="binarized",
                            generator=torch.Generator().manual_seed(0))
    assert set(figures.pngs) == {"samples.png", "reconstructions.png"}
    assert figures.arrays["samples"].shape == (4, 1, 28, 28)
    assert figures.arrays["codes"].shape == (4, 7, 7) and figures.arrays["codes"].max() < 8
    assert "labels" not in figures.arrays
    assert set(model.figures(None, n=4, nrow=2, variant="binarized",
                             generator=torch.Generator().manual_seed(0)).pngs) == {"samples.png"}


def test_a_conditional_prior_makes_a_conditional_vqvae():
    model = small_vqvae().eval()
    torch.manual_seed(0)
    prior = CondGatedPixelCNN(CondGatedPixelCNNConfig(channels=4, layers=2, head_channels=4),
                              image_shape=(1, 7, 7), levels=8)
    model.attach_prior(prior)
    assert model.conditional
    with pytest.raises(ValueError, match="labels"):
        model.sample(2)
    figures = model.figures(None, n=4, nrow=2, variant="binarized",
                            generator=torch.Generator().manual_seed(0))
    assert figures.arrays["samples"].shape == (100, 1, 28, 28)  # one row per digit
    assert list(figures.arrays["labels"][::10]) == list(range(10))
