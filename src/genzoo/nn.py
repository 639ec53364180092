"""Shared layers: masked linear maps (MADE), masked convolutions (PixelCNN) and the vertical /
horizontal stacks of the Gated PixelCNN.

Convolutions here are causal in raster order: a feature at (r, c) sees input pixels before (r, c)
(mask 'A') or up to and including it (mask 'B'). Each causal layer also has a ``*_at`` form that
computes the feature of one position (or one row) from a cache of its input, which the fast
PixelCNN samplers use; both forms share the same weights.

Colour images (van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016 (2016a), section
3.4): the sub-pixels of a pixel are generated R, then G, then B, so the feature maps of a layer are
split into colour groups (``colour_groups``) and, at the centre position only, group g reads the
input groups < g (mask 'A') or <= g (mask 'B'); earlier positions are read in full. Every 1x1
convolution between such layers is then a centre-only mask 'B'. With one channel there is one
group, and the masks are the plain raster ones.
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


def weight_of(conv: nn.Conv2d) -> Tensor:
    """The weight a convolution applies: the masked one of a ``MaskedConv2d``, else its own."""
    return conv.masked_weight() if isinstance(conv, MaskedConv2d) else conv.weight


def matrix_of(conv: nn.Conv2d) -> tuple[Tensor, Tensor | None]:
    """A 1x1 convolution as the (weight (C_out, C_in), bias) of ``F.linear``, flattened once."""
    return weight_of(conv).flatten(1).contiguous(), conv.bias


def conv1x1_at(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 convolution at one position: (B, C_in) -> (B, C_out)."""
    return F.linear(x, weight_of(conv).flatten(1), conv.bias)


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


def colour_groups(channels: int, colours: int, *, chunks: int = 1) -> Tensor:
    """The colour group (0 = R, 1 = G, 2 = B) of each of ``channels`` feature maps, (channels,):
    each of ``chunks`` equal parts (the two halves a gate multiplies) is split into ``colours``
    contiguous blocks. The input of a colour PixelCNN fits this layout too: its C channels, or
    the C blocks of ``dim`` embedding channels that ``LevelInput`` lays out channel by channel."""
    part = channels // chunks
    return (torch.arange(channels) % part) * colours // part


def check_colour_split(model: str, colours: int, **counts: int) -> None:
    """A clear ValueError unless each count of feature maps splits into ``colours`` equal groups."""
    for name, count in counts.items():
        if colours > 1 and count % colours:
            raise ValueError(f"{model} splits its feature maps into {colours} colour groups "
                             f"(R, G, B): {name} = {count} must be divisible by {colours}")


def centre_mask(colours_in: Tensor, colours_out: Tensor, mask_type: str) -> Tensor:
    """Which input maps each output map reads at the centre position, (C_out, C_in) 0/1: the
    earlier colours (mask 'A'), or those and its own (mask 'B')."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    earlier = colours_in[None, :] < colours_out[:, None]
    same = colours_in[None, :] == colours_out[:, None]
    return (earlier | (same & (mask_type == "B"))).float()


class MaskedConv2d(nn.Conv2d):
    """A k x k convolution that sees only the pixels before the centre in raster order.

    van den Oord et al. 2016a, section 3.4: mask 'A' (first layer) excludes the centre, mask 'B'
    (later layers) includes it. With ``colours`` > 1 the feature maps are split into colour groups
    (``colour_groups``; ``out_colours`` overrides the output's, for a head whose logits interleave
    the colours) and the centre is masked per group (``centre_mask``): the mask is then
    (C_out, C_in, k, k), else (k, k). Zero padding k // 2 keeps the spatial size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 mask_type: str, bias: bool = True, colours: int = 1,
                 out_colours: Tensor | None = None) -> None:
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        p = _check_kernel(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, padding=p, bias=bias)
        mask = torch.ones(kernel_size, kernel_size)
        mask[p, p + (mask_type == "B"):] = 0  # centre row: right of (or from) the centre
        mask[p + 1:] = 0  # rows below the centre
        if colours > 1:  # (C_out, C_in, k, k): the centre by colour group
            if out_colours is None:
                out_colours = colour_groups(out_channels, colours)
            mask = mask.expand(out_channels, in_channels, -1, -1).clone()
            mask[:, :, p, p] = centre_mask(colour_groups(in_channels, colours), out_colours,
                                           mask_type)
        self.register_buffer("mask", mask)
        self.mask_type = mask_type

    def masked_weight(self) -> Tensor:  # (C', C, k, k)
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C', H, W)
        return F.conv2d(x, self.masked_weight(), self.bias, padding=self.padding)

    def causal_weight(self) -> Tensor:
        """The masked weight without its all-zero rows below the centre: (C', C, p + 1, k)."""
        p = self.kernel_size[0] // 2
        return self.masked_weight()[:, :, :p + 1]

    def window_rows(self) -> list[Tensor]:
        """The masked kernel's rows above and at the centre as ``at`` reads them
        (``window_rows`` of ``causal_weight()``): compute once per sampling run."""
        return window_rows(self.causal_weight())

    def at(self, cache: Tensor, r: int, c: int, rows: list[Tensor] | None = None) -> Tensor:
        """The output at (r, c), (B, C'), from ``cache`` = the input channels-last, padded by p on
        the top, left and right, (B, H + p, W + 2p, C); ``rows`` = a precomputed
        ``window_rows()``."""
        return conv_at_rows(cache, r, c, self.window_rows() if rows is None else rows, self.bias)


def pointwise(in_channels: int, out_channels: int, *, colours: int = 1,
              out_colours: Tensor | None = None) -> nn.Conv2d:
    """A 1x1 convolution between the layers of a PixelCNN: a plain one for one image channel; for
    colour images a centre-only mask 'B' over the colour groups, so group g reads groups <= g."""
    if colours == 1:
        return nn.Conv2d(in_channels, out_channels, 1)
    return MaskedConv2d(in_channels, out_channels, 1, mask_type="B", colours=colours,
                        out_colours=out_colours)


def level_head(channels: int, head_channels: int, *, levels: int, colours: int) -> nn.Sequential:
    """The output head of a PixelCNN: ReLU, a 1x1 map to ``head_channels``, ReLU, a 1x1 map to
    the logits, C maps for binary pixels or levels * C (level by level, the colours within a level,
    as ``level_logits`` reads them); both maps colour-masked (``pointwise``)."""
    out = colours if levels == 2 else levels * colours
    return nn.Sequential(
        nn.ReLU(), pointwise(channels, head_channels, colours=colours),
        nn.ReLU(), pointwise(head_channels, out, colours=colours,
                             out_colours=logit_colours(out, colours)))


def logit_colours(out_channels: int, colours: int) -> Tensor:
    """The colour of each output map of a head laid out as ``level_logits`` reads it (level by
    level, the colours within a level): map j predicts colour j mod C."""
    return torch.arange(out_channels) % colours


def colour_logits_at(out: Tensor, levels: int, colour: int) -> Tensor:
    """The logits of one colour from a head's output at one position, laid out as
    ``level_logits`` reads it: (B, C) -> (B,) for binary pixels, (B, levels * C) -> (B, levels)."""
    return out[:, colour] if levels == 2 else out.unflatten(1, (levels, -1))[:, :, colour]


def colour_problem(name: str, image_shape: tuple[int, int, int]) -> str | None:
    """The ``data_problem`` of the masked-convolution models that know colour: their masks take
    one channel, or R, G, B."""
    if image_shape[0] not in (1, 3):
        return (f"{name} masks take one image channel or three (R, G, B), "
                f"got {image_shape[0]} channels")
    return None


def sigmoid_tanh(x: Tensor) -> Tensor:
    """2 sigmoid(2x) - 1 in one new tensor, updated in place (a second large temporary costs
    more than the sigmoid: it comes back from the allocator as fresh pages)."""
    t = x * 2.0
    return t.sigmoid_().mul_(2.0).sub_(1.0)


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) computed as 2 sigmoid(2x) - 1; the backward pass is tanh's own, 1 - tanh^2."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        t = sigmoid_tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (t,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, t)


def fast_tanh(x: Tensor) -> Tensor:
    """tanh(x), equal to ``torch.tanh`` within float rounding (a few 1e-7), faster on the CPU.

    PyTorch's CPU tanh is a precise vectorized kernel that runs about 10x slower than its sigmoid
    (0.85 ms against 0.09 ms for 400k floats, one thread of a Zen 5 AMD EPYC), and the gated
    activations of the Gated PixelCNN and WaveNet apply it to half their features in every layer.
    On other devices, and for small tensors (the samplers' one position: one kernel call beats
    four), this is ``torch.tanh``.
    """
    if x.device.type != "cpu" or x.numel() < 4096:
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _SigmoidTanh.apply(x)
    return sigmoid_tanh(x)


class FastTanh(nn.Module):
    """``nn.Tanh`` through ``fast_tanh``."""

    def forward(self, x: Tensor) -> Tensor:
        return fast_tanh(x)


def gated_tanh(a: Tensor, b: Tensor) -> Tensor:
    """tanh(a) * sigmoid(b), the gated activation of 2016b (eq. 2) and WaveNet (eq. 2)."""
    return fast_tanh(a) * torch.sigmoid(b)


class GatedActivation(nn.Module):
    """tanh(a) * sigmoid(b) for (a, b) = the two halves of the channels (2016b, eq. 2)."""

    def forward(self, x: Tensor) -> Tensor:  # (B, 2h, ...) -> (B, h, ...)
        return gated_tanh(*x.chunk(2, dim=1))


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

    Colour images (``colours`` = 3; 2016b, section 2.1, with the masks of 2016a, section 3.4):
    the vertical stack reaches the horizontal one only through rows above, where every colour
    is already drawn, so it and the link stay unmasked; the horizontal kernel's centre column and
    the 1x1 ``h_out`` and ``skip`` are masked by colour group, which ``gate`` keeps (it multiplies
    group g of one half by group g of the other).
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, *, first: bool,
                 colours: int = 1) -> None:
        super().__init__()
        p = self.p = _check_kernel(kernel_size)
        self.first = first
        self.residual = not first  # the first layer's input is the image: no residual
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (p + 1, kernel_size))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, p + 1))
        self.register_buffer("h_mask", self.horizontal_mask(in_channels, channels, colours))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.gate = GatedActivation()
        self.h_out = pointwise(channels, channels, colours=colours)
        self.skip = pointwise(channels, channels, colours=colours)

    def horizontal_mask(self, in_channels: int, channels: int, colours: int) -> Tensor:
        """The horizontal kernel's mask: columns left of the centre in full, the centre column
        (the last) excluded in the first layer (mask 'A': the centre pixel is the target). One
        channel: (1, p + 1). Colours: (2h, C_in, 1, p + 1), the centre by colour group, the 2h
        pre-activations grouped as the two halves the gate multiplies."""
        p, mask_type = self.p, "A" if self.first else "B"
        if colours == 1:
            mask = torch.ones(1, p + 1)
            mask[0, p] = mask_type == "B"
            return mask
        mask = torch.ones(2 * channels, in_channels, 1, p + 1)
        mask[:, :, 0, p] = centre_mask(colour_groups(in_channels, colours),
                                       colour_groups(2 * channels, colours, chunks=2), mask_type)
        return mask

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
