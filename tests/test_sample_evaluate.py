"""Sample grids, completions and label agreement, on tiny untrained models."""

from __future__ import annotations

import torch

from genzoo.config import SampleConfig
from genzoo.data import Split
from genzoo.evaluate import label_agreement
from genzoo.models.cond_gated_pixelcnn import CondGatedPixelCNN, CondGatedPixelCNNConfig
from genzoo.models.made import MADE, MADEConfig
from genzoo.sample import completions, draw


def tiny_conditional() -> CondGatedPixelCNN:
    torch.manual_seed(0)
    config = CondGatedPixelCNNConfig(channels=4, layers=2, head_channels=4)
    return CondGatedPixelCNN(config, image_shape=(1, 6, 6)).eval()


def test_conditional_grid_has_one_row_per_digit():
    images, labels, nrow = draw(tiny_conditional(), SampleConfig(), torch.Generator().manual_seed(0))
    assert images.shape == (100, 1, 6, 6) and nrow == 10
    assert labels.view(10, 10).eq(torch.arange(10)[:, None]).all()


def test_unconditional_grid_follows_the_sample_config():
    model = MADE(MADEConfig(hidden=[8]), image_shape=(1, 4, 4))
    images, labels, nrow = draw(model, SampleConfig(n=12, nrow=3), torch.Generator().manual_seed(0))
    assert images.shape == (12, 1, 4, 4) and labels is None and nrow == 3


def test_completions_keep_the_given_top_half():
    model = tiny_conditional()
    gray = torch.randint(0, 256, (3, 1, 6, 6), dtype=torch.uint8)
    test = Split(gray=gray, labels=torch.tensor([1, 2, 3]), binary=(gray > 127).to(torch.uint8))
    rows = completions(model, test, variant="binarized", images=3, per_image=2,
                       generator=torch.Generator().manual_seed(0)).view(3, 4, 1, 6, 6)
    originals = test.binary.float()
    assert torch.equal(rows[:, 0], originals)
    assert torch.equal(rows[:, 1, :, :3], originals[:, :, :3])  # shown top half
    assert (rows[:, 1, :, 3:] == 0.5).all()  # hidden bottom half in grey
    assert torch.equal(rows[:, 2:, :, :3], originals[:, None, :, :3].expand(3, 2, 1, 3, 6))


class ConstantClassifier(torch.nn.Module):
    """Says "0" to everything: it agrees with exactly the samples asked to be zeros."""

    levels = 2

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(images), dtype=torch.long)


def test_label_agreement_counts_matches_with_the_requested_labels():
    agreement = label_agreement(tiny_conditional(), ConstantClassifier(), samples=50, batch_size=20)
    assert agreement == 5 / 50  # labels cycle over the ten digits: five are zeros
