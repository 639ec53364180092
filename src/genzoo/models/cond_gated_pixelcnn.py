"""Class-conditional Gated PixelCNN: p(x | y) for a class label y.

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional Image Generation
with PixelCNN Decoders", NeurIPS 2016 (2016b), section 2.3, eq. 4:

    y = tanh(W_f * x + V_f^T h) . sigmoid(W_g * x + V_g^T h)

with h the one-hot label. V^T h is a learned bias per layer and class, the same at every
position (location-independent conditioning), added to the gates of both stacks. It is stored as
an ``nn.Embedding(num_classes, 4h)`` per layer, which equals V^T one_hot(y) without a matrix
product. Everything else, fast sampling and colour images (R, G, B masks) included, is the
unconditional ``GatedPixelCNN``: this class only fills its ``conditioning`` hook.

NOTE: the label bias is zero at initialisation, so a fresh model starts as the unconditional one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig


@dataclass
class CondGatedPixelCNNConfig(GatedPixelCNNConfig):
    """The Gated PixelCNN's knobs; the number of classes comes from the model's ``num_classes``."""


class CondGatedPixelCNN(GatedPixelCNN):
    """Gated PixelCNN conditioned on a class label through a per-layer gate bias."""

    Config = CondGatedPixelCNNConfig
    paper = "van den Oord et al. 2016b (Conditional Image Generation with PixelCNN Decoders)"
    conditional = True

    def __init__(self, config: CondGatedPixelCNNConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.label_bias = nn.ModuleList(nn.Embedding(self.num_classes, 4 * config.channels)
                                        for _ in self.layers)  # V^T h: (num_classes, 4h) each
        for embedding in self.label_bias:
            nn.init.zeros_(embedding.weight)

    def conditioning(self, y: Tensor | None) -> list[Tensor | None]:
        """One (B, 4h) gate bias per layer: V^T one_hot(y)."""
        if y is None:
            raise ValueError("CondGatedPixelCNN needs the class labels y, shape (B,)")
        return [embedding(y) for embedding in self.label_bias]

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits of p(x | y): (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        return super().forward(x, self.checked_labels(y, x.shape[0]))

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images of the classes ``y`` (n,), with the cached row-by-row sampler."""
        return super().sample(n, y=self.checked_labels(y, n), generator=generator, given=given,
                              given_mask=given_mask)
