"""LSTM over the raster: the image as a sequence of 784 pixels, one LSTM step per pixel.

Theis & Bethge, "Generative Image Modeling Using Spatial LSTMs", NeurIPS 2015 (the idea of an
LSTM that carries the whole past of the image in its state), and the Row / Diagonal LSTMs of
van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016 (2016a).
Here the recurrence is the plainest one: a stacked LSTM (Hochreiter & Schmidhuber 1997) that walks
the pixels in raster order.

    input at step t:  [ previous pixel x_{t-1} ; row embedding(r_t) + column embedding(c_t) ]
    state:            (h_t, c_t) = LSTM(input_t, (h_{t-1}, c_{t-1}))          (layers stacked)
    output:           logits of pixel t = Linear(relu(Linear(h_t)))

Step t reads pixel t - 1 and the position (r_t, c_t) of the pixel it predicts, so its logits
depend only on pixels < t: one pass over the sequence gives all the conditionals p(x_t | x_<t).

Sampling carries (h, c) from one step to the next: each pixel costs one LSTM step, so drawing the
whole image costs one forward pass, where the generic loop reruns the LSTM over all 784 steps for
every pixel.

NOTE: the papers' recurrences are two-dimensional (Theis & Bethge's spatial LSTM reads the states
left of and above the pixel; PixelRNN's Row and Diagonal LSTMs convolve whole rows or diagonals);
this one is one-dimensional, so the pixel above is 28 steps back and reaches it only through the
state. The learned row and column embeddings tell it where in the image it is.
NOTE: levels == 2 gives Bernoulli logits and reads the previous pixel as +-1 (0 before the first);
levels > 2 gives categorical logits and reads a learned embedding of the level (so the model can
also be a prior over VQ-VAE codes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import PreviousPixel, RasterPosition
from .base import AutoregressiveModel, one_channel, sample_raster, sequence_logits


@dataclass
class LSTMConfig:
    hidden: int = knob(128, "Units of each LSTM layer (the size of h and c).", minimum=1)
    layers: int = knob(1, "Stacked LSTM layers.", minimum=1)
    position_dim: int = knob(16, "Size of the learned row and column embeddings of the pixel "
                             "being predicted.", minimum=1)
    head_hidden: int = knob(64, "Hidden layer of the output head (ReLU).", minimum=1)
    embed_dim: int = knob(16, "Size of the learned level embedding (grayscale / code priors only).",
                          minimum=1)


class LSTM(AutoregressiveModel):
    """A stacked LSTM over the pixels in raster order, binary or categorical pixels."""

    Config = LSTMConfig
    paper = "Theis & Bethge 2015 (Generative Image Modeling Using Spatial LSTMs)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """One image channel of any size, binary or categorical pixels."""
        return one_channel("the raster LSTM", image_shape, "assumes")

    def __init__(self, config: LSTMConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        _, height, width = self.image_shape
        self.previous = PreviousPixel(self.levels, config.embed_dim)
        self.position = RasterPosition(height, width, config.position_dim)
        self.lstm = nn.LSTM(self.previous.out_features + config.position_dim, config.hidden,
                            num_layers=config.layers, batch_first=True)
        out = 1 if self.levels == 2 else self.levels
        self.head = nn.Sequential(nn.Linear(config.hidden, config.head_hidden), nn.ReLU(),
                                  nn.Linear(config.head_hidden, out))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        B = len(x)
        previous = self.previous(x.flatten(1))  # (B, D, F)
        position = self.position().to(previous.dtype).expand(B, -1, -1)  # (B, D, P)
        h, _ = self.lstm(torch.cat([previous, position], dim=2))  # (B, D, hidden)
        return sequence_logits(self.head(h), self.levels, self.image_shape)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images one LSTM step per pixel, carrying the state (h, c).

        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        position = self.position().to(self.dtype)  # (D, P)
        state = None  # (h, c), each (layers, n, hidden); None = zeros, as in forward

        def step(t: int, previous: Tensor) -> Tensor:  # (n, F) -> (n, 1 | levels)
            nonlocal state
            step_input = torch.cat([previous, position[t].expand(n, -1)], dim=1)  # (n, F + P)
            h, state = self.lstm(step_input[:, None], state)  # (n, 1, hidden)
            return self.head(h[:, 0])

        return sample_raster(self, n, step, generator=generator, given=given,
                             given_mask=given_mask)
