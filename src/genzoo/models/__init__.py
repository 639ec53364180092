"""The zoo: model name (the one word used everywhere) -> model class, and building one.

Adding a model is its file here plus one line below, its section in params.yaml (and
params-paper.yaml) and its published figures in ``genzoo/references.py``; the workflow, the CLI and
the report take everything else from the class (see ``base.py`` for the protocol).
"""

from __future__ import annotations

from typing import Any

from ..config import build
from .base import AutoregressiveModel, GenerativeModel, Phase, PhaseContext, ScoreSettings, Trainable
from .classifier import Classifier
from .cond_gated_pixelcnn import CondGatedPixelCNN
from .gated_pixelcnn import GatedPixelCNN
from .independent import Independent
from .made import MADE
from .nade import NADE
from .pixelcnn import PixelCNN
from .vae import VAE
from .vqvae import VQVAE

MODELS: dict[str, type[GenerativeModel]] = {
    "independent": Independent,
    "nade": NADE,
    "made": MADE,
    "pixelcnn": PixelCNN,
    "gated_pixelcnn": GatedPixelCNN,
    "cond_gated_pixelcnn": CondGatedPixelCNN,
    "vae": VAE,
    "vqvae": VQVAE,
}

# Trained by the same trainer, but not a model of the zoo: the judge of samples (label agreement,
# later FID features). Its params are the top-level `classifier` section.
JUDGE = "classifier"
NETWORKS: dict[str, type[Trainable]] = {**MODELS, JUDGE: Classifier}

__all__ = ["MODELS", "JUDGE", "NETWORKS", "GenerativeModel", "AutoregressiveModel", "Trainable",
           "Phase", "PhaseContext", "ScoreSettings", "model_class", "build_model"]


def model_class(name: str) -> type[Trainable]:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(NETWORKS))}") from None


def build_model(name: str, config: dict[str, Any], *, image_shape, levels: int,
                num_classes: int = 10, where: str | None = None) -> Trainable:
    """The network ``name`` with architecture ``config`` (a dict, checked against its Config)."""
    cls = model_class(name)
    typed = build(cls.Config, config, where=where or f"models.{name}.arch")
    return cls(typed, image_shape=tuple(image_shape), levels=levels, num_classes=num_classes)
