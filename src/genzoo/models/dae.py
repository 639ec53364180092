"""DAE: the denoising autoencoder, trained to restore the clean image from a corrupted one.

Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing Robust Features with Denoising
Autoencoders", ICML 2008: corrupt x into x~ ~ q(x~ | x), encode x~, and train the decoder to
give back the clean x. Salt-and-pepper noise is the one of Vincent et al., "Stacked Denoising
Autoencoders", JMLR 2010 (section 4.2).

    x~ = corrupt(x)     masking: each pixel set to 0 with probability p
                        salt_and_pepper: each pixel, with probability p, set to 0 or 1 (half each)
    loss                -log p(x | E(x~)) in nats per image: the target is the clean x

Everything else is the autoencoder's (``ae.py``): the codes E(x) of clean images, the Gaussian
mixture fitted to them for sampling, the reconstruction score and the latent map. The score adds
how well the model denoises the test images: the error of D(E(x~)) against x, beside the share of
pixels the corruption changed.

NOTE: Vincent et al. 2008 destroy a fixed number of input components per example (a random subset
of size p * d) and train one sigmoid layer with tied weights; we draw each pixel independently and
train the autoencoder's untied MLP. The corruption noise comes from the global RNG, which the
trainer seeds and saves with its resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..config import knob
from ..data import Split
from .ae import AE, AEConfig
from .base import ScoreSettings
from .figures import Figures, grid_png

CORRUPTIONS = ("masking", "salt_and_pepper")
DENOISED = 16  # test images shown clean, corrupted and denoised


@dataclass
class DAEConfig(AEConfig):
    corruption: str = knob("masking", "Noise q(x~ | x): masking (pixels set to 0) or "
                           "salt_and_pepper (pixels set to 0 or 1 at random).", choices=CORRUPTIONS)
    noise: float = knob(0.25, "Probability that the corruption hits a pixel (Vincent et al.'s "
                        "destruction fraction nu).", minimum=0, exclusiveMaximum=1)


def corrupt(x: Tensor, kind: str, p: float, generator: torch.Generator | None = None) -> Tensor:
    """x (B, C, H, W) in {0, 1} with each pixel hit with probability p: zeroed (masking) or set to
    a fair coin (salt_and_pepper)."""
    hit = torch.rand(x.shape, generator=generator, device=x.device) < p
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    coin = (torch.rand(x.shape, generator=generator, device=x.device) < 0.5).to(x.dtype)
    return torch.where(hit, coin, x)


class DAE(AE):
    """The autoencoder trained on corrupted inputs with the clean images as targets."""

    Config = DAEConfig
    paper = ("Vincent et al. 2008 (ICML); samples from a Gaussian mixture over the codes of the "
             "clean images")

    def __init__(self, config: DAEConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if config.corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {config.corruption!r}")
        if not 0.0 <= config.noise < 1.0:
            raise ValueError(f"noise must lie in [0, 1), got {config.noise}")

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x~ ~ q(x~ | x) while training (the global RNG), or from ``generator`` when given;
        a model in eval mode without a generator sees the clean x (its codes, the mixture's)."""
        if generator is None and not self.training:
            return x
        return corrupt(x, self.config.corruption, self.config.noise, generator)

    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge=None) -> dict[str, Any]:
        """The autoencoder's scores, and the denoising ones on corrupted test images: D(E(x~))
        against the clean x and against x~ itself, and the pixels the corruption changed."""
        metrics = super().score(test, settings, variant=variant, generator=generator, judge=judge)
        clean = test.images(variant).to(generator.device)  # the generator's device draws
        noisy = self.corrupt(clean, generator)
        denoised = self.reconstruction(noisy, clean, batch_size=settings.batch_size)
        echo = self.reconstruction(noisy, noisy, batch_size=settings.batch_size)
        metrics.update(corruption=self.config.corruption, noise=self.config.noise,
                       corrupted_pixel_error=(noisy != clean).double().mean().item(),
                       denoised_nll_nats=denoised["nats"], denoised_pixel_error=denoised["pixel_error"],
                       denoised_vs_corrupted_nll_nats=echo["nats"])
        return metrics

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """The autoencoder's figures and ``denoising.png``: rows of test images, their corrupted
        versions and the decoder's means from those."""
        figures = super().figures(test, n=n, nrow=nrow, variant=variant, generator=generator)
        if test is not None:
            x = test.images(variant)[:DENOISED].to(self.device, self.dtype)
            noisy = self.corrupt(x, generator)
            with torch.no_grad():
                restored = torch.sigmoid(self.decode(self.encode(noisy)))
            rows = [torch.cat([x[i:i + 8], noisy[i:i + 8], restored[i:i + 8]])
                    for i in range(0, len(x), 8)]
            figures.pngs["denoising.png"] = grid_png(torch.cat(rows), nrow=8)
        return figures
