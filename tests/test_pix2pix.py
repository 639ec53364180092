"""pix2pix: the degradations are computed from the truth, G's output shape and range, dropout noise
from the generator (same seed same images), the tasks alternate across the FID batches, the score
per task, a short run lowers the L1 error, the quality_samples hook, clear errors."""

from __future__ import annotations

import pytest
import torch

from conftest import pattern_split
from genzoo import checkpoint
from genzoo.config import TrainConfig
from genzoo.data import Split
from genzoo.models import ScoreSettings
from genzoo.models.pix2pix import TASKS, Pix2Pix, Pix2PixConfig, degrade, task_ids
from genzoo.models.vae import VAE, VAEConfig
from genzoo.quality import draw_samples
from genzoo.train import train

SHAPE = (1, 8, 8)
ARCH = {"channels": 4}


def tiny(**arch) -> Pix2Pix:
    torch.manual_seed(0)
    return Pix2Pix(Pix2PixConfig(**{**ARCH, **arch}), image_shape=SHAPE).eval()


def split_of(count: int = 40) -> Split:
    return pattern_split(count, patterns=4, shape=SHAPE)


def test_degradations_come_from_the_truth_alone():
    y = split_of(6).images("binarized")
    x = degrade(y, task_ids(6))  # tasks 0, 1, 0, 1, ...
    assert x.shape == (6, 2, 8, 8)
    assert torch.equal(x[:, 1], task_ids(6).float().view(6, 1, 1).expand(6, 8, 8))
    superres, completion = x[0::2, 0], x[1::2, 0]
    blocks = y[0::2, 0].view(3, 2, 4, 2, 4).mean((2, 4))  # (3, 2, 2) block means
    assert torch.allclose(superres, blocks.repeat_interleave(4, 1).repeat_interleave(4, 2))
    assert torch.equal(completion[:, :4], y[1::2, 0, :4]) and completion[:, 4:].eq(0).all()
    assert torch.equal(x, degrade(y.clone(), task_ids(6)))


def test_generator_output_shape_and_range():
    model = tiny()
    y = split_of(10).images("binarized")
    x, probs = model.translate(y, task_ids(10), torch.Generator().manual_seed(0))
    assert x.shape == (10, 2, 8, 8) and probs.shape == (10, 1, 8, 8)
    assert probs.min() >= 0 and probs.max() <= 1
    images = model.sample(10, given=y, generator=torch.Generator().manual_seed(0))
    assert images.shape == (10, *SHAPE) and set(images.unique().tolist()) <= {0.0, 1.0}
    assert model.discriminate(x, y).shape == (10, 4)  # one logit per patch of the 2x2 grid


def test_dropout_is_the_noise_same_seed_same_translations():
    model, y = tiny(), split_of(10).images("binarized")
    a = model.translate(y, task_ids(10), torch.Generator().manual_seed(3))[1]
    b = tiny().translate(y, task_ids(10), torch.Generator().manual_seed(3))[1]
    c = model.translate(y, task_ids(10), torch.Generator().manual_seed(4))[1]
    assert torch.equal(a, b) and not torch.equal(a, c)  # noise at test time too (section 3.1)
    no_noise = tiny(dropout=0.0)
    assert torch.equal(no_noise.translate(y, task_ids(10), torch.Generator().manual_seed(3))[1],
                       no_noise.translate(y, task_ids(10), torch.Generator().manual_seed(4))[1])


def test_fid_images_are_translations_of_the_test_images_tasks_alternating():
    model, y = tiny(dropout=0.0), split_of(23).images("binarized")
    drawn = draw_samples(model, 23, batch_size=10, generator=torch.Generator(), test_images=y)
    assert torch.equal(drawn, model.sample(23, given=y))  # batches of 10, 10, 3: the same tasks
    with pytest.raises(ValueError, match="needs 30, got 23"):
        draw_samples(model, 30, batch_size=10, generator=torch.Generator(), test_images=y)


def test_other_models_judge_their_own_samples():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(hidden=[4], latent=2), image_shape=SHAPE)
    test_images = torch.zeros(5, *SHAPE)
    hooked = vae.quality_samples(5, generator=torch.Generator().manual_seed(1),
                                 test_images=test_images, offset=3)
    assert torch.equal(hooked, vae.sample(5, generator=torch.Generator().manual_seed(1)))


def test_score_reports_each_task_against_its_input():
    metrics = tiny().score(split_of(30), ScoreSettings(batch_size=8), variant="binarized",
                           generator=torch.Generator().manual_seed(0))
    assert metrics["nll_kind"] == "none" and metrics["test_images"] == 30
    assert metrics["tasks"] == list(TASKS) and "test_nll_nats" not in metrics
    for task in TASKS:
        for key in ("l1", "pixel_error", "input_pixel_error"):
            assert 0 <= metrics[f"{task}_{key}"] <= 1, (task, key)


def test_a_short_training_run_lowers_the_l1_error(tmp_path):
    data = split_of(200)
    settings = ScoreSettings(batch_size=50)
    before = tiny(channels=8).score(data, settings, variant="binarized",
                                    generator=torch.Generator().manual_seed(0))
    history = train("pix2pix", {"channels": 8}, TrainConfig(epochs=10, batch_size=20, lr=5e-3),
                    train_split=data, val_split=data, out_dir=tmp_path, seed=1, progress=False,
                    log=lambda message: None)
    assert history["best_val_nll"] is None
    assert {"generator_loss", "l1_loss", "discriminator_loss"} <= set(history["epochs"][-1])
    model, _ = checkpoint.load_model(tmp_path / "model.pt")
    after = model.score(data, settings, variant="binarized",
                        generator=torch.Generator().manual_seed(0))
    for task in TASKS:
        assert after[f"{task}_l1"] < 0.6 * before[f"{task}_l1"], (task, before, after)
    assert after["superres_pixel_error"] < after["superres_input_pixel_error"]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="binarized"):
        Pix2Pix(Pix2PixConfig(**ARCH), image_shape=SHAPE, levels=256)
    with pytest.raises(ValueError, match="divisible by 4"):
        Pix2Pix(Pix2PixConfig(**ARCH), image_shape=(1, 6, 6))
    with pytest.raises(ValueError, match="dropout"):
        Pix2Pix(Pix2PixConfig(channels=4, dropout=1.0), image_shape=SHAPE)
    with pytest.raises(ValueError, match="needs given"):
        tiny().sample(4)
