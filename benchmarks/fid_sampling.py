"""Seconds per sample of every model's own sampler, as the evaluate stage draws FID samples.

Builds each model of a params file (by registry name, random weights: sampling time does not
depend on training) at that file's architecture and times ``model.sample`` in batches of
``evaluate.batch_size`` (class-balanced labels for conditional models), as
``genzoo.quality.draw_samples`` does. The laptop ``evaluate.fid_samples`` was chosen from this:
the heaviest laptop samplers must draw their FID samples in about 30 s on one thread.

Usage:
    PYTHONPATH=src python benchmarks/fid_sampling.py [--params params.yaml] [--threads 1]
        [--models pixelcnn lstm] [--n 100]
Prints a markdown table and writes JSON to benchmarks/results/fid_sampling.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genzoo.config import load_params
from genzoo.models import MODELS, build_model
from genzoo.quality import draw_samples
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]


def seconds_per_sample(name: str, params: dict, n: int) -> float:
    """Wall seconds per image of ``n`` samples of model ``name`` at ``params``' architecture."""
    torch.manual_seed(0)
    model = build_model(name, params["models"][name]["arch"], image_shape=(1, 28, 28),
                        levels=2).eval()
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    draw_samples(model, n, batch_size=params["evaluate"]["batch_size"], generator=generator)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--models", nargs="*", default=None, help="default: every model of the file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=100, help="samples timed per model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(Path(args.params))
    names = args.models or list(params["models"])
    fid_samples = params["evaluate"]["fid_samples"]
    rows = []
    for name in names:
        per_sample = seconds_per_sample(name, params, args.n)
        rows.append({"model": name, "seconds_per_sample": per_sample,
                     "fid_samples_seconds": per_sample * fid_samples})
        print(f"| {name} | {per_sample * 1000:.1f} ms | {per_sample * fid_samples:.1f} s |", flush=True)
    out = REPO / "benchmarks" / "results" / "fid_sampling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": cpu_name(), "threads": args.threads, "n": args.n,
                               "params": Path(args.params).name, "fid_samples": fid_samples,
                               "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
