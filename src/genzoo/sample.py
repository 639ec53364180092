"""Sampling: draw images from a trained model and save them as an array and a PNG grid."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from . import checkpoint
from .data import atomic_write_bytes, save_npz


def grid_png(images: torch.Tensor, *, levels: int, nrow: int = 8, scale: int = 2) -> bytes:
    """A PNG of images (N, C, H, W) holding levels 0..levels-1, ``nrow`` per row."""
    grid = make_grid(images.float().cpu() / (levels - 1), nrow=nrow, padding=2, pad_value=0.5)
    pixels = (grid[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (H', W')
    picture = Image.fromarray(pixels, mode="L")
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def sample(checkpoint_path: Path, *, n: int, nrow: int, seed: int, out_npz: Path, out_png: Path,
           device: str | torch.device = "cpu") -> torch.Tensor:
    """Draw ``n`` samples with a generator seeded by ``seed``; write them as .npz and .png."""
    model, payload = checkpoint.load_model(checkpoint_path, device)
    generator = torch.Generator(device=device).manual_seed(seed)
    images = model.sample(n, generator=generator)  # (n, C, H, W)
    save_npz(Path(out_npz), samples=images.cpu().numpy().astype(np.uint8))
    atomic_write_bytes(Path(out_png), grid_png(images, levels=payload["levels"], nrow=nrow))
    return images
