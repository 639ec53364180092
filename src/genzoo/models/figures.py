"""The pictures a model's ``figures`` hook draws: sample grids and image completions, as PNGs
(grey for one channel, RGB for three; levels 0..levels-1 scaled to 0..255)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from ..data import Split

NUM_DIGITS = 10


@dataclass
class Figures:
    """What the sample stage writes: arrays (one .npz) and PNGs by file name."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    pngs: dict[str, bytes] = field(default_factory=dict)


def tile(images: torch.Tensor, *, nrow: int, padding: int = 2, pad_value: float = 0.5) -> torch.Tensor:
    """The first channel of images (N, C, H, W) laid out ``nrow`` per row with ``padding``
    pixels of ``pad_value`` around each: (rows (H + p) + p, cols (W + p) + p).

    The layout of torchvision's ``make_grid``, written out because importing torchvision.utils
    takes about 2 s (it pulls in torchvision.models and torch._dynamo), paid by every job."""
    count, _, height, width = images.shape
    cols = max(1, min(nrow, count))
    rows = -(-count // cols)
    grid = torch.full((rows * (height + padding) + padding, cols * (width + padding) + padding),
                      pad_value, dtype=images.dtype)
    for k, image in enumerate(images[:, 0]):
        top = (k // cols) * (height + padding) + padding
        left = (k % cols) * (width + padding) + padding
        grid[top:top + height, left:left + width] = image
    return grid


def tile_colour(images: torch.Tensor, *, nrow: int, padding: int = 2,
                pad_value: float = 0.5) -> torch.Tensor:
    """``tile`` of each channel of colour images (N, 3, H, W), stacked channels-last:
    (H', W', 3), the layout of an RGB picture."""
    return torch.stack([tile(images[:, k:k + 1], nrow=nrow, padding=padding, pad_value=pad_value)
                        for k in range(images.shape[1])], dim=-1)


def grid_png(images: torch.Tensor, *, nrow: int = 8, scale: int = 2) -> bytes:
    """A PNG of images (N, C, H, W) with values in [0, 1], ``nrow`` per row: an RGB picture of
    colour images (C = 3: R, G, B), else a grey one of the first channel."""
    colour = images.shape[1] == 3
    layout = tile_colour if colour else tile
    grid = layout(images.float().cpu(), nrow=nrow)  # (H', W', 3) or (H', W')
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    picture = Image.fromarray(pixels, mode="RGB" if colour else "L")
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def class_labels(per_class: int, device) -> torch.Tensor:
    """Labels 0,0,..,1,1,..,9: one row of ``per_class`` images per digit."""
    return torch.arange(NUM_DIGITS, device=device).repeat_interleave(per_class)


def grid_layout(model, *, n: int, nrow: int) -> tuple[int, torch.Tensor | None, int]:
    """(count, labels or None, row length) of a model's sample grid: a conditional model draws a
    10 x 10 grid whose row d shows the digit d."""
    if model.conditional:
        labels = class_labels(NUM_DIGITS, model.device)
        return len(labels), labels, NUM_DIGITS
    return n, None, nrow


def sample_grid(model, *, n: int, nrow: int, generator: torch.Generator) -> Figures:
    """``samples.png`` and the samples as levels (uint8), laid out by ``grid_layout`` (a
    conditional model's labels go into the arrays too)."""
    n, labels, nrow = grid_layout(model, n=n, nrow=nrow)
    images = model.sample(n, y=labels, generator=generator)  # (n, C, H, W) levels
    figures = Figures(arrays={"samples": images.cpu().numpy().astype(np.uint8)},
                      pngs={"samples.png": grid_png(images / (model.levels - 1), nrow=nrow)})
    if labels is not None:
        figures.arrays["labels"] = labels.cpu().numpy()
    return figures


def completion_rows(model, test: Split, *, variant: str, images: int, per_image: int,
                    generator: torch.Generator) -> torch.Tensor:
    """Rows of [original, top half shown, per_image completions], (images * (2 + k), C, H, W)
    scaled to [0, 1]. ``model.sample`` must accept ``given`` and ``given_mask``."""
    originals = test.images(variant)[:images].to(model.device)  # (I, C, H, W) levels
    labels = test.labels[:images].to(model.device)
    height = originals.shape[2]
    given_mask = torch.zeros(model.image_shape, dtype=torch.bool)
    given_mask[:, : height // 2] = True  # the top half is given
    given = originals.repeat_interleave(per_image, 0)
    y = labels.repeat_interleave(per_image) if model.conditional else None
    completed = model.sample(len(given), y=y, generator=generator, given=given,
                             given_mask=given_mask)  # (I * k, C, H, W)
    scale = model.levels - 1
    shown = originals.clone() / scale
    shown[:, :, height // 2:] = 0.5  # the hidden half, in grey
    rows = [torch.cat([originals[i:i + 1] / scale, shown[i:i + 1],
                       completed[i * per_image:(i + 1) * per_image] / scale]) for i in range(images)]
    return torch.cat(rows)
