"""reports/all.html: every model's scores beside the published figures, curves and samples, one
section per dataset.

The page is one self-contained file: figures are embedded as PNG data URIs, so it can be mailed,
attached to a paper's supplement or opened from a cluster's scratch space as it is.

A run may train the zoo on several datasets (``datasets`` in ``settings/report.json``, in the
params' order, see :class:`Dataset`); each gets its own section, with its own summary table
ranked by test NLL, its judge (the classifier whose features score the samples), its sample grids
side by side and one part per model. Papers on binarized images report nats per image, papers on
256-level images bits per dimension: a section's tables lead with its dataset's unit and show the
other beside it, and each published figure is printed in the unit it was published in
(:mod:`genzoo.references`).

Every model is trained once per seed on each dataset. The report reads (see
:mod:`genzoo.summary`)::

    reports/metrics/<model>/<dataset>.json                  a model's summary over its seeds
    reports/metrics/classifier/<dataset>.json               the judge's
    data/models/<model>/<dataset>/seed<s>/history.json      every run's training curves
    reports/figures/<model>/<dataset>/seed<s>/              every run's figures (samples.png first)
    reports/timings/<model>/<dataset>/seed<s>/evaluate.json every run's seconds per FID sample

Summaries, histories and timings name their model, dataset and seed in their JSON (a history or
timing that does not is placed by its path); figure folders are placed by their path. Files from
before the datasets (no ``dataset`` key, ``<model>/seed<s>`` folders) count as ``mnist``, and
files from before the seeds (no seed) as one run, so reports of older runs still render.

A model's tables show the mean over the seeds with the standard deviation over them, and a
per-run table lists each seed's own figures. The training curves draw every seed; the sample
figures are the lowest seed's, to keep the page small. Wall-clock times are never in the metrics,
which must be byte-identical on a rerun: the seconds per sample come from the timings.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from . import __version__  # noqa: E402
from .data import atomic_write_bytes  # noqa: E402
from .datasets import DEFAULT_DATASET  # noqa: E402
from .models import JUDGE  # noqa: E402
from .references import BITS_PER_DIM, NATS, has_published_figures, references_for  # noqa: E402
from .summary import is_number  # noqa: E402

Seed = int | None  # None: a run from before the seeds, whose files do not say theirs
SEED_FOLDER = re.compile(r"seed(\d+)")
VARIANTS = ("binarized", "grayscale", "rgb")
Key = tuple[str, str]  # (dataset, model)


class Run(NamedTuple):
    """The training run a file belongs to."""

    model: str | None
    dataset: str
    seed: Seed


@dataclass(frozen=True)
class Unit:
    """A unit of test NLL: where a summary holds it and how the page prints it."""

    name: str  # NATS (per image) or BITS_PER_DIM
    key: str  # the metrics' field
    table: str  # its format in the summary tables
    detail: str  # its format in the model sections


UNITS = {unit.name: unit for unit in (Unit(NATS, "test_nll_nats", "%.2f", "%.3f"),
                                      Unit(BITS_PER_DIM, "test_bits_per_dim", "%.4f", "%.4f"))}


def unit_of(variant: str) -> str:
    """The unit papers give NLLs on ``variant`` images in: nats per image for binarized images,
    bits/dim for 256 levels."""
    return NATS if variant == "binarized" else BITS_PER_DIM


@dataclass(frozen=True)
class Dataset:
    """One dataset the zoo ran on, as ``settings/report.json`` lists it under ``datasets``."""

    name: str  # as in the files' paths and their ``dataset`` key
    title: str  # the section's heading
    variant: str = "binarized"  # binarized | grayscale | rgb
    unit: str = NATS  # the unit its tables lead with
    models: tuple[str, ...] = ()  # the zoo models that ran on it
    refused: dict[str, str] = field(default_factory=dict)  # the others: model -> why not

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"dataset {self.name}: variant {self.variant!r} is none of {VARIANTS}")
        if self.unit not in UNITS:
            raise ValueError(f"dataset {self.name}: unit {self.unit!r} is none of {tuple(UNITS)}")

    @classmethod
    def from_settings(cls, entry: dict[str, Any]) -> Dataset:
        """A ``datasets`` entry of the report settings (name, title, variant, unit, models,
        refused; only the name is required)."""
        variant = entry.get("variant", "binarized")
        return cls(name=entry["name"], title=entry.get("title", entry["name"]), variant=variant,
                   unit=entry.get("unit", unit_of(variant)), models=tuple(entry.get("models", ())),
                   refused=dict(entry.get("refused", {})))

    @classmethod
    def unlisted(cls, name: str, variant: str = "binarized") -> Dataset:
        """A dataset the settings do not list (every dataset of a run from before the datasets),
        titled by its name and variant and led by its variant's unit."""
        return cls(name=name, title=f"{name} ({variant})", variant=variant, unit=unit_of(variant))


def _seed_order(seed: Seed) -> int:
    """Sort key of seeds: an unknown seed (an old single run) first."""
    return -1 if seed is None else seed


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def load_summary(path: Path) -> dict[str, Any]:
    """A model's summary on one dataset; an old single-run metrics file (no ``runs``) becomes a
    summary of its one run, and one without a ``dataset`` is on mnist, so reports of runs made
    before the seeds or the datasets still render."""
    summary = json.loads(Path(path).read_text())
    if "runs" not in summary:
        run = dict(summary)
        seed = summary.pop("seed", None)
        summary.update(seeds=[] if seed is None else [seed], std={}, runs=[run])
    summary.setdefault("std", {})
    summary.setdefault("dataset", DEFAULT_DATASET)
    return summary


def run_of_path(folder: Path, anchor: str) -> Run | None:
    """The run of a folder below the last path component named ``anchor``:
    ``<model>/<dataset>/seed<s>``, or, on mnist, ``<model>/seed<s>`` (from before the datasets)
    and ``<model>`` (from before the seeds). None where no component is ``anchor``, or where more
    follow it."""
    parts = Path(folder).parts
    if anchor not in parts:
        return None
    below = list(parts[len(parts) - parts[::-1].index(anchor):])
    match = SEED_FOLDER.fullmatch(below[-1]) if below else None
    if match:
        below.pop()
    if not 1 <= len(below) <= 2:
        return None
    dataset = below[1] if len(below) == 2 else DEFAULT_DATASET
    return Run(below[0], dataset, int(match.group(1)) if match else None)


def run_of_folder(folder: Path) -> Run:
    """The run of a figures folder, ``reports/figures/<model>/<dataset>/seed<s>`` (or an older
    layout, see :func:`run_of_path`).

    Raises:
        ValueError: the path is not below a ``figures`` folder in one of these layouts.
    """
    run = run_of_path(folder, "figures")
    if run is None:
        raise ValueError(f"{folder}: not a run's figures folder "
                         f"(reports/figures/<model>/<dataset>/seed<s>)")
    return run


def run_of_record(record: dict[str, Any], path: Path, anchor: str) -> Run:
    """The run of a history or timings file: what its JSON says, the rest from its folder's path
    below ``anchor``; mnist where neither names a dataset."""
    where = run_of_path(Path(path).parent, anchor) or Run(None, DEFAULT_DATASET, None)
    return Run(record.get("model", where.model), record.get("dataset", where.dataset),
               record.get("seed", where.seed))


def by_run(items: Iterable[tuple[Run, Any]]) -> dict[Key, dict[Seed, Any]]:
    """``items`` grouped by (dataset, model), then seed."""
    grouped: dict[Key, dict[Seed, Any]] = {}
    for run, item in items:
        grouped.setdefault((run.dataset, run.model), {})[run.seed] = item
    return grouped


def _records(paths: Iterable[Path]) -> Iterable[tuple[Path, dict[str, Any]]]:
    return ((Path(path), json.loads(Path(path).read_text())) for path in paths)


def histories_by_run(paths: Iterable[Path]) -> dict[Key, dict[Seed, dict[str, Any]]]:
    """Training histories (``data/models/<model>/<dataset>/seed<s>/history.json``) by (dataset,
    model), then seed."""
    return by_run((run_of_record(history, path, "models"), history)
                  for path, history in _records(paths))


def figure_folders_by_run(paths: Iterable[Path]) -> dict[Key, dict[Seed, Path]]:
    """Figure folders by (dataset, model), then seed."""
    return by_run((run_of_folder(Path(folder)), Path(folder)) for folder in paths)


def seconds_per_sample_by_model(paths: Iterable[Path]) -> dict[Key, float]:
    """Mean seconds per FID sample of each (dataset, model) over its runs' evaluate timings
    (``reports/timings/<model>/<dataset>/seed<s>/evaluate.json``; files without samples, the
    judge's, are skipped)."""
    spent = by_run((run_of_record(timing, path, "timings"), timing["seconds_per_sample"])
                   for path, timing in _records(paths)
                   if timing.get("seconds_per_sample") is not None)
    return {key: sum(seeds.values()) / len(seeds) for key, seeds in spent.items()}


def grids_figure(grids: list[tuple[str, Path]], *, per_row: int = 5) -> plt.Figure:
    """Every model's sample grid (a PNG each) side by side, titled by the model, ``per_row`` to a
    row, in the order given (the summary table's)."""
    rows = max(1, math.ceil(len(grids) / per_row))
    columns = min(per_row, max(1, len(grids)))
    figure, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.5 * rows), dpi=110,
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (model, png) in zip(axes.flat, grids):
        axis.imshow(plt.imread(png), cmap="gray", interpolation="nearest")
        axis.set_title(model, fontsize="small")
    figure.tight_layout()
    return figure


def figure_png(figure: plt.Figure) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


# The series of the NLL models' histories, first and in this style; any other series a history
# holds (a GAN's two losses) follows in the order of its records, with its key as the label.
SERIES_LABELS = {"val_nll": "validation NLL", "train_loss": "train loss"}
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "v", "D")
NOT_SERIES = ("epoch", "step")


def curve_series(histories: list[dict[str, Any]]) -> list[str]:
    """The per-epoch series the histories hold: the known ones first, then the others as they
    come."""
    keys: list[str] = []
    for history in histories:
        for record in history["epochs"]:
            keys += [key for key in record if key not in NOT_SERIES and key not in keys]
    known = [key for key in SERIES_LABELS if key in keys]
    return known + [key for key in keys if key not in known]


def series_label(key: str) -> str:
    return SERIES_LABELS.get(key, key.replace("_", " "))


def curves_figure(histories: list[dict[str, Any]]) -> plt.Figure:
    """Every per-epoch series of one model's runs (validation NLL solid and training loss dashed;
    a GAN's two losses), one line style per series and one colour per seed, so the spread between
    seeds shows beside the gap between the series."""
    figure, axis = plt.subplots(figsize=(5.4, 3.4), dpi=110)
    histories = sorted(histories, key=lambda history: _seed_order(history.get("seed")))
    series = curve_series(histories)
    seed_handles = []
    for index, history in enumerate(histories):
        colour = f"C{index % 10}"
        for number, key in enumerate(series):
            points = [(record["epoch"], record[key]) for record in history["epochs"]
                      if record.get(key) is not None]
            if points:
                axis.plot(*zip(*points), LINE_STYLES[number % len(LINE_STYLES)],
                          marker=MARKERS[number % len(MARKERS)], markersize=3, color=colour,
                          alpha=1.0 if number == 0 else 0.8)
        seed = history.get("seed")
        seed_handles.append(Line2D([], [], color=colour,
                                   label="run" if seed is None else f"seed {seed}"))
    # One legend entry per seed plus one per line style, not one entry per seed and series.
    style_handles = [Line2D([], [], color="0.3", linestyle=LINE_STYLES[number % len(LINE_STYLES)],
                            label=series_label(key)) for number, key in enumerate(series)]
    axis.set_xlabel("epoch")
    axis.set_ylabel("nats / image")
    axis.set_title(histories[0]["model"] if histories else "")
    axis.grid(alpha=0.3)
    axis.legend(handles=seed_handles + style_handles, fontsize="small")
    figure.tight_layout()
    return figure


def curves_png(histories: list[dict[str, Any]]) -> bytes:
    """:func:`curves_figure` as PNG bytes."""
    return figure_png(curves_figure(histories))


FIGURE_CAPTIONS = {
    "samples.png": "Samples (for class-conditional models, row d shows class d: the digit d on "
                   "MNIST).",
    "completions.png": "Completions: each row shows a test image, its top half, then samples of "
                       "the bottom half given the top.",
    "interpolation.png": "Latent interpolation: each row decodes (Bernoulli means) ten points on the "
                         "line between the posterior means of two test digits, shown at both ends.",
    "reconstructions.png": "Reconstructions: rows of test images, each followed by a row of their "
                           "decoded codes (Bernoulli means).",
    "chain.png": "Denoising chains: each row follows one sample from the noise x_T (left) through "
                 "the sampler's states to the bits it ends with (right).",
    "latent.png": "What the latent keeps: each row shows a test digit, then samples of the "
                  "PixelCNN decoder given that digit's posterior mean z.",
    "translations.png": "Translations: input, output (pixel probabilities), truth; the first two "
                        "rows super-resolution from 7x7, the last two completion of the bottom half.",
    "latent_map.png": "Latent map: the codes of test images coloured by their digit (a PCA "
                      "projection to 2-D when the code has more dimensions, as the title says), "
                      "with the means of the mixture the model samples from.",
    "denoising.png": "Denoising: rows of test images, the same images corrupted, and the decoder's "
                     "means from the corrupted ones.",
    "resolution.png": "Any resolution: the same latents rendered by the CPPN at 28x28 (top row, each "
                      "pixel drawn as a 4x4 block) and at 112x112 (bottom row), Bernoulli means.",
}


def figures_of(folder: Path, *, seed: Seed = None) -> list[dict[str, str]]:
    """The PNGs of one run's figure folder, samples first, as data URIs with captions; ``seed``,
    when given, heads each caption (for models whose other seeds' figures are not shown)."""
    order = list(FIGURE_CAPTIONS)
    pngs = sorted(folder.glob("*.png"),
                  key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    prefix = "" if seed is None else f"Seed {seed}. "
    return [{"uri": _data_uri(p.read_bytes()),
             "caption": prefix + FIGURE_CAPTIONS.get(p.name, p.stem)} for p in pngs]


def shown_figure_seed(seeds: list[int], folders: dict[Seed, Path]) -> Seed:
    """The seed whose figures the report embeds: the model's lowest seed with a figures folder
    (any folder's, lowest first, when the summary names no seeds)."""
    with_folder = [seed for seed in sorted(seeds) if seed in folders]
    return with_folder[0] if with_folder else min(folders, key=_seed_order)


def add_figures(row: dict[str, Any], folders: dict[Seed, Path]) -> None:
    """The lowest seed's figures (one seed's only: the page stays small), and where the other
    seeds' figures lie."""
    row["figures"], row["figure_seed"], row["other_figure_folders"] = [], None, []
    row["samples_png"] = None
    if not folders:
        return
    seed = shown_figure_seed(row["seeds"], folders)
    if (folders[seed] / "samples.png").is_file():
        row["samples_png"] = folders[seed] / "samples.png"
    several = row["seed_count"] > 1
    row["figures"] = figures_of(folders[seed], seed=seed if several else None)
    if several:
        row["figure_seed"] = seed
        shown = folders[seed]
        row["other_figure_folders"] = [f"{folders.get(other, shown.parent / f'seed{other}')}/"
                                       for other in row["seeds"] if other != seed]


def add_curves(row: dict[str, Any], histories: dict[Seed, dict[str, Any]]) -> None:
    """One curves image for the model, every seed's run in it."""
    runs = [history for history in histories.values() if history["epochs"]]
    row["curves"] = _data_uri(curves_png(runs)) if runs else None
    row["curve_runs"] = len(runs)
    row["curve_series"] = [series_label(key) for key in curve_series(runs)]


def model_row(summary: dict[str, Any], histories: dict[Seed, dict[str, Any]],
              folders: dict[Seed, Path], dataset: Dataset) -> dict[str, Any]:
    """A model's summary with what the page shows beside it: references, curves, figures."""
    row = dict(summary)
    row["seed_count"] = len(row["runs"])
    row["train_devices"] = ", ".join(sorted({str(run["train_device"]) for run in row["runs"]
                                             if run.get("train_device") is not None}))
    row["references"] = references_for(row["model"], dataset.name, dataset.variant)
    add_curves(row, histories)
    add_figures(row, folders)
    return row


def _rank(row: dict[str, Any]) -> tuple[bool, float, str]:
    """Best mean test NLL first; models without an image NLL last, by name."""
    nats = row.get("test_nll_nats")
    return (nats is None, nats if nats is not None else 0.0, row["model"])


@dataclass
class Inputs:
    """Every file the report reads, loaded; the runs' files by (dataset, model), then seed."""

    summaries: list[dict[str, Any]]  # the zoo's and the judges', one per model and dataset
    histories: dict[Key, dict[Seed, dict[str, Any]]]
    folders: dict[Key, dict[Seed, Path]]  # of figures
    seconds_per_sample: dict[Key, float]

    @classmethod
    def load(cls, metrics: Iterable[Path], histories: Iterable[Path], figures: Iterable[Path],
             timings: Iterable[Path] = ()) -> Inputs:
        return cls([load_summary(path) for path in metrics], histories_by_run(histories),
                   figure_folders_by_run(figures), seconds_per_sample_by_model(timings))

    def variant_of(self, name: str) -> str:
        """The variant the zoo's summaries on dataset ``name`` name (binarized where none does)."""
        return next((summary["variant"] for summary in self.summaries
                     if summary["dataset"] == name and summary["model"] != JUDGE
                     and summary.get("variant") in VARIANTS), "binarized")

    def datasets(self) -> list[Dataset]:
        """Every dataset with a summary, in the order of its first, as :meth:`Dataset.unlisted`
        describes it."""
        names = dict.fromkeys(summary["dataset"] for summary in self.summaries)
        return [Dataset.unlisted(name, self.variant_of(name)) for name in names]

    def rows(self, dataset: Dataset) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One row per zoo model run on ``dataset`` (best mean test NLL first; models without an
        image NLL last), and its judge's summary if present."""
        rows, classifier = [], None
        for summary in self.summaries:
            if summary["dataset"] != dataset.name:
                continue
            key = (dataset.name, summary["model"])
            if summary["model"] == JUDGE:
                classifier = summary
                continue
            row = model_row(summary, self.histories.get(key, {}), self.folders.get(key, {}),
                            dataset)
            row["seconds_per_sample"] = self.seconds_per_sample.get(key)
            rows.append(row)
        return sorted(rows, key=_rank), classifier


def model_rows(metrics: list[Path], histories: list[Path], figures: list[Path], *,
               dataset: Dataset | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """:meth:`Inputs.rows` of ``dataset`` (binarized mnist by default) from the files."""
    return Inputs.load(metrics, histories, figures).rows(
        dataset or Dataset.unlisted(DEFAULT_DATASET))


@dataclass(frozen=True)
class Score:
    """A test NLL, a summary's or one run's, in one unit."""

    value: float
    std: float | None  # over the seeds; None for a single run
    stderr: float | None  # over the test images: a run's own, the mean of its runs' in a summary


def scores(record: dict[str, Any]) -> dict[str, Score]:
    """The test NLL of a summary or a run in each unit it holds (by unit name); none for a model
    without an image likelihood."""
    nats = record.get("test_nll_nats")
    if record.get("nll_kind") == "none" or not is_number(nats):
        return {}
    spread = record.get("std", {}) if len(record.get("runs", ())) > 1 else None
    stderr = record.get("test_nll_nats_stderr")  # in nats: scaled to each unit
    found = {}
    for unit in UNITS.values():
        value = record.get(unit.key)
        if is_number(value):
            found[unit.name] = Score(value, None if spread is None else spread.get(unit.key, 0.0),
                                     stderr * value / nats if is_number(stderr) and nats else None)
    return found


@dataclass
class Section:
    """What the page shows of one dataset."""

    dataset: Dataset
    rows: list[dict[str, Any]]  # one per model, best mean test NLL first
    classifier: dict[str, Any] | None  # the judge's summary
    all_samples: str | None  # every model's sample grid side by side, a data URI

    @classmethod
    def of(cls, inputs: Inputs, dataset: Dataset) -> Section:
        rows, classifier = inputs.rows(dataset)
        return cls(dataset, rows, classifier, samples_side_by_side(rows))

    @property
    def units(self) -> list[Unit]:
        """Both units of test NLL, the dataset's first."""
        return sorted(UNITS.values(), key=lambda unit: unit.name != self.dataset.unit)

    @property
    def published(self) -> bool:
        """Whether any published figure on this dataset is cited."""
        return has_published_figures(self.dataset.name, self.dataset.variant)

    @property
    def dimensions(self) -> int | None:
        """D, the values per image (bits/dim = nats / (D ln 2)), as the scores imply it; None
        where no model has both."""
        for row in self.rows:
            both = scores(row)
            if len(both) == len(UNITS) and both[BITS_PER_DIM].value:
                return round(both[NATS].value / (both[BITS_PER_DIM].value * math.log(2)))
        return None

    @property
    def missing(self) -> list[str]:
        """Models the settings say ran on this dataset whose summary the report was not given."""
        shown = {row["model"] for row in self.rows}
        return [model for model in self.dataset.models if model not in shown]

    def used(self, key: str) -> list[Any]:
        """The values of a sample-quality knob (``fid_samples``, ``pr_neighbours``) over the
        rows."""
        return sorted({row[key] for row in self.rows if is_number(row.get(key))})


def sections_of(inputs: Inputs, datasets: Iterable[Dataset] = ()) -> list[Section]:
    """One section per dataset of ``datasets``, in their order, then one per dataset that has
    summaries but is not among them (all of them for a run from before the datasets)."""
    listed = list(datasets)
    names = {dataset.name for dataset in listed}
    found = [dataset for dataset in inputs.datasets() if dataset.name not in names]
    return [Section.of(inputs, dataset) for dataset in listed + found]


def number(value: Any, spec: str = "%.2f") -> str:
    """``value`` formatted by ``spec``, or a dash where a run lacks it."""
    return spec % value if is_number(value) else "—"


def count(value: Any) -> str:
    """A count (parameters, epochs, steps) with thousands separators; a mean over seeds that is
    not a whole number keeps one decimal."""
    if not is_number(value):
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def samples_side_by_side(rows: list[dict[str, Any]]) -> str | None:
    """Every model's sample grid in one figure (a data URI), in the summary table's order."""
    grids = [(row["model"], row["samples_png"]) for row in rows if row.get("samples_png")]
    return _data_uri(figure_png(grids_figure(grids))) if grids else None


def render(sections: list[Section], *, title: str) -> str:
    """The page: one part per section (dataset), with a table of contents when there are
    several."""
    environment = Environment(loader=PackageLoader("genzoo", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    environment.filters.update(number=number, count=count, scores=scores)
    template = environment.get_template("report.html.j2")
    return template.render(title=title, sections=sections, units=UNITS, version=__version__,
                           generated=datetime.date.today().isoformat())


def write_report(out: Path, *, metrics: list[Path], histories: list[Path], figures: list[Path],
                 timings: Iterable[Path] = (), title: str = "genzoo",
                 datasets: Iterable[Dataset] = ()) -> None:
    """Write the report of the model summaries ``metrics`` (one per model and dataset, the
    judges' included), every run's ``histories``, every run's ``figures`` folder and every run's
    evaluate ``timings`` (seconds per FID sample) to ``out``: one section per dataset of
    ``datasets``, in their order, then one per other dataset found in the summaries."""
    inputs = Inputs.load(metrics, histories, figures, timings)
    html = render(sections_of(inputs, datasets), title=title)
    atomic_write_bytes(Path(out), html.encode())
