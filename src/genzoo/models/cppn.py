"""CPPN: a VAE whose decoder is a compositional pattern-producing network, so it renders its
samples at any resolution.

Stanley, "Compositional Pattern Producing Networks: A Novel Abstraction of Development", Genetic
Programming and Evolvable Machines 8(2), 2007: an image is a function of the pixel's coordinates,
evaluated at every pixel. Here the function also reads a latent code z and is trained as the
decoder of a VAE (Kingma & Welling, ICLR 2014; the idea of D. Ha's "Generating Large Images from
Latent Vectors", blog.otoro.net, 2016):

    pixel centres     x, y in [-1, 1] (the image is the square [-1, 1]^2), r = sqrt(x^2 + y^2)
    features          c = [x, y, r, sin(pi k x), cos(pi k x), sin(pi k y), cos(pi k y)], k = 1..F
    logit(x, y | z) = f([c, z])   an MLP applied to every pixel on its own
    p(x | z)        = prod over pixels of Bernoulli(sigmoid(logit))

The encoder, the ELBO and the IWAE bound are the VAE's (``vae.py``): the test NLL is the same
upper bound -L_k, so the CPPN has a bits/dim row. Any grid of pixel centres renders the same
function: ``render(z, 112, 112)`` draws the digit of ``decode(z)`` (the 28x28 likelihood's
logits) at 4x the resolution, and ``resolution.png`` shows the same latents at both sizes.

NOTE: Stanley's CPPNs mix activation functions (sine, Gaussian, sigmoid, ...) and are evolved by
NEAT; ours is a fixed tanh MLP trained by gradient. The coordinate and the code contributions to
the first layer are computed apart and summed (the same linear layer on the concatenation), so a
batch of images costs one small matrix product per pixel and layer.
NOTE: the sines and cosines of the coordinates (``frequencies``; Stanley's CPPNs compose periodic
functions of them too) are the Fourier features of Tancik et al., NeurIPS 2020. They cost nothing
per image (the coordinate part of the first layer is computed once per grid) and help a small
network draw strokes: with 16 units, 300 steps reach a validation ELBO of 211 nats with F = 4
against 242 with (x, y, r) alone. Higher frequencies fit 28x28 a little better (208 at F = 8) but
oscillate between the pixel centres, which shows as streaks at 112x112.
NOTE: ``test_k`` caps the importance samples of the test bound below ``evaluate.iwae_k``: on a
CPU a CPPN pass over 784 pixels costs several times the VAE's MLP decoder, so the laptop settings
score with k = 20 (a looser bound; the metrics' ``iwae_k`` says which k), the paper-scale ones
with Burda et al.'s 5000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import knob
from ..data import Split
from ..nn import FastTanh
from .base import ScoreSettings, binary_only, first_problem
from .figures import Figures, grid_png
from .vae import VAE, VAEConfig, capped_iwae_k

RESOLUTION_SCALE = 4  # resolution.png: 28x28 and (4 * 28)x(4 * 28)
RESOLUTION_IMAGES = 8  # latents shown at both sizes
# Images rendered at once: bounds the (N, pixels, hidden) activations; on a CPU small chunks stay
# in its caches (50 renders 28x28 images 1.7x faster than 500), an accelerator wants big ones.
DECODE_CHUNK = 50
ACCELERATOR_DECODE_CHUNK = 2000


@dataclass
class CPPNConfig(VAEConfig):
    hidden: list[int] = knob([400], "Hidden layer sizes of the mlp encoder.",
                             minItems=1, items={"minimum": 1})
    cppn_hidden: int = knob(16, "Width of the CPPN's layers (the per-pixel MLP).", minimum=1)
    cppn_layers: int = knob(2, "Hidden layers of the CPPN (tanh).", minimum=1)
    frequencies: int = knob(4, "F: the sines and cosines of pi k x and pi k y, k = 1..F, beside "
                            "(x, y, r) as the CPPN's coordinate inputs (0: x, y, r alone).", minimum=0)
    test_k: int = knob(0, "Importance samples of the test bound: at most this many (0: "
                       "evaluate.iwae_k). Every pixel goes through the CPPN, so a decoder pass "
                       "costs ~6x the VAE's on a CPU.", minimum=0)


def coordinate_features(centres: Tensor, frequencies: int) -> Tensor:
    """[x, y, r, sin(pi k x), cos(pi k x), sin(pi k y), cos(pi k y)] for k = 1..F: (P, 3 + 4F)
    from the pixel centres (P, 3)."""
    k = torch.arange(1, frequencies + 1, device=centres.device, dtype=centres.dtype) * math.pi
    angles = torch.cat([centres[:, :1] * k, centres[:, 1:2] * k], dim=1)  # (P, 2F)
    return torch.cat([centres, angles.sin(), angles.cos()], dim=1)


def pixel_centres(height: int, width: int, *, device=None, dtype=None) -> Tensor:
    """(x, y, r) of every pixel centre of a height x width image covering [-1, 1]^2, (H*W, 3) in
    raster order; an odd multiple of a size contains that size's centres."""
    ys = (2 * torch.arange(height, device=device, dtype=dtype) + 1) / height - 1
    xs = (2 * torch.arange(width, device=device, dtype=dtype) + 1) / width - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    return torch.stack([x, y, torch.sqrt(x * x + y * y)], dim=-1).view(-1, 3)


class CPPNDecoder(nn.Module):
    """f([coordinate features, z]) -> one Bernoulli logit per pixel."""

    def __init__(self, latent: int, hidden: int, layers: int, frequencies: int = 0) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.coordinates = nn.Linear(3 + 4 * frequencies, hidden)  # the first layer's coordinate part
        self.code = nn.Linear(latent, hidden, bias=False)  # its z part
        body: list[nn.Module] = [FastTanh()]
        for _ in range(layers - 1):
            body += [nn.Linear(hidden, hidden), FastTanh()]
        self.body = nn.Sequential(*body, nn.Linear(hidden, 1))

    def forward(self, z: Tensor, height: int, width: int) -> Tensor:
        """Logits (N, 1, height, width) for codes z (N, latent)."""
        centres = pixel_centres(height, width, device=z.device, dtype=z.dtype)  # (P, 3)
        features = coordinate_features(centres, self.frequencies)  # (P, 3 + 4F)
        h = self.coordinates(features).unsqueeze(0) + self.code(z).unsqueeze(1)  # (N, P, hidden)
        return self.body(h).view(len(z), 1, height, width)


class CPPN(VAE):
    """The VAE's encoder and bounds with a coordinate-based decoder of any resolution."""

    Config = CPPNConfig
    paper = "Stanley 2007 (CPPN), trained as the decoder of a VAE (Kingma & Welling 2014)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels of one channel, any size (a function of the coordinates)."""
        return first_problem(binary_only(cls.__name__, levels),
                             None if image_shape[0] == 1 else
                             f"the CPPN draws one channel, got {image_shape[0]}")

    def build_decoder(self, config: CPPNConfig) -> nn.Module:
        """The CPPN, in place of the VAE's decoder (the VAE builds its encoder)."""
        if config.cppn_hidden < 1 or config.cppn_layers < 1 or config.frequencies < 0:
            raise ValueError("cppn_hidden and cppn_layers must be >= 1, frequencies >= 0")
        return CPPNDecoder(config.latent, config.cppn_hidden, config.cppn_layers, config.frequencies)

    def render(self, z: Tensor, height: int, width: int) -> Tensor:
        """Bernoulli logits (N, 1, height, width) of codes z (N, latent), in chunks of images."""
        if height < 1 or width < 1:
            raise ValueError(f"cannot render a {height}x{width} image")
        chunk = DECODE_CHUNK if z.device.type == "cpu" else ACCELERATOR_DECODE_CHUNK
        return torch.cat([self.decoder(z[i:i + chunk], height, width)
                          for i in range(0, len(z), chunk)])

    def decode(self, z: Tensor) -> Tensor:
        """The likelihood's logits (N, 1, H, W): the rendering at the data's resolution."""
        _, H, W = self.image_shape
        return self.render(z, H, W)

    def test_nll(self, test: Split, settings: ScoreSettings, *, variant: str,
                 generator: torch.Generator) -> tuple[Tensor, dict]:
        """The VAE's bounds, with k = ``test_k`` importance samples when that is fewer than
        ``evaluate.iwae_k`` (the metrics' ``iwae_k`` is the k used)."""
        nll, extra = super().test_nll(test, capped_iwae_k(settings, self.config.test_k),
                                      variant=variant, generator=generator)
        return nll, {**extra, "cppn_hidden": self.config.cppn_hidden,
                     "cppn_layers": self.config.cppn_layers, "cppn_frequencies": self.config.frequencies}

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """The VAE's figures and ``resolution.png``: latents z ~ N(0, I) rendered at the data's
        size (top row, each pixel shown as a 4x4 block) and at 4x the size (bottom row), as the
        Bernoulli means."""
        figures = super().figures(test, n=n, nrow=nrow, variant=variant, generator=generator)
        _, H, W = self.image_shape
        z = torch.randn((RESOLUTION_IMAGES, self.config.latent), generator=generator,
                        device=self.device, dtype=self.dtype)
        with torch.no_grad():
            small = torch.sigmoid(self.render(z, H, W))  # (n, 1, H, W)
            large = torch.sigmoid(self.render(z, RESOLUTION_SCALE * H, RESOLUTION_SCALE * W))
        blocks = small.repeat_interleave(RESOLUTION_SCALE, 2).repeat_interleave(RESOLUTION_SCALE, 3)
        figures.pngs["resolution.png"] = grid_png(torch.cat([blocks, large]),
                                                  nrow=RESOLUTION_IMAGES, scale=1)
        return figures
