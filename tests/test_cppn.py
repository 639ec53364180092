"""The CPPN: one function of the pixel coordinates at every resolution (its 28x28 rendering is the
likelihood's decoder; finer grids contain the coarse pixel centres), the VAE's bounds on top of
it, the capped test bound, samples, the resolution figure, and a short run that improves."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.config import TrainConfig
from genzoo.data import Split, load_split
from genzoo.models import ScoreSettings
from genzoo.models import cppn as cppn_module
from genzoo.models.base import pixel_log_prob
from genzoo.models.cppn import CPPN, CPPNConfig, pixel_centres
from genzoo.models.vae import VAE
from genzoo.train import train


def small_cppn(seed: int = 0, **arch) -> CPPN:
    torch.manual_seed(seed)
    config = CPPNConfig(**{"hidden": [32], "latent": 4, "cppn_hidden": 8, "cppn_layers": 2, **arch})
    return CPPN(config).double().eval()


def codes(n: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def binary_images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) < 0.3).double()


def test_pixel_centres_cover_the_square_symmetrically():
    centres = pixel_centres(4, 4)
    assert centres.shape == (16, 3)
    assert set(centres[:, 0].tolist()) == {-0.75, -0.25, 0.25, 0.75}
    torch.testing.assert_close(centres[:, 2], centres[:, :2].norm(dim=1))
    assert centres[0, :2].tolist() == [-0.75, -0.75] and centres[1, :2].tolist() == [-0.25, -0.75]


def test_rendering_at_28x28_is_the_decoder_of_the_likelihood():
    model = small_cppn()
    z = codes()
    assert torch.equal(model.render(z, 28, 28), model.decode(z))
    # The ELBO's reconstruction term is the Bernoulli log-likelihood of exactly that rendering.
    x = binary_images()
    mean, log_var = model.posterior(x)
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    z = mean + torch.exp(0.5 * log_var) * eps
    kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(1)
    expected = pixel_log_prob(model.render(z, 28, 28), x, 2) - kl
    torch.testing.assert_close(model.elbo(x, generator=torch.Generator().manual_seed(2)), expected)


def test_a_finer_grid_renders_the_same_function():
    model = small_cppn()
    z = codes()
    coarse = model.render(z, 28, 28)
    fine = model.render(z, 84, 84)  # 3x: every third centre, from the second, is a 28x28 centre
    torch.testing.assert_close(fine[:, :, 1::3, 1::3], coarse)
    large = model.render(z, 112, 112)
    assert large.shape == (5, 1, 112, 112)
    # A smooth function: the 112x112 image averaged over 4x4 blocks stays near the 28x28 one.
    blocks = torch.sigmoid(large).view(5, 1, 28, 4, 28, 4).mean((3, 5))
    assert (blocks - torch.sigmoid(coarse)).abs().max() < 0.05


def test_rendering_in_chunks_gives_the_same_logits(monkeypatch):
    model = small_cppn()
    z = codes(7)
    whole = model.render(z, 28, 28)
    monkeypatch.setattr(cppn_module, "DECODE_CHUNK", 3)
    torch.testing.assert_close(model.render(z, 28, 28), whole)  # same values, other blocking
    with pytest.raises(ValueError, match="0x28"):
        model.render(z, 0, 28)


def test_it_is_a_vae_and_its_iwae_bound_is_tighter_than_its_elbo():
    model = small_cppn()
    assert isinstance(model, VAE) and CPPN.nll_kind == "bound"
    x = binary_images(4)
    elbo = torch.stack([model.elbo(x, generator=torch.Generator().manual_seed(s)) for s in range(50)]).mean(0)
    iwae = model.iwae_bound(x, 50, generator=torch.Generator().manual_seed(0))
    assert torch.all(iwae >= elbo - 0.5)


@pytest.mark.parametrize("test_k, used", [(0, 12), (5, 5), (30, 12)])
def test_test_k_caps_the_importance_samples_of_the_test_bound(test_k, used):
    model = small_cppn(test_k=test_k)
    x = binary_images(8).to(torch.uint8)
    test = Split(gray=x * 255, labels=torch.arange(8), binary=x)
    metrics = model.score(test, ScoreSettings(batch_size=4, iwae_k=12, iwae_batch_size=4),
                          variant="binarized", generator=torch.Generator().manual_seed(0))
    assert metrics["iwae_k"] == used and metrics["nll_kind"] == "bound"
    assert metrics["cppn_hidden"] == 8 and metrics["cppn_layers"] == 2
    assert metrics["test_nll_nats"] <= metrics["neg_elbo_nats"] + 5


def test_samples_are_binary_and_the_same_seed_gives_the_same_bytes():
    model = small_cppn()
    first = model.sample(6, generator=torch.Generator().manual_seed(1))
    again = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert first.shape == (6, 1, 28, 28) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert first.numpy().tobytes() == again.numpy().tobytes()
    assert not torch.equal(first, model.sample(6, generator=torch.Generator().manual_seed(2)))


def test_the_resolution_figure_shows_the_latents_at_both_sizes():
    from io import BytesIO

    from PIL import Image

    model = small_cppn()
    x = binary_images(16).to(torch.uint8)
    figures = model.figures(Split(gray=x * 255, labels=torch.arange(16) % 10, binary=x), n=4, nrow=2,
                            variant="binarized", generator=torch.Generator().manual_seed(0))
    assert set(figures.pngs) == {"samples.png", "interpolation.png", "resolution.png"}
    picture = Image.open(BytesIO(figures.pngs["resolution.png"]))
    assert picture.size == (8 * (112 + 2) + 2, 2 * (112 + 2) + 2)  # 8 latents, 2 rows of 112x112


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="binarized"):
        CPPN(CPPNConfig(), levels=256)
    with pytest.raises(ValueError, match="one channel"):
        CPPN(CPPNConfig(), image_shape=(3, 28, 28))


def test_a_short_run_improves_the_bound(processed, tmp_path):
    history = train("cppn", {"hidden": [64], "latent": 4, "cppn_hidden": 8, "cppn_layers": 2},
                    TrainConfig(epochs=2, batch_size=50, lr=0.003),
                    train_split=load_split(processed / "train.npz").subset(1000),
                    val_split=load_split(processed / "val.npz").subset(200), out_dir=tmp_path,
                    seed=0, progress=False, log=lambda message: None)
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert losses[-1] < losses[0] and history["best_val_nll"] < 784 * math.log(2)
