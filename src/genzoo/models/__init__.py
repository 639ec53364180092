"""The zoo: model name (the one word used everywhere) -> model class."""

from __future__ import annotations

from .base import AutoregressiveModel, GenerativeModel
from .made import MADE
from .nade import NADE

MODELS: dict[str, type[GenerativeModel]] = {
    "nade": NADE,
    "made": MADE,
}

__all__ = ["MODELS", "GenerativeModel", "AutoregressiveModel", "model_class"]


def model_class(name: str) -> type[GenerativeModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
