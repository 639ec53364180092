"""Self-describing checkpoints: enough to rebuild the model without params.yaml.

A checkpoint holds the model name, its typed config, the data it was trained on (variant, image
shape, levels), the seed, step and epoch, the package version, and the model and optimizer
states. It holds no wall-clock times, so the same seed gives the same bytes on the CPU.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .data import atomic_write_bytes
from .models import Trainable, build_model

FORMAT = "genzoo-checkpoint/1"


def canonical(value: Any) -> Any:
    """A copy whose pickle bytes depend only on its values, not on the objects' history.

    Pickle writes an object seen before as a back-reference, so the same state can serialize
    differently depending on which strings or tuples happen to be one object (a resumed run's
    optimizer state comes from disk, an uninterrupted run's does not). Rebuilding containers and
    interning strings makes sharing follow equality alone.
    """
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        copy = type(value)((canonical(k), canonical(v)) for k, v in value.items())
        if hasattr(value, "_metadata"):  # state_dict version info
            copy._metadata = canonical(value._metadata)
        return copy
    if isinstance(value, (list, tuple)):
        return type(value)(canonical(item) for item in value)
    return value


def save(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temp file then rename, so a killed job never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save(canonical(payload), buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's payload. Loaded with ``weights_only=True``: tensors, numbers, strings and
    containers only, so a file carrying code is refused, never run."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing checkpoint {path}: run the train stage first")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, damaged, or not written by genzoo
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: damaged or not a genzoo checkpoint ({first}); delete it and "
                         f"rerun the stage that writes it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return payload


def model_payload(name: str, model: Trainable, **extra: Any) -> dict[str, Any]:
    return {"format": FORMAT, "genzoo_version": __version__, "model": name,
            **model.describe(), "state_dict": model.state_dict(), **extra}


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Trainable, dict[str, Any]]:
    """The network stored in a checkpoint, in eval mode on ``device``, and the checkpoint itself."""
    payload = load(path)
    model = build_model(payload["model"], payload["config"], image_shape=payload["image_shape"],
                        levels=payload["levels"], num_classes=payload["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload


def load_run(run_dir: Path, device: str | torch.device = "cpu") -> tuple[Trainable, dict[str, Any]]:
    """A run's complete model: its trained ``model.pt`` with what its phases wrote attached (the
    VQ-VAE's prior), and the training checkpoint."""
    model, payload = load_model(Path(run_dir) / "model.pt", device)
    model.load_phases(Path(run_dir), lambda path: load_model(path, device))
    return model, payload
