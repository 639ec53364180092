"""PixelSNAIL: causal convolutions interleaved with causal self-attention over the raster.

Chen, Mishra, Rohaninejad & Abbeel, "PixelSNAIL: An Improved Autoregressive Generative Model",
ICML 2018, section 3 and the figure of its residual and attention blocks.

    first layer:     k0 x k0 masked convolution, mask 'A' (the centre pixel excluded)
    residual block:  h + glu(conv_B(elu(conv_B(elu(h)))))        glu(a, b) = a * sigmoid(b)
    attention block: keys, values = linear([h_j ; x_j ; pos_j]),  queries = linear(h_i)
                     a_i = sum_j softmax_j(q_i . k_j / sqrt(d_k)) v_j   over j < i and one empty
                           slot (key 0, value 0), so a_0 = 0: nothing before the first pixel
                     h + glu(W_2 elu(W_1 elu(h) + W_a elu(a)))   (a gated residual with input a)
    network:         first, then ``blocks`` x (``residual_blocks`` residual blocks, 1 attention)
    head:            1x1(elu(1x1(elu(h))))  -> logits per pixel

The masked convolutions see a bounded neighbourhood up and to the left and leave the PixelCNN's
blind spot up-right; the attention reads every earlier pixel (its keys and values carry the pixel
x_j itself, the "background" of the paper together with the position), so pixel i depends on all
pixels before it. The mask of the attention is strict (j < i) because the key of j holds x_j.

Sampling goes in raster order, one position per step through every layer: each masked
convolution computes its output at that position from a cache of its input (as the PixelCNN
sampler), each attention block attends from its query to a cache of the keys and values of the
earlier positions. The key and value of position t need x_t, so they join the caches after x_t is
drawn. Drawing an image costs about one forward pass, where the generic loop runs one per pixel.

NOTE: the paper's residual blocks use 2x2 causal convolutions on shifted inputs (PixelCNN++) and
the concatenated ELU; here they are k x k masked convolutions (mask 'B', ``genzoo.nn``) and a
plain ELU. The gate a * sigmoid(b) is the paper's (not the Gated PixelCNN's tanh).
NOTE: keys, values and queries are single linear maps (the authors' code puts a 1x1 gated
residual block before each); one head, as in the paper. No dropout.
NOTE: the empty slot is ours: it defines the first position's attention (0) and lets any
position attend to nothing; with it the attention is one fused causal kernel over the keys and
values shifted by one slot (``attend``).
NOTE: the position is the paper's fixed background: row and column coordinates in [-0.5, 0.5).
NOTE: levels == 2 gives Bernoulli logits instead of the paper's discretized logistic mixture; for
levels > 2 the input is a learned embedding of the level and the head gives categorical logits,
so the model can also be a prior over VQ-VAE codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import LevelInput, MaskedConv2d, conv1x1_at, level_logits
from .base import AutoregressiveModel, draw_levels, one_channel


@dataclass
class PixelSNAILConfig:
    channels: int = knob(32, "Channels of the residual stream.", minimum=1)
    blocks: int = knob(2, "PixelSNAIL blocks: residual blocks followed by one attention block.",
                       minimum=1)
    residual_blocks: int = knob(2, "Gated residual blocks (two masked convolutions each) in each "
                                "PixelSNAIL block.", minimum=0)
    kernel_size: int = knob(3, "Kernel of the residual blocks' masked (mask B) convolutions; odd.",
                            minimum=1)
    first_kernel_size: int = knob(5, "Kernel of the first, mask A convolution; odd.", minimum=1)
    key_channels: int = knob(8, "Size of the attention's keys and queries.", minimum=1)
    value_channels: int = knob(16, "Size of the attention's values.", minimum=1)
    head_channels: int = knob(32, "Hidden 1x1 layer of the output head.", minimum=1)
    embed_dim: int = knob(16, "Size of the learned level embedding (grayscale / code priors only).",
                          minimum=1)


def raster_background(height: int, width: int) -> Tensor:
    """The fixed position of every pixel: (row, column) coordinates in [-0.5, 0.5), (H * W, 2)."""
    rows = (torch.arange(height) - height / 2) / height
    cols = (torch.arange(width) - width / 2) / width
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)  # (H, W, 2)
    return grid.flatten(0, 1)


def attend(queries: Tensor, keys: Tensor, values: Tensor, *, causal: bool) -> Tensor:
    """Softmax attention, (B, T, d_k), (B, S, d_k), (B, S, d_v) -> (B, T, d_v), scale 1/sqrt(d_k);
    ``causal``: query t sees keys 0..t (T == S).

    Queries, keys and values are zero-padded to one width (which leaves every dot product as it
    is), so PyTorch runs its fused causal kernel: at batch 32 over 784 positions on one CPU
    thread its forward and backward took 0.14 s where an explicit mask of keys 8 and values 16
    wide took 1.06 s (it materializes the (T, S) weights).
    """
    dk, dv = queries.shape[-1], values.shape[-1]
    width = max(dk, dv)
    q, k, v = (F.pad(t, (0, width - t.shape[-1])) if t.shape[-1] < width else t
               for t in (queries, keys, values))
    out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], is_causal=causal,
                                         scale=dk ** -0.5)  # (B, 1, T, width): one head
    return out[:, 0, :, :dv]


class GatedResidualBlock(nn.Module):
    """h + glu(conv_B(elu(conv_B(elu(h))))), both convolutions masked 'B' (figure 4, left)."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = MaskedConv2d(channels, channels, kernel_size, mask_type="B")
        self.gate_conv = MaskedConv2d(channels, 2 * channels, kernel_size, mask_type="B")

    def forward(self, h: Tensor) -> Tensor:  # (B, C, H, W)
        return h + F.glu(self.gate_conv(F.elu(self.conv(F.elu(h)))), dim=1)


class CausalAttentionBlock(nn.Module):
    """One key/value lookup of every position into the positions before it, then a gated
    residual that mixes the result into the stream (figure 4, right)."""

    def __init__(self, channels: int, background_channels: int, key_channels: int,
                 value_channels: int) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.query = nn.Linear(channels, key_channels)
        self.key_value = nn.Linear(channels + background_channels, key_channels + value_channels)
        self.mix_stream = nn.Linear(channels, channels)
        self.mix_attention = nn.Linear(value_channels, channels)
        self.gate = nn.Linear(channels, 2 * channels)

    def keys_values(self, h: Tensor, background: Tensor) -> tuple[Tensor, Tensor]:
        """(..., C) features and (..., E + 2) background -> keys (..., d_k), values (..., d_v)."""
        return self.key_value(torch.cat([h, background], dim=-1)).split(
            [self.key_channels, self.key_value.out_features - self.key_channels], dim=-1)

    def mix(self, h: Tensor, attended: Tensor) -> Tensor:
        """h + glu(W_2 elu(W_1 elu(h) + W_a elu(a))): (..., C), (..., d_v) -> (..., C)."""
        pre = self.mix_stream(F.elu(h)) + self.mix_attention(F.elu(attended))
        return h + F.glu(self.gate(F.elu(pre)), dim=-1)

    @staticmethod
    def past(t: Tensor) -> Tensor:
        """Slot i of the result holds position i - 1 of ``t`` (B, D, F), slot 0 the empty one
        (zeros): under a causal mask over the slots, position i sees the empty slot and the
        positions before i, never itself (its key holds its own pixel)."""
        return F.pad(t, (0, 0, 1, 0))[:, :-1]

    def forward(self, h: Tensor, background: Tensor) -> Tensor:
        """(B, C, H, W) stream, (B, D, E + 2) background -> (B, C, H, W)."""
        B, C, H, W = h.shape
        stream = h.flatten(2).transpose(1, 2)  # (B, D, C)
        keys, values = self.keys_values(stream, background)  # (B, D, d_k), (B, D, d_v)
        attended = attend(self.query(stream), self.past(keys), self.past(values),
                          causal=True)  # (B, D, d_v)
        return self.mix(stream, attended).transpose(1, 2).unflatten(2, (H, W))

    def at(self, h: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """The block at position t from the keys (B, t + 1, d_k) and values (B, t + 1, d_v) of
        the empty slot and the t positions before it: (B, C) -> (B, C)."""
        return self.mix(h, attend(self.query(h)[:, None], keys, values, causal=False)[:, 0])


class PixelSNAIL(AutoregressiveModel):
    """PixelSNAIL over one image channel, binary or categorical pixels."""

    Config = PixelSNAILConfig
    paper = "Chen et al. 2018 (PixelSNAIL: An Improved Autoregressive Generative Model)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """One image channel of any size, binary or categorical pixels.

        NOTE: no colour: the paper draws CIFAR-10's R, G, B from PixelCNN++'s discretized
        logistic mixture, which ours does not have, and its masks have no colour groups."""
        return one_channel("PixelSNAIL", image_shape, "masks assume")

    def __init__(self, config: PixelSNAILConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        _, height, width = self.image_shape
        C = config.channels
        self.input = LevelInput(self.levels, 1, config.embed_dim)
        self.register_buffer("background", raster_background(height, width), persistent=False)
        background_channels = self.input.out_channels + 2  # the pixel and its position
        self.first = MaskedConv2d(self.input.out_channels, C, config.first_kernel_size,
                                  mask_type="A")
        self.residuals = nn.ModuleList(
            nn.ModuleList(GatedResidualBlock(C, config.kernel_size)
                          for _ in range(config.residual_blocks))
            for _ in range(config.blocks))
        self.attentions = nn.ModuleList(
            CausalAttentionBlock(C, background_channels, config.key_channels,
                                 config.value_channels) for _ in range(config.blocks))
        out = 1 if self.levels == 2 else self.levels
        self.head = nn.Sequential(nn.ELU(), nn.Conv2d(C, config.head_channels, 1),
                                  nn.ELU(), nn.Conv2d(config.head_channels, out, 1))

    def _background(self, image: Tensor) -> Tensor:
        """The keys' extra input: the pixel (as the network reads it) and its position,
        (B, E, H, W) -> (B, D, E + 2)."""
        position = self.background.to(image.dtype).expand(len(image), -1, -1)  # (B, D, 2)
        return torch.cat([image.flatten(2).transpose(1, 2), position], dim=2)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        image = self.input(x)  # (B, E, H, W)
        background = self._background(image)  # (B, D, E + 2)
        h = self.first(image)  # (B, C, H, W)
        for residuals, attention in zip(self.residuals, self.attentions):
            for block in residuals:
                h = block(h)
            h = attention(h, background)
        return level_logits(self.head(h), self.levels, 1)

    def _head_at(self, h: Tensor) -> Tensor:  # (B, C) -> (B,) or (B, levels)
        out = conv1x1_at(self.head[3], F.elu(conv1x1_at(self.head[1], F.elu(h))))  # (B, 1 | L)
        return out[:, 0] if self.levels == 2 else out

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images one position per step through every layer, from caches.

        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        _, H, W = self.image_shape
        x, flat_mask = self.canvas(n, given, given_mask)
        convs = ConvCaches(self, n, x)
        D, cfg = H * W, self.config
        # Slot 0 of each attention block's caches is the empty slot, slot t + 1 position t.
        keys = [x.new_zeros(n, D + 1, cfg.key_channels) for _ in self.attentions]
        values = [x.new_zeros(n, D + 1, cfg.value_channels) for _ in self.attentions]
        for r in range(H):
            for c in range(W):
                t = r * W + c
                h = convs.first_at(r, c)  # (n, C)
                streams = []  # each attention block's input here: its keys need it later
                for k, (residuals, attention) in enumerate(zip(self.residuals, self.attentions)):
                    for j in range(len(residuals)):
                        h = convs.residual_at(k, j, h, r, c)
                    streams.append(h)
                    h = attention.at(h, keys[k][:, :t + 1], values[k][:, :t + 1])
                if flat_mask is None or not flat_mask[t]:
                    x[:, 0, r, c] = draw_levels(self._head_at(h), self.levels, generator)
                image = convs.read_pixel(x, r, c)  # (n, E)
                background = torch.cat([image, self.background[t].to(x.dtype).expand(n, 2)], 1)
                for k, attention in enumerate(self.attentions):
                    keys[k][:, t + 1], values[k][:, t + 1] = attention.keys_values(
                        streams[k], background)
        return x


class ConvCaches:
    """The inputs of every masked convolution of a PixelSNAIL, kept channels-last and padded by p
    on the top, left and right, (n, H + p, W + 2p, C_in), so that each layer's output at (r, c) is one
    ``MaskedConv2d.at`` of its cache; the positions after (r, c) are zeros (mask 'B' ignores
    them, as the zero padding of ``forward``)."""

    def __init__(self, model: PixelSNAIL, n: int, x: Tensor) -> None:
        _, H, W = model.image_shape
        self.model = model
        self.p0 = model.first.kernel_size[0] // 2
        self.p = model.config.kernel_size // 2
        self.x_cache = x.new_zeros(n, H + self.p0, W + 2 * self.p0, model.input.out_channels)
        self.first_rows = model.first.window_rows()
        C = model.config.channels
        # Per residual block: the caches and kernel rows of its two convolutions.
        self.caches = [[(x.new_zeros(n, H + self.p, W + 2 * self.p, C),
                         x.new_zeros(n, H + self.p, W + 2 * self.p, C)) for _ in residuals]
                       for residuals in model.residuals]
        self.weights = [[(block.conv.window_rows(), block.gate_conv.window_rows())
                         for block in residuals] for residuals in model.residuals]

    def first_at(self, r: int, c: int) -> Tensor:  # (n, C)
        return self.model.first.at(self.x_cache, r, c, self.first_rows)

    def residual_at(self, k: int, j: int, h: Tensor, r: int, c: int) -> Tensor:
        """Residual block j of PixelSNAIL block k at (r, c): (n, C) -> (n, C)."""
        block = self.model.residuals[k][j]
        (conv_cache, gate_cache), (conv_weight, gate_weight) = self.caches[k][j], self.weights[k][j]
        p = self.p
        conv_cache[:, r + p, c + p] = F.elu(h)
        t = block.conv.at(conv_cache, r, c, conv_weight)  # (n, C)
        gate_cache[:, r + p, c + p] = F.elu(t)
        return h + F.glu(block.gate_conv.at(gate_cache, r, c, gate_weight), dim=1)

    def read_pixel(self, x: Tensor, r: int, c: int) -> Tensor:
        """Put the drawn (or given) pixel (r, c) into the first layer's cache: (n, E)."""
        image = self.model.input(x[:, :, r:r + 1, c:c + 1])[:, :, 0, 0]  # (n, E)
        self.x_cache[:, r + self.p0, c + self.p0] = image
        return image
