"""The model protocol: what every network of the zoo implements, and what the stages may call.

``Trainable`` is what the one trainer needs: a typed ``Config``, ``loss`` to minimize and
``validation_nll`` to pick the best epoch with, and ``score`` for the evaluate stage. A model
whose objective is not one loss on one optimizer (a GAN's two players) declares its optimizers
(``optimizer_specs``, each an Adam over its own parameters) and takes its own ``training_step``,
which calls ``update(name, loss)`` once per optimizer it steps; a model with no validation NLL
says so (``has_validation_nll = False``): the trainer then keeps the last epoch and stops a run
only on a non-finite loss.

``GenerativeModel`` adds what makes it a model of images:

* ``nll_kind``: what ``score`` reports as the test NLL: ``"exact"``, an upper ``"bound"``, or
  ``"none"`` (a model that only samples);
* ``log_prob`` (exact, or a lower bound), ``sample``, and ``figures`` (the PNGs the report shows:
  the sample grid by default);
* ``score(test, settings)``: the test metrics, by default the exact NLL of ``log_prob``;
  ``score_settings`` names the ``evaluate`` knobs it reads, so a run is re-scored only when one
  of those changes;
* sample quality needs nothing more than ``sample``: the evaluate stage draws
  ``evaluate.fid_samples`` images from every generative model (class-balanced labels when
  ``conditional``) and scores them on the judge's features (FID, precision, recall:
  ``genzoo.quality``), whatever its ``nll_kind``; they come from ``quality_samples``, which is
  ``sample`` unless the model translates test images instead (image-to-image);
* ``phases``: extra steps after training (the VQ-VAE's code grids and the prior fitted on them),
  each run by the workflow as its own cached job, and ``load_phases`` to put their results back
  into the model, so that the model stages load is complete (a VQ-VAE that samples and scores).

``AutoregressiveModel`` adds the sampling loop shared by the autoregressive models and image
completions.

Images are float tensors of shape (B, C, H, W) holding integer levels: {0, 1} for binarized MNIST,
0..255 for 8-bit grey (C = 1) or colour (C = 3: R, G, B). Every ``log_prob`` returns nats per
image, shape (B,). Which shapes and levels a network takes, it says before it is built:
``Trainable.data_problem``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Split
from .figures import Figures, completion_rows, grid_png, sample_grid
from .scoring import label_agreement, label_histogram, nll_summary, per_image_nll

NLL_KINDS = ("exact", "bound", "none")
DEFAULT_OPTIMIZER = "model"  # the name of the one optimizer of a model that declares none
ADAM_BETAS = (0.9, 0.999)  # torch's defaults (Kingma & Ba 2015)

# update(name, loss): one step of the optimizer ``name`` on ``loss`` (the trainer's: it checks
# that the loss is finite, clears that optimizer's gradients, backpropagates, clips, steps).
Update = Callable[[str, Tensor], None]


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer the trainer builds: Adam over ``parameters`` at the train section's ``lr``
    (and its schedule), with these ``betas``."""

    parameters: tuple[nn.Parameter, ...]
    betas: tuple[float, float] = ADAM_BETAS


@dataclass(frozen=True)
class Phase:
    """A step of a model's run after training, run by the workflow as its own cached job.

    Its files go to ``<run>/<name>/``; it reads the files of the phases before it (the first one
    reads the trained ``<run>/model.pt``) and, if ``section`` is set, the model's params section of
    that name (``models.<model>.<section>``), so editing that section reruns this phase and what
    follows it, never the training before it.
    """

    name: str  # the job's name and its folder under the run
    outputs: tuple[str, ...]  # files it writes into its folder
    run: str  # the model's method that does it: method(context: PhaseContext) -> None
    section: str | None = None  # the params section it reads, if any
    evaluate_keys: tuple[str, ...] = ()  # evaluate knobs it reads (e.g. batch_size)
    trains: bool = False  # it trains a network (and writes that training's timings)


@dataclass
class PhaseContext:
    """What a phase may use; the stage fills it in, so model files never import the stages."""

    run_dir: Path  # data/models/<model>/<dataset>/seed<s>
    out_dir: Path  # run_dir / phase name
    data_dir: Path  # data/processed
    settings: dict[str, Any]  # the phase's resolved settings (section, evaluate knobs, seed)
    seed: int
    device: torch.device
    fit: Callable[..., dict[str, Any]]  # train.train with the stage's device and logging
    timings: Path | None = None  # where a phase that trains writes its wall-clock seconds


@dataclass
class ScoreSettings:
    """The ``evaluate`` knobs a model's ``score`` reads (the ones in its ``score_settings``)."""

    batch_size: int = 1000
    agreement_samples: int = 1000
    iwae_k: int = 5000
    iwae_batch_size: int = 100
    fid_samples: int = 10000
    pr_neighbours: int = 3
    bound_timesteps: int = 1


class Trainable(nn.Module):
    """A network the trainer can fit: built from a typed config, with a loss and a validation NLL.

    Subclasses set ``Config`` (a dataclass of architecture knobs, documented with
    ``config.knob``; the params schema is built from it) and ``paper`` (the citation shown in the
    report).
    """

    Config: ClassVar[type]
    paper: ClassVar[str] = ""
    score_settings: ClassVar[tuple[str, ...]] = ("batch_size",)
    # False: no validation NLL (a GAN); the trainer keeps the last epoch, not the best one.
    has_validation_nll: ClassVar[bool] = True

    def __init__(self, config: Any, *, image_shape: tuple[int, int, int] = (1, 28, 28),
                 levels: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        problem = self.data_problem(tuple(image_shape), levels)
        if problem is not None:
            raise ValueError(problem)
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

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The scalar the optimizer minimizes: the mean validation NLL by default."""
        return self.validation_nll(x, y).mean()

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        """The optimizers the trainer builds, by name (the names ``training_step`` updates):
        one Adam over every parameter by default."""
        return {DEFAULT_OPTIMIZER: OptimizerSpec(tuple(self.parameters()))}

    def training_step(self, x: Tensor, y: Tensor | None, update: Update) -> dict[str, Tensor]:
        """One training step on the batch (x, y): ``update(name, loss)`` once per optimizer
        stepped. Returns the detached losses by the name the history records them under: by
        default one step on ``loss``, recorded as ``train_loss``."""
        loss = self.loss(x, y)
        update(DEFAULT_OPTIMIZER, loss)
        return {"train_loss": loss.detach()}

    def validation_nll(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Per-example NLL in nats, (B,), that picks the best epoch (lower is better)."""
        raise NotImplementedError

    def trivial_nll(self) -> float:
        """The validation NLL (nats per example) of a model that learned nothing: uniform over
        the ``levels`` of every pixel, ``num_pixels * ln(levels)`` (784 ln 2 = 543.4 nats on
        binarized MNIST; 49 ln K for a prior over a 7x7 grid of K codes). The trainer stops a run
        whose validation NLL is worse after an epoch: it diverged (or learned nothing)."""
        return self.num_pixels * math.log(self.levels)

    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge: Trainable | None = None) -> dict[str, Any]:
        """Test metrics of the trained network (a flat dict of JSON values)."""
        raise NotImplementedError

    # -- what the workflow asks the class (before any network exists) --------------------------

    phases: ClassVar[tuple[Phase, ...]] = ()  # extra cached jobs after training, in order

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """None when this network can model (the judge: classify) images of ``image_shape``
        (C, H, W) holding ``levels`` levels, else one line saying why not; ``__init__`` raises
        it as a ValueError. It answers for the data alone: limits of one architecture setting
        (a stride count that must divide the sides) stay checks of ``__init__``.

        Every network answers for itself (tests build, train a step and sample each one it
        claims); this default claims everything."""
        return None

    @classmethod
    def needs_judge(cls) -> bool:
        """Whether ``score`` uses the pipeline's classifier, so the workflow passes it and waits."""
        return False

    @classmethod
    def evaluate_keys(cls) -> tuple[str, ...]:
        """The ``evaluate`` knobs ``score`` reads: only those reach the run's evaluate job, so
        editing another one does not re-score this model."""
        return cls.score_settings

    @classmethod
    def section_schemas(cls) -> dict[str, dict[str, Any]]:
        """JSON schemas of params sections beyond arch/train/seeds/sample (the VQ-VAE's
        ``prior``); the schema of ``arch`` is built from ``Config``."""
        return {}

    @classmethod
    def networks_used(cls, section: dict[str, Any]) -> list[str]:
        """Other networks of the zoo this model builds from its params section at run time (by
        registry name), so that editing their files reruns this model's jobs that use them."""
        return []

    def load_phases(self, run_dir: Path, load: Callable[[Path], tuple[Trainable, dict]]) -> None:
        """Attach what the ``phases`` wrote under ``run_dir`` (``load`` reads a checkpoint and
        returns the network and its payload), so the stages get the complete model."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype


class GenerativeModel(Trainable):
    """A generative model of images. Subclasses implement ``log_prob`` and ``sample``; models
    whose training objective is not the NLL override ``loss``, models scored otherwise than by
    ``log_prob`` override ``score`` (or just ``test_nll``)."""

    nll_kind: ClassVar[str] = "exact"  # "exact" | "bound" | "none"
    conditional: ClassVar[bool] = False  # p(x | y) for a class label y
    # The judge's label histogram of unconditional samples in the metrics: which digits the
    # model draws, and how far that is from the test set's (mode coverage, for a GAN).
    mode_coverage: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.nll_kind not in NLL_KINDS:
            raise TypeError(f"{cls.__name__}.nll_kind must be one of {NLL_KINDS}, got {cls.nll_kind!r}")

    @classmethod
    def needs_judge(cls) -> bool:
        """Every generative model's samples are judged on the classifier's features (FID,
        precision, recall: ``genzoo.quality``); a conditional model's also by label agreement,
        a ``mode_coverage`` model's by the judge's label histogram of them."""
        return True

    @classmethod
    def evaluate_keys(cls) -> tuple[str, ...]:
        """The knobs of ``score``, the sample-quality knobs (the evaluate stage draws
        ``fid_samples`` from every generative model), and the sample count of a conditional
        model's label agreement or a ``mode_coverage`` model's label histogram."""
        return (cls.score_settings + ("fid_samples", "pr_neighbours")
                + (("agreement_samples",) if cls.conditional or cls.mode_coverage else ()))

    def checked_labels(self, y: Tensor | None, batch: int) -> Tensor:
        """The class labels of a conditional model's ``batch`` images as a (B,) long tensor on its
        device; a clear ValueError when they are missing, misshapen or out of range."""
        if y is None:
            raise ValueError(f"{type(self).__name__} needs the class labels y, shape (B,)")
        y = torch.as_tensor(y, device=self.device).long()
        if y.shape != (batch,):
            raise ValueError(f"y must have shape ({batch},), got {tuple(y.shape)}")
        if y.numel() and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes})")
        return y

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """log p(x) in nats per image, shape (B,) (a lower bound where ``nll_kind == 'bound'``)."""
        raise NotImplementedError

    def validation_nll(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return -self.log_prob(x, y)

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The mean NLL in nats per image (the bound's, for models scored by a bound)."""
        return -self.log_prob(x, y).mean()

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` images, shape (n, C, H, W), as float levels."""
        raise NotImplementedError

    @torch.no_grad()
    def quality_samples(self, n: int, *, y: Tensor | None = None,
                        generator: torch.Generator | None = None, test_images: Tensor | None = None,
                        offset: int = 0) -> Tensor:
        """The ``n`` images sample quality is judged on, the ``offset``-th of them first: draws of
        ``sample`` by default; a model that translates images (pix2pix) overrides it to translate
        the test images ``offset .. offset + n - 1``."""
        return self.sample(n, y=y, generator=generator)

    # -- the evaluate and sample stages ----------------------------------------------------------

    def test_nll(self, test: Split, settings: ScoreSettings, *, variant: str,
                 generator: torch.Generator) -> tuple[Tensor, dict[str, Any]]:
        """-log p(x) of every test image, (N,) nats, and any metrics computed on the way."""
        return per_image_nll(self, test.images(variant), test.labels,
                             batch_size=settings.batch_size, device=self.device), {}

    def score(self, test: Split, settings: ScoreSettings, *, variant: str,
              generator: torch.Generator, judge: Trainable | None = None) -> dict[str, Any]:
        """The test NLL (``nll_kind``) in nats and bits/dim, and for a conditional model the
        judge's label agreement on its samples."""
        metrics: dict[str, Any] = {"nll_kind": self.nll_kind}
        if self.nll_kind != "none":
            nll, extra = self.test_nll(test, settings, variant=variant, generator=generator)
            metrics.update(nll_summary(nll, self.num_pixels), **extra)
        if self.conditional and judge is not None:
            metrics["label_agreement"] = label_agreement(
                self, judge, samples=settings.agreement_samples, generator=generator)
            metrics["agreement_samples"] = settings.agreement_samples
        if self.mode_coverage and judge is not None:
            metrics.update(label_histogram(self, judge, test.labels,
                                           samples=settings.agreement_samples, generator=generator))
        return metrics

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, completions: int = 0,
                completion_samples: int = 4) -> Figures:
        """The sample grid (one row per digit for a conditional model)."""
        return sample_grid(self, n=n, nrow=nrow, generator=generator)


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

    def subpixel_index(self, r: int, c: int, colour: int) -> int:
        """The flat index (into C*H*W) of the sub-pixel ``colour`` of pixel (r, c)."""
        _, H, W = self.image_shape
        return (colour * H + r) * W + c

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return pixel_log_prob(self(x, y), x, self.levels)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               given: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
        """Draw ``n`` images pixel by pixel; pixels where ``given_mask`` is set are copied from
        ``given`` instead (image completion)."""
        x, flat_mask = self.canvas(n, given, given_mask)
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

    def canvas(self, n: int, given: Tensor | None, given_mask: Tensor | None
               ) -> tuple[Tensor, list[bool] | None]:
        """Where a sampler draws: ``n`` blank images (n, C, H, W), or a copy of ``given``, and
        the flat ``given_mask`` (True: keep the given pixel), None when every pixel is drawn."""
        x = torch.zeros((n, *self.image_shape), device=self.device, dtype=self.dtype)
        if given is not None:
            x = given.to(self.device, self.dtype).clone()
        return x, None if given_mask is None else given_mask.flatten().tolist()

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, completions: int = 0,
                completion_samples: int = 4) -> Figures:
        """The sample grid, and completions of the bottom half of ``completions`` test images."""
        figures = sample_grid(self, n=n, nrow=nrow, generator=generator)
        if completions and test is not None:
            rows = completion_rows(self, test, variant=variant, images=completions,
                                   per_image=completion_samples, generator=generator)
            figures.pngs["completions.png"] = grid_png(rows, nrow=2 + completion_samples)
        return figures



# -- data problems: the lines ``data_problem`` answers with --------------------------------------

def first_problem(*problems: str | None) -> str | None:
    """The first of ``problems`` that is not None: the one line ``data_problem`` gives."""
    return next((problem for problem in problems if problem is not None), None)


def binary_only(name: str, levels: int) -> str | None:
    """The problem of a model of binary pixels with ``levels`` != 2."""
    if levels == 2:
        return None
    return f"{name} models binary pixels only (data.variant 'binarized'), not {levels} levels"


def one_channel(name: str, image_shape: tuple[int, int, int], what: str = "models") -> str | None:
    """The problem of a model of one image channel with C != 1."""
    if image_shape[0] == 1:
        return None
    return f"{name} {what} one image channel, got {image_shape[0]}"


def sides_divisible(name: str, image_shape: tuple[int, int, int], by: int, why: str) -> str | None:
    """The problem of a model whose ``why`` (two stride-2 layers: by = 4) needs H and W
    divisible by ``by``."""
    _, H, W = image_shape
    if H % by == 0 and W % by == 0:
        return None
    return f"{name} needs height and width divisible by {by}, got {H}x{W} ({why})"


def raster_colour_order(image_shape: tuple[int, int, int]) -> Tensor:
    """Flat indices into C*H*W in the order of van den Oord et al. 2016a (section 2 / 3.4): the
    pixels in raster order, and within a pixel its sub-pixels R, G, B. For one channel that is
    the raster itself."""
    C, H, W = image_shape
    pixels = torch.arange(H * W)
    return (pixels[:, None] + torch.arange(C)[None, :] * (H * W)).flatten()  # (C*H*W,)


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


# -- the raster sequence models (LSTM, WaveNet, Transformer) -------------------------------------

def sequence_logits(logits: Tensor, levels: int, image_shape: tuple[int, ...]) -> Tensor:
    """Per-step logits (B, D, 1 | levels) of a model over the raster -> the layouts of
    ``pixel_log_prob``: (B, C, H, W) when ``levels == 2``, else (B, levels, C, H, W)."""
    B = len(logits)
    if levels == 2:
        return logits[..., 0].reshape(B, *image_shape)
    return logits.transpose(1, 2).reshape(B, levels, *image_shape)


def sample_raster(model: AutoregressiveModel, n: int, step: Callable[[int, Tensor], Tensor], *,
                  generator: torch.Generator | None = None, given: Tensor | None = None,
                  given_mask: Tensor | None = None) -> Tensor:
    """The incremental sampling loop of the raster sequence models, one step per pixel.

    ``step(t, previous)`` returns the logits of pixel t, (n, 1 | levels), from ``previous`` =
    ``model.previous.step`` of pixel t - 1, (n, F), and whatever state the model carries from its
    earlier calls (an LSTM state, WaveNet's queues, the Transformer's key/value caches). Draws the
    same pixels, in the same order, from the same generator as the generic loop
    (``AutoregressiveModel.sample``), including the ``given`` / ``given_mask`` completion.
    """
    x, flat_mask = model.canvas(n, given, given_mask)
    flat = x.view(n, -1)  # (n, D), a view: drawn pixels land in x
    previous = model.previous.step(None, x)  # (n, F)
    for t in range(model.num_pixels):
        logits = step(t, previous)  # (n, 1 | levels)
        if flat_mask is None or not flat_mask[t]:
            flat[:, t] = draw_levels(logits[:, 0] if model.levels == 2 else logits,
                                     model.levels, generator)
        previous = model.previous.step(flat[:, t], x)
    return x
