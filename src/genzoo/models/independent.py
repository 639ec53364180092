"""Independent pixels: one Bernoulli (or categorical) distribution per pixel, nothing shared.

    p(x) = prod_d p(x_d),   p(x_d = 1) = sigmoid(theta_d)

The baseline every model of the zoo must beat: it knows where ink tends to be, but no pixel knows
about any other. Its maximum-likelihood fit is the training images' mean of each pixel; here the
one trainer finds it by gradient descent like every other model, which also checks the pipeline
end to end on the cheapest possible model. It is the autoregressive model whose conditionals
ignore the past, so completions work as for the others (the given half changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import knob
from .base import AutoregressiveModel, draw_levels


@dataclass
class IndependentConfig:
    init_logit: float = knob(0.0, "Initial logit of every pixel (0: probability one half).")


class Independent(AutoregressiveModel):
    """A product of independent per-pixel distributions, learned from the data."""

    Config = IndependentConfig
    paper = "independent pixels (baseline: a product of per-pixel distributions)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Any shape, any levels: one distribution per sub-pixel."""
        return None

    def __init__(self, config: IndependentConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        outputs = 1 if self.levels == 2 else self.levels
        self.logits = nn.Parameter(torch.full((outputs, *self.image_shape), config.init_logit))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The same logits for every image: (B, C, H, W), or (B, levels, C, H, W) if levels > 2."""
        logits = self.logits[0] if self.levels == 2 else self.logits
        return logits.expand(x.shape[0], *logits.shape)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """All pixels in one draw; pixels where ``given_mask`` is set are copied from ``given``."""
        logits = self(torch.empty(n, device=self.device), y)  # (n, C, H, W) or (n, L, C, H, W)
        if self.levels == 2:
            x = draw_levels(logits, 2, generator)  # (n, C, H, W)
        else:  # one categorical per pixel: rows of L logits
            rows = logits.movedim(1, -1).reshape(-1, self.levels)  # (n*C*H*W, L)
            x = draw_levels(rows, self.levels, generator).view(n, *self.image_shape)
        if given is not None and given_mask is not None:
            mask = given_mask.to(self.device).expand_as(x)
            x = torch.where(mask, given.to(self.device, self.dtype), x)
        return x
