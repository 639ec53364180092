"""summarize: one model's runs on one dataset (one per training seed) as one record, mean ± std.

Each evaluate job scores one run and writes ``reports/metrics/<model>/<dataset>/seed<s>.json``. The
summary, ``reports/metrics/<model>/<dataset>.json``, is what the report and ``dvc metrics show``
read:

* every field of the runs, where a number that differs between the seeds becomes its mean over
  them (a number equal in every run, such as the parameter count, is kept as it is);
* ``std``: the sample standard deviation (ddof = 1) over the seeds of each number that differs;
  empty for a single run, where no spread can be measured;
* ``seeds`` and ``runs``: the seeds and every run's own metrics, in seed order.

The spread over seeds is the one that matters when two models are compared: it covers the
initialisation, the batch order and the dynamic binarization, where a run's own
``test_nll_nats_stderr`` covers only the choice of test images.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from .data import atomic_write_bytes
from .datasets import dataset_of


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of one model's runs on one dataset (metrics dicts, each with its ``seed``).

    Raises:
        ValueError: no runs, runs of different models or datasets, a run without a seed, or a
            seed twice.
    """
    if not runs:
        raise ValueError("no runs to summarize")
    models = sorted({run["model"] for run in runs})
    if len(models) > 1:
        raise ValueError(f"runs of different models cannot be summarized together: {models}")
    datasets = sorted({dataset_of(run) for run in runs})
    if len(datasets) > 1:
        raise ValueError(f"{models[0]}: runs on different datasets cannot be summarized together: "
                         f"{datasets}")
    if any(run.get("seed") is None for run in runs):
        raise ValueError(f"{models[0]}: a run's metrics do not say its seed; rerun its evaluate stage")
    runs = sorted(runs, key=lambda run: run["seed"])
    seeds = [run["seed"] for run in runs]
    twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if twice:
        raise ValueError(f"{models[0]}: seed {twice[0]} is scored twice")

    summary = {key: value for key, value in runs[0].items() if key != "seed"}
    spread = {}
    for key in summary:
        values = [run.get(key) for run in runs]
        if all(is_number(value) for value in values) and len(set(values)) > 1:
            summary[key] = math.fsum(values) / len(values)
            spread[key] = statistics.stdev(values)
    summary.update(seeds=seeds, std=spread, runs=runs)
    return summary


def summarize_files(paths: list[Path], out: Path) -> dict[str, Any]:
    """Summarize the metrics files ``paths`` (one per seed) into ``out``; return the summary."""
    summary = summarize([json.loads(Path(path).read_text()) for path in paths])
    atomic_write_bytes(Path(out), (json.dumps(summary, indent=2) + "\n").encode())
    return summary
