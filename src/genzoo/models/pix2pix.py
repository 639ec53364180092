"""pix2pix: image-to-image translation by a conditional GAN with an L1 term.

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017: a U-Net generator (section 3.2.1, skip connections between mirrored layers), a
PatchGAN discriminator that scores N x N patches of the (input, output) pair (section 3.2.2), and

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G)                       (eq. 4)
    L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))]     L_L1 = E |y - G(x)|_1

with G's noise given only as dropout, at training and at test time (section 3.1).

Two MNIST tasks in one model, each computed from the binarized digit y itself (nothing stored):

    task 0, super-resolution: x = the 4x4-block means of y (7x7), shown upsampled to 28x28
    task 1, completion:       x = y with its bottom half set to 0

G and D see x and a constant task channel; a batch mixes the tasks (image i gets task i mod 2).
No likelihood (``nll_kind = "none"``): ``score`` reports per task the L1 distance of G's pixel
probabilities to the truth and the share of wrong pixels of its thresholded output, beside the same
error of the input itself; sample quality is judged on translations of test images
(``quality_samples``). No colour dataset exists in the zoo yet, so no colorization task.

NOTE: 28x28 images: a U-Net of two stride-2 levels (28 -> 14 -> 7) instead of the paper's eight,
and a PatchGAN of two stride-2 layers (each logit sees a 10x10 patch, not 70x70). Binary data: G
ends in a sigmoid (Bernoulli probabilities) instead of tanh, and its images are thresholded at
1/2. D's loss is halved, as in the paper; Adam with beta1 = 0.5 as the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..data import Split
from .base import (GenerativeModel, OptimizerSpec, ScoreSettings, Trainable, Update, binary_only,
                   first_problem, one_channel, sides_divisible)
from .figures import Figures, grid_png

TASKS = ("superres", "completion")
FACTOR = 4  # super-resolution: 28x28 from 7x7 block means
FIGURE_ROWS = 4  # translations.png: test digits per task


@dataclass
class Pix2PixConfig:
    channels: int = knob(32, "Feature maps at H/2 x W/2 (twice as many at H/4), in G and D.",
                         minimum=1)
    l1_weight: float = knob(100.0, "lambda of eq. 4: the weight of the L1 term in G's loss "
                            "(the paper's 100).", minimum=0)
    dropout: float = knob(0.5, "Dropout of G's decoder layers, at training and test time (its "
                          "noise; the paper's 0.5).", minimum=0, exclusiveMaximum=1)
    leak: float = knob(0.2, "Slope of the discriminator's LeakyReLU.", minimum=0, maximum=1)
    beta1: float = knob(0.5, "Adam's beta1 for both players (the paper's 0.5).",
                        minimum=0, exclusiveMaximum=1)


def degrade(y: Tensor, tasks: Tensor) -> Tensor:
    """G's input for truth images y (B, 1, H, W) and task ids (B,): (B, 2, H, W), the degraded
    image and a constant task channel."""
    H, W = y.shape[2:]
    low = F.avg_pool2d(y, FACTOR)  # (B, 1, H/4, W/4): the share of ink in each block
    superres = F.interpolate(low, size=(H, W), mode="nearest")
    completion = y.clone()
    completion[:, :, H // 2:] = 0  # the bottom half is hidden
    is_completion = tasks.view(-1, 1, 1, 1).to(y.dtype)
    x = superres * (1 - is_completion) + completion * is_completion
    return torch.cat([x, is_completion.expand_as(x)], dim=1)


def task_ids(n: int, offset: int = 0, device=None) -> Tensor:
    """Image i's task, (n,): i mod 2 (super-resolution, completion, ...), counted from offset."""
    return torch.arange(offset, offset + n, device=device) % len(TASKS)


def _down(c_in: int, c_out: int, leak: float, norm: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)]
    return nn.Sequential(*layers, *([nn.BatchNorm2d(c_out)] if norm else []), nn.LeakyReLU(leak))


class Pix2Pix(GenerativeModel):
    """U-Net generator and PatchGAN discriminator on super-resolution and completion."""

    Config = Pix2PixConfig
    paper = "Isola et al. 2017 (pix2pix, CVPR)"
    nll_kind = "none"
    has_validation_nll = False

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary images of one channel (its tasks degrade a binary digit), sides divisible
        by 4 (the U-Net's and the PatchGAN's two stride-2 layers, the 4x4 blocks)."""
        return first_problem(binary_only("pix2pix", levels),
                             one_channel("pix2pix", image_shape, "translates"),
                             sides_divisible("pix2pix", image_shape, 4, "two stride-2 layers"))

    def __init__(self, config: Pix2PixConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if not 0 <= config.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {config.dropout}")
        c, leak = config.channels, config.leak
        self.generator = nn.ModuleDict({
            "down1": _down(2, c, leak, norm=False),  # (B, c, H/2, W/2)
            "down2": _down(c, 2 * c, leak),  # (B, 2c, H/4, W/4)
            "middle": nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(2 * c), nn.ReLU()),
            "up2": nn.Sequential(nn.ConvTranspose2d(4 * c, c, 4, 2, 1, bias=False),
                                 nn.BatchNorm2d(c), nn.ReLU()),  # (B, c, H/2, W/2)
            "up1": nn.ConvTranspose2d(2 * c, 1, 4, 2, 1),  # (B, 1, H, W) logits
        })
        self.discriminator = nn.Sequential(
            _down(3, c, leak, norm=False),  # (x, task, y) -> (B, c, H/2, W/2)
            _down(c, 2 * c, leak),  # (B, 2c, H/4, W/4)
            nn.Conv2d(2 * c, 1, 3, 1, 1))  # (B, 1, H/4, W/4): one logit per patch

    def _dropout(self, h: Tensor, generator: torch.Generator | None) -> Tensor:
        """Dropout in train and eval mode alike: G's only noise (section 3.1)."""
        p = self.config.dropout
        if p == 0:
            return h
        keep = torch.rand(h.shape, generator=generator, device=h.device) >= p
        return h * keep.to(h.dtype) / (1 - p)

    def generate(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """G's pixel logits (B, 1, H, W) for inputs x (B, 2, H, W)."""
        g = self.generator
        d1 = g["down1"](x)  # (B, c, H/2, W/2)
        d2 = g["down2"](d1)  # (B, 2c, H/4, W/4)
        m = self._dropout(g["middle"](d2), generator)
        u2 = self._dropout(g["up2"](torch.cat([m, d2], 1)), generator)  # skip from down2
        return g["up1"](torch.cat([u2, d1], 1))  # skip from down1

    def discriminate(self, x: Tensor, y: Tensor) -> Tensor:
        """D's patch logits (B, H/4 * W/4) that y (B, 1, H, W) is the truth for input x."""
        return self.discriminator(torch.cat([x, y], 1)).flatten(1)

    # -- training --------------------------------------------------------------------------------

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        betas = (self.config.beta1, 0.999)
        return {"discriminator": OptimizerSpec(tuple(self.discriminator.parameters()), betas),
                "generator": OptimizerSpec(tuple(self.generator.parameters()), betas)}

    def training_step(self, y: Tensor, labels: Tensor | None, update: Update) -> dict[str, Tensor]:
        """D's step on (x, truth) and (x, G(x)), then G's against the updated D plus lambda L1."""
        x = degrade(y, task_ids(len(y), device=y.device))
        fake = torch.sigmoid(self.generate(x))  # (B, 1, H, W) probabilities
        real_logits, fake_logits = self.discriminate(x, y), self.discriminate(x, fake.detach())
        d_loss = 0.5 * (F.softplus(-real_logits) + F.softplus(fake_logits)).mean()
        update("discriminator", d_loss)
        self.discriminator.requires_grad_(False)  # G's step computes no gradient for D
        try:
            adversarial = F.softplus(-self.discriminate(x, fake)).mean()  # -log D(x, G(x))
            l1 = (fake - y).abs().mean()
            update("generator", adversarial + self.config.l1_weight * l1)
        finally:
            self.discriminator.requires_grad_(True)
        return {"generator_loss": adversarial.detach(), "l1_loss": l1.detach(),
                "discriminator_loss": d_loss.detach()}

    # -- translating -----------------------------------------------------------------------------

    @torch.no_grad()
    def translate(self, y: Tensor, tasks: Tensor, generator: torch.Generator | None = None
                  ) -> tuple[Tensor, Tensor]:
        """(G's input, G's probabilities), (B, 2, H, W) and (B, 1, H, W), for truth images y."""
        x = degrade(y.to(self.device, self.dtype), tasks.to(self.device))
        return x, torch.sigmoid(self.generate(x, generator))

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, offset: int = 0) -> Tensor:
        """G's thresholded translations (n, 1, H, W) of ``given`` truth images, task i mod 2 for
        the image ``offset + i``: pix2pix draws nothing without an input to translate."""
        if given is None or len(given) != n:
            raise ValueError(f"pix2pix translates images: sample needs given, {n} truth images")
        _, probs = self.translate(given, task_ids(n, offset, self.device), generator)
        return (probs > 0.5).to(probs.dtype)

    @torch.no_grad()
    def quality_samples(self, n: int, *, y: Tensor | None = None,
                        generator: torch.Generator | None = None, test_images: Tensor | None = None,
                        offset: int = 0) -> Tensor:
        """Translations of the test images offset .. offset + n - 1, the tasks alternating."""
        if test_images is None or offset + n > len(test_images):
            raise ValueError(f"pix2pix judges translations of test images: needs {offset + n}, "
                             f"got {0 if test_images is None else len(test_images)}")
        return self.sample(n, generator=generator, given=test_images[offset:offset + n],
                           offset=offset)

    # -- the evaluate and sample stages ----------------------------------------------------------

    @torch.no_grad()
    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge: Trainable | None = None) -> dict[str, Any]:
        """Per task, on every test image: the mean L1 distance (per pixel) of G's probabilities
        to the truth, the share of wrong pixels of its thresholded output and of the input."""
        was_training = self.training
        self.eval()
        images = test.images(variant)
        sums = {task: torch.zeros(3, dtype=torch.float64) for task in TASKS}
        for start in range(0, len(images), settings.batch_size):
            y = images[start:start + settings.batch_size].to(self.device, self.dtype)
            for index, task in enumerate(TASKS):
                tasks = torch.full((len(y),), index, device=self.device)
                x, probs = self.translate(y, tasks, generator)
                wrong_in = ((x[:, :1] > 0.5).to(y.dtype) != y)
                sums[task] += torch.stack([(probs - y).abs().flatten(1).mean(1).sum(),
                                           ((probs > 0.5).to(y.dtype) != y).flatten(1).float()
                                           .mean(1).sum(), wrong_in.flatten(1).float().mean(1)
                                           .sum()]).double().cpu()
        self.train(was_training)
        metrics: dict[str, Any] = {"nll_kind": self.nll_kind, "test_images": len(images),
                                   "tasks": list(TASKS)}
        for task, (l1, wrong, wrong_input) in sums.items():
            metrics.update({f"{task}_l1": l1.item() / len(images),
                            f"{task}_pixel_error": wrong.item() / len(images),
                            f"{task}_input_pixel_error": wrong_input.item() / len(images)})
        return metrics

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """``translations.png``: per task, rows of input, output (probabilities) and truth."""
        figures = Figures()
        if test is None:
            return figures
        was_training = self.training
        self.eval()
        truth = test.images(variant)[:FIGURE_ROWS * len(TASKS)].to(self.device, self.dtype)
        tasks = torch.arange(len(truth), device=self.device) // FIGURE_ROWS  # 4 of each task
        x, probs = self.translate(truth, tasks, generator)
        self.train(was_training)
        rows = torch.stack([x[:, :1], probs, truth], 1)  # (N, 3, 1, H, W)
        figures.arrays["translations"] = (probs > 0.5).cpu().numpy().astype("uint8")
        figures.arrays["tasks"] = tasks.cpu().numpy()
        figures.pngs["translations.png"] = grid_png(rows.flatten(0, 1), nrow=3 * 2)
        return figures
