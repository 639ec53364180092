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

Colour images (C = 3, section 3.4): the sub-pixels are drawn R, G, B within each pixel
(``ordering``), every layer's feature maps are split into three colour groups, and at the centre
position group g reads the input groups < g (mask 'A', first layer) or <= g (mask 'B', every
later convolution, the 1x1 ones included); positions before the centre are read in full
(``genzoo.nn.MaskedConv2d``). The head gives a 256-way softmax per sub-pixel, logits
(B, 256, 3, H, W). The sampler computes all layers at a position once per sub-pixel, three
passes per pixel.

NOTE: no batch norm, as in the paper. Binary pixels (levels == 2) give Bernoulli logits instead
of the paper's 256-way softmax; for levels > 2 the input is a learned embedding of the level
(the paper feeds the scaled intensity), so the same model is a prior over VQ-VAE codes.
NOTE: with one image channel the head's 1x1 convolutions are plain ones: mask 'B' on a 1x1
kernel over one colour group is the identity mask.
NOTE: colour needs ``channels // 2`` and ``head_channels`` divisible by 3 (equal colour groups),
so ``channels`` a multiple of 6 (params.yaml's 32 and 32 are not: a colour run needs e.g. 48
and 30).
NOTE: each of the sampler's three passes at a pixel computes every colour group, where only group
g's features change with sub-pixel g: three times the one-channel work, for one simple loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import (LevelInput, MaskedConv2d, check_colour_split, colour_logits_at, colour_problem,
                  conv1x1_at, level_head, level_logits, matrix_of, pointwise)
from .base import AutoregressiveModel, draw_levels, raster_colour_order


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
    """x + 1x1(relu(kxk masked 'B'(relu(1x1(relu(x)))))), figure 5 of 2016a; with colours every
    convolution is masked 'B' by colour group (the 1x1 ones at the centre, their only tap)."""

    def __init__(self, channels: int, kernel_size: int, colours: int = 1) -> None:
        super().__init__()
        self.reduce = pointwise(channels, channels // 2, colours=colours)
        self.conv = MaskedConv2d(channels // 2, channels // 2, kernel_size, mask_type="B",
                                 colours=colours)
        self.expand = pointwise(channels // 2, channels, colours=colours)

    def bottleneck(self, x: Tensor) -> Tensor:  # (B, 2h, ...) -> (B, h, ...), 1x1 only
        return F.relu(self.reduce(F.relu(x)))

    def forward(self, x: Tensor) -> Tensor:  # (B, 2h, H, W)
        return x + self.expand(F.relu(self.conv(self.bottleneck(x))))


class PixelCNN(AutoregressiveModel):
    """PixelCNN with residual blocks, binary or categorical pixels, one channel or R, G, B."""

    Config = PixelCNNConfig
    paper = "van den Oord et al. 2016a (Pixel Recurrent Neural Networks)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        return colour_problem(cls.__name__, image_shape)

    def __init__(self, config: PixelCNNConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if config.channels < 2 or config.blocks < 0:
            raise ValueError("PixelCNN needs channels >= 2 and blocks >= 0")
        C = self.image_shape[0]
        # channels // 2 divisible by 3 makes channels so too: the residual stream splits.
        check_colour_split("PixelCNN", C, **{"channels // 2": config.channels // 2},
                           head_channels=config.head_channels)
        self.input = LevelInput(self.levels, C, config.embed_dim)
        self.first = MaskedConv2d(self.input.out_channels, config.channels,
                                  config.first_kernel_size, mask_type="A", colours=C)
        self.blocks = nn.ModuleList(ResidualBlock(config.channels, config.kernel_size, C)
                                    for _ in range(config.blocks))
        self.head = level_head(config.channels, config.head_channels, levels=self.levels,
                               colours=C)

    def ordering(self) -> Tensor:
        """Raster order over the pixels, R, G, B within a pixel (2016a, section 3.4)."""
        return raster_colour_order(self.image_shape)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        h = self.first(self.input(x))  # (B, 2h, H, W)
        for block in self.blocks:
            h = block(h)
        return level_logits(self.head(h), self.levels, self.image_shape[0])

    def _head_at(self, h: Tensor, colour: int) -> Tensor:  # (B, 2h) -> (B,) or (B, levels)
        out = conv1x1_at(self.head[3], F.relu(conv1x1_at(self.head[1], F.relu(h))))  # (B, C | L C)
        return colour_logits_at(out, self.levels, colour)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images with cached features: all layers at one position per sub-pixel.

        Each pass at (r, c) rewrites the position's features from the sub-pixels drawn so far;
        those of colour group g are final once the colours < g are, so the pass for colour g
        draws it, and after the last pass every feature at (r, c) is final.
        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        C, H, W = self.image_shape
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
                for colour in range(C):
                    h = self.first.at(x_cache, r, c, first_rows)  # (n, 2h)
                    for i, block in enumerate(self.blocks):
                        caches[i][:, r + p, c + p] = F.relu(F.linear(F.relu(h), *reduce[i]))
                        t = F.relu(block.conv.at(caches[i], r, c, conv_rows[i]))
                        h = h + F.linear(t, *expand[i])  # (n, 2h)
                    if flat_mask is None or not flat_mask[self.subpixel_index(r, c, colour)]:
                        x[:, colour, r, c] = draw_levels(self._head_at(h, colour), self.levels,
                                                         generator)
                    x_cache[:, r + p0, c + p0] = self.input(x[:, :, r:r + 1, c:c + 1])[:, :, 0, 0]
        return x

