"""The sample-grid layout: the same pixels as torchvision's make_grid, without importing it in jobs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torchvision.utils import make_grid

from genzoo.models.figures import tile


@pytest.mark.parametrize("count, nrow", [(2, 8), (7, 3), (16, 4), (64, 8), (10, 10), (5, 1)])
def test_tile_lays_images_out_as_make_grid_does(count, nrow):
    images = torch.rand(count, 1, 5, 4, generator=torch.Generator().manual_seed(count))
    expected = make_grid(images, nrow=nrow, padding=2, pad_value=0.5)[0]
    assert torch.equal(tile(images, nrow=nrow), expected)


def test_the_model_package_does_not_import_torchvision():
    """torchvision.utils costs every job about 2 s of start-up (it imports torch._dynamo)."""
    code = "import sys, genzoo.models, genzoo.train; print('torchvision' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
