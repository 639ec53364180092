"""A small CNN classifier of the dataset's classes (MNIST digits, ...): the pipeline's judge of
samples.

It scores class-conditional models (how often it agrees with the requested label) and gives the
penultimate features on which every model's samples are scored (FID, precision and recall,
``genzoo.quality``). It is no generative model (it has no samples): it is a ``Trainable`` the same
trainer fits, whose validation NLL is the cross-entropy -log p(y | x).

Its one phase, ``floor``, scores ``evaluate.fid_samples`` training images against the test set as
a model's samples are scored: the FID, precision and recall of a model whose samples were real
digits, the floor the report prints beside every model's (computed once, cached).

Architecture in the spirit of LeCun et al. 1998 / the PyTorch MNIST example: two 3x3 conv layers,
max-pooling, dropout-free, a 128-unit hidden layer (the feature layer) and 10 logits. It reads
images of any channels (1 grey, or R, G, B) and levels, scaled to [0, 1] as x / (levels - 1), and
any size: the feature layer's input is 2c x (H // 4) x (W // 4) (7x7 at 28x28, 8x8 at 32x32).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..data import Split, atomic_write_bytes, levels_of, load_split
from ..quality import check_judged_shape, judge_features, quality_scores
from .base import Phase, PhaseContext, ScoreSettings, Trainable
from .scoring import per_image_nll


@dataclass
class ClassifierConfig:
    channels: int = knob(32, "Channels of the first conv layer (the second has twice as many).", minimum=1)
    features: int = knob(128, "Size of the penultimate (feature) layer.", minimum=1)


class Classifier(Trainable):
    """p(y | x) for the dataset's classes; inputs are levels scaled to [0, 1]."""

    Config = ClassifierConfig
    paper = "LeCun et al. 1998 (convolutional digit classifier)"
    phases = (Phase(name="floor", outputs=("floor.json",), run="quality_floor",
                    evaluate_keys=("batch_size", "fid_samples", "pr_neighbours")),)
    floor: dict[str, Any] | None = None  # what the floor phase wrote, once load_phases ran

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Any channels (grey, R, G, B) and levels (read as x / (levels - 1)); sides of 4 or
        more, which its two 2x2 poolings leave at least one feature wide."""
        _, H, W = image_shape
        if min(H, W) < 4:
            return f"the classifier pools twice by 2: needs sides of 4 or more, got {H}x{W}"
        return None

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
        """Most likely class of each image (B, C, H, W) of this judge's shape, (B,)."""
        check_judged_shape(self, x)
        return torch.cat([self(x[i:i + batch_size].to(self.device, self.dtype)).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])

    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge: Trainable | None = None) -> dict:
        """Test accuracy and the label NLL on the fixed test images, and the floor of the sample
        quality scores (``floor_fid``, ...) once the floor phase is loaded."""
        images = test.images(variant)
        predicted = self.predict(images, batch_size=settings.batch_size)
        nll = per_image_nll(self, images, test.labels, batch_size=settings.batch_size,
                            device=self.device)
        metrics = {"test_images": len(images),
                   "test_accuracy": (predicted == test.labels).double().mean().item(),
                   "test_label_nll_nats": nll.mean().item()}
        if self.floor is not None:
            metrics.update({f"floor_{key}": value for key, value in self.floor.items()})
        return metrics

    # -- the floor phase: real images scored as samples --------------------------------------------

    def quality_floor(self, context: PhaseContext) -> None:
        """FID, precision and recall of the first ``fid_samples`` training images (binarized
        once, seeded, for the binarized variant) against the test images: what a model whose
        samples were real digits would score at that sample count."""
        settings = context.settings
        variant, samples = settings["variant"], settings["fid_samples"]
        train = load_split(context.data_dir / "train.npz").subset(samples)
        test = load_split(context.data_dir / "test.npz")
        if len(train) < samples:
            raise ValueError(f"evaluate.fid_samples = {samples} is more than the "
                             f"{len(train)} training images")
        if variant == "binarized":  # training bits are dynamic: draw one fixed set
            generator = torch.Generator().manual_seed(settings["seed"])
            images = torch.bernoulli(train.gray.float() / 255.0, generator=generator)
        else:
            images = train.images(variant)
        levels = levels_of(variant)
        real = judge_features(self, test.images(variant), levels=levels,
                              batch_size=settings["batch_size"])
        fake = judge_features(self, images, levels=levels, batch_size=settings["batch_size"])
        scores = quality_scores(real, fake, samples=samples, k=settings["pr_neighbours"])
        atomic_write_bytes(context.out_dir / "floor.json",
                           (json.dumps(scores, indent=2) + "\n").encode())

    def load_phases(self, run_dir: Path, load: Callable[[Path], tuple[Trainable, dict]]) -> None:
        path = Path(run_dir) / "floor" / "floor.json"
        self.floor = json.loads(path.read_text()) if path.exists() else None
