"""PixelVAE: a VAE whose decoder is a small PixelCNN conditioned on the latent.

Gulrajani, Kumar, Ahmed, Taiga, Visin, Vazquez & Courville, "PixelVAE: A Latent Variable Model
for Natural Images", ICLR 2017 (arXiv 2016), section 3 and figure 1 (the one-latent-layer model).

    q(z|x) = N(mu(x), diag sigma(x)^2)          the VAE's encoder (``vae.py``)
    m(z)   = upsample(z) -> (F, H, W)           the latent as a feature map, per decoder layer
    p(x|z) = prod_i Bernoulli(x_i; PixelCNN_i(x_<i, m(z)))   masked convolutions over the image

The bounds are the VAE's: ``loss`` is the negative ELBO, the test NLL the IWAE bound L_k, with
the decoder's exact log p(x|z) in place of the factorized one. So the latent keeps only what the
few masked layers cannot model from the pixels before: the figure ``latent.png`` shows it, rows of
one z (a test digit's posterior mean) decoded several times.

Sampling is raster order given z: every layer's features cached channels-last, one position per
step (``MaskedConv2d.at``, as the PixelCNN sampler), the same pixels as the generic loop.

NOTE: the paper's MNIST decoder upsamples z with several convolutions and concatenates the map to
the image before its masked layers; ours adds a 1x1 projection of one upsampled map to every
masked layer's output (the conditional-PixelCNN bias of van den Oord et al. 2016b), and uses
residual mask-B layers without gates. Binary pixels, dynamically binarized training data.
NOTE: the IWAE bound runs the PixelCNN decoder k times per test image: ``test_k`` caps the
evaluate stage's ``iwae_k`` for this model, so its test bound may use fewer samples than the VAE's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..data import Split
from ..nn import MaskedConv2d, conv1x1_at
from .base import (ScoreSettings, binary_only, draw_levels, first_problem, one_channel,
                   pixel_log_prob, sides_divisible)
from .figures import Figures, grid_png, sample_grid
from .vae import VAE, VAEConfig, capped_iwae_k, kl_to_prior

LATENT_ROWS = 8  # rows of latent.png: one test digit's z each
LATENT_SAMPLES = 7  # decoder samples per row, after the digit itself


@dataclass
class PixelVAEConfig(VAEConfig):
    # The VAE's encoder knobs, documented for this model: its decoder is the PixelCNN below.
    network: str = knob("mlp", "Encoder, mlp (fully connected) or conv (stride-2 convolutions).",
                        choices=("mlp", "conv"))
    hidden: list[int] = knob([400], "Hidden layer sizes of the mlp encoder.", minItems=1,
                             items={"minimum": 1})
    channels: int = knob(32, "conv encoder only, channels at 14x14 (twice as many at 7x7).",
                         minimum=1)
    pixel_channels: int = knob(16, "Channels F of the PixelCNN decoder and of the latent's map.",
                               minimum=1)
    pixel_layers: int = knob(2, "Residual mask-B layers after the decoder's first (mask A) layer.",
                             minimum=0)
    kernel_size: int = knob(3, "Kernel of the decoder's mask-B convolutions; odd.", minimum=1)
    first_kernel_size: int = knob(5, "Kernel of the decoder's first, mask-A convolution; odd.",
                                  minimum=1)
    test_k: int = knob(0, "Importance samples of the test bound: at most this many (0: "
                       "evaluate.iwae_k); each costs a PixelCNN pass per test image.", minimum=0)


class LatentMap(nn.Module):
    """z (N, L) -> a feature map (N, F, H, W): linear to (F, H/4, W/4), two transposed convs."""

    def __init__(self, latent: int, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.grid = (channels, height // 4, width // 4)
        self.project = nn.Linear(latent, channels * self.grid[1] * self.grid[2])
        self.up = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(channels, channels, 4, 2, 1),  # (N, F, H/2, W/2)
            nn.ReLU(), nn.ConvTranspose2d(channels, channels, 4, 2, 1))  # (N, F, H, W)

    def forward(self, z: Tensor) -> Tensor:
        return self.up(self.project(z).view(len(z), *self.grid))


class PixelDecoder(nn.Module):
    """Masked convolutions over x, each layer's output plus a 1x1 map of m(z): logits of p(x|z)."""

    def __init__(self, config: PixelVAEConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        _, H, W = image_shape
        Fc = config.pixel_channels
        self.latent_map = LatentMap(config.latent, Fc, H, W)
        self.first = MaskedConv2d(1, Fc, config.first_kernel_size, mask_type="A")
        self.layers = nn.ModuleList(MaskedConv2d(Fc, Fc, config.kernel_size, mask_type="B")
                                    for _ in range(config.pixel_layers))
        # One 1x1 map of m(z) per masked layer, all in one convolution: (N, F (layers + 1), H, W).
        self.condition = nn.Conv2d(Fc, Fc * (config.pixel_layers + 1), 1)
        self.head = nn.Conv2d(Fc, 1, 1)

    def conditions(self, z: Tensor) -> list[Tensor]:
        """The per-layer bias maps of z (N, L): layers + 1 tensors (N, F, H, W)."""
        return list(self.condition(F.relu(self.latent_map(z))).chunk(len(self.layers) + 1, 1))

    def forward(self, z: Tensor, x: Tensor) -> Tensor:  # (N, L), (N, 1, H, W) -> (N, 1, H, W)
        cond = self.conditions(z)
        h = self.first(x) + cond[0]  # (N, F, H, W): pixel (r, c) sees only x before (r, c)
        for layer, bias in zip(self.layers, cond[1:]):
            h = h + layer(F.relu(h)) + bias
        return self.head(F.relu(h))


class PixelVAE(VAE):
    """The VAE's encoder and bounds, a latent-conditioned PixelCNN as the decoder."""

    Config = PixelVAEConfig
    paper = "Gulrajani et al. 2017 (PixelVAE, ICLR); IWAE bound of Burda et al. 2015"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels of one channel, sides divisible by 4 (the latent map's two
        upsamplings from H/4 x W/4)."""
        return first_problem(binary_only(cls.__name__, levels),
                             one_channel("PixelVAE's", image_shape, "masks assume"),
                             sides_divisible(cls.__name__, image_shape, 4,
                                             "the latent map's two stride-2 upsamplings"))

    def build_decoder(self, config: PixelVAEConfig) -> nn.Module:
        return PixelDecoder(config, self.image_shape)

    def decode(self, z: Tensor, x: Tensor | None = None) -> Tensor:
        """Bernoulli logits (N, 1, H, W) of p(x_i | x_<i, z) for z (N, L) and images x."""
        if x is None:
            raise ValueError("PixelVAE's decoder is autoregressive: decode(z, x) needs the image x")
        return self.decoder(z, x)

    def reconstruction(self, z: Tensor, x: Tensor) -> Tensor:
        return pixel_log_prob(self.decoder(z, x), x, 2)

    # -- sampling: raster order given z ----------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               means: bool = False) -> Tensor:
        """z ~ N(0, I), then x ~ p(x|z) pixel by pixel: (n, 1, H, W) in {0, 1}."""
        if means:
            raise ValueError("PixelVAE's p(x|z) has no closed-form mean: sample it")
        z = torch.randn((n, self.config.latent), generator=generator, device=self.device,
                        dtype=self.dtype)
        return self.sample_given(z, generator=generator)

    @torch.no_grad()
    def sample_given(self, z: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x|z) for z (n, L), all layers at one position per step (cached features).

        Draws the same pixels, from the same generator, as a loop of full decoder passes."""
        decoder, (_, H, W) = self.decoder, self.image_shape
        n = len(z)
        cond = [c.permute(0, 2, 3, 1) for c in decoder.conditions(z)]  # (n, H, W, F) each
        x = z.new_zeros(n, 1, H, W)
        p0 = decoder.first.kernel_size[0] // 2
        x_cache = z.new_zeros(n, H + p0, W + 2 * p0, 1)  # channels-last, padded top/left/right
        first_rows = decoder.first.window_rows()
        p = self.config.kernel_size // 2
        Fc = self.config.pixel_channels
        caches = [z.new_zeros(n, H + p, W + 2 * p, Fc) for _ in decoder.layers]  # relu(h) inputs
        rows = [layer.window_rows() for layer in decoder.layers]
        for r in range(H):
            for c in range(W):
                h = decoder.first.at(x_cache, r, c, first_rows) + cond[0][:, r, c]  # (n, F)
                for i, layer in enumerate(decoder.layers):
                    caches[i][:, r + p, c + p] = F.relu(h)
                    h = h + layer.at(caches[i], r, c, rows[i]) + cond[i + 1][:, r, c]
                logit = conv1x1_at(decoder.head, F.relu(h))[:, 0]  # (n,)
                x[:, 0, r, c] = draw_levels(logit, 2, generator)
                x_cache[:, r + p0, c + p0, 0] = x[:, 0, r, c]
        return x

    # -- the evaluate and sample stages ----------------------------------------------------------

    @torch.no_grad()
    def test_nll(self, test: Split, settings: ScoreSettings, *, variant: str,
                 generator: torch.Generator) -> tuple[Tensor, dict]:
        """The VAE's bounds, with k = min(evaluate.iwae_k, test_k) importance samples, and the
        mean KL(q(z|x) || p(z)) of the test images."""
        nll, extra = super().test_nll(test, capped_iwae_k(settings, self.config.test_k),
                                      variant=variant, generator=generator)
        images = test.images(variant)
        kl = torch.cat([kl_to_prior(*self.posterior(images[i:i + settings.batch_size].to(
            self.device, self.dtype))).double().cpu()
            for i in range(0, len(images), settings.batch_size)])
        return nll, {**extra, "latent_kl_nats": kl.mean().item()}  # what z carries, in nats

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """The sample grid and ``latent.png``: rows [a test digit, decoder samples of its z]."""
        figures = sample_grid(self, n=n, nrow=nrow, generator=generator)
        if test is not None:
            images = test.images(variant)[:LATENT_ROWS].to(self.device, self.dtype)
            mean, _ = self.posterior(images)  # (R, L): each digit's posterior mean
            drawn = self.sample_given(mean.repeat_interleave(LATENT_SAMPLES, 0), generator=generator)
            rows = torch.cat([images.unsqueeze(1),
                              drawn.view(len(images), LATENT_SAMPLES, *drawn.shape[1:])], 1)
            figures.pngs["latent.png"] = grid_png(rows.flatten(0, 1), nrow=1 + LATENT_SAMPLES)
        return figures
