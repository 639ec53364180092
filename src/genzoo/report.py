"""reports/all.html: every model's scores beside the published figures, curves and samples.

The page is one self-contained file: figures are embedded as PNG data URIs, so it can be mailed,
attached to a paper's supplement or opened from a cluster's scratch space as it is.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: E402

from . import __version__  # noqa: E402
from .data import atomic_write_bytes  # noqa: E402
from .references import references_for  # noqa: E402


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def curves_png(history: dict[str, Any]) -> bytes:
    """Training loss and validation NLL per epoch."""
    epochs = [record["epoch"] for record in history["epochs"]]
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=110)
    axis.plot(epochs, [r["train_loss"] for r in history["epochs"]], "o-", label="train loss")
    axis.plot(epochs, [r["val_nll"] for r in history["epochs"]], "s-", label="validation NLL")
    axis.set_xlabel("epoch")
    axis.set_ylabel("nats / image")
    axis.set_title(history["model"])
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
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
}


def figures_of(folder: Path) -> list[dict[str, str]]:
    """The PNGs of one model's figure folder, samples first, as data URIs with captions."""
    order = list(FIGURE_CAPTIONS)
    pngs = sorted(folder.glob("*.png"),
                  key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    return [{"uri": _data_uri(p.read_bytes()), "caption": FIGURE_CAPTIONS.get(p.name, p.stem)}
            for p in pngs]


def model_rows(metrics: list[Path], histories: list[Path], figures: list[Path]
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One row per zoo model (best test NLL first; models without an image NLL last), and the
    classifier's metrics if present."""
    history_of = {json.loads(p.read_text())["model"]: p for p in histories}
    folder_of = {p.name: p for p in figures}
    rows, classifier = [], None
    for path in metrics:
        row = json.loads(path.read_text())
        name = row["model"]
        if name == "classifier":
            classifier = row
            continue
        history = json.loads(history_of[name].read_text()) if name in history_of else None
        row["references"] = references_for(name)
        row["curves"] = _data_uri(curves_png(history)) if history and history["epochs"] else None
        row["figures"] = figures_of(folder_of[name]) if name in folder_of else []
        rows.append(row)
    def rank(row):
        nats = row.get("test_nll_nats")
        return (nats is None, nats if nats is not None else 0.0, row["model"])

    return sorted(rows, key=rank), classifier


def render(rows: list[dict[str, Any]], classifier: dict[str, Any] | None, *, title: str) -> str:
    environment = Environment(loader=PackageLoader("genzoo", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    template = environment.get_template("report.html.j2")
    return template.render(title=title, rows=rows, classifier=classifier, version=__version__,
                           generated=datetime.date.today().isoformat())


def write_report(out: Path, *, metrics: list[Path], histories: list[Path], figures: list[Path],
                 title: str = "genzoo") -> None:
    rows, classifier = model_rows(metrics, histories, figures)
    html = render(rows, classifier, title=title)
    atomic_write_bytes(Path(out), html.encode())
