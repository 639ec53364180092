"""Gated PixelCNN: vertical and horizontal stacks with gated units, no blind spot.

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image Generation
with PixelCNN Decoders", NeurIPS 2016 (2016b), section 2.1-2.3 and figure 2.

    y = tanh(W_f * x + V_f^T h) . sigmoid(W_g * x + V_g^T h)                 (eq. 2 / eq. 4)

The vertical stack sees every row above (its (p+1) x k kernel spans the full width of its
receptive field), the horizontal stack the pixels left of the current one in its row; the
vertical stack reaches the horizontal one through a 1x1 link after a shift down by one row, so the
receptive field of (r, c) is every earlier pixel within its reach: no blind spot. The horizontal
stack is residual except in the first layer (whose input is the image, so a residual would let
pixel (r, c) see itself). The layers' 1x1 skip outputs are summed into a two-layer 1x1 head.

Conditioning is a hook: ``conditioning(y)`` returns one (B, 4h) bias per layer (None here) that
each layer adds inside its gates; ``cond_gated_pixelcnn.py`` fills it from the class label.

Sampling caches per row: when row r starts, rows < r are final, so the vertical stack of row r-1
is computed once for all layers, then each pixel of row r runs only the horizontal stacks (a
1 x (p+1) window per layer) and the head; sampling costs about one forward pass.

Colour images (C = 3; section 2.1 of 2016b with the masks of van den Oord et al., "Pixel
Recurrent Neural Networks", ICML 2016 (2016a), section 3.4): the sub-pixels are drawn R, G, B
within each pixel (``ordering``); the horizontal stack, its 1x1 maps and the head split their
feature maps into three colour groups, group g reading the groups < g of the current pixel in the
first layer and <= g after it (``GatedStackLayer``), and the head gives a 256-way softmax per
sub-pixel, logits (B, 256, 3, H, W). The vertical stack reaches the horizontal one only from the
rows above, where every colour is drawn, so it needs no colour mask. The sampler runs the
horizontal stacks once per sub-pixel (NOTE: every colour group each time, as ``pixelcnn.py``).

NOTE: levels == 2 gives Bernoulli logits (the paper uses a 256-way softmax); levels > 2 reads a
learned embedding of the level, so the model also serves as a prior over VQ-VAE codes.
NOTE: colour needs ``channels`` and ``head_channels`` divisible by 3 (equal colour groups;
params.yaml's 16 and 32 are not: a colour run needs e.g. 18 and 30).
NOTE: the skip outputs are summed, as in pytorch-generative; the paper's figure shows only the
residual path of the horizontal stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import (GatedStackLayer, LevelInput, check_colour_split, colour_logits_at, colour_problem,
                  conv1x1_at, level_head, level_logits)
from .base import AutoregressiveModel, draw_levels, raster_colour_order


@dataclass
class GatedPixelCNNConfig:
    channels: int = knob(32, "Gated units h per stack and layer (the convolutions output 2h).", minimum=1)
    layers: int = knob(5, "Gated layers.", minimum=1)
    kernel_size: int = knob(3, "k: vertical kernel (k // 2 + 1) x k, horizontal 1 x (k // 2 + 1); odd.",
                            minimum=1)
    head_channels: int = knob(32, "Hidden 1x1 layer of the output head.", minimum=1)
    embed_dim: int = knob(16, "Size of the learned level embedding (grayscale / code priors only).",
                          minimum=1)


class GatedPixelCNN(AutoregressiveModel):
    """Gated PixelCNN without blind spot, binary or categorical pixels, one channel or R, G, B."""

    Config = GatedPixelCNNConfig
    paper = "van den Oord et al. 2016b (Conditional Image Generation with PixelCNN Decoders)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        return colour_problem(cls.__name__, image_shape)

    def __init__(self, config: GatedPixelCNNConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if config.layers < 1:
            raise ValueError("GatedPixelCNN needs at least one layer")
        C = self.image_shape[0]
        check_colour_split(type(self).__name__, C, channels=config.channels,
                           head_channels=config.head_channels)
        self.input = LevelInput(self.levels, C, config.embed_dim)
        sizes = [self.input.out_channels] + [config.channels] * (config.layers - 1)
        self.layers = nn.ModuleList(
            GatedStackLayer(size, config.channels, config.kernel_size, first=i == 0, colours=C)
            for i, size in enumerate(sizes))
        self.head = level_head(config.channels, config.head_channels, levels=self.levels,
                               colours=C)

    def ordering(self) -> Tensor:
        """Raster order over the pixels, R, G, B within a pixel (2016a, section 3.4)."""
        return raster_colour_order(self.image_shape)

    def conditioning(self, y: Tensor | None) -> list[Tensor | None]:
        """One (B, 4h) gate bias per layer, or None: the hook conditional models override."""
        return [None] * len(self.layers)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        v = h = self.input(x)  # (B, C_in, H, W)
        skips = 0
        for layer, cond in zip(self.layers, self.conditioning(y)):
            v, h, skip = layer(v, h, cond)  # (B, h, H, W) each
            skips = skips + skip
        return level_logits(self.head(skips), self.levels, self.image_shape[0])

    def _head_at(self, skips: Tensor, colour: int) -> Tensor:  # (B, h) -> (B,) or (B, levels)
        out = conv1x1_at(self.head[3], F.relu(conv1x1_at(self.head[1], F.relu(skips))))
        return colour_logits_at(out, self.levels, colour)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images row by row: the vertical stack once per row, the horizontal stack
        once per sub-pixel (the features of colour group g are final once colours < g are drawn;
        see ``PixelCNN.sample``).

        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        C, H, W = self.image_shape
        p = self.config.kernel_size // 2
        x, flat_mask = self.canvas(n, given, given_mask)
        conds = self.conditioning(None if y is None else y.to(self.device))
        sizes = [layer.vertical.in_channels for layer in self.layers]
        # Vertical inputs of every layer, padded top/left/right by p: (n, C_l, H + p, W + 2p).
        v_caches = [x.new_zeros(n, size, H + p, W + 2 * p) for size in sizes]
        h_weights = [layer.horizontal.weight * layer.h_mask for layer in self.layers]
        # Row 0's link sees the zero row above the image: only the link's bias, (n, 2h, W).
        links = [layer.link.bias[None, :, None].expand(n, -1, W) for layer in self.layers]
        for r in range(H):
            if r > 0:  # row r - 1 is final: run the vertical stack on it, layer by layer
                for i, (layer, cond) in enumerate(zip(self.layers, conds)):
                    v_row, links[i] = layer.vertical_row(v_caches[i], r - 1, cond)
                    if i + 1 < len(self.layers):
                        v_caches[i + 1][:, :, r - 1 + p, p:p + W] = v_row
            # Horizontal inputs of the current row, padded left by p: (n, C_l, W + p).
            h_caches = [x.new_zeros(n, size, W + p) for size in sizes]
            for c in range(W):
                for colour in range(C):
                    skips = self._horizontal_at(h_caches, c, links, h_weights, conds)
                    if flat_mask is None or not flat_mask[self.subpixel_index(r, c, colour)]:
                        x[:, colour, r, c] = draw_levels(self._head_at(skips, colour),
                                                         self.levels, generator)
                    pixel = self.input(x[:, :, r:r + 1, c:c + 1])[:, :, 0, 0]  # (n, C_in)
                    h_caches[0][:, :, c + p] = pixel
                    v_caches[0][:, :, r + p, c + p] = pixel
        return x

    def _horizontal_at(self, h_caches: list[Tensor], c: int, links: list[Tensor],
                       h_weights: list[Tensor], conds: list[Tensor | None]) -> Tensor:
        """Every layer's horizontal stack at column c of the current row, each writing its h
        into the next layer's cache: the summed skips, (n, h)."""
        p = self.config.kernel_size // 2
        skips = 0
        for i, (layer, cond) in enumerate(zip(self.layers, conds)):
            h, skip = layer.horizontal_at(h_caches[i], c, links[i][:, :, c], h_weights[i],
                                          cond)  # (n, h) each
            skips = skips + skip
            if i + 1 < len(self.layers):
                h_caches[i + 1][:, :, c + p] = h
        return skips
