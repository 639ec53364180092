"""Shared layers: masked linear maps (MADE) and, as the zoo grows, masked/causal convolutions."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features).

    The mask is a buffer, so it moves with the module and is saved in checkpoints.
    """

    def __init__(self, in_features: int, out_features: int, mask: Tensor, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if tuple(mask.shape) != (out_features, in_features):
            raise ValueError(f"mask shape {tuple(mask.shape)} != {(out_features, in_features)}")
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)
