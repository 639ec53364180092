"""Class-conditional DCGAN: G(z, y) draws a digit of the class y, D(x, y) judges the pair.

The generator and the game are the DCGAN's (Radford, Metz & Chintala, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks", ICLR 2016),
with the label entering each player as in:

* the generator: the one-hot label concatenated to the noise, G([z, one_hot(y)]) (Mirza &
  Osindero, "Conditional Generative Adversarial Nets", arXiv 2014, section 4.1);
* the discriminator: a projection discriminator (Miyato & Koyama, "cGANs with Projection
  Discriminator", ICLR 2018, eq. 3),

      D(x, y) = psi(phi(x)) + embed(y) . phi(x),

  with phi(x) D's flattened last features, psi its linear head, and a learned embedding per
  class of phi's width: the label scores how well the features match the class.

NOTE: the projection is the paper's choice for conditional GANs trained with the hinge loss on
ImageNet; we keep the DCGAN's non-saturating losses, and its embeddings start at zero, so a fresh
D ignores the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dcgan import DCGAN, DCGANConfig


@dataclass
class CondDCGANConfig(DCGANConfig):
    """The DCGAN's knobs; the number of classes comes from the model's ``num_classes``."""


class CondDCGAN(DCGAN):
    """DCGAN with the label concatenated to G's noise and projected onto D's features."""

    Config = CondDCGANConfig
    paper = ("Radford et al. 2016 (DCGAN), conditioned as in Mirza & Osindero 2014 (G) and "
             "Miyato & Koyama 2018 (projection D)")
    conditional = True
    mode_coverage = False  # label agreement says more: every sample has a requested digit

    def __init__(self, config: CondDCGANConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        features = self.discriminator["head"].in_features
        self.discriminator["embed"] = nn.Embedding(self.num_classes, features)  # (classes, F)
        nn.init.zeros_(self.discriminator["embed"].weight)

    def generator_inputs(self) -> int:
        """Width of G's input: the noise and the one-hot label."""
        return self.config.latent + self.num_classes

    def generator_input(self, z: Tensor, y: Tensor | None) -> Tensor:
        """[z, one_hot(y)]: (B, latent + classes)."""
        one_hot = F.one_hot(self.checked_labels(y, len(z)), self.num_classes).to(z.dtype)
        return torch.cat([z, one_hot], dim=1)

    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """psi(phi(x)) + embed(y) . phi(x): D's logit that (x, y) is a real pair, (B,)."""
        y = self.checked_labels(y, len(x))
        features = self.discriminator["body"](x)  # (B, F)
        projection = (self.discriminator["embed"](y) * features).sum(1)  # (B,)
        return self.discriminator["head"](features).squeeze(1) + projection
