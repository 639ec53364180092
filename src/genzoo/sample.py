"""Sampling: sample grids, class-conditional grids and image completions, as arrays and PNGs.

Figures of one model go into one folder: ``samples.png`` (an 8x8 grid, or for class-conditional
models one row per digit) and, for autoregressive models, ``completions.png`` (the top half of test
images given, the bottom half sampled, beside the originals).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from . import checkpoint
from .config import SampleConfig
from .data import Split, atomic_write_bytes, save_npz
from .models import AutoregressiveModel, GenerativeModel

NUM_DIGITS = 10


def grid_png(images: torch.Tensor, *, nrow: int = 8, scale: int = 2) -> bytes:
    """A PNG of images (N, C, H, W) with values in [0, 1], ``nrow`` per row."""
    grid = make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=0.5)
    pixels = (grid[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (H', W')
    picture = Image.fromarray(pixels, mode="L")
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def class_labels(per_class: int, device) -> torch.Tensor:
    """Labels 0,0,..,1,1,..,9: one row of ``per_class`` images per digit."""
    return torch.arange(NUM_DIGITS, device=device).repeat_interleave(per_class)


def draw(model: GenerativeModel, config: SampleConfig, generator: torch.Generator
         ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Samples (N, C, H, W), their labels (or None) and the grid's row length."""
    if model.conditional:
        labels = class_labels(NUM_DIGITS, model.device)  # a 10 x 10 grid, row d = digit d
        return model.sample(len(labels), y=labels, generator=generator), labels, NUM_DIGITS
    return model.sample(config.n, generator=generator), None, config.nrow


def completions(model: AutoregressiveModel, test: Split, *, variant: str, images: int,
                per_image: int, generator: torch.Generator) -> torch.Tensor:
    """Rows of [original, top half shown, per_image completions], (images * (2 + k), C, H, W)
    scaled to [0, 1]."""
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


def write_outputs(out_npz: Path, arrays: dict[str, np.ndarray], out_dir: Path,
                  figures: dict[str, bytes]) -> None:
    """The sample arrays as one .npz and each figure as out_dir/<name>, all written atomically."""
    save_npz(Path(out_npz), **arrays)
    for name, png in figures.items():
        atomic_write_bytes(Path(out_dir) / name, png)


def sample(checkpoint_path: Path, *, config: SampleConfig, seed: int, out_npz: Path,
           out_dir: Path, test: Split | None = None, device: str | torch.device = "cpu") -> None:
    """Draw the sample grid (and completions, for autoregressive models) of a trained model."""
    model, payload = checkpoint.load_model(checkpoint_path, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    images, labels, nrow = draw(model, config, generator)
    arrays = {"samples": images.cpu().numpy().astype(np.uint8)}
    if labels is not None:
        arrays["labels"] = labels.cpu().numpy()
    out_dir = Path(out_dir)
    figures = {"samples.png": grid_png(images / (model.levels - 1), nrow=nrow)}
    if isinstance(model, AutoregressiveModel) and config.completions and test is not None:
        rows = completions(model, test, variant=payload["variant"], images=config.completions,
                           per_image=config.completion_samples, generator=generator)
        figures["completions.png"] = grid_png(rows, nrow=2 + config.completion_samples)
    write_outputs(out_npz, arrays, out_dir, figures)
