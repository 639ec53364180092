"""The evaluate stage: one run's test metrics, whatever the model.

The model scores itself (``score``: exact NLL, a bound, or accuracy for the judge, with the
``evaluate`` knobs it declared); this stage loads the run's complete model (its phases attached),
adds the sample quality of every generative model (FID, precision and recall of
``evaluate.fid_samples`` draws of its own sampler on the judge's features, ``genzoo.quality``) and
the facts of the run the report shows beside the scores (training steps, best epoch, parameters,
training times) and writes one JSON file. Every model is scored on the same stored test bits.

The seconds the sampler took go to a timings file of their own (``reports/timings/``), never into
the metrics, which must be byte-identical when a run is scored again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from . import checkpoint
from .data import Split, atomic_write_bytes
from .datasets import dataset_of
from .models import GenerativeModel, ScoreSettings
from .quality import sample_quality


def score_settings(settings: dict[str, Any]) -> ScoreSettings:
    """The ``ScoreSettings`` of a job's settings (the knobs it does not hold keep defaults the
    model never reads)."""
    names = {field.name for field in dataclasses.fields(ScoreSettings)}
    return ScoreSettings(**{key: value for key, value in settings.items() if key in names})


def run_facts(payload: dict[str, Any], history_path: Path, timings: list[Path]) -> dict[str, Any]:
    """Training facts of a run: from its checkpoint, its history and its timings files (the
    training's, then each phase's that trained, as ``<phase>_train_seconds``)."""
    history = json.loads(Path(history_path).read_text())
    facts: dict[str, Any] = {"best_epoch": payload["epoch"], "steps": payload["step"],
                             "best_val_nll": payload["val_nll"],
                             "epochs_trained": len(history["epochs"])}
    for index, path in enumerate(timings):
        spent = json.loads(Path(path).read_text())
        if index == 0:
            facts.update(train_seconds=spent["train_seconds"],
                         seconds_per_epoch=spent["seconds_per_epoch"], train_device=spent["device"])
        else:
            facts[f"{Path(path).stem}_train_seconds"] = spent["train_seconds"]
    return facts


def evaluate(run_dir: Path, test: Split, settings: dict[str, Any], *,
             judge: Path | None = None, timings: list[Path] = (), timings_out: Path | None = None,
             device: str | torch.device = "cpu") -> dict[str, Any]:
    """The metrics of the run in ``run_dir`` on ``test``: the model's ``score`` with its
    settings, the sample quality of a generative model, then the run's facts. ``judge`` is the
    classifier's checkpoint (every generative model needs it for FID); ``timings_out`` gets the
    wall-clock seconds of the scoring and of the FID samples."""
    start = time.perf_counter()
    model, payload = checkpoint.load_run(run_dir, device)
    generator = torch.Generator(device=device).manual_seed(settings["seed"])
    judge_model = checkpoint.load_model(judge, device)[0] if judge is not None else None
    knobs = score_settings(settings)
    scores = model.score(test, knobs, variant=payload["variant"], generator=generator,
                         judge=judge_model)
    data = dataset_of(settings)
    spent: dict[str, Any] = {"model": payload["model"], "dataset": data, "seed": payload.get("seed")}
    if isinstance(model, GenerativeModel) and judge_model is not None:
        # A generator of its own: the FID samples do not change when another knob does.
        quality, sample_seconds = sample_quality(
            model, judge_model, test.images(payload["variant"]), samples=knobs.fid_samples,
            k=knobs.pr_neighbours, batch_size=knobs.batch_size,
            generator=torch.Generator(device=device).manual_seed(settings["seed"]))
        scores.update(quality)
        spent.update(fid_samples=knobs.fid_samples, sample_seconds=sample_seconds,
                     seconds_per_sample=sample_seconds / knobs.fid_samples)
    metrics = {"model": payload["model"], "dataset": data, "seed": payload.get("seed"),
               "paper": type(model).paper, "variant": payload["variant"], **scores,
               "num_parameters": model.num_parameters(),
               **run_facts(payload, Path(run_dir) / "history.json", list(timings))}
    if timings_out is not None:
        spent["evaluate_seconds"] = time.perf_counter() - start
        write_metrics(Path(timings_out), spent)
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """One line for the terminal: the headline numbers of a run's metrics."""
    if "test_accuracy" in metrics:
        return f"test accuracy {metrics['test_accuracy']:.4f}"
    if "test_nll_nats" not in metrics:
        line = "no likelihood (samples only)"
        if "label_histogram_kl_nats" in metrics:
            line += (f"; its samples' digits are {metrics['label_histogram_kl_nats']:.3f} nats "
                     "(KL) from the test set's")
    else:
        bound = "<= " if metrics.get("nll_kind") == "bound" else ""
        line = (f"test NLL {bound}{metrics['test_nll_nats']:.3f} nats, "
                f"{metrics['test_bits_per_dim']:.4f} bits/dim")
    if "label_agreement" in metrics:
        line += f", label agreement {metrics['label_agreement']:.3f}"
    if "fid" in metrics:
        line += (f", FID {metrics['fid']:.2f} (precision {metrics['precision']:.3f}, recall "
                 f"{metrics['recall']:.3f}, {metrics['fid_samples']} samples)")
    return line


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    atomic_write_bytes(Path(path), (json.dumps(metrics, indent=2) + "\n").encode())
