"""Shared layers: masked linear maps (MADE), masked convolutions (PixelCNN) and the vertical /
horizontal stacks of the Gated PixelCNN.

Convolutions here are causal in raster order over single-channel images: a feature at (r, c) sees
input pixels before (r, c) (mask 'A') or up to and including it (mask 'B'). Each causal layer also
has a ``*_at`` form that computes the feature of one position (or one row) from a cache of its
input, which the fast PixelCNN samplers use; both forms share the same weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features).

    The mask is a buffer, so it moves with the module and is saved in checkpoints. The weight
    holds zeros where the mask does: ``forward`` zeroes those entries in place whenever the
    weight changed since it last did (after an optimizer step, a load, an edit), and a hook zeroes
    their gradient. So the weight is never copied per step (W * mask allocated a new weight and
    its gradient's product with the mask in every step: 3 x (out x in) floats), and the gradient,
    the optimizer's state and the function are what they were with W * mask.
    """

    def __init__(self, in_features: int, out_features: int, mask: Tensor, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if tuple(mask.shape) != (out_features, in_features):
            raise ValueError(f"mask shape {tuple(mask.shape)} != {(out_features, in_features)}")
        self.register_buffer("mask", mask.float())
        self._masked: tuple[int, int] | None = None  # the weight's (storage, version) last masked
        self.weight.register_post_accumulate_grad_hook(self._mask_grad)

    def _mask_grad(self, weight: Tensor) -> None:
        weight.grad.mul_(self.mask)

    def masked_weight(self) -> Tensor:
        """The weight, its masked entries zeroed (in place, only if it changed since)."""
        if (self.weight.data_ptr(), self.weight._version) != self._masked:
            with torch.no_grad():
                self.weight.mul_(self.mask)
            self._masked = (self.weight.data_ptr(), self.weight._version)
        return self.weight

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


MASK_TYPES = ("A", "B")


def _check_kernel(kernel_size: int) -> int:
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    return kernel_size // 2


def conv_at(window: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """One output position of a convolution: window (B, C_in, kh, kw) -> (B, C_out)."""
    return F.linear(window.flatten(1), weight.flatten(1), bias)


def matrix_of(conv: nn.Conv2d) -> tuple[Tensor, Tensor | None]:
    """A 1x1 convolution as the (weight (C_out, C_in), bias) of ``F.linear``, flattened once."""
    return conv.weight.flatten(1).contiguous(), conv.bias


def conv1x1_at(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 convolution at one position: (B, C_in) -> (B, C_out)."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def window_rows(weight: Tensor) -> list[Tensor]:
    """A kernel (C_out, C_in, kh, kw) as one (C_out, kw * C_in) matrix per kernel row, laid out
    as a row of a channels-last window, (kw, C_in) flattened: see ``conv_at_rows``."""
    return [weight[:, :, i].permute(0, 2, 1).reshape(len(weight), -1).contiguous()
            for i in range(weight.shape[2])]


def conv_at_rows(cache: Tensor, top: int, left: int, rows: list[Tensor],
                 bias: Tensor | None) -> Tensor:
    """One output position of a convolution from a channels-last cache (B, H', W', C_in): the
    window whose top-left corner is (top, left), with ``rows`` = ``window_rows(weight)``: (B, C_out).

    A row of the window is contiguous in each image, so each kernel row is one matrix product
    over a view, where flattening the whole window would copy it (the copy was most of a step
    of the PixelCNN sampler at small batches)."""
    width = rows[0].shape[1] // cache.shape[3]
    out = F.linear(cache[:, top, left:left + width].flatten(1), rows[0], bias)
    for i, row in enumerate(rows[1:], start=1):
        out = out + F.linear(cache[:, top + i, left:left + width].flatten(1), row)
    return out


class MaskedConv2d(nn.Conv2d):
    """A k x k convolution that sees only the pixels before the centre in raster order.

    van den Oord et al. 2016a, section 3.4: mask 'A' (first layer) excludes the centre, mask 'B'
    (later layers) includes it. One image channel, so no R/G/B channel groups. Zero padding k // 2
    keeps the spatial size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 mask_type: str, bias: bool = True) -> None:
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        p = _check_kernel(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, padding=p, bias=bias)
        mask = torch.ones(kernel_size, kernel_size)
        mask[p, p + (mask_type == "B"):] = 0  # centre row: right of (or from) the centre
        mask[p + 1:] = 0  # rows below the centre
        self.register_buffer("mask", mask)
        self.mask_type = mask_type

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C', H, W)
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)

    def causal_weight(self) -> Tensor:
        """The masked weight without its all-zero rows below the centre: (C', C, p + 1, k)."""
        p = self.kernel_size[0] // 2
        return (self.weight * self.mask)[:, :, :p + 1]

    def window_rows(self) -> list[Tensor]:
        """The masked kernel's rows above and at the centre as ``at`` reads them
        (``window_rows`` of ``causal_weight()``): compute once per sampling run."""
        return window_rows(self.causal_weight())

    def at(self, cache: Tensor, r: int, c: int, rows: list[Tensor] | None = None) -> Tensor:
        """The output at (r, c), (B, C'), from ``cache`` = the input channels-last, padded by p on
        the top, left and right, (B, H + p, W + 2p, C); ``rows`` = a precomputed
        ``window_rows()``."""
        return conv_at_rows(cache, r, c, self.window_rows() if rows is None else rows, self.bias)


class GatedActivation(nn.Module):
    """tanh(a) * sigmoid(b) for (a, b) = the two halves of the channels (2016b, eq. 2)."""

    def forward(self, x: Tensor) -> Tensor:  # (B, 2h, ...) -> (B, h, ...)
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


def shift_down(x: Tensor) -> Tensor:
    """Row r of the result is row r - 1 of ``x`` (zeros in row 0): (B, C, H, W) -> same."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class GatedStackLayer(nn.Module):
    """One layer of the Gated PixelCNN (van den Oord et al. 2016b, figure 2), without blind spot.

    Vertical stack: a (p + 1) x k convolution over rows r - p..r, all columns c - p..c + p, so
    its features at row r see rows <= r; it feeds the horizontal stack only after a shift down by
    one row (so position (r, c) sees rows < r through it: causal, and no blind spot up-right).
    Horizontal stack: a 1 x (p + 1) convolution over columns c - p..c of the current row (centre
    excluded in the first layer), plus the 1x1 link from the shifted vertical pre-activation,
    gated, then a 1x1 conv and a residual connection (not in the first layer, whose input is the
    image itself). A 1x1 skip output goes to the network's head.

    Conditioning is a hook: ``forward`` takes an optional (B, 4h) bias (V^T h of eq. 4, one per
    image) added inside the gates, the first 2h to the vertical and the last 2h to the horizontal
    pre-activation.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, *, first: bool) -> None:
        super().__init__()
        p = self.p = _check_kernel(kernel_size)
        self.first = first
        self.residual = not first  # the first layer's input is the image: no residual
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (p + 1, kernel_size))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, p + 1))
        mask = torch.ones(1, p + 1)
        if first:
            mask[0, p] = 0  # mask 'A' on the horizontal stack: the centre pixel is the target
        self.register_buffer("h_mask", mask)
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.gate = GatedActivation()
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.skip = nn.Conv2d(channels, channels, 1)

    def forward(self, v: Tensor, h: Tensor, cond: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """(v, h) inputs (B, C, H, W) -> (v', h', skip), each (B, h, H, W)."""
        p = self.p
        v_pre = self.vertical(F.pad(v, (p, p, p, 0)))  # (B, 2h, H, W): rows r-p..r
        h_pre = F.conv2d(F.pad(h, (p, 0, 0, 0)), self.horizontal.weight * self.h_mask,
                         self.horizontal.bias)  # (B, 2h, H, W): columns c-p..c
        h_pre = h_pre + self.link(shift_down(v_pre))
        if cond is not None:
            v_bias, h_bias = cond[:, :, None, None].chunk(2, dim=1)  # (B, 2h, 1, 1) each
            v_pre, h_pre = v_pre + v_bias, h_pre + h_bias
        gated = self.gate(h_pre)  # (B, h, H, W)
        h_new = self.h_out(gated)
        if self.residual:
            h_new = h + h_new
        return self.gate(v_pre), h_new, self.skip(gated)

    def vertical_row(self, v_cache: Tensor, r: int, cond: Tensor | None = None
                     ) -> tuple[Tensor, Tensor]:
        """Row r of (v', link(v_pre)): (B, h, W) and (B, 2h, W), from ``v_cache`` = the vertical
        input padded by p on the top, left and right, (B, C, H + p, W + 2p)."""
        v_pre = self.vertical(v_cache[:, :, r:r + self.p + 1])[:, :, 0]  # (B, 2h, W)
        link = self.link(v_pre[:, :, None])[:, :, 0]  # (B, 2h, W), before the conditioning
        if cond is not None:
            v_pre = v_pre + cond.chunk(2, dim=1)[0][:, :, None]
        return self.gate(v_pre), link

    def horizontal_at(self, h_cache: Tensor, c: int, link: Tensor, h_weight: Tensor,
                      cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(h', skip) at column c of the current row, each (B, h), from ``h_cache`` = the row's
        horizontal input padded by p on the left, (B, C, W + p); ``link`` (B, 2h) comes from
        the previous row's ``vertical_row``; ``h_weight`` = horizontal weight * mask."""
        window = h_cache[:, :, None, c:c + self.p + 1]  # (B, C, 1, p + 1)
        h_pre = conv_at(window, h_weight, self.horizontal.bias) + link  # (B, 2h)
        if cond is not None:
            h_pre = h_pre + cond.chunk(2, dim=1)[1]
        gated = self.gate(h_pre)  # (B, h)
        h_new = conv1x1_at(self.h_out, gated)
        if self.residual:
            h_new = h_cache[:, :, c + self.p] + h_new
        return h_new, conv1x1_at(self.skip, gated)


class LevelInput(nn.Module):
    """What a PixelCNN reads of a pixel: the binary value itself when ``levels == 2``, else a
    learned embedding of the integer level (256 grey levels, or K VQ-VAE codes).

    (B, C, H, W) float levels -> (B, out_channels, H, W), out_channels = C or C * dim.
    """

    def __init__(self, levels: int, channels: int, dim: int) -> None:
        super().__init__()
        self.levels = levels
        self.embedding = nn.Embedding(levels, dim) if levels > 2 else None
        self.out_channels = channels if levels == 2 else channels * dim

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is None:
            return x
        e = self.embedding(x.long())  # (B, C, H, W, dim)
        return e.permute(0, 1, 4, 2, 3).flatten(1, 2).to(self.embedding.weight.dtype)


def level_logits(out: Tensor, levels: int, channels: int) -> Tensor:
    """Head output (B, C * (1 or levels), ...) -> (B, C, ...) Bernoulli logits when levels == 2,
    else (B, levels, C, ...) categorical logits (the layouts of ``pixel_log_prob``)."""
    if levels == 2:
        return out
    return out.unflatten(1, (levels, channels))


# -- sequence models over the raster (LSTM, WaveNet) ---------------------------------------------

class PreviousPixel(nn.Module):
    """What a raster sequence model reads at step t: pixel t - 1, so step t predicts pixel t from
    pixels < t only. Binary levels read 2x - 1 (so +-1, and 0 before the first pixel); levels > 2
    a learned embedding, with one extra row for "before the first pixel".

    (B, D) float levels -> (B, D, out_features).
    """

    def __init__(self, levels: int, dim: int) -> None:
        super().__init__()
        self.levels = levels
        self.embedding = nn.Embedding(levels + 1, dim) if levels > 2 else None
        self.out_features = 1 if levels == 2 else dim

    def step(self, pixel: Tensor | None, x: Tensor) -> Tensor:
        """The input after ``pixel`` ((B,) levels; None before the first pixel) of the images
        ``x`` (B, ...) being drawn: (B, F), as ``forward`` gives it at that step."""
        if self.embedding is None:
            return x.new_zeros(len(x), 1) if pixel is None else (2 * pixel - 1)[:, None]
        if pixel is None:
            pixel = torch.full((len(x),), self.levels, device=x.device)
        return self.embedding(pixel.long())

    def forward(self, x: Tensor) -> Tensor:  # (B, D) -> (B, D, F)
        if self.embedding is None:
            return F.pad(2 * x[:, :-1, None] - 1, (0, 0, 1, 0))
        previous = F.pad(x[:, :-1].long(), (1, 0), value=self.levels)  # (B, D), start symbol first
        return self.embedding(previous)


class RasterPosition(nn.Module):
    """Where pixel t of a (H, W) raster is: a learned row embedding plus a learned column
    embedding, (H * W, dim), row-major like the raster."""

    def __init__(self, height: int, width: int, dim: int) -> None:
        super().__init__()
        self.rows = nn.Embedding(height, dim)
        self.cols = nn.Embedding(width, dim)

    def forward(self) -> Tensor:  # (D, dim)
        return (self.rows.weight[:, None] + self.cols.weight[None, :]).flatten(0, 1)
