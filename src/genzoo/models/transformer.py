"""Pixel Transformer: a decoder-only Transformer over the 784 pixels in raster order.

Chen, Radford, Child, Wu, Jun, Luan & Sutskever, "Generative Pretraining from Pixels", ICML 2020
(ImageGPT), section 2 (the autoregressive objective over the raster, and the architecture): a
GPT-2 decoder over the image as a sequence, trained by the NLL. The blocks are those of Vaswani et
al., "Attention Is All You Need", NeurIPS 2017 (section 3.2, eq. 1, multi-head attention), with
the layer norm before each sub-layer, as in GPT-2 and ImageGPT:

    input at step t:  h_t = W_in [pixel x_{t-1}] + row embedding(r_t) + column embedding(c_t)
    block (x L):      h <- h + MultiHeadCausalAttention(LayerNorm(h))
                      h <- h + MLP(LayerNorm(h))           MLP = Linear, GELU, Linear (ratio 4)
    output:           logits of pixel t = Linear(LayerNorm(h_t))

Step t reads pixel t - 1 (``PreviousPixel``: the input shifted by one, a start symbol first) and
attends to steps <= t only (the causal mask), so its logits depend only on pixels < t: one pass
gives all the conditionals p(x_t | x_<t).

Training and scoring use ``F.scaled_dot_product_attention(is_causal=True)``: on one CPU thread,
at (batch 32, 4 heads, 784 steps, 16 dims per head), 0.10 s forward and 0.38 s forward + backward
against 1.1 s and 3.5 s for a plain masked softmax (about 10x; and it never stores the 784 x 784
attention matrices).

Sampling keeps a key/value cache: each step computes one position through all blocks, its query
attending to the cached keys and values of the positions before it (and its own), so an image
costs about one forward pass, where the generic loop reruns all 784 positions for every pixel.

Conditioning is a hook: ``conditioning(y, batch)`` returns a (B, dim) vector added to the input of
every position (None here); ``cond_transformer.py`` fills it from the class label.

NOTE: ImageGPT learns one embedding per sequence position; here a pixel's position is a learned
row embedding plus a learned column embedding (``RasterPosition``, as the raster LSTM has), which
tells the model directly which pixel is above which.
NOTE: levels == 2 gives Bernoulli logits and reads the previous pixel as +-1 (0 before the first)
through a linear map, where ImageGPT embeds one of 512 colour clusters; levels > 2 gives
categorical logits and reads a learned embedding of the level (so the model can also be a prior
over VQ-VAE codes).
NOTE: no dropout (GPT-2 has 0.1): the laptop model sees a fraction of an epoch and underfits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import PreviousPixel, RasterPosition
from .base import AutoregressiveModel, one_channel, sample_raster, sequence_logits


@dataclass
class TransformerConfig:
    dim: int = knob(64, "Width of the residual stream (the model dimension d).", minimum=1)
    layers: int = knob(2, "Transformer blocks (attention + MLP).", minimum=1)
    heads: int = knob(4, "Attention heads per block; must divide dim.", minimum=1)
    mlp_ratio: int = knob(4, "Hidden units of each block's MLP, as a multiple of dim.", minimum=1)
    embed_dim: int = knob(16, "Size of the learned level embedding (grayscale / code priors only).",
                          minimum=1)


def causal_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d_head) + causal mask) v: (B, heads, D, d_head) each -> same."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which step t attends to steps <= t (Vaswani et al. eq. 1)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def split(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, T, dim) -> q, k, v, each (B, heads, T, d_head)."""
        qkv = self.qkv(h).unflatten(2, (3, self.heads, -1))  # (B, T, 3, heads, d_head)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def merge(self, a: Tensor) -> Tensor:
        """(B, heads, T, d_head) -> (B, T, dim), through the output map."""
        return self.out(a.transpose(1, 2).flatten(2))

    def forward(self, h: Tensor) -> Tensor:  # (B, D, dim) -> (B, D, dim)
        return self.merge(causal_attention(*self.split(h)))

    def step(self, h: Tensor, t: int, cache: tuple[Tensor, Tensor]) -> Tensor:
        """Position t alone, (n, 1, dim) -> (n, 1, dim): writes its key and value into ``cache``
        (two (n, heads, D, d_head) tensors) and attends to the cached positions 0..t."""
        q, k, v = self.split(h)  # (n, heads, 1, d_head) each
        keys, values = cache
        keys[:, :, t:t + 1], values[:, :, t:t + 1] = k, v
        # No mask: the cache holds positions <= t only.
        a = F.scaled_dot_product_attention(q, keys[:, :, :t + 1], values[:, :, :t + 1])
        return self.merge(a)


class Block(nn.Module):
    """Pre-norm Transformer block: h + attention(LN(h)), then h + MLP(LN(h))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, h: Tensor) -> Tensor:  # (B, D, dim) -> (B, D, dim)
        h = h + self.attention(self.norm1(h))
        return h + self.mlp(self.norm2(h))

    def step(self, h: Tensor, t: int, cache: tuple[Tensor, Tensor]) -> Tensor:  # (n, 1, dim)
        h = h + self.attention.step(self.norm1(h), t, cache)
        return h + self.mlp(self.norm2(h))


class Transformer(AutoregressiveModel):
    """A decoder-only Transformer over the pixels in raster order, binary or categorical pixels."""

    Config = TransformerConfig
    paper = "Chen et al. 2020 (Generative Pretraining from Pixels)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """One image channel of any size, binary or categorical pixels."""
        return one_channel("the pixel Transformer", image_shape, "assumes")

    def __init__(self, config: TransformerConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        _, height, width = self.image_shape
        if config.dim % config.heads:
            raise ValueError(f"heads ({config.heads}) must divide dim ({config.dim})")
        self.previous = PreviousPixel(self.levels, config.embed_dim)
        self.input = nn.Linear(self.previous.out_features, config.dim)
        self.position = RasterPosition(height, width, config.dim)
        self.blocks = nn.ModuleList(Block(config.dim, config.heads, config.mlp_ratio)
                                    for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, 1 if self.levels == 2 else self.levels)
        self._init_weights()

    def _init_weights(self) -> None:
        """GPT-2's initialisation (ImageGPT follows it): N(0, 0.02) weights and embeddings, zero
        biases, and the maps into the residual stream scaled by 1 / sqrt(2 L)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for residual in (block.attention.out, block.mlp[2]):
                nn.init.normal_(residual.weight, std=0.02 / math.sqrt(2 * len(self.blocks)))

    def conditioning(self, y: Tensor | None, batch: int) -> Tensor | None:
        """A (B, dim) vector added to every position's input, or None: the hook conditional
        models override."""
        return None

    def embed(self, previous: Tensor, position: Tensor, cond: Tensor | None) -> Tensor:
        """The residual stream's input: previous pixels (B, T, F), positions (T, dim) and the
        conditioning (B, dim) or None -> (B, T, dim)."""
        h = self.input(previous) + position.to(previous.dtype)
        return h if cond is None else h + cond[:, None]

    def logits(self, h: Tensor) -> Tensor:  # (B, T, dim) -> (B, T, 1 | levels)
        return self.head(self.norm(h))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        h = self.embed(self.previous(x.flatten(1)), self.position(),
                       self.conditioning(y, len(x)))  # (B, D, dim)
        for block in self.blocks:
            h = block(h)
        return sequence_logits(self.logits(h), self.levels, self.image_shape)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images one position at a time, with a key/value cache per block.

        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        cond = self.conditioning(y, n)  # (n, dim) or None
        position = self.position()  # (D, dim)
        d_head = self.config.dim // self.config.heads
        caches = [tuple(torch.zeros(n, self.config.heads, self.num_pixels, d_head,
                                    device=self.device, dtype=self.dtype) for _ in range(2))
                  for _ in self.blocks]  # keys, values of each block

        def step(t: int, previous: Tensor) -> Tensor:  # (n, F) -> (n, 1 | levels)
            h = self.embed(previous[:, None], position[t:t + 1], cond)  # (n, 1, dim)
            for block, cache in zip(self.blocks, caches):
                h = block.step(h, t, cache)
            return self.logits(h)[:, 0]

        return sample_raster(self, n, step, generator=generator, given=given,
                             given_mask=given_mask)
