"""WaveNet over the raster: causal dilated convolutions along the 784 pixels in raster order.

van den Oord, Dieleman, Zen, Simonyan, Vinyals, Graves, Kalchbrenner, Senior & Kavukcuoglu,
"WaveNet: A Generative Model for Raw Audio", arXiv:1609.03499 (2016c), sections 2.1-2.5 and
figure 4; the fast sampler is Paine et al., "Fast Wavenet Generation Algorithm",
arXiv:1611.09482 (2016).

    input:   s_t = x_{t-1} (the sequence shifted right by one), 1x1 convolution to C channels
    layer k: z = tanh(W_f,k * h + V_f,k p_t) . sigmoid(W_g,k * h + V_g,k p_t)  (eq. 2, sec. 2.5)
             h <- h + 1x1(z) (residual),  skip <- skip + 1x1(z)
    head:    1x1(relu(1x1(relu(skip))))  -> logits of pixel t

W * h is a causal convolution with kernel 2 and dilation d_k: it reads h_{t - d_k} and h_t. The
dilations are 1, 2, 4, ..., 2^(n-1), repeated in ``stacks`` (figure 3), so step t sees the
``receptive_field()`` pixels before it: 1 + stacks (2^n - 1) of them. p_t is the position of
pixel t in the image (learned row and column embeddings), the paper's local conditioning with a
1x1 map per layer (section 2.5, V * y), so the network knows which row and column it predicts.
The input is shifted, so every feature at t depends on pixels < t only.

Sampling follows Paine et al.: layer k keeps a queue of its last d_k inputs; step t pops h_{t-d_k}
off it and pushes h_t, so a pixel costs one kernel-2 convolution per layer at one position, and
the image costs about one forward pass (the generic loop reruns the whole network per pixel).

NOTE: no initial causal convolution before the first layer: the input shift already makes the
network causal, and the first dilated layer reads two input positions.
NOTE: the convolutions are written as linear maps over the channels of (B, D, C) tensors: kernel 2
at dilation d is one map of the concatenated (h_{t-d}, h_t), 1x1 a map of h_t. The same function
as Conv1d, but the dilated Conv1d is about 1.7x slower on a CPU.
NOTE: levels == 2 gives Bernoulli logits instead of the paper's 256-way mu-law softmax; levels > 2
gives categorical logits and reads a learned embedding of the level, so the model can also be a
prior over VQ-VAE codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..nn import PreviousPixel, RasterPosition, gated_tanh
from .base import AutoregressiveModel, one_channel, sample_raster, sequence_logits


@dataclass
class WaveNetConfig:
    channels: int = knob(32, "Residual channels C (the dilated convolutions output 2C).", minimum=1)
    skip_channels: int = knob(32, "Channels of the skip connections summed into the head.",
                              minimum=1)
    layers_per_stack: int = knob(7, "n: dilations 1, 2, ..., 2^(n-1) in each stack.", minimum=1)
    stacks: int = knob(2, "Stacks of dilated layers (receptive field 1 + stacks (2^n - 1)).",
                       minimum=1)
    head_channels: int = knob(32, "Hidden 1x1 layer of the output head.", minimum=1)
    position_dim: int = knob(16, "Size of the learned row and column embeddings (the "
                             "conditioning input).", minimum=1)
    embed_dim: int = knob(16, "Size of the learned level embedding (grayscale / code priors only).",
                          minimum=1)


class WaveNet(AutoregressiveModel):
    """WaveNet over the pixels in raster order, conditioned on the position; binary or
    categorical pixels."""

    Config = WaveNetConfig
    paper = "van den Oord et al. 2016c (WaveNet: A Generative Model for Raw Audio)"

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """One image channel of any size, binary or categorical pixels."""
        return one_channel("the raster WaveNet", image_shape, "assumes")

    def __init__(self, config: WaveNetConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        _, height, width = self.image_shape
        C = config.channels
        self.dilations = [2 ** i for _ in range(config.stacks)
                          for i in range(config.layers_per_stack)]
        self.previous = PreviousPixel(self.levels, config.embed_dim)
        self.input = nn.Linear(self.previous.out_features, C)
        self.position = RasterPosition(height, width, config.position_dim)
        # V of every layer in one map: position (P) -> a (2C) gate bias per layer.
        self.condition = nn.Linear(config.position_dim, 2 * C * len(self.dilations), bias=False)
        # Kernel 2 at dilation d: one linear map of (h_{t-d}, h_t), (2C) -> (2C).
        self.dilated = nn.ModuleList(nn.Linear(2 * C, 2 * C) for _ in self.dilations)
        # The last layer's output feeds only the head: no residual map there.
        self.residual = nn.ModuleList(nn.Linear(C, C) for _ in self.dilations[:-1])
        self.skip = nn.ModuleList(nn.Linear(C, config.skip_channels) for _ in self.dilations)
        out = 1 if self.levels == 2 else self.levels
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(config.skip_channels, config.head_channels),
                                  nn.ReLU(), nn.Linear(config.head_channels, out))

    def receptive_field(self) -> int:
        """How many pixels before pixel t its logits can depend on."""
        return 1 + sum(self.dilations)

    def conditions(self, dtype: torch.dtype) -> Tensor:
        """The gate bias V_k p_t of every layer k and pixel t: (layers, D, 2C)."""
        cond = self.condition(self.position().to(dtype))  # (D, layers * 2C)
        return cond.unflatten(1, (len(self.dilations), 2 * self.config.channels)).transpose(0, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B, C, H, W) when levels == 2, else (B, levels, C, H, W)."""
        h = self.input(self.previous(x.flatten(1)))  # (B, D, C)
        conds = self.conditions(h.dtype)  # (layers, D, 2C)
        skips = 0
        for k, d in enumerate(self.dilations):
            past = F.pad(h, (0, 0, d, 0))[:, :-d]  # (B, D, C): h_{t-d}, zeros before the start
            pre = self.dilated[k](torch.cat([past, h], dim=2)) + conds[k]  # (B, D, 2C)
            a, b = pre.chunk(2, dim=2)
            z = gated_tanh(a, b)  # (B, D, C)
            skips = skips + self.skip[k](z)  # (B, D, S)
            if k < len(self.residual):
                h = h + self.residual[k](z)
        return sequence_logits(self.head(skips), self.levels, self.image_shape)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images one position at a time, with a queue of past inputs per layer.

        Draws the same pixels, in the same order, from the same generator as the generic loop
        (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
        """
        conds = self.conditions(self.dtype)  # (layers, D, 2C)
        C = self.config.channels
        # Layer k's queue holds its inputs h at t - d_k .. t - 1 (slot t mod d_k); zeros before
        # the first pixel, as forward's left padding.
        queues = [torch.zeros(n, d, C, device=self.device, dtype=self.dtype)
                  for d in self.dilations]

        def step(t: int, previous: Tensor) -> Tensor:  # (n, F) -> (n, 1 | levels)
            h = self.input(previous)  # (n, C)
            skips = 0
            for k, d in enumerate(self.dilations):
                slot = t % d
                pre = self.dilated[k](torch.cat([queues[k][:, slot], h], dim=1)) + conds[k, t]
                queues[k][:, slot] = h  # pop h_{t-d}, push h_t
                a, b = pre.chunk(2, dim=1)
                z = gated_tanh(a, b)  # (n, C)
                skips = skips + self.skip[k](z)  # (n, S)
                if k < len(self.residual):
                    h = h + self.residual[k](z)
            return self.head(skips)

        return sample_raster(self, n, step, generator=generator, given=given,
                             given_mask=given_mask)
