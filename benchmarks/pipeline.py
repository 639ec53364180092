"""The laptop pipeline from a clean clone, data to report: its wall-clock and every model's scores.

Clones the repository's committed HEAD into a scratch folder (what a user gets from
``git clone``), runs ``snakemake --cores N reports/all.html`` there with this interpreter's
environment, and prints one row per model: test NLL, bits/dim, FID, precision, recall, seconds
per sample, training seconds (every phase that trains), evaluate seconds and label agreement,
beside the figure the README's results table gave before the laptop defaults of issue 11 (the bar
each model must not fall behind), and the whole run's wall-clock beside the 25-minute goal.
``--project`` tabulates a run that already finished.

The MNIST files come from ``GENZOO_DATA_MIRROR`` if set (a folder or URL with the four .gz
files), else from the mirrors in params.yaml, as in a user's run.

Usage:
    python benchmarks/pipeline.py [--cores 2] [--keep DIR] [--configfile FILE]
    python benchmarks/pipeline.py --project DIR     # the table of a run that already finished
Writes JSON to benchmarks/results/pipeline-<cores>cores.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
GOAL_MINUTES = 25.0  # issue 11: the laptop pipeline, data to report, on 2 cores
# The README's results table before issue 11's laptop defaults (50 min, 2-thread jobs one at a
# time): test NLL in nats, the bound for the VAE and the VQ-VAE. No model may end up worse.
BEFORE = {"independent": 206.74, "nade": 96.51, "made": 89.35, "pixelcnn": 95.81,
          "gated_pixelcnn": 95.51, "cond_gated_pixelcnn": 92.98, "vae": 97.23, "vqvae": 156.32}
AGREEMENT_GOAL = 0.80  # class-conditional samples the classifier reads as the requested digit


def clone(into: Path) -> Path:
    project = into / "genzoo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(project)], check=True)
    return project


def run_pipeline(project: Path, cores: int, configfile: str | None) -> float:
    command = [str(Path(sys.executable).parent / "snakemake"), "--cores", str(cores),
               "reports/all.html"]
    if configfile:
        command += ["--configfile", str(Path(configfile).resolve())]
    started = time.perf_counter()
    subprocess.run(command, cwd=project, check=True)
    return time.perf_counter() - started


def timing(project: Path, model: str, stage: str, key: str, dataset: str = "mnist") -> float | None:
    """A wall-clock figure of a model's seed-0 run on ``dataset`` from reports/timings, if that
    stage ran."""
    path = project / "reports/timings" / model / dataset / "seed0" / f"{stage}.json"
    return json.loads(path.read_text()).get(key) if path.exists() else None


def model_rows(project: Path, dataset: str = "mnist") -> list[dict]:
    """One row per zoo model of the run in ``project`` on ``dataset``: its scores and where its
    time went."""
    rows = []
    for path in sorted((project / "reports/metrics").glob(f"*/{dataset}.json")):
        summary = json.loads(path.read_text())
        if summary["model"] == "classifier":
            continue  # the judge, not a model
        model = summary["model"]
        train = sum(value for key, value in summary.items()
                    if key.endswith("train_seconds") and isinstance(value, (int, float)))
        rows.append({"model": model, "nll_kind": summary.get("nll_kind"),
                     "test_nll_nats": summary.get("test_nll_nats"),
                     "test_nll_nats_stderr": summary.get("test_nll_nats_stderr"),
                     "test_bits_per_dim": summary.get("test_bits_per_dim"),
                     "fid": summary.get("fid"), "precision": summary.get("precision"),
                     "recall": summary.get("recall"), "fid_samples": summary.get("fid_samples"),
                     "seconds_per_sample": timing(project, model, "evaluate", "seconds_per_sample",
                                                  dataset),
                     "train_seconds": train,
                     "evaluate_seconds": timing(project, model, "evaluate", "evaluate_seconds",
                                                dataset),
                     "label_agreement": summary.get("label_agreement"),
                     "before_nats": BEFORE.get(model)})
    # Best NLL first, then the models without a likelihood by FID.
    return sorted(rows, key=lambda row: (row["test_nll_nats"] is None,
                                         row["test_nll_nats"] or row["fid"] or 0.0))


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def nll_cell(row: dict) -> str:
    if row["test_nll_nats"] is None:
        return "none (no likelihood)"
    bound = "≤ " if row["nll_kind"] == "bound" else ""
    stderr = row["test_nll_nats_stderr"]
    spread = f" ± {stderr:.2f}" if stderr is not None else ""
    agreement = (f"; label agreement {row['label_agreement']:.1%} (goal ≥ {AGREEMENT_GOAL:.0%})"
                 if row["label_agreement"] is not None else "")
    return f"{bound}{row['test_nll_nats']:.2f}{spread}{agreement}"


def print_table(rows: list[dict], wall: float | None, cores: int) -> None:
    print("| model | test NLL (nats) | bits/dim | FID | precision | recall | s/sample "
          "| training | evaluate | README before | no worse |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        before = row["before_nats"]
        # The README gave two decimals: compare at that precision.
        no_worse = "-" if before is None else str(round(row["test_nll_nats"], 2) <= before)
        print(f"| {row['model']} | {nll_cell(row)} | {_number(row['test_bits_per_dim'], '.4f')} "
              f"| {_number(row['fid'], '.1f')} | {_number(row['precision'], '.3f')} "
              f"| {_number(row['recall'], '.3f')} | {_number(row['seconds_per_sample'], '.4f')} "
              f"| {row['train_seconds']:.0f} s | {_number(row['evaluate_seconds'], '.0f')} s "
              f"| {before if before is not None else '-'} | {no_worse} |")
    samples = sorted({row["fid_samples"] for row in rows if row["fid_samples"]})
    busy = sum(row["train_seconds"] + (row["evaluate_seconds"] or 0.0) for row in rows)
    print(f"\nFID, precision and recall of {', '.join(map(str, samples))} samples per model; "
          f"training + evaluate: {busy / 60:.1f} job-minutes for {len(rows)} models "
          f"({busy / 60 / max(len(rows), 1):.1f} per model; one thread per job); {cpu_name()}")
    if wall is not None:
        print(f"whole pipeline, data to report: {wall / 60:.1f} min with --cores {cores} "
              f"(goal ≤ {GOAL_MINUTES:g} min for the seven models of issue 11; "
              f"{wall / 60 / max(len(rows), 1):.1f} min per model)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--configfile", default=None, help="passed on to snakemake")
    parser.add_argument("--project", type=Path, default=None,
                        help="tabulate the finished run in this project folder instead of "
                             "cloning and running (no wall-clock then)")
    args = parser.parse_args()
    if args.project is not None:
        print_table(model_rows(args.project), None, args.cores)
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        project = clone(root)
        wall = run_pipeline(project, args.cores, args.configfile)
        rows = model_rows(project)
    print_table(rows, wall, args.cores)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pipeline-{args.cores}cores.json"
    out.write_text(json.dumps({"wall_seconds": wall, "cores": args.cores, "cpu": cpu_name(),
                               "models": rows}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
