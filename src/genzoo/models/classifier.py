"""A small CNN classifier of MNIST digits: the pipeline's judge of samples.

It scores class-conditional models (how often it agrees with the requested label) and, later,
gives the penultimate features for FID. It is trained by the same trainer as the generative
models: its ``log_prob(x, y)`` is log p(y | x), so the trainer's "NLL" is the cross-entropy.

Architecture in the spirit of LeCun et al. 1998 / the PyTorch MNIST example: two 3x3 conv layers,
max-pooling, dropout-free, a 128-unit hidden layer (the feature layer) and 10 logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from .base import GenerativeModel


@dataclass
class ClassifierConfig:
    channels: int = knob(32, "Channels of the first conv layer (the second has twice as many).", minimum=1)
    features: int = knob(128, "Size of the penultimate (feature) layer.", minimum=1)


class Classifier(GenerativeModel):
    """p(y | x) for MNIST digits; inputs are levels scaled to [0, 1]."""

    Config = ClassifierConfig
    paper = "LeCun et al. 1998 (convolutional digit classifier)"
    nll_kind = "none"

    def __init__(self, config: ClassifierConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = config.channels
        channels, height, width = self.image_shape
        self.conv = nn.Sequential(
            nn.Conv2d(channels, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c, H/2, W/2)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2c, H/4, W/4)
        )
        self.hidden = nn.Linear(2 * c * (height // 4) * (width // 4), config.features)
        self.out = nn.Linear(config.features, self.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (B, features) of images holding levels 0..levels-1."""
        h = self.conv(x / (self.levels - 1))
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))  # (B, num_classes) logits

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """log p(y | x) in nats, (B,): what the trainer maximizes and validates on."""
        if y is None:
            raise ValueError("the classifier needs labels")
        return -F.cross_entropy(self(x), y.long(), reduction="none")

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Most likely class of each image, (B,)."""
        return torch.cat([self(x[i:i + batch_size].to(self.device)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])

    def sample(self, n: int, **kwargs) -> Tensor:
        raise TypeError("the classifier is not a generative model: it has no samples")
