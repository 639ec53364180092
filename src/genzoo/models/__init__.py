"""The zoo: model name (the one word used everywhere) -> model class, and building one.

A model is found by its file: every module of this package that defines a ``GenerativeModel``
with a ``Config`` is the model named after the module (``vae.py`` -> ``vae``: the params key, the
``{model}`` wildcard and the DVC stage). So adding a model is its file here, its section in
params.yaml (and params-paper.yaml) and its published figures in ``genzoo/references.py``; the
workflow, the CLI and the report take everything else from the class (``base.py``: the protocol).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import torch

from ..config import build
from .base import AutoregressiveModel, GenerativeModel, Phase, PhaseContext, ScoreSettings, Trainable
from .classifier import Classifier

HELPERS = ("base", "classifier", "figures", "scoring")  # modules of this package that are no model


def _discover() -> dict[str, type[GenerativeModel]]:
    """{module name: its model class} for every model file of this package, sorted by name."""
    found = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if module_info.name in HELPERS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        classes = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                   if issubclass(cls, GenerativeModel) and cls.__module__ == module.__name__
                   and "Config" in vars(cls)]
        if len(classes) != 1:
            raise ImportError(f"{module.__name__}: a model file defines exactly one model class "
                              f"(found {[cls.__name__ for cls in classes]})")
        found[module_info.name] = classes[0]
    return found


MODELS: dict[str, type[GenerativeModel]] = _discover()

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
    model = cls(typed, image_shape=tuple(image_shape), levels=levels, num_classes=num_classes)
    # Convolution weights in the channels-last layout, which oneDNN's CPU convolutions prefer:
    # the laptop PixelCNN trains 1.5x and scores up to 1.9x faster so (benchmarks/README.md).
    # Only 4-D tensors change layout; the values, and what the model computes, stay the same.
    return model.to(memory_format=torch.channels_last)
