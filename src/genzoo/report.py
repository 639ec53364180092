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


def _by_model(paths: list[Path], key) -> dict[str, Path]:
    return {key(path): path for path in paths}


def model_rows(metrics: list[Path], histories: list[Path], samples: list[Path]) -> list[dict[str, Any]]:
    history_of = {json.loads(p.read_text())["model"]: p for p in histories}
    sample_of = _by_model(samples, lambda p: p.parent.name)
    rows = []
    for path in metrics:
        row = json.loads(path.read_text())
        name = row["model"]
        history = json.loads(history_of[name].read_text()) if name in history_of else None
        row["references"] = references_for(name)
        row["curves"] = _data_uri(curves_png(history)) if history and history["epochs"] else None
        row["samples"] = _data_uri(sample_of[name].read_bytes()) if name in sample_of else None
        rows.append(row)
    return sorted(rows, key=lambda r: r["test_nll_nats"])


def render(rows: list[dict[str, Any]], *, title: str) -> str:
    environment = Environment(loader=PackageLoader("genzoo", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    template = environment.get_template("report.html.j2")
    return template.render(title=title, rows=rows, version=__version__,
                           generated=datetime.date.today().isoformat())


def write_report(out: Path, *, metrics: list[Path], histories: list[Path], samples: list[Path],
                 title: str = "genzoo") -> None:
    html = render(model_rows(metrics, histories, samples), title=title)
    atomic_write_bytes(Path(out), html.encode())
