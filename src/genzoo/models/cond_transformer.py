"""Class-conditional pixel Transformer: p(x | y) for a class label y.

The decoder of ``transformer.py`` (Chen et al., "Generative Pretraining from Pixels", ICML 2020;
Vaswani et al. 2017), conditioned as the class-conditional PixelCNN is (van den Oord et al.,
"Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016, section 2.3, eq. 4:
location-independent conditioning): a learned embedding of the label, e(y) of size d, is added to
the input of every position,

    h_t = W_in [pixel x_{t-1}] + row embedding(r_t) + column embedding(c_t) + e(y)

Everything else, the key/value-cache sampler included, is the unconditional ``Transformer``: this
class only fills its ``conditioning`` hook.

Why at every position rather than as the start token (the other common choice, where the label
replaces the input before the first pixel and later positions must attend back to it): added to
every input, the label is in the residual stream of every position from the first training step,
with no attention weights to learn before it can act, which matters for the briefly trained
laptop model; and a label embedding of zero is exactly the unconditional model.

NOTE: ImageGPT is unconditional; the conditioning is the PixelCNN paper's. The label embedding is
zero at initialisation, so a fresh model starts as the unconditional one.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .transformer import Transformer, TransformerConfig


@dataclass
class CondTransformerConfig(TransformerConfig):
    """The Transformer's knobs; the number of classes comes from the model's ``num_classes``."""


class CondTransformer(Transformer):
    """Pixel Transformer conditioned on a class label added to every position's input."""

    Config = CondTransformerConfig
    paper = ("Chen et al. 2020 (Generative Pretraining from Pixels), class-conditional as in "
             "van den Oord et al. 2016b")
    conditional = True

    def __init__(self, config: CondTransformerConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.label_embedding = nn.Embedding(self.num_classes, config.dim)  # e(y): (classes, dim)
        nn.init.zeros_(self.label_embedding.weight)

    def conditioning(self, y: Tensor | None, batch: int) -> Tensor:
        """e(y), (B, dim), added to the input of every position."""
        return self.label_embedding(self.checked_labels(y, batch))
