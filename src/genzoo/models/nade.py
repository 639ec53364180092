"""NADE: the Neural Autoregressive Distribution Estimator.

Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.

    h_d = sigmoid(c + W[:, <d] x_<d)          (hidden state for pixel d, shared weights W)
    p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d)

Because the pre-activation a_d = c + sum_{j<d} W[:, j] x_j grows by one column per pixel, the whole
likelihood costs O(HD) and so does sampling, by carrying a_d along (``sample`` below).

The likelihood is a scan over the pixels in chunks of a few image rows (``NADEScan``): within a
chunk the pre-activations are a cumulative sum, laid out (pixel, batch, hidden) so that the
outputs and the gradients of V and W are batched matrix products over pixels without copies,
and the backward pass recomputes each chunk's hidden units instead of storing all B x D x H of
them. The working set stays within ``CHUNK_BYTES`` (the cache) where a whole-image form moves
several 100 MB tensors per step (benchmarks/nade_forward.py).

NOTE: trained with Adam rather than the paper's SGD, and on dynamically binarized MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import knob
from .base import AutoregressiveModel, binary_only, draw_levels

CHUNK_BYTES = 16 * 2**20  # the scan's chunk of (pixels, B, H) floats: the most rows within this


@dataclass
class NADEConfig:
    hidden: int = knob(500, "Size of the shared hidden layer (500 in pytorch-generative).", minimum=1)


class NADE(AutoregressiveModel):
    """NADE for binary images in raster order."""

    Config = NADEConfig
    paper = "Larochelle & Murray 2011"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels of any shape (the C*H*W of them in one raster)."""
        return binary_only(cls.__name__, levels)

    def __init__(self, config: NADEConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        D, H = self.num_pixels, config.hidden
        self.W = nn.Parameter(torch.randn(H, D) * 0.01)  # input -> hidden, column d used after pixel d
        self.c = nn.Parameter(torch.zeros(H))
        self.V = nn.Parameter(torch.randn(D, H) * 0.01)  # hidden -> output, row d predicts pixel d
        self.b = nn.Parameter(torch.zeros(D))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Bernoulli logits of every pixel given the pixels before it, shape (B, C, H, W)."""
        flat = x.flatten(1)  # (B, D)
        (B, D), P = flat.shape, self.chunk_pixels(flat)
        logits = NADEScan.apply(flat.t().reshape(D // P, P, B), self.W.t().reshape(D // P, P, -1),
                                self.c, self.V.reshape(D // P, P, -1), self.b.reshape(D // P, P))
        return logits.reshape(D, B).t().reshape(x.shape)  # (K, P, B) -> (B, C, H, W)

    def chunk_pixels(self, flat: Tensor) -> int:
        """Pixels per chunk of the scan: the most whole image rows (a divisor of the height) whose
        (pixels, B, H) tensors fit in ``CHUNK_BYTES``; one row at least."""
        _, height, width = self.image_shape
        row_bytes = width * flat.shape[0] * self.config.hidden * flat.element_size()
        rows = max([r for r in range(1, height + 1) if height % r == 0 and r * row_bytes <= CHUNK_BYTES],
                   default=1)
        return rows * width

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None, **kwargs) -> Tensor:
        """O(HD) sampling: the pre-activation is updated with one column per drawn pixel."""
        if kwargs:
            return super().sample(n, y=y, generator=generator, **kwargs)
        x = torch.zeros(n, self.num_pixels, device=self.device, dtype=self.dtype)  # (n, D)
        pre = self.c.expand(n, -1).clone()  # (n, H): a_1 = c
        for d in range(self.num_pixels):
            logit = torch.sigmoid(pre) @ self.V[d] + self.b[d]  # (n,)
            x[:, d] = draw_levels(logit, 2, generator)
            pre += x[:, d:d + 1] * self.W[:, d]  # add pixel d's column
        return x.view(n, *self.image_shape)


def chunk_pre_activations(x: Tensor, W: Tensor, prefix: Tensor) -> Tensor:
    """a_d for the P pixels of a chunk, (P, B, H): ``prefix`` (B, H) = a of its first pixel, then
    a running sum of x_j W[:, j] (x: (P, B) the chunk's pixels, W: (P, H) their columns)."""
    steps = x.new_empty(x.shape[0], *prefix.shape)  # (P, B, H)
    steps[0] = prefix
    torch.mul(x[:-1, :, None], W[:-1, None, :], out=steps[1:])  # pixel j's step into a_{j+1}
    return running_sum_(steps)


def running_sum_(t: Tensor) -> Tensor:
    """In-place cumulative sum over the first dimension, one vectorized add per slice: 5x faster
    on a CPU than ``cumsum(0)``, which walks each of the other elements' columns in turn."""
    for j in range(1, t.shape[0]):
        t[j] += t[j - 1]
    return t


class NADEScan(torch.autograd.Function):
    """NADE's logits, chunk by chunk, with a backward pass that recomputes the hidden units.

    Shapes: x (K, P, B) the pixels in K chunks of P, W and V (K, P, H) their columns of W and rows
    of V, c (H,), b (K, P); returns the logits (K, P, B). For pixel d with a_d as above and
    g_d = dL/dlogit_d:

        dL/da_d = g_d V_d * h_d * (1 - h_d)            dL/dV_d = sum_b g_d h_d
        dL/dW[:, j] = sum_b x_j * sum_{d > j} dL/da_d  dL/dc = sum_{b, d} dL/da_d

    The inner sums over d > j run from the last chunk to the first.
    """

    @staticmethod
    def forward(ctx, x: Tensor, W: Tensor, c: Tensor, V: Tensor, b: Tensor) -> Tensor:
        K, P, B = x.shape
        prefix = c.expand(B, -1).clone()  # (B, H): a of the chunk's first pixel
        prefixes = x.new_empty(K, B, c.shape[0])  # (K, B, H), kept for the backward pass
        logits = x.new_empty(K, P, B)
        for k in range(K):
            prefixes[k] = prefix
            hidden = chunk_pre_activations(x[k], W[k], prefix).sigmoid_()  # (P, B, H)
            torch.baddbmm(b[k, :, None, None], hidden, V[k, :, :, None],
                          out=logits[k, :, :, None])  # (P, B, 1)
            prefix.addmm_(x[k].t(), W[k])  # past the chunk's last pixel
        ctx.save_for_backward(x, W, V, prefixes)
        return logits

    @staticmethod
    def backward(ctx, g: Tensor):  # g: (K, P, B)
        x, W, V, prefixes = ctx.saved_tensors
        K, P, B = x.shape
        later = x.new_zeros(B, W.shape[-1])  # (B, H): sum of dL/da_d over the chunks after k
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_W, grad_V = torch.empty_like(W), torch.empty_like(V)
        for k in reversed(range(K)):
            hidden = chunk_pre_activations(x[k], W[k], prefixes[k]).sigmoid_()  # (P, B, H)
            torch.bmm(g[k, :, None, :], hidden, out=grad_V[k, :, None, :])  # (P, 1, H)
            grad_pre = torch.ops.aten.sigmoid_backward(g[k, :, :, None] * V[k, :, None, :], hidden)
            running = running_sum_(grad_pre)  # (P, B, H): sum over d <= j within the chunk
            later += running[-1]
            after = torch.sub(later, running, out=running)  # (P, B, H): sum over d > j
            torch.bmm(x[k, :, None, :], after, out=grad_W[k, :, None, :])  # (P, 1, H)
            if grad_x is not None:
                torch.bmm(after, W[k, :, :, None], out=grad_x[k, :, :, None])  # (P, B, 1)
        return grad_x, grad_W, later.sum(0), grad_V, g.sum(2)
