"""PixelVAE: the decoder is causal in the pixels (by gradient), the cached sampler draws the pixels
of a loop of full decoder passes, the bounds are the VAE's (ELBO <= IWAE), same seed same bytes,
the latent figure, a short training run lowers the loss, clear errors.

Everything runs on 8x8 images (the latent map upsamples 2x2 -> 4x4 -> 8x8) with a few channels."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import pattern_split
from genzoo import checkpoint
from genzoo.config import TrainConfig
from genzoo.data import Split
from genzoo.models import ScoreSettings
from genzoo.models.base import draw_levels
from genzoo.models.pixelvae import LATENT_ROWS, LATENT_SAMPLES, PixelVAE, PixelVAEConfig
from genzoo.train import train

SHAPE = (1, 8, 8)
ARCH = {"hidden": [16], "latent": 3, "pixel_channels": 4, "pixel_layers": 2}


def tiny(**arch) -> PixelVAE:
    torch.manual_seed(0)
    return PixelVAE(PixelVAEConfig(**{**ARCH, **arch}), image_shape=SHAPE).double().eval()


def split_of(count: int = 40) -> Split:
    return pattern_split(count, patterns=2, shape=SHAPE)


def test_decoder_is_causal_in_the_pixels_and_reads_the_latent():
    """d logit_i / d x_j = 0 for every pixel j at or after i in raster order; z reaches the pixels."""
    model = tiny()
    z = torch.randn(1, 3, dtype=torch.float64)
    x = (torch.rand(1, *SHAPE, dtype=torch.float64) < 0.5).double()
    jacobian = torch.autograd.functional.jacobian(
        lambda inp: model.decode(z, inp).flatten(), x).view(64, 64)  # [i, j]
    later = torch.ones(64, 64).triu().bool()  # j >= i
    assert torch.all(jacobian[later] == 0), "a pixel's logit depends on itself or a later pixel"
    assert (jacobian[~later] != 0).any()
    by_z = torch.autograd.functional.jacobian(lambda latent: model.decode(latent, x).flatten(), z)
    assert (by_z.view(64, 3).abs().sum(1) > 0).float().mean() > 0.5, "the pixels ignore the latent"


def generic_loop(model: PixelVAE, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The reference sampler: one full decoder pass per pixel, raster order."""
    x = torch.zeros(len(z), *SHAPE, dtype=z.dtype)
    for r in range(SHAPE[1]):
        for c in range(SHAPE[2]):
            x[:, 0, r, c] = draw_levels(model.decode(z, x)[:, 0, r, c], 2, generator)
    return x


@pytest.mark.parametrize("kernels", [(5, 3), (3, 5), (1, 1)])
def test_cached_sampler_draws_the_pixels_of_the_generic_loop(kernels):
    model = tiny(first_kernel_size=kernels[0], kernel_size=kernels[1])
    with torch.no_grad():  # sharper logits: pixels far from 1/2, the draws differ if logits do
        for parameter in model.decoder.parameters():
            parameter.mul_(3)
    z = torch.randn(6, 3, dtype=torch.float64)
    with torch.no_grad():
        expected = generic_loop(model, z, torch.Generator().manual_seed(4))
        fast = model.sample_given(z, generator=torch.Generator().manual_seed(4))
    assert torch.equal(fast, expected)
    assert 0 < expected.mean() < 1


def test_same_seed_same_samples_and_binary_images_of_the_right_shape():
    model = tiny()
    a = model.sample(5, generator=torch.Generator().manual_seed(2))
    b = tiny().sample(5, generator=torch.Generator().manual_seed(2))
    assert a.shape == (5, *SHAPE) and torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(3)))


def test_bounds_are_the_vaes_and_test_k_caps_the_importance_samples():
    model = tiny()
    test = split_of(20)
    x = test.images("binarized").double()
    elbo = model.elbo(x, generator=torch.Generator().manual_seed(0))
    iwae = model.iwae_bound(x, 50, generator=torch.Generator().manual_seed(0))
    assert elbo.shape == iwae.shape == (20,)
    assert iwae.mean() > elbo.mean()  # L_50 >= L_1 in expectation; far apart for a fresh model
    settings = ScoreSettings(batch_size=10, iwae_k=40, iwae_batch_size=10)
    for test_k, used in [(0, 40), (7, 7), (100, 40)]:
        model.config = dataclasses.replace(model.config, test_k=test_k)
        metrics = model.score(test, settings, variant="binarized",
                              generator=torch.Generator().manual_seed(0))
        assert metrics["iwae_k"] == used and metrics["nll_kind"] == "bound"
        assert metrics["test_nll_nats"] <= metrics["neg_elbo_nats"] + 1.0
        assert metrics["latent_kl_nats"] > 0


def test_latent_figure_shows_rows_of_one_z():
    figures = tiny().figures(split_of(), n=4, nrow=2, variant="binarized",
                             generator=torch.Generator().manual_seed(0))
    assert set(figures.pngs) == {"samples.png", "latent.png"}
    from io import BytesIO

    from PIL import Image
    picture = Image.open(BytesIO(figures.pngs["latent.png"]))
    side = 2 * (SHAPE[1] + 2)  # an 8x8 image, 2 px of padding, doubled
    assert picture.size == (2 * 2 + side * (1 + LATENT_SAMPLES), 2 * 2 + side * LATENT_ROWS)


def test_a_short_training_run_lowers_the_bound(tmp_path):
    data = split_of(200)
    history = train("pixelvae", ARCH, TrainConfig(epochs=4, batch_size=20, lr=5e-3),
                    train_split=data, val_split=data, out_dir=tmp_path, seed=1, progress=False,
                    log=lambda message: None)
    val = [epoch["val_nll"] for epoch in history["epochs"]]
    assert val[-1] < val[0] - 3.0, val
    model, _ = checkpoint.load_model(tmp_path / "model.pt")
    assert isinstance(model, PixelVAE)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="binarized"):
        PixelVAE(PixelVAEConfig(**ARCH), image_shape=SHAPE, levels=256)
    with pytest.raises(ValueError, match="one image channel"):
        PixelVAE(PixelVAEConfig(**ARCH), image_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="divisible by 4"):
        PixelVAE(PixelVAEConfig(**ARCH), image_shape=(1, 6, 6))
    with pytest.raises(ValueError, match="needs the image"):
        tiny().decode(torch.zeros(1, 3, dtype=torch.float64))
