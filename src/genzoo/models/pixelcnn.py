"""PixelCNN: masked convolutions over the pixels in raster order.

van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016 (2016a),
section 3.4 and table 1 (the PixelCNN column), figure 5 (residual block).

    first layer:  k0 x k0 convolution, mask 'A' (the centre pixel excluded)
    blocks:       x + conv1x1(relu(convkxk_B(relu(conv1x1(relu(x))))))   (2h -> h -> h -> 2h)
    head:         conv1x1(relu(conv1x1(relu(x))))  -> logits per pixel

Every feature at (r, c) sees only pixels before (r, c), so one pass gives all the conditionals
p(x_rc | x_<rc). Stacked masked kernels leave a blind spot up-right of each pixel (fixed by the
Gated PixelCNN, ``gated_pixelcnn.py``).

Sampling caches every layer's features: in raster order a position's features depend only on
features of earlier positions (and its own, through mask 'B'), so each step computes all layers at
one position, and sampling the whole image costs one forward pass (plus Python overhead).

NOTE: no batch norm, as in the paper. Binary pixels (levels == 2) give Bernoulli logits instead
of the paper's 256-way softmax; for levels > 2 the input is a learned embedding of the level
(the paper feeds the scaled intensity), so the same model is a prior over VQ-VAE codes.
NOTE: the head's 1x1 convolutions are unmasked: with one image channel mask 'B' on a 1x1 kernel
is the identity mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import LevelInput, MaskedConv2d, conv1x1_at, level_logits, matrix_of
from .base import AutoregressiveModel, draw_levels


@dataclass
class PixelCNNConfig:
    channels: int = knob(64, "Channels of the residual stream (2h); the blocks' bottleneck has h.",
                         minimum=2, multipleOf=2)
    blocks: int = knob(5, "Residual blocks after the first (mask A) layer.", minimum=0)
    kernel_size: int = knob(3, "Kernel of the blocks' masked (mask B) convolutions; odd.", minimum=1)
    first_kernel_size: int = knob(7, "Kernel of the first, mask A convolution; odd.", minimum=1)
    head_channels: int = knob(64, "Hidden 1x1 layer of the output head.", minimum=1)
    embed_dim: int = knob(16, "Size of the learned level embedding (grayscale / code priors only).",
                          minimum=1)


class ResidualBlock(nn.Module):
    """x + 1x1(relu(kxk masked 'B'(relu(1x1(relu(x)))))), figure 5 of 2016a."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // 2, 1)
        self.conv = MaskedConv2d(channels // 2, channels // 2, kernel_size, mask_type="B")
        self.expand = nn.Conv2d(channels // 2, channels, 1)

    def bottleneck(self, x: Tensor) -> Tensor:  # (B, 2h, ...) -> (B, h, ...), 1x1 only
        return F.relu(self.reduce(F.relu(x)))

    def forward(self, x: Tensor) -> Tensor:  # (B, 2h, H, W)
        return x + self.expand(F.relu(self.conv(self.bottleneck(x))))


class PixelCNN(AutoregressiveModel):
    """PixelCNN with residual blocks, binary or categorical pixels."""

    Config = PixelCNNConfig
    paper = "van den Oord et al. 2016a (Pixel Recurrent Neural Networks)"

    def __init__(self, config: PixelCNNConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if self.image_shape[0] != 1:
            raise ValueError("PixelCNN masks assume one image channel")
        if config.channels < 2 or config.blocks < 0:
            raise ValueError("PixelCNN needs channels >= 2 and blocks >= 0")
        self.input = LevelInput(self.levels, 1, config.embed_dim)
        self.first = MaskedConv2d(self.input.out_channels, config.channels,
                                  config.first_kernel_size, mask_type="A")
        self.blocks = nn.ModuleList(ResidualBlock(config.channels, config.kernel_size)
                                    for _ in range(config.blocks))
        out = 1 if self.levels == 2 else self.levels
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(config.channels, config.head_channels, 1),
                                  nn.ReLU(), nn.Conv2d(config.head_channels, out, 1))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        h = self.first(self.input(x))  # (B, 2h, H, W)
        for block in self.blocks:
            h = block(h)
        return level_logits(self.head(h), self.levels, 1)

    def _head_at(self, h: Tensor) -> Tensor:  # (B, 2h) -> (B,) or (B, levels)
        out = conv1x1_at(self.head[3], F.relu(conv1x1_at(self.head[1], F.relu(h))))  # (B, 1 | L)
        return out[:, 0] if self.levels == 2 else out

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images with cached features: all layers at one position per step.

        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        _, H, W = self.image_shape
        x, flat_mask = self.canvas(n, given, given_mask)

        def padded(channels: int, p: int) -> Tensor:  # channels-last, padded top, left, right
            return x.new_zeros(n, H + p, W + 2 * p, channels)

        p0, p = self.first.kernel_size[0] // 2, self.config.kernel_size // 2
        x_cache = padded(self.input.out_channels, p0)  # (n, H + p0, W + 2 p0, C_in)
        first_rows = self.first.window_rows()
        caches = [padded(self.config.channels // 2, p) for _ in self.blocks]  # bottleneck inputs
        conv_rows = [block.conv.window_rows() for block in self.blocks]
        reduce = [matrix_of(block.reduce) for block in self.blocks]  # 1x1 maps as (W, b)
        expand = [matrix_of(block.expand) for block in self.blocks]
        for r in range(H):
            for c in range(W):
                h = self.first.at(x_cache, r, c, first_rows)  # (n, 2h)
                for i, block in enumerate(self.blocks):
                    caches[i][:, r + p, c + p] = F.relu(F.linear(F.relu(h), *reduce[i]))
                    t = F.relu(block.conv.at(caches[i], r, c, conv_rows[i]))
                    h = h + F.linear(t, *expand[i])  # (n, 2h)
                if flat_mask is None or not flat_mask[r * W + c]:
                    x[:, 0, r, c] = draw_levels(self._head_at(h), self.levels, generator)
                x_cache[:, r + p0, c + p0] = self.input(x[:, :, r:r + 1, c:c + 1])[:, :, 0, 0]
        return x
