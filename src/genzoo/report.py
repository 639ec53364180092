"""reports/all.html: every model's scores beside the published figures, curves and samples.

The page is one self-contained file: figures are embedded as PNG data URIs, so it can be mailed,
attached to a paper's supplement or opened from a cluster's scratch space as it is.

Every model is trained once per seed. The report reads each model's summary
(``reports/metrics/<model>.json``, see :mod:`genzoo.summary`): its tables show the mean over the
seeds with the standard deviation over them, and a per-run table lists each seed's own figures.
The training curves draw every seed; the sample figures are the lowest seed's, to keep the page
small.

Sample quality (FID, precision and recall on the judge's features, ``genzoo.quality``) comes with
the metrics; the seconds per sample come from each run's evaluate timings
(``reports/timings/<model>/seed<s>/evaluate.json``: wall-clock times are never in the metrics, which
must be byte-identical on a rerun), and one figure puts every model's sample grid side by side.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from . import __version__  # noqa: E402
from .data import atomic_write_bytes  # noqa: E402
from .models import JUDGE  # noqa: E402
from .references import references_for  # noqa: E402
from .summary import is_number  # noqa: E402

Seed = int | None  # None: a run from before the seeds, whose files do not say theirs
SEED_FOLDER = re.compile(r"seed(\d+)")


def _seed_order(seed: Seed) -> int:
    """Sort key of seeds: an unknown seed (an old single run) first."""
    return -1 if seed is None else seed


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def load_summary(path: Path) -> dict[str, Any]:
    """A model's summary; an old single-run metrics file (no ``runs``) becomes a summary of its one
    run, so reports of runs made before the seeds still render."""
    summary = json.loads(Path(path).read_text())
    if "runs" not in summary:
        run = dict(summary)
        seed = summary.pop("seed", None)
        summary.update(seeds=[] if seed is None else [seed], std={}, runs=[run])
    summary.setdefault("std", {})
    return summary


def histories_by_run(paths: list[Path]) -> dict[str, dict[Seed, dict[str, Any]]]:
    """Training histories by model, then seed (both read from the history itself)."""
    grouped: dict[str, dict[Seed, dict[str, Any]]] = {}
    for path in paths:
        history = json.loads(Path(path).read_text())
        grouped.setdefault(history["model"], {})[history.get("seed")] = history
    return grouped


def run_of_folder(folder: Path) -> tuple[str, Seed]:
    """(model, seed) of a figures folder: ``<model>/seed<s>``, or an old unseeded ``<model>``."""
    match = SEED_FOLDER.fullmatch(folder.name)
    return (folder.parent.name, int(match.group(1))) if match else (folder.name, None)


def figure_folders_by_run(paths: list[Path]) -> dict[str, dict[Seed, Path]]:
    """Figure folders by model, then seed."""
    grouped: dict[str, dict[Seed, Path]] = {}
    for folder in map(Path, paths):
        model, seed = run_of_folder(folder)
        grouped.setdefault(model, {})[seed] = folder
    return grouped


def seconds_per_sample_by_model(paths: list[Path]) -> dict[str, float]:
    """Mean seconds per FID sample of each model over its runs' evaluate timings (files without
    samples, the judge's, are skipped)."""
    spent: dict[str, list[float]] = {}
    for path in paths:
        timing = json.loads(Path(path).read_text())
        if timing.get("seconds_per_sample") is not None:
            spent.setdefault(timing["model"], []).append(timing["seconds_per_sample"])
    return {model: sum(values) / len(values) for model, values in spent.items()}


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
    "samples.png": "Samples (for class-conditional models, row d shows the digit d).",
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
              folders: dict[Seed, Path]) -> dict[str, Any]:
    """A model's summary with what the page shows beside it: references, curves, figures."""
    row = dict(summary)
    row["seed_count"] = len(row["runs"])
    row["train_devices"] = ", ".join(sorted({str(run["train_device"]) for run in row["runs"]
                                             if run.get("train_device") is not None}))
    row["references"] = references_for(row["model"])
    add_curves(row, histories)
    add_figures(row, folders)
    return row


def _rank(row: dict[str, Any]) -> tuple[bool, float, str]:
    """Best mean test NLL first; models without an image NLL last, by name."""
    nats = row.get("test_nll_nats")
    return (nats is None, nats if nats is not None else 0.0, row["model"])


def model_rows(metrics: list[Path], histories: list[Path], figures: list[Path]
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One row per zoo model (best mean test NLL first; models without an image NLL last), and
    the classifier's summary if present."""
    history_of = histories_by_run(histories)
    folders_of = figure_folders_by_run(figures)
    rows, classifier = [], None
    for path in metrics:
        summary = load_summary(path)
        name = summary["model"]
        if name == JUDGE:
            classifier = summary
            continue
        rows.append(model_row(summary, history_of.get(name, {}), folders_of.get(name, {})))
    return sorted(rows, key=_rank), classifier


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


def render(rows: list[dict[str, Any]], classifier: dict[str, Any] | None, *, title: str,
           all_samples: str | None = None) -> str:
    environment = Environment(loader=PackageLoader("genzoo", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    environment.filters.update(number=number, count=count)
    template = environment.get_template("report.html.j2")
    def used(key: str) -> list[Any]:  # the values of a sample-quality knob over the rows
        return sorted({row[key] for row in rows if is_number(row.get(key))})

    return template.render(title=title, rows=rows, classifier=classifier, version=__version__,
                           generated=datetime.date.today().isoformat(), all_samples=all_samples,
                           fid_samples=used("fid_samples"), pr_neighbours=used("pr_neighbours"))


def write_report(out: Path, *, metrics: list[Path], histories: list[Path], figures: list[Path],
                 timings: list[Path] = (), title: str = "genzoo") -> None:
    """Write the report of the model summaries ``metrics`` (one per model, the classifier's
    included), every run's ``histories``, every run's ``figures`` folder and every run's
    evaluate ``timings`` (seconds per FID sample) to ``out``."""
    rows, classifier = model_rows(metrics, histories, figures)
    spent = seconds_per_sample_by_model(list(timings))
    for row in rows:
        row["seconds_per_sample"] = spent.get(row["model"])
    html = render(rows, classifier, title=title, all_samples=samples_side_by_side(rows))
    atomic_write_bytes(Path(out), html.encode())
