"""The denoising autoencoder (dae): its two corruptions, when it corrupts, its denoising scores
and figure, clear errors, and the property that defines it: trained on MNIST, its output from a
corrupted image is closer to the clean image than to the corrupted one it was given."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo import checkpoint
from genzoo.config import TrainConfig, validate_params
from genzoo.data import Split, load_split
from genzoo.mixture import fit_mixture
from genzoo.models import ScoreSettings
from genzoo.models.ae import AE, MixtureConfig
from genzoo.models.base import pixel_log_prob
from genzoo.models.dae import DAE, DAEConfig, corrupt
from genzoo.train import train


def ones(n: int = 200) -> torch.Tensor:
    return torch.ones(n, 1, 28, 28)


def test_masking_zeroes_a_share_p_of_the_pixels_and_nothing_else():
    x = (torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    noisy = corrupt(x, "masking", 0.3, torch.Generator().manual_seed(1))
    assert torch.all(noisy <= x)  # only ones turn into zeros
    hit = corrupt(ones(), "masking", 0.3, torch.Generator().manual_seed(1)) == 0
    assert hit.float().mean().item() == pytest.approx(0.3, abs=0.005)


def test_salt_and_pepper_sets_a_share_p_of_the_pixels_to_fair_coins():
    changed = corrupt(ones(), "salt_and_pepper", 0.4, torch.Generator().manual_seed(2)) != 1
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.005)  # half the hits flip
    noisy = corrupt(torch.zeros(200, 1, 28, 28), "salt_and_pepper", 0.4, torch.Generator().manual_seed(2))
    assert set(noisy.unique().tolist()) == {0.0, 1.0}
    assert noisy.mean().item() == pytest.approx(0.2, abs=0.005)


def test_it_corrupts_while_training_or_given_a_generator_and_encodes_clean_images_otherwise():
    torch.manual_seed(0)
    model = DAE(DAEConfig(hidden=[8], latent=2))
    x = ones(4)
    assert not torch.equal(model.corrupt(x), x)  # training mode: the global RNG
    model.eval()
    assert torch.equal(model.corrupt(x), x)  # the codes of the mixture and the map: clean images
    a = model.corrupt(x, torch.Generator().manual_seed(3))
    b = model.corrupt(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert isinstance(model, AE) and type(model).phases == AE.phases  # the autoencoder's code


def test_the_loss_targets_the_clean_image():
    torch.manual_seed(0)
    model = DAE(DAEConfig(hidden=[8], latent=2, noise=0.5))
    x = ones(3)
    torch.manual_seed(5)
    loss = model.loss(x)
    torch.manual_seed(5)
    noisy = model.corrupt(x)
    expected = -pixel_log_prob(model.decode(model.encode(noisy)), x, 2).mean()
    torch.testing.assert_close(loss, expected)


def test_bad_corruption_settings_are_clear_errors():
    with pytest.raises(ValueError, match="corruption must be one of"):
        DAE(DAEConfig(corruption="gaussian"))
    with pytest.raises(ValueError, match=r"noise must lie in \[0, 1\)"):
        DAE(DAEConfig(noise=1.0))
    with pytest.raises(Exception, match="models.dae.arch.corruption"):
        validate_params({"models": {"dae": {"arch": {"corruption": "blur"}}}})


@pytest.fixture(scope="module")
def trained(processed, tmp_path_factory):
    """A small DAE trained for a few epochs on 5,000 MNIST digits with a quarter of the pixels
    masked, and the test images it is scored on."""
    train_split = load_split(processed / "train.npz").subset(5000)
    val = load_split(processed / "val.npz").subset(500)
    out = tmp_path_factory.mktemp("dae")
    history = train("dae", {"hidden": [128], "latent": 16, "corruption": "masking", "noise": 0.25},
                    TrainConfig(epochs=4, batch_size=50, lr=0.003), train_split=train_split,
                    val_split=val, out_dir=out, seed=0, progress=False, log=lambda message: None)
    model, _ = checkpoint.load_model(out / "model.pt")
    return model, history, load_split(processed / "test.npz").subset(1000)


def test_a_short_run_improves_the_loss(trained):
    _, history, _ = trained
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    assert losses[-1] < losses[0] < 784 * math.log(2)


def test_it_reconstructs_the_clean_input_better_than_the_corrupted_input(trained):
    model, _, test = trained
    metrics = model.score(Split(test.gray, test.labels, test.binary), ScoreSettings(batch_size=250),
                          variant="binarized", generator=torch.Generator().manual_seed(0))
    assert metrics["corruption"] == "masking" and 0 < metrics["corrupted_pixel_error"] < 0.25
    # D(E(x~)) is nearer the clean x than the x~ it was given: it puts the masked strokes back.
    assert metrics["denoised_nll_nats"] < metrics["denoised_vs_corrupted_nll_nats"] - 5


def test_figures_show_the_denoising(trained):
    model, _, test = trained
    codes = model.encode_all(test.images("binarized"))
    model.attach_mixture(fit_mixture(codes, MixtureConfig(components=2, iterations=3),
                                     torch.Generator().manual_seed(0)))
    figures = model.figures(test, n=4, nrow=2, variant="binarized",
                            generator=torch.Generator().manual_seed(0))
    assert {"samples.png", "reconstructions.png", "latent_map.png", "denoising.png"} == set(figures.pngs)
