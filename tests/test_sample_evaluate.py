"""Sample grids, completions and label agreement (the figure and scoring helpers every model's
``figures`` and ``score`` use), on tiny untrained models."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.data import Split
from genzoo.models import ScoreSettings
from genzoo.models.cond_gated_pixelcnn import CondGatedPixelCNN, CondGatedPixelCNNConfig
from genzoo.models.figures import completion_rows, sample_grid
from genzoo.models.made import MADE, MADEConfig
from genzoo.models.scoring import label_agreement

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_conditional() -> CondGatedPixelCNN:
    torch.manual_seed(0)
    config = CondGatedPixelCNNConfig(channels=4, layers=2, head_channels=4)
    return CondGatedPixelCNN(config, image_shape=(1, 6, 6)).eval()


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    return Image.open(io.BytesIO(png)).size  # (width, height)


def grid_size(rows: int, columns: int, side: int) -> tuple[int, int]:
    """Pixels of grid_png's picture: 2-pixel padding around side x side images, scaled by 2."""
    return ((columns * (side + 2) + 2) * 2, (rows * (side + 2) + 2) * 2)


def binary_split(n: int, side: int) -> Split:
    gray = torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(1))
    return Split(gray=gray, labels=torch.arange(1, n + 1) % 10, binary=(gray > 127).to(torch.uint8))


def test_conditional_grid_has_one_row_per_digit():
    figures = sample_grid(tiny_conditional(), n=64, nrow=8, generator=torch.Generator().manual_seed(0))
    images, labels = figures.arrays["samples"], figures.arrays["labels"]
    assert images.shape == (100, 1, 6, 6) and images.dtype == np.uint8
    assert (labels.reshape(10, 10) == np.arange(10)[:, None]).all()
    assert png_size(figures.pngs["samples.png"]) == grid_size(10, 10, 6)  # 10 per row


def test_unconditional_grid_follows_the_sample_config():
    model = MADE(MADEConfig(hidden=[8]), image_shape=(1, 4, 4))
    figures = sample_grid(model, n=12, nrow=3, generator=torch.Generator().manual_seed(0))
    assert figures.arrays["samples"].shape == (12, 1, 4, 4) and "labels" not in figures.arrays
    assert png_size(figures.pngs["samples.png"]) == grid_size(4, 3, 4)  # 3 per row, 4 rows


def test_completions_keep_the_given_top_half():
    model = tiny_conditional()
    gray = torch.randint(0, 256, (3, 1, 6, 6), dtype=torch.uint8)
    test = Split(gray=gray, labels=torch.tensor([1, 2, 3]), binary=(gray > 127).to(torch.uint8))
    rows = completion_rows(model, test, variant="binarized", images=3, per_image=2,
                           generator=torch.Generator().manual_seed(0)).view(3, 4, 1, 6, 6)
    originals = test.binary.float()
    assert torch.equal(rows[:, 0], originals)
    assert torch.equal(rows[:, 1, :, :3], originals[:, :, :3])  # shown top half
    assert (rows[:, 1, :, 3:] == 0.5).all()  # hidden bottom half in grey
    assert torch.equal(rows[:, 2:, :, :3], originals[:, None, :, :3].expand(3, 2, 1, 3, 6))


def test_autoregressive_figures_add_completions_given_test_images():
    model = MADE(MADEConfig(hidden=[8]), image_shape=(1, 6, 6)).eval()
    test = binary_split(5, 6)
    figures = model.figures(test, n=4, nrow=2, variant="binarized",
                            generator=torch.Generator().manual_seed(0), completions=3,
                            completion_samples=2)
    assert set(figures.pngs) == {"samples.png", "completions.png"}
    assert png_size(figures.pngs["completions.png"]) == grid_size(3, 2 + 2, 6)
    for test_images, completions in ((None, 3), (test, 0)):
        figures = model.figures(test_images, n=4, nrow=2, variant="binarized",
                                generator=torch.Generator().manual_seed(0), completions=completions)
        assert set(figures.pngs) == {"samples.png"}


def test_figures_are_reproducible_from_the_generator():
    model = tiny_conditional()
    first = model.figures(binary_split(2, 6), n=4, nrow=2, variant="binarized",
                          generator=torch.Generator().manual_seed(3), completions=2)
    again = model.figures(binary_split(2, 6), n=4, nrow=2, variant="binarized",
                          generator=torch.Generator().manual_seed(3), completions=2)
    assert first.pngs == again.pngs
    assert all(np.array_equal(first.arrays[key], again.arrays[key]) for key in first.arrays)


class ConstantClassifier(torch.nn.Module):
    """Says "0" to everything: it agrees with exactly the samples asked to be zeros."""

    levels = 2

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(images), dtype=torch.long)


def test_label_agreement_counts_matches_with_the_requested_labels():
    agreement = label_agreement(tiny_conditional(), ConstantClassifier(), samples=50,
                                generator=torch.Generator().manual_seed(0), batch_size=20)
    assert agreement == 5 / 50  # labels cycle over the ten digits: five are zeros


def test_a_conditional_models_score_asks_the_judge():
    model = tiny_conditional()
    settings = ScoreSettings(batch_size=2, agreement_samples=30)
    test = binary_split(3, 6)
    metrics = model.score(test, settings, variant="binarized",
                          generator=torch.Generator().manual_seed(0), judge=ConstantClassifier())
    assert metrics["label_agreement"] == 3 / 30 and metrics["agreement_samples"] == 30
    assert metrics["nll_kind"] == "exact" and metrics["test_images"] == 3
    x, y = test.images("binarized"), test.labels
    with torch.no_grad():
        expected = -model.log_prob(x, y).double().mean().item()
    assert metrics["test_nll_nats"] == pytest.approx(expected)
    without = model.score(test, settings, variant="binarized",
                          generator=torch.Generator().manual_seed(0))
    assert "label_agreement" not in without and without["test_nll_nats"] == metrics["test_nll_nats"]
