"""The sample stage: a run's figures (the model's ``figures`` hook) as arrays and PNGs.

Figures of one run go into one folder: ``samples.png`` (an 8x8 grid, or for class-conditional
models one row per digit) and whatever else the model draws (completions of the top half of test
images for the autoregressive models, a latent interpolation for the VAE, reconstructions for the
VQ-VAE); the sample arrays go into one .npz.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import checkpoint
from .config import SampleConfig, build
from .data import Split, atomic_write_bytes, save_npz
from .models.figures import Figures


def write_outputs(out_npz: Path, figures: Figures, out_dir: Path) -> None:
    """The sample arrays as one .npz and each figure as out_dir/<name>, all written atomically."""
    save_npz(Path(out_npz), **figures.arrays)
    for name, png in figures.pngs.items():
        atomic_write_bytes(Path(out_dir) / name, png)


def sample(run_dir: Path, settings: dict[str, Any], *, out_npz: Path, out_dir: Path,
           test: Split | None = None, device: str | torch.device = "cpu") -> Figures:
    """Draw the figures of the run in ``run_dir`` (seeded by its seed) and write them."""
    config = build(SampleConfig, settings["sample"], where=f"models.{settings['model']}.sample")
    model, payload = checkpoint.load_run(run_dir, device)
    generator = torch.Generator(device=device).manual_seed(settings["seed"])
    figures = model.figures(test, n=config.n, nrow=config.nrow, variant=payload["variant"],
                            generator=generator, completions=config.completions,
                            completion_samples=config.completion_samples)
    write_outputs(out_npz, figures, out_dir)
    return figures
