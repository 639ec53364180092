"""NADE: the Neural Autoregressive Distribution Estimator.

Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011.

    h_d = sigmoid(c + W[:, <d] x_<d)          (hidden state for pixel d, shared weights W)
    p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d)

Because the pre-activation a_d = c + sum_{j<d} W[:, j] x_j grows by one column per pixel, the whole
likelihood costs O(HD) and so does sampling, by carrying a_d along (``sample`` below).

NOTE: trained with Adam rather than the paper's SGD, and on dynamically binarized MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import knob
from .base import AutoregressiveModel, draw_levels


@dataclass
class NADEConfig:
    hidden: int = knob(500, "Size of the shared hidden layer (500 in pytorch-generative).", minimum=1)


class NADE(AutoregressiveModel):
    """NADE for binary images in raster order."""

    Config = NADEConfig
    paper = "Larochelle & Murray 2011"

    def __init__(self, config: NADEConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if self.levels != 2:
            raise ValueError("NADE models binary pixels: use data.variant 'binarized'")
        D, H = self.num_pixels, config.hidden
        self.W = nn.Parameter(torch.randn(H, D) * 0.01)  # input -> hidden, column d used after pixel d
        self.c = nn.Parameter(torch.zeros(H))
        self.V = nn.Parameter(torch.randn(D, H) * 0.01)  # hidden -> output, row d predicts pixel d
        self.b = nn.Parameter(torch.zeros(D))
        self.row = self.image_shape[-1]  # pixels per image row
        self.register_buffer("strictly_lower", torch.ones(self.row, self.row).tril(-1),
                             persistent=False)  # (w, w): [i, j] = 1 where j < i

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Bernoulli logits of every pixel given the pixels before it, shape (B, C, H, W)."""
        flat = x.flatten(1)  # (B, D)
        B, D = flat.shape
        rows, width = D // self.row, self.row
        # a_d = c + sum_{j<d} W[:, j] x_j, computed one image row at a time: within a row as a
        # matmul with a strictly lower-triangular mask, across rows as a running sum of row
        # totals. Same numbers as a cumulative sum over D, and faster on a CPU
        # (benchmarks/nade_forward.py).
        W_rows = self.W.t().reshape(rows, width, -1)  # (R, w, H)
        x_rows = flat.view(B, rows, width)  # (B, R, w)
        within = torch.matmul(x_rows.unsqueeze(2) * self.strictly_lower, W_rows)  # (B, R, w, H)
        totals = torch.einsum("brj,rjh->brh", x_rows, W_rows)  # (B, R, H): each row's sum
        earlier_rows = torch.cumsum(totals, dim=1) - totals  # (B, R, H): rows above
        hidden = torch.sigmoid(within + (earlier_rows + self.c).unsqueeze(2))  # (B, R, w, H)
        logits = torch.einsum("bdh,dh->bd", hidden.reshape(B, D, -1), self.V) + self.b  # (B, D)
        return logits.view(x.shape)

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
