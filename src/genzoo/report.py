"""reports/all.html: every model's scores beside the published figures, curves and samples.

The page is one self-contained file: figures are embedded as PNG data URIs, so it can be mailed,
attached to a paper's supplement or opened from a cluster's scratch space as it is.

Every model is trained once per seed. The report reads each model's summary
(``reports/metrics/<model>.json``, see :mod:`genzoo.summary`): its tables show the mean over the
seeds with the standard deviation over them, and a per-run table lists each seed's own figures.
The training curves draw every seed; the sample figures are the lowest seed's, to keep the page
small.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
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


def curves_figure(histories: list[dict[str, Any]]) -> plt.Figure:
    """Validation NLL (solid) and training loss (dashed) per epoch of one model's runs, one colour
    per seed, so the spread between seeds shows beside the gap between train and validation."""
    figure, axis = plt.subplots(figsize=(5.4, 3.4), dpi=110)
    histories = sorted(histories, key=lambda history: _seed_order(history.get("seed")))
    seed_handles = []
    for index, history in enumerate(histories):
        colour = f"C{index % 10}"
        epochs = [record["epoch"] for record in history["epochs"]]
        axis.plot(epochs, [r["val_nll"] for r in history["epochs"]], "-", marker="o", markersize=3,
                  color=colour)
        axis.plot(epochs, [r["train_loss"] for r in history["epochs"]], "--", marker="s",
                  markersize=3, color=colour, alpha=0.8)
        seed = history.get("seed")
        seed_handles.append(Line2D([], [], color=colour,
                                   label="run" if seed is None else f"seed {seed}"))
    # One legend entry per seed plus two for the line styles, not two entries per seed.
    style_handles = [Line2D([], [], color="0.3", linestyle="-", label="validation NLL"),
                     Line2D([], [], color="0.3", linestyle="--", label="train loss")]
    axis.set_xlabel("epoch")
    axis.set_ylabel("nats / image")
    axis.set_title(histories[0]["model"] if histories else "")
    axis.grid(alpha=0.3)
    axis.legend(handles=seed_handles + style_handles, fontsize="small")
    figure.tight_layout()
    return figure


def curves_png(histories: list[dict[str, Any]]) -> bytes:
    """:func:`curves_figure` as PNG bytes."""
    figure = curves_figure(histories)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


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
    if not folders:
        return
    seed = shown_figure_seed(row["seeds"], folders)
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


def render(rows: list[dict[str, Any]], classifier: dict[str, Any] | None, *, title: str) -> str:
    environment = Environment(loader=PackageLoader("genzoo", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    environment.filters.update(number=number, count=count)
    template = environment.get_template("report.html.j2")
    return template.render(title=title, rows=rows, classifier=classifier, version=__version__,
                           generated=datetime.date.today().isoformat())


def write_report(out: Path, *, metrics: list[Path], histories: list[Path], figures: list[Path],
                 title: str = "genzoo") -> None:
    """Write the report of the model summaries ``metrics`` (one per model, the classifier's
    included), every run's ``histories`` and every run's ``figures`` folder to ``out``."""
    rows, classifier = model_rows(metrics, histories, figures)
    html = render(rows, classifier, title=title)
    atomic_write_bytes(Path(out), html.encode())
