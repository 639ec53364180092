"""The autoencoder (ae): the EM fit of its Gaussian mixture, the mixture phase and what the stages
load, sampling through the mixture, the reconstruction score, the latent map, clear errors, and a
short run on MNIST that learns to reconstruct."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from genzoo.config import TrainConfig, validate_params
from genzoo.data import Split, load_split
from genzoo.mixture import GaussianMixture, fit_mixture
from genzoo.models import PhaseContext, ScoreSettings
from genzoo.models.ae import AE, AEConfig, MixtureConfig, project_2d
from genzoo.train import train


def small_ae(latent: int = 2, seed: int = 0) -> AE:
    torch.manual_seed(seed)
    return AE(AEConfig(hidden=[16], latent=latent)).eval()


def clusters(n: int = 3000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes from three well-separated 2-D Gaussians with shares 1/2, 1/3, 1/6, and their centres."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    picks = torch.multinomial(torch.tensor([3.0, 2.0, 1.0]), n, replacement=True, generator=generator)
    return centres[picks] + 0.5 * torch.randn(n, 2, generator=generator), centres


def random_split(n: int = 60, seed: int = 0) -> Split:
    generator = torch.Generator().manual_seed(seed)
    gray = (torch.rand(n, 1, 28, 28, generator=generator) * 255).to(torch.uint8)
    bits = (torch.rand(n, 1, 28, 28, generator=generator) * 255 < gray).to(torch.uint8)
    return Split(gray=gray, labels=torch.arange(n) % 10, binary=bits)


def with_mixture(model: AE, components: int = 3) -> AE:
    codes = model.encode_all(random_split().images("binarized"))
    model.attach_mixture(fit_mixture(codes, MixtureConfig(components=components, iterations=10),
                                     torch.Generator().manual_seed(0)))
    return model


# -- the mixture ------------------------------------------------------------------------------

def test_em_recovers_well_separated_clusters():
    codes, centres = clusters()
    mixture = fit_mixture(codes, MixtureConfig(components=3, iterations=50),
                          torch.Generator().manual_seed(1))
    order = torch.cdist(centres.double(), mixture.means).argmin(1)  # the component of each centre
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(mixture.means[order], centres.double(), atol=0.1, rtol=0)
    torch.testing.assert_close(mixture.weights[order], torch.tensor([1 / 2, 1 / 3, 1 / 6]).double(),
                               atol=0.03, rtol=0)
    variances = (mixture.scale_tril @ mixture.scale_tril.transpose(1, 2)).diagonal(dim1=1, dim2=2)
    torch.testing.assert_close(variances, torch.full((3, 2), 0.25).double(), atol=0.05, rtol=0)


def test_em_is_deterministic_given_the_seed_and_never_lowers_the_likelihood():
    codes, _ = clusters(seed=2)
    fits = [fit_mixture(codes, MixtureConfig(components=4, iterations=iterations),
                        torch.Generator().manual_seed(7)) for iterations in (1, 5, 20, 20)]
    assert all(torch.equal(a, b) for a, b in zip(vars(fits[2]).values(), vars(fits[3]).values()))
    likelihoods = [fit.log_prob(codes.double()).mean().item() for fit in fits[:3]]
    assert likelihoods[0] <= likelihoods[1] + 1e-9 <= likelihoods[2] + 2e-9  # EM climbs
    other = fit_mixture(codes, MixtureConfig(components=4, iterations=20), torch.Generator().manual_seed(8))
    assert not torch.equal(other.means, fits[2].means)


def test_mixture_density_and_samples_match_torch_distributions():
    generator = torch.Generator().manual_seed(3)
    K, L = 3, 4
    factors = torch.randn(K, L, L, generator=generator, dtype=torch.float64)
    scale_tril = torch.linalg.cholesky(factors @ factors.transpose(1, 2) + torch.eye(L, dtype=torch.float64))
    mixture = GaussianMixture(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64),
                              torch.randn(K, L, generator=generator, dtype=torch.float64) * 3, scale_tril)
    reference = D.MixtureSameFamily(D.Categorical(mixture.weights),
                                    D.MultivariateNormal(mixture.means, scale_tril=scale_tril))
    z = torch.randn(50, L, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(mixture.log_prob(z), reference.log_prob(z))
    draws = mixture.sample(20000, torch.Generator().manual_seed(4))
    torch.testing.assert_close(draws.mean(0), reference.mean, atol=0.1, rtol=0)


# -- the phase, sampling, scores --------------------------------------------------------------

def test_the_mixture_phase_writes_a_deterministic_file_that_the_stages_attach(tmp_path):
    data = tmp_path / "processed"
    data.mkdir()
    split = random_split(200)
    np.savez(data / "train.npz", gray=split.gray.squeeze(1).numpy(), labels=split.labels.numpy())
    settings = {"model": "ae", "seed": 3, "batch_size": 64,
                "mixture": {"components": 4, "iterations": 10, "min_variance": 1e-4}}
    written = []
    for run in ("a", "b"):
        out = tmp_path / run / "mixture"
        out.mkdir(parents=True)
        small_ae().write_mixture(PhaseContext(run_dir=tmp_path / run, out_dir=out, data_dir=data,
                                              settings=settings, seed=3, device=torch.device("cpu"),
                                              fit=None))
        written.append((out / "mixture.npz").read_bytes())
    assert written[0] == written[1]
    model = small_ae()
    with pytest.raises(ValueError, match="'mixture' phase"):
        model.sample(2)
    model.load_phases(tmp_path / "a", load=None)
    assert model.mixture.means.shape == (4, 2)
    with pytest.raises(ValueError, match="refit"):
        small_ae(latent=3).load_phases(tmp_path / "a", load=None)
    with pytest.raises(FileNotFoundError, match="mixture phase"):
        small_ae().load_phases(tmp_path / "nowhere", load=None)


def test_samples_are_binary_and_the_same_seed_gives_the_same_bytes():
    model = with_mixture(small_ae())
    first = model.sample(6, generator=torch.Generator().manual_seed(1))
    again = model.sample(6, generator=torch.Generator().manual_seed(1))
    other = model.sample(6, generator=torch.Generator().manual_seed(2))
    assert first.shape == (6, 1, 28, 28) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert first.numpy().tobytes() == again.numpy().tobytes() and not torch.equal(first, other)
    means = model.sample(6, generator=torch.Generator().manual_seed(1), means=True)
    assert 0 < means.min() and means.max() < 1


def test_score_is_the_reconstruction_error_and_no_nll():
    model = with_mixture(small_ae())
    test = random_split(30)
    metrics = model.score(test, ScoreSettings(batch_size=7), variant="binarized",
                          generator=torch.Generator().manual_seed(0))
    assert metrics["nll_kind"] == "none" and "test_nll_nats" not in metrics
    x = test.images("binarized")
    with torch.no_grad():
        logits = model.decode(model.encode(x))
    nats = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    assert metrics["reconstruction_nll_nats"] == pytest.approx(nats.item(), rel=1e-5)
    assert metrics["reconstruction_bits_per_dim"] == pytest.approx(nats.item() / (784 * math.log(2)), rel=1e-5)
    assert metrics["reconstruction_pixel_error"] == pytest.approx(((logits > 0).float() != x).float().mean().item())
    assert metrics["mixture_components"] == 3 and metrics["latent"] == 2


@pytest.mark.parametrize("latent", [2, 5])
def test_figures_include_the_latent_map(latent):
    model = with_mixture(small_ae(latent))
    figures = model.figures(random_split(40), n=4, nrow=2, variant="binarized",
                            generator=torch.Generator().manual_seed(0))
    assert set(figures.pngs) == {"samples.png", "reconstructions.png", "latent_map.png"}
    assert figures.pngs["latent_map.png"][:4] == b"\x89PNG"


def test_the_map_shows_2d_codes_as_they_are_and_projects_larger_ones_on_their_principal_axes():
    codes, _ = clusters(500)
    name, (points,) = project_2d(codes)
    assert name == "z" and torch.equal(points, codes)
    generator = torch.Generator().manual_seed(0)
    wide = torch.randn(500, 6, generator=generator) * torch.tensor([5.0, 0.1, 3.0, 0.1, 0.1, 0.1])
    name, (points, centre) = project_2d(wide, wide.mean(0, keepdim=True))
    assert name == "PC" and points.shape == (500, 2)
    torch.testing.assert_close(centre, torch.zeros(1, 2), atol=1e-5, rtol=0)
    spread = points.std(0)
    assert spread[0] > spread[1] > 2.0  # the two wide axes, the widest first


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="binarized"):
        AE(AEConfig(), levels=256)
    with pytest.raises(ValueError, match="hidden"):
        AE(AEConfig(hidden=[]))
    with pytest.raises(Exception, match="components"):
        validate_params({"models": {"ae": {"mixture": {"components": 0}}}})


def test_a_short_run_learns_to_reconstruct_mnist(processed, tmp_path):
    train_split = load_split(processed / "train.npz").subset(2000)
    val = load_split(processed / "val.npz").subset(500)
    history = train("ae", {"hidden": [32], "latent": 4}, TrainConfig(epochs=3, batch_size=50, lr=0.003),
                    train_split=train_split, val_split=val, out_dir=tmp_path, seed=0, progress=False,
                    log=lambda message: None)
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert losses[-1] < losses[0] < 784 * math.log(2) and history["best_val_nll"] is None
