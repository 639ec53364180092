"""The base classes every model of the zoo builds on.

``GenerativeModel`` fixes what the trainer, the evaluator and the sampler may call: ``loss`` for
training, ``log_prob`` for scoring (exact, or a bound, as ``nll_kind`` says) and ``sample``.
``AutoregressiveModel`` adds the one sampling loop shared by all autoregressive models: it turns
per-pixel logits into exact log-likelihoods and draws pixels one at a time in the model's order.

Images are float tensors of shape (B, C, H, W) holding integer levels: {0, 1} for binarized MNIST,
0..255 for grayscale. Every ``log_prob`` returns nats per image, shape (B,).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GenerativeModel(nn.Module):
    """A generative model of images, built from a typed config.

    Subclasses set ``Config`` (a dataclass of architecture knobs, defaults = params.yaml schema
    defaults), ``paper`` (the citation shown in the report) and implement ``log_prob`` and
    ``sample``. Models whose training objective is not the NLL override ``loss``.
    """

    Config: ClassVar[type]
    paper: ClassVar[str] = ""
    nll_kind: ClassVar[str] = "exact"  # "exact" | "bound" | "none"
    conditional: ClassVar[bool] = False

    def __init__(self, config: Any, *, image_shape: tuple[int, int, int] = (1, 28, 28),
                 levels: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.config = config
        self.image_shape = tuple(image_shape)
        self.levels = levels
        self.num_classes = num_classes

    @property
    def num_pixels(self) -> int:
        channels, height, width = self.image_shape
        return channels * height * width

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this model."""
        return {"config": dataclasses.asdict(self.config), "image_shape": list(self.image_shape),
                "levels": self.levels, "num_classes": self.num_classes}

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """log p(x) in nats per image, shape (B,) (a lower bound where ``nll_kind == 'bound'``)."""
        raise NotImplementedError

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The scalar the optimizer minimizes: the mean NLL in nats per image by default."""
        return -self.log_prob(x, y).mean()

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` images, shape (n, C, H, W), as float levels."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


def pixel_log_prob(logits: Tensor, x: Tensor, levels: int) -> Tensor:
    """Per-image log-likelihood of ``x`` under per-pixel logits.

    Args:
        logits: (B, C, H, W) Bernoulli logits when ``levels == 2``, else (B, levels, C, H, W).
        x: (B, C, H, W) integer levels as floats.
    Returns:
        (B,) nats.
    """
    if levels == 2:
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        nll = F.cross_entropy(logits, x.long(), reduction="none")
    return -nll.flatten(1).sum(1)


def draw_levels(logits: Tensor, levels: int, generator: torch.Generator | None) -> Tensor:
    """Sample one level per row of ``logits``: (B,) for binary, (B, levels) for categorical.

    Binary draws compare one uniform per row with sigmoid(logit), so two samplers fed the same
    generator draw the same pixels whenever their probabilities agree.
    """
    if levels == 2:
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
        return (uniform < torch.sigmoid(logits)).to(logits.dtype)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(logits.dtype)


class AutoregressiveModel(GenerativeModel):
    """p(x) = prod_i p(x_i | x_<i) over the pixels in ``ordering()``.

    Subclasses implement ``forward(x, y) -> logits`` (shapes as in ``pixel_log_prob``) such that
    the logits of pixel i depend only on pixels before i in the ordering (tests check this by
    gradient). Sampling runs one forward pass per pixel; models with a cheaper incremental form
    (NADE, the PixelCNN fast sampler) override ``sample``.
    """

    def ordering(self) -> Tensor:
        """Flat pixel indices (into C*H*W) in generation order; raster order by default."""
        return torch.arange(self.num_pixels)

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return pixel_log_prob(self(x, y), x, self.levels)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images pixel by pixel; pixels where ``given_mask`` is set are copied from
        ``given`` instead (image completion)."""
        x = torch.zeros((n, *self.image_shape), device=self.device, dtype=self.dtype)
        if given is not None:
            x = given.to(self.device, self.dtype).clone()
        flat_mask = None if given_mask is None else given_mask.flatten().to(self.device)
        for index in self.ordering().tolist():
            if flat_mask is not None and flat_mask[index]:
                continue
            logits = self(x, y)
            if self.levels == 2:
                pixel_logits = logits.flatten(1)[:, index]  # (n,)
            else:
                pixel_logits = logits.flatten(2)[:, :, index]  # (n, levels)
            x.view(n, -1)[:, index] = draw_levels(pixel_logits, self.levels, generator)
        return x
