"""The zoo: model name (the one word used everywhere) -> model class."""

from __future__ import annotations

from .base import AutoregressiveModel, GenerativeModel
from .classifier import Classifier
from .cond_gated_pixelcnn import CondGatedPixelCNN
from .gated_pixelcnn import GatedPixelCNN
from .made import MADE
from .nade import NADE
from .pixelcnn import PixelCNN
from .vae import VAE
from .vqvae import VQVAE

MODELS: dict[str, type[GenerativeModel]] = {
    "nade": NADE,
    "made": MADE,
    "pixelcnn": PixelCNN,
    "gated_pixelcnn": GatedPixelCNN,
    "cond_gated_pixelcnn": CondGatedPixelCNN,
    "vae": VAE,
    "vqvae": VQVAE,
}

# Trained by the same trainer, but not a model of the zoo: the judge of samples.
AUXILIARY: dict[str, type[GenerativeModel]] = {"classifier": Classifier}

__all__ = ["MODELS", "AUXILIARY", "GenerativeModel", "AutoregressiveModel", "model_class"]


def model_class(name: str) -> type[GenerativeModel]:
    try:
        return {**MODELS, **AUXILIARY}[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
