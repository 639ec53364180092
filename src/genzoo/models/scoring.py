"""Scoring helpers the models' ``score`` methods share: per-image NLL, its summary in nats and
bits/dim, and the judge's label agreement on class-conditional samples.

NLL is summed over the pixels of an image (nats/image); bits/dim = nats / (D ln 2) with D = C*H*W
(784 for MNIST).
"""

from __future__ import annotations

import math
from typing import Any

import torch


@torch.no_grad()
def per_image_nll(model, images: torch.Tensor, labels: torch.Tensor, *,
                  batch_size: int = 1000, device: torch.device | str = "cpu") -> torch.Tensor:
    """``model.validation_nll`` of each example, shape (N,) float64, computed in eval mode."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        chunks.append(model.validation_nll(x, y).double().cpu())
    model.train(was_training)
    return torch.cat(chunks)


def bits_per_dim(nats_per_image: float, num_dims: int) -> float:
    return nats_per_image / (num_dims * math.log(2))


def nll_summary(nll: torch.Tensor, num_dims: int) -> dict[str, Any]:
    """Mean test NLL of per-image values ``nll`` (nats), its standard error and bits/dim."""
    nats = nll.mean().item()
    return {"test_images": len(nll), "test_nll_nats": nats,
            "test_nll_nats_stderr": (nll.std().item() / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
            "test_bits_per_dim": bits_per_dim(nats, num_dims)}


@torch.no_grad()
def label_agreement(model, judge, *, samples: int, generator: torch.Generator,
                    batch_size: int = 100) -> float:
    """Fraction of class-conditional samples the judge (classifier) assigns to the requested digit.

    The labels are spread evenly over the digits; the samples come from ``generator``, so the
    figure is reproducible.
    """
    labels = torch.arange(samples, device=model.device) % model.num_classes
    agree = 0
    for start in range(0, samples, batch_size):
        y = labels[start:start + batch_size]
        images = model.sample(len(y), y=y, generator=generator)
        # The judge reads levels 0..levels-1 of its own data; rescale the samples to them.
        images = images / (model.levels - 1) * (judge.levels - 1)
        agree += (judge.predict(images).to(y.device) == y).sum().item()
    return agree / samples


@torch.no_grad()
def label_histogram(model, judge, test_labels: torch.Tensor, *, samples: int,
                    generator: torch.Generator, batch_size: int = 100) -> dict[str, Any]:
    """Mode coverage: the share of ``samples`` unconditional samples the judge assigns to each
    digit, and its KL divergence (nats) from the digits' shares among the test labels, 0 when the
    model draws every digit as often as the test set holds it, ln 10 = 2.30 when it draws one.

    A GAN that collapses onto a few modes shows here: its histogram piles up on a few digits.
    """
    counts = torch.zeros(model.num_classes, dtype=torch.float64)
    for start in range(0, samples, batch_size):
        images = model.sample(min(batch_size, samples - start), generator=generator)
        # The judge reads levels 0..levels-1 of its own data; rescale the samples to them.
        images = images / (model.levels - 1) * (judge.levels - 1)
        counts += torch.bincount(judge.predict(images).cpu(), minlength=model.num_classes).double()
    shares = counts / samples
    test_shares = torch.bincount(test_labels.cpu(), minlength=model.num_classes).double()
    test_shares /= test_shares.sum()
    drawn = shares > 0  # 0 log 0 = 0
    kl = (shares[drawn] * (shares[drawn] / test_shares[drawn]).log()).sum().item()
    return {"label_histogram": shares.tolist(), "label_histogram_kl_nats": kl,
            "label_histogram_samples": samples}
