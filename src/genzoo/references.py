"""Published test NLLs shown beside our numbers, with their sources: one table per dataset.

Each figure keeps the unit it was published in, nats per image for binarized MNIST and bits per
dimension for CIFAR-10 (bits/dim = nats / (D ln 2), D = 32 x 32 x 3 = 3,072 values per image),
and the report prints it beside our number in that unit.

Binarized MNIST: papers scored a fixed binarization; pytorch-generative (like us) trains on
dynamically binarized images, which acts as data augmentation, so its figures and ours lean
optimistic against the papers'.

There is no table for Fashion-MNIST, Colored MNIST or 256-level MNIST: we know of no published
figure of the zoo's models on them that we could cite with its table, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

NATS = "nats"  # per image: the sum over its pixels
BITS_PER_DIM = "bits/dim"


@dataclass(frozen=True)
class Reference:
    source: str  # who reported it
    value: float
    unit: str  # NATS or BITS_PER_DIM: the unit it was published in
    where: str  # table, row, or page the figure comes from
    url: str


PYTORCH_GENERATIVE = "https://github.com/EugenHotaj/pytorch-generative"
PIXEL_RNN = "https://arxiv.org/abs/1601.06759"  # van den Oord, Kalchbrenner & Kavukcuoglu 2016a
GATED_PIXELCNN = "https://arxiv.org/abs/1606.05328"  # van den Oord et al. 2016b

# Binarized MNIST, test NLL in nats per image.
BINARIZED_MNIST: dict[str, list[Reference]] = {
    # No paper tabulates the product of independent Bernoullis on binarized MNIST: it is the
    # floor the report shows every model against, with the pipeline's own number only.
    "independent": [],
    "nade": [
        Reference("Larochelle & Murray 2011 (AISTATS)", 88.86, NATS, "Table 2, NADE",
                  "https://proceedings.mlr.press/v15/larochelle11a.html"),
        Reference("pytorch-generative", 85.65, NATS, "README, dynamic binarization",
                  PYTORCH_GENERATIVE),
    ],
    "made": [
        Reference("Germain et al. 2015 (ICML)", 88.04, NATS,
                  "Table 6, MADE 1 hidden layer, 32 masks", "https://arxiv.org/abs/1502.03509"),
        Reference("pytorch-generative", 84.867, NATS, "README, dynamic binarization, 1 mask",
                  PYTORCH_GENERATIVE),
    ],
    "pixelcnn": [
        Reference("van den Oord et al. 2016a (ICML)", 81.30, NATS, "Table 4, PixelCNN", PIXEL_RNN),
        Reference("pytorch-generative", 81.45, NATS, "README, dynamic binarization",
                  PYTORCH_GENERATIVE),
    ],
    # The Gated PixelCNN paper (van den Oord et al. 2016b) reports no binarized-MNIST figure.
    "gated_pixelcnn": [
        Reference("pytorch-generative", 81.50, NATS, "README, dynamic binarization",
                  PYTORCH_GENERATIVE),
    ],
    # No paper scores a one-dimensional LSTM over the raster on binarized MNIST; the nearest
    # published ones are PixelRNN's two-dimensional LSTMs (rows, or diagonals with residual layers).
    "lstm": [
        Reference("van den Oord et al. 2016a (ICML)", 80.54, NATS, "Table 4, Row LSTM (a 2-D LSTM)",
                  PIXEL_RNN),
        Reference("van den Oord et al. 2016a (ICML)", 79.20, NATS,
                  "Table 4, Diagonal BiLSTM, 7 layers, h = 16 (a 2-D LSTM)", PIXEL_RNN),
    ],
    # The WaveNet paper (van den Oord et al. 2016c) models audio: no binarized-MNIST figure.
    "wavenet": [],
    # ImageGPT (Chen et al. 2020) trains on ImageNet, CIFAR-10 and STL-10 and reports linear-probe
    # and fine-tuning accuracy: no binarized-MNIST NLL, as far as we know, for it or its
    # class-conditional form.
    "transformer": [],
    "cond_transformer": [],
    # The PixelSNAIL paper (Chen et al. 2018) scores CIFAR-10 and ImageNet in bits/dim only (see
    # CIFAR10 below): no binarized-MNIST figure. pytorch-generative's README has one.
    "pixelsnail": [
        Reference("pytorch-generative", 78.61, NATS, "README, dynamic binarization",
                  PYTORCH_GENERATIVE),
    ],
    # Burda et al.'s test NLLs are themselves estimates with k = 5000 importance samples: bounds.
    "vae": [
        Reference("Burda, Grosse & Salakhutdinov 2016 (ICLR)", 86.76, NATS,
                  "Table 1, one stochastic layer, VAE trained with k = 1 (test bound, k = 5000)",
                  "https://arxiv.org/abs/1509.00519"),
        Reference("Burda, Grosse & Salakhutdinov 2016 (ICLR)", 84.78, NATS,
                  "Table 1, one stochastic layer, IWAE trained with k = 50 (test bound, k = 5000)",
                  "https://arxiv.org/abs/1509.00519"),
    ],
    # Ho et al. 2020 report bits/dim on CIFAR-10 only (Table 1), Nichol & Dhariwal 2021 and
    # Kingma et al. 2021 (Variational Diffusion Models) on CIFAR-10 and ImageNet: no diffusion
    # paper we know of tabulates a binarized-MNIST bound, so none is cited.
    "ddpm": [],
    # van den Oord et al. 2017 report no binarized-MNIST likelihood for the VQ-VAE.
    # A GAN defines no likelihood, so no paper has a binarized-MNIST NLL for one (Radford et al.
    # 2016 show MNIST samples only): the report scores them by their samples.
    "dcgan": [],
    "cond_dcgan": [],
    # Gulrajani et al.'s binarized-MNIST test NLL, as DESIGN.md lists it (its table and row were not
    # checked against the paper offline: check before citing further).
    "pixelvae": [
        Reference("Gulrajani et al. 2017 (ICLR)", 79.66, NATS,
                  "binarized-MNIST results table, PixelVAE", "https://arxiv.org/abs/1611.05013"),
    ],
    # pix2pix translates images and defines no likelihood; Isola et al. score no MNIST task.
    "pix2pix": [],
}

# CIFAR-10 (RGB, 256 levels), test NLL in bits/dim. NOTE: written offline. PixelSNAIL's 2.85 is
# in its abstract and the Gated PixelCNN's 3.03 is quoted as such in the PixelCNN++ README
# (openai/pixel-cnn); none of the four was checked against the table named here: check before
# citing further. Not cited, as unchecked too: PixelRNN's Row LSTM (Table 5) and Ho et al.'s
# diffusion bounds (2020, Table 1), which would sit beside lstm and ddpm.
CIFAR10: dict[str, list[Reference]] = {
    "pixelcnn": [
        Reference("van den Oord et al. 2016a (ICML)", 3.14, BITS_PER_DIM, "Table 5, PixelCNN",
                  PIXEL_RNN),
    ],
    "gated_pixelcnn": [
        Reference("van den Oord et al. 2016b (NIPS)", 3.03, BITS_PER_DIM,
                  "Table 1, Gated PixelCNN", GATED_PIXELCNN),
    ],
    # As on binarized MNIST, the nearest published model to our 1-D LSTM is PixelRNN's 2-D one.
    "lstm": [
        Reference("van den Oord et al. 2016a (ICML)", 3.00, BITS_PER_DIM,
                  "Table 5, Diagonal BiLSTM (a 2-D LSTM)", PIXEL_RNN),
    ],
    "pixelsnail": [
        Reference("Chen et al. 2018 (ICML)", 2.85, BITS_PER_DIM, "Table 1, PixelSNAIL",
                  "https://arxiv.org/abs/1712.09763"),
    ],
}

# The tables by (dataset, variant): the same images at another variant are another benchmark.
TABLES: dict[tuple[str, str], dict[str, list[Reference]]] = {
    ("mnist", "binarized"): BINARIZED_MNIST,
    ("cifar10", "rgb"): CIFAR10,
}


def has_published_figures(dataset: str, variant: str) -> bool:
    """Whether we cite any published figure on ``dataset`` at ``variant``."""
    return (dataset, variant) in TABLES


def references_for(model: str, dataset: str, variant: str) -> list[Reference]:
    """The published figures of ``model`` on ``dataset`` at ``variant`` (none where we know of
    none)."""
    return TABLES.get((dataset, variant), {}).get(model, [])
