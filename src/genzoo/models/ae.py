"""AE: a deterministic autoencoder, made generative by a Gaussian mixture fitted to its codes.

The autoencoder of Hinton & Salakhutdinov, "Reducing the Dimensionality of Data with Neural
Networks", Science 2006 (a deep encoder to a small code and a decoder back), trained end to end by
gradient; the baseline beside the denoising autoencoder (``dae.py``) of Vincent et al. 2008.

    z = E(x)            (B, latent)     an MLP, no noise and no prior
    p(x | z)            prod_d Bernoulli(x_d; sigmoid(D(z)_d))
    loss                -log p(x | E(x)) in nats per image (binary cross-entropy summed over pixels)

An autoencoder has no likelihood (``nll_kind = "none"``): its score is the reconstruction error of
the test images, -log p(x | E(x)) and the share of pixels wrong when the decoder's means are cut at
1/2. To sample, the ``mixture`` phase fits a Gaussian mixture (EM, ``fit_mixture``) to the codes
of the training images once training is done: z ~ mixture, then x ~ p(x | z). The mixture is the
phase's file ``mixture/mixture.npz``, attached by ``load_phases``; editing ``models.<m>.mixture``
refits it (seconds) without retraining. ``latent_map.png`` shows the test codes coloured by digit.

NOTE: Hinton & Salakhutdinov pretrain stacked RBMs and use a 1000-500-250-30 encoder; ours is a
small MLP trained from scratch with Adam on dynamically binarized images. The mixture sampler is
not from either paper (it is the "ex-post density estimation" of Ghosh et al., "From Variational
to Deterministic Autoencoders", ICLR 2020).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..config import build, config_schema, knob
from ..data import Split, fixed_binarization, load_split, save_npz
from ..mixture import GaussianMixture, fit_mixture
from .base import (GenerativeModel, Phase, PhaseContext, ScoreSettings, binary_only, draw_levels,
                   pixel_log_prob)
from .figures import Figures, grid_png, sample_grid
from .scoring import bits_per_dim

TRAIN_CODES_STREAM = 4  # data.binarize() uses streams 0-2, the VQ-VAE's codes 3
RECONSTRUCTIONS = 16  # test images shown with their reconstructions
MAP_IMAGES = 5000  # test codes drawn in the latent map


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLUs between them, none after the last."""
    layers: list[nn.Module] = []
    for size_in, size_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(size_in, size_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@dataclass
class AEConfig:
    hidden: list[int] = knob([400], "Hidden layer sizes of the encoder (the decoder mirrors them).",
                             minItems=1, items={"minimum": 1})
    latent: int = knob(8, "Size of the code z (2: the latent map shows the codes themselves).",
                       minimum=1)


@dataclass
class MixtureConfig:
    components: int = knob(10, "Gaussians of the mixture fitted to the training codes.", minimum=1)
    iterations: int = knob(100, "EM iterations (a fixed count: the fit is deterministic).", minimum=1)
    min_variance: float = knob(1e-4, "Added to the diagonal of every covariance (keeps it "
                               "invertible when a component sits on few codes).", exclusiveMinimum=0)


class AE(GenerativeModel):
    """MLP autoencoder with a Bernoulli decoder; samples through a mixture fitted to its codes."""

    Config = AEConfig
    paper = "Hinton & Salakhutdinov 2006 (Science); samples from a Gaussian mixture over the codes"
    nll_kind = "none"
    has_validation_nll = False  # no likelihood: the last epoch is kept
    phases = (Phase("mixture", outputs=("mixture.npz",), run="write_mixture", section="mixture",
                    evaluate_keys=("batch_size",)),)

    @classmethod
    def section_schemas(cls) -> dict[str, dict[str, Any]]:
        """params.yaml's models.<m>.mixture: the density fitted to the codes (the phase)."""
        return {"mixture": config_schema(MixtureConfig, "The Gaussian mixture fitted by EM to the "
                                         "codes of the training images, which the model samples.")}

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels of any shape (the C*H*W of them are the MLP's inputs)."""
        return binary_only(cls.__name__, levels)

    def __init__(self, config: AEConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if not config.hidden or min(config.hidden) < 1 or config.latent < 1:
            raise ValueError("hidden needs at least one layer of size >= 1 and latent must be >= 1")
        C, H, W = self.image_shape
        hidden = list(config.hidden)
        self.encoder = nn.Sequential(nn.Flatten(), _mlp([C * H * W, *hidden, config.latent]))
        self.decoder = nn.Sequential(_mlp([config.latent, *hidden[::-1], C * H * W]),
                                     nn.Unflatten(1, (C, H, W)))
        self.mixture: GaussianMixture | None = None  # attached by load_phases / attach_mixture

    # -- the autoencoder -------------------------------------------------------------------------

    def corrupt(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The encoder's input for the clean images x: x itself (the DAE corrupts it)."""
        return x

    def encode(self, x: Tensor) -> Tensor:
        """Codes (B, latent) of images (B, C, H, W)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits (B, C, H, W) of codes (B, latent)."""
        return self.decoder(z)

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """-log p(x | E(corrupt(x))) in nats, mean over the batch: the clean x is the target."""
        return -pixel_log_prob(self.decode(self.encode(self.corrupt(x))), x, 2).mean()

    @torch.no_grad()
    def encode_all(self, images: Tensor, *, batch_size: int = 1000) -> Tensor:
        """Codes (N, latent) of images (N, C, H, W), in batches, on the CPU."""
        return torch.cat([self.encode(images[i:i + batch_size].to(self.device, self.dtype)).cpu()
                          for i in range(0, len(images), batch_size)])

    @torch.no_grad()
    def reconstruction(self, images: Tensor, targets: Tensor, *, batch_size: int) -> dict[str, float]:
        """-log p(target | E(image)) in nats per image (mean) and the share of pixels where the
        decoder's mean, cut at 1/2, differs from the target."""
        nats, wrong = [], []
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(self.device, self.dtype)
            target = targets[i:i + batch_size].to(self.device, self.dtype)
            logits = self.decode(self.encode(x))  # (B, C, H, W)
            nats.append(-pixel_log_prob(logits, target, 2).double().cpu())
            wrong.append(((logits > 0).to(x.dtype) != target).flatten(1).double().mean(1).cpu())
        return {"nats": torch.cat(nats).mean().item(), "pixel_error": torch.cat(wrong).mean().item()}

    # -- phase "mixture": the density of the codes -----------------------------------------------

    def write_mixture(self, context: PhaseContext) -> None:
        """``mixture/mixture.npz``: the mixture fitted to the codes of the training images,
        binarized once with the run's seed (training saw fresh bits each epoch)."""
        name = context.settings["model"]
        config = build(MixtureConfig, context.settings["mixture"], where=f"models.{name}.mixture")
        train = load_split(context.data_dir / "train.npz")
        bits = torch.from_numpy(fixed_binarization(train.gray.numpy(), context.seed,
                                                   TRAIN_CODES_STREAM)).float()
        codes = self.encode_all(bits, batch_size=context.settings["batch_size"])
        mixture = fit_mixture(codes, config, torch.Generator().manual_seed(context.seed))
        save_npz(context.out_dir / "mixture.npz", weights=mixture.weights.numpy(),
                 means=mixture.means.numpy(), scale_tril=mixture.scale_tril.numpy(),
                 train_code_nll=np.array(-mixture.log_prob(codes.double()).mean().item()))

    def load_phases(self, run_dir: Path, load: Callable[[Path], tuple[Any, dict]]) -> None:
        """Attach the mixture the ``mixture`` phase fitted."""
        path = Path(run_dir) / "mixture" / "mixture.npz"
        if not path.exists():
            raise FileNotFoundError(f"missing {path}: the {type(self).__name__}'s mixture phase "
                                    f"writes it after training")
        with np.load(path) as arrays:
            self.attach_mixture(GaussianMixture(*(torch.from_numpy(arrays[key]) for key in
                                                  ("weights", "means", "scale_tril"))))

    def attach_mixture(self, mixture: GaussianMixture) -> None:
        if mixture.means.shape[1] != self.config.latent:
            raise ValueError(f"a mixture over {mixture.means.shape[1]}-D codes does not fit this "
                             f"autoencoder's {self.config.latent}-D codes: refit its mixture phase")
        self.mixture = mixture

    # -- sampling, scores and figures ------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               means: bool = False) -> Tensor:
        """z from the mixture, then x ~ p(x | z): (n, C, H, W) in {0, 1} (the means if ``means``)."""
        if self.mixture is None:
            raise ValueError(f"this {type(self).__name__} has no mixture yet: its 'mixture' phase "
                             "fits one, and the stages attach it with load_phases")
        z = self.mixture.to(self.device, torch.float64).sample(n, generator)  # (n, L)
        logits = self.decode(z.to(self.dtype))
        return torch.sigmoid(logits) if means else draw_levels(logits, 2, generator)

    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge=None) -> dict[str, Any]:
        """No NLL: the reconstruction error of the test images, and the mixture's size."""
        metrics = super().score(test, settings, variant=variant, generator=generator, judge=judge)
        images = test.images(variant)
        clean = self.reconstruction(images, images, batch_size=settings.batch_size)
        metrics.update(reconstruction_nll_nats=clean["nats"],
                       reconstruction_bits_per_dim=bits_per_dim(clean["nats"], self.num_pixels),
                       reconstruction_pixel_error=clean["pixel_error"], latent=self.config.latent,
                       mixture_components=0 if self.mixture is None else len(self.mixture.weights))
        return metrics

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """The sample grid, ``reconstructions.png`` (rows of test images, each followed by a row of
        their decoded codes) and ``latent_map.png``."""
        figures = sample_grid(self, n=n, nrow=nrow, generator=generator)
        if test is not None:
            x = test.images(variant)[:RECONSTRUCTIONS].to(self.device, self.dtype)
            with torch.no_grad():
                recon = torch.sigmoid(self.decode(self.encode(x)))
            rows = torch.cat([torch.cat([x[i:i + 8], recon[i:i + 8]]) for i in range(0, len(x), 8)])
            figures.pngs["reconstructions.png"] = grid_png(rows, nrow=8)
            codes = self.encode_all(test.images(variant)[:MAP_IMAGES])
            figures.pngs["latent_map.png"] = latent_map_png(codes, test.labels[:MAP_IMAGES],
                                                            self.mixture)
        return figures


def project_2d(codes: Tensor, *others: Tensor) -> tuple[str, list[Tensor]]:
    """The codes (N, L) and ``others`` in 2-D: as they are when L <= 2, else on the codes' first
    two principal components; and the axes' name."""
    if codes.shape[1] <= 2:
        return "z", [codes, *others]
    mean = codes.mean(0)
    _, _, v = torch.linalg.svd(codes - mean, full_matrices=False)  # v: (L, L), rows the components
    basis = v[:2].t()  # (L, 2)
    return "PC", [(t - mean) @ basis for t in (codes, *others)]


def latent_map_png(codes: Tensor, labels: Tensor, mixture: GaussianMixture | None) -> bytes:
    """Scatter of test codes (N, L) coloured by digit, the mixture's means as crosses; a PCA
    projection when L > 2 (the title says so)."""
    from matplotlib.figure import Figure  # lazily: the model files are imported by every job
    from matplotlib.lines import Line2D

    codes = codes.double()
    means = mixture.means.double().cpu() if mixture is not None else codes[:0]
    axis_name, (points, centres) = project_2d(codes, means)
    latent = codes.shape[1]
    figure = Figure(figsize=(5.5, 5), dpi=100)
    axes = figure.subplots()
    for digit in range(10):
        chosen = labels == digit
        axes.scatter(points[chosen, 0], points[chosen, -1], s=3, alpha=0.6, color=f"C{digit}",
                     rasterized=True)
    if len(centres):
        axes.scatter(centres[:, 0], centres[:, -1], marker="x", color="black", s=40)
    title = (f"{len(codes)} test codes (latent {latent})" if latent <= 2 else
             f"{len(codes)} test codes: PCA projection of the {latent}-D latent to 2-D")
    axes.set(title=title, xlabel=f"{axis_name} 1", ylabel=f"{axis_name} {min(2, latent)}")
    axes.title.set_fontsize("small")
    handles = [Line2D([], [], marker="o", linestyle="", color=f"C{digit}", label=str(digit))
               for digit in range(10)]
    if len(centres):
        handles.append(Line2D([], [], marker="x", linestyle="", color="black",
                              label="mixture means"))
    axes.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
