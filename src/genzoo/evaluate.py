"""Scoring: negative log-likelihood in nats per image and in bits per dimension.

NLL is summed over the pixels of an image (nats/image); bits/dim = nats / (D ln 2) with D = C*H*W
(784 for MNIST). It is exact for autoregressive models and an upper bound where the model's
``nll_kind`` is ``bound``. Every model is scored on the same stored test bits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from . import checkpoint
from .data import Split, atomic_write_bytes
from .models import GenerativeModel


@torch.no_grad()
def per_image_nll(model: GenerativeModel, images: torch.Tensor, labels: torch.Tensor, *,
                  batch_size: int = 1000, device: torch.device | str = "cpu") -> torch.Tensor:
    """-log p(x) in nats for each image, shape (N,), computed in eval mode."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        chunks.append(-model.log_prob(x, y).double().cpu())
    model.train(was_training)
    return torch.cat(chunks)


def mean_nll(model: GenerativeModel, images: torch.Tensor, labels: torch.Tensor, **kwargs) -> float:
    return per_image_nll(model, images, labels, **kwargs).mean().item()


def bits_per_dim(nats_per_image: float, num_dims: int) -> float:
    return nats_per_image / (num_dims * math.log(2))


def evaluate(checkpoint_path: Path, test_split: Split, *, history_path: Path | None = None,
             batch_size: int = 1000, device: str | torch.device = "cpu",
             classifier_path: Path | None = None, agreement_samples: int = 1000,
             seed: int = 0) -> dict[str, Any]:
    """Test metrics of a trained model, plus the training facts the report shows beside them.

    For a class-conditional model with ``classifier_path`` given, also the classifier's label
    agreement on ``agreement_samples`` samples.
    """
    model, payload = checkpoint.load_model(checkpoint_path, device)
    nll = per_image_nll(model, test_split.images(payload["variant"]), test_split.labels,
                        batch_size=batch_size, device=device)
    metrics = nll_metrics(model, payload, nll, history_path=history_path)
    if model.conditional and classifier_path is not None:
        classifier, _ = checkpoint.load_model(classifier_path, device)
        metrics["label_agreement"] = label_agreement(model, classifier, samples=agreement_samples,
                                                     seed=seed)
        metrics["agreement_samples"] = agreement_samples
    return metrics


def nll_metrics(model: GenerativeModel, payload: dict[str, Any], nll: torch.Tensor, *,
                history_path: Path | None = None) -> dict[str, Any]:
    """The summary every zoo model's metrics share: test NLL (per-image values ``nll``, nats) with
    its standard error and bits/dim, and the training facts of the checkpoint and its history."""
    nats = nll.mean().item()
    metrics: dict[str, Any] = {
        "model": payload["model"],
        "seed": payload.get("seed"),  # the training run's (genzoo.summary groups runs by it)
        "paper": type(model).paper,
        "nll_kind": type(model).nll_kind,
        "variant": payload["variant"],
        "test_images": len(nll),
        "test_nll_nats": nats,
        "test_nll_nats_stderr": (nll.std().item() / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
        "test_bits_per_dim": bits_per_dim(nats, model.num_pixels),
        "num_parameters": model.num_parameters(),
        "best_epoch": payload["epoch"],
        "steps": payload["step"],
        "best_val_nll": payload["val_nll"],
    }
    if history_path is not None:
        history = json.loads(Path(history_path).read_text())
        metrics.update(train_seconds=history["train_seconds"],
                       seconds_per_epoch=history["seconds_per_epoch"],
                       epochs_trained=len(history["epochs"]), train_device=history["device"])
    return metrics


@torch.no_grad()
def label_agreement(model: GenerativeModel, classifier: GenerativeModel, *, samples: int,
                    seed: int = 0, batch_size: int = 100) -> float:
    """Fraction of class-conditional samples the classifier assigns to the requested digit.

    The labels are spread evenly over the digits; the samples come from a generator seeded by
    ``seed``, so the figure is reproducible.
    """
    generator = torch.Generator(device=model.device).manual_seed(seed)
    labels = torch.arange(samples, device=model.device) % model.num_classes
    agree = 0
    for start in range(0, samples, batch_size):
        y = labels[start:start + batch_size]
        images = model.sample(len(y), y=y, generator=generator)
        # The classifier reads levels 0..levels-1 of its own data; rescale the samples to them.
        images = images / (model.levels - 1) * (classifier.levels - 1)
        agree += (classifier.predict(images).to(y.device) == y).sum().item()
    return agree / samples


def evaluate_classifier(checkpoint_path: Path, test_split: Split, *, history_path: Path | None = None,
                        batch_size: int = 1000, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Test accuracy and label NLL of the pipeline's classifier."""
    model, payload = checkpoint.load_model(checkpoint_path, device)
    images = test_split.images(payload["variant"])
    predicted = model.predict(images, batch_size=batch_size)
    nll = per_image_nll(model, images, test_split.labels, batch_size=batch_size, device=device)
    metrics = {"model": payload["model"], "seed": payload.get("seed"), "paper": type(model).paper,
               "variant": payload["variant"],
               "test_images": len(images),
               "test_accuracy": (predicted == test_split.labels).double().mean().item(),
               "test_label_nll_nats": nll.mean().item(), "num_parameters": model.num_parameters()}
    if history_path is not None:
        metrics["train_seconds"] = json.loads(Path(history_path).read_text())["train_seconds"]
    return metrics


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    atomic_write_bytes(Path(path), (json.dumps(metrics, indent=2) + "\n").encode())
