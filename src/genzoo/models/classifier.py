"""A small CNN classifier of MNIST digits: the pipeline's judge of samples.

It scores class-conditional models (how often it agrees with the requested label) and, later,
gives the penultimate features for FID. It is no generative model (it has no samples): it is a
``Trainable`` the same trainer fits, whose validation NLL is the cross-entropy -log p(y | x).

Architecture in the spirit of LeCun et al. 1998 / the PyTorch MNIST example: two 3x3 conv layers,
max-pooling, dropout-free, a 128-unit hidden layer (the feature layer) and 10 logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..data import Split
from .base import ScoreSettings, Trainable
from .scoring import per_image_nll


@dataclass
class ClassifierConfig:
    channels: int = knob(32, "Channels of the first conv layer (the second has twice as many).", minimum=1)
    features: int = knob(128, "Size of the penultimate (feature) layer.", minimum=1)


class Classifier(Trainable):
    """p(y | x) for MNIST digits; inputs are levels scaled to [0, 1]."""

    Config = ClassifierConfig
    paper = "LeCun et al. 1998 (convolutional digit classifier)"

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

    def validation_nll(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """-log p(y | x) in nats, (B,): what the trainer minimizes and validates on."""
        if y is None:
            raise ValueError("the classifier needs labels")
        return F.cross_entropy(self(x), y.long(), reduction="none")

    def trivial_nll(self) -> float:
        """-log p(y | x) of a uniform guess over the classes: ln 10 = 2.303 nats for digits."""
        return math.log(self.num_classes)

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Most likely class of each image, (B,)."""
        return torch.cat([self(x[i:i + batch_size].to(self.device)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])

    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge: Trainable | None = None) -> dict:
        """Test accuracy and the label NLL on the fixed test images."""
        images = test.images(variant)
        predicted = self.predict(images, batch_size=settings.batch_size)
        nll = per_image_nll(self, images, test.labels, batch_size=settings.batch_size,
                            device=self.device)
        return {"test_images": len(images),
                "test_accuracy": (predicted == test.labels).double().mean().item(),
                "test_label_nll_nats": nll.mean().item()}
