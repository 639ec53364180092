"""DCGAN: a deep convolutional generative adversarial network, scaled to 28x28 binarized MNIST.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016; the game of Goodfellow et al., "Generative
Adversarial Nets", NIPS 2014.

    generator      z ~ N(0, I) -> project to (2c, H/4, W/4) -> transposed conv -> (c, H/2, W/2)
                   -> transposed conv -> (C, H, W) pixel probabilities G(z) = sigmoid(logits)
    discriminator  x -> strided conv -> (c, H/2, W/2) -> strided conv -> (2c, H/4, W/4) -> D(x)
    losses         L_D = -log D(x) - log(1 - D(G(z)))     L_G = -log D(G(z))  (non-saturating)

The architecture follows section 3 of the paper: no pooling (strided convolutions in D,
fractionally strided ones in G), batch norm in both networks but not on D's input layer or G's
output, ReLU in G, LeakyReLU (slope 0.2) in D, weights drawn from N(0, 0.02), and Adam with
lr 2e-4 and beta1 = 0.5 (section 4). Each training step updates D once on a real and a
generated batch, then G once against the updated D (Goodfellow et al.'s Algorithm 1, k = 1).

A GAN has no likelihood (``nll_kind = "none"``, no validation NLL: the last epoch is kept). Its
scores are the judge's label histogram of its samples (mode coverage) and the pipeline's
sample-quality figures.

How samples become binary images: G gives a probability per pixel; ``samples: bernoulli`` draws
each pixel from it (as the binarized data is drawn from the grey levels), ``threshold`` keeps the
pixels above 1/2.

NOTE: the paper's generator ends in tanh for images in [-1, 1]; ours ends in a sigmoid, a
Bernoulli probability per pixel, because the data are binary. D sees the real binary images and
G's probabilities (not draws from them, which would stop the gradient), so G learns to saturate
its probabilities towards 0 and 1.
NOTE: two up/down-sampling stages (7 -> 14 -> 28) instead of the paper's four (4 -> 64), for
28x28 images; G's first layer is a linear projection reshaped to (2c, 7, 7), as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from .base import (GenerativeModel, OptimizerSpec, Update, binary_only, draw_levels, first_problem,
                   sides_divisible)

SAMPLINGS = ("bernoulli", "threshold")
INIT_STD = 0.02  # section 4: "initialized from a zero-centered Normal distribution with std 0.02"


@dataclass
class DCGANConfig:
    latent: int = knob(100, "Size of the noise z (the paper's 100).", minimum=1)
    channels: int = knob(64, "Feature maps at H/2 x W/2 (twice as many at H/4 x W/4), in G and D.",
                         minimum=1)
    leak: float = knob(0.2, "Slope of the discriminator's LeakyReLU for negative inputs.",
                       minimum=0, maximum=1)
    beta1: float = knob(0.5, "Adam's beta1 for both players (the paper's 0.5; torch's default 0.9).",
                        minimum=0, exclusiveMaximum=1)
    beta2: float = knob(0.999, "Adam's beta2 for both players.", minimum=0, exclusiveMaximum=1)
    samples: str = knob("bernoulli", "How G's pixel probabilities become binary images: "
                        "bernoulli (a draw per pixel) or threshold (above 1/2).",
                        choices=SAMPLINGS)


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for every convolution and linear weight, zero biases (section 4)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class DCGAN(GenerativeModel):
    """Convolutional generator and discriminator trained by the non-saturating GAN game."""

    Config = DCGANConfig
    paper = "Radford, Metz & Chintala 2016 (DCGAN, ICLR)"
    nll_kind = "none"
    has_validation_nll = False
    mode_coverage = True

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels, any channels, sides divisible by 4 (G upsamples H/4 x W/4 twice)."""
        return first_problem(binary_only(cls.__name__, levels),
                             sides_divisible(cls.__name__, image_shape, 4,
                                             "two stride-2 layers in G and D"))

    def __init__(self, config: DCGANConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if config.samples not in SAMPLINGS:
            raise ValueError(f"samples must be one of {SAMPLINGS}, got {config.samples!r}")
        C, H, W = self.image_shape
        c, grid = config.channels, (H // 4, W // 4)
        self.generator = nn.ModuleDict({
            "project": nn.Linear(self.generator_inputs(), 2 * c * grid[0] * grid[1], bias=False),
            "body": nn.Sequential(
                nn.BatchNorm2d(2 * c), nn.ReLU(),  # (B, 2c, H/4, W/4)
                nn.ConvTranspose2d(2 * c, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                nn.ConvTranspose2d(c, C, 4, 2, 1)),  # (B, C, H, W) logits
        })
        self.discriminator = nn.ModuleDict({
            "body": nn.Sequential(
                nn.Conv2d(C, c, 4, 2, 1), nn.LeakyReLU(config.leak),  # (B, c, H/2, W/2)
                nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c),
                nn.LeakyReLU(config.leak), nn.Flatten()),  # (B, 2c * H/4 * W/4)
            "head": nn.Linear(2 * c * grid[0] * grid[1], 1),
        })
        self.grid = grid
        self.apply(_init_weights)

    # -- the two players (the conditional model overrides the label hooks) ----------------------

    def generator_inputs(self) -> int:
        """Width of G's input: the noise z."""
        return self.config.latent

    def generator_input(self, z: Tensor, y: Tensor | None) -> Tensor:
        """G's input for noise z (B, latent): z itself."""
        return z

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G's pixel logits (B, C, H, W) for noise z (B, latent)."""
        h = self.generator["project"](self.generator_input(z, y))  # (B, 2c * H/4 * W/4)
        return self.generator["body"](h.view(len(z), -1, *self.grid))

    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """D's logit that x (B, C, H, W), binary or G's probabilities, is real: (B,)."""
        features = self.discriminator["body"](x)  # (B, 2c * H/4 * W/4)
        return self.discriminator["head"](features).squeeze(1)

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn((n, self.config.latent), generator=generator, device=self.device,
                           dtype=self.dtype)

    # -- training --------------------------------------------------------------------------------

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        """One Adam per player, each over its own parameters only."""
        betas = (self.config.beta1, self.config.beta2)
        return {"discriminator": OptimizerSpec(tuple(self.discriminator.parameters()), betas),
                "generator": OptimizerSpec(tuple(self.generator.parameters()), betas)}

    def training_step(self, x: Tensor, y: Tensor | None, update: Update) -> dict[str, Tensor]:
        """D's step on a real batch and a generated one, then G's against the updated D; the
        noise comes from the global RNG, which the trainer seeds and saves with its resumes."""
        fake = torch.sigmoid(self.generate(self.noise(len(x)), y))  # (B, C, H, W) probabilities
        real_logits = self.discriminate(x, y)
        fake_logits = self.discriminate(fake.detach(), y)  # D's step leaves G alone
        d_loss = (F.softplus(-real_logits) + F.softplus(fake_logits)).mean()  # -log D, -log(1-D)
        update("discriminator", d_loss)
        self.discriminator.requires_grad_(False)  # G's step computes no gradient for D
        try:
            g_loss = F.softplus(-self.discriminate(fake, y)).mean()  # -log D(G(z)): non-saturating
            update("generator", g_loss)
        finally:
            self.discriminator.requires_grad_(True)
        return {"generator_loss": g_loss.detach(), "discriminator_loss": d_loss.detach()}

    # -- sampling ----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` binary images (n, C, H, W): G's probabilities drawn from or thresholded."""
        logits = self.generate(self.noise(n, generator), y)
        if self.config.samples == "threshold":
            return (logits > 0).to(logits.dtype)
        return draw_levels(logits, 2, generator)
