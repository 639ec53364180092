"""Sampling and training throughput of the raster sequence models: fast sampler vs generic loop.

Builds each sequence model (by registry name: ``lstm``, ``wavenet``, ``transformer``,
``cond_transformer``, and later ``pixelsnail``) with random weights (timing needs no training) on 28x28 binary images, at the
architecture of params.yaml ("laptop") and of params-paper.yaml ("paper"), and measures:

* fast: ``model.sample(n)`` (the model's incremental sampler), wall seconds for n images;
* naive: ``AutoregressiveModel.sample`` (one full forward pass per pixel) on the same model and
  seed. When the whole loop would exceed ``--naive-budget`` seconds it runs only the first k
  pixels and extrapolates to 784 (``naive_pixels`` says k); either way the naive pixels are checked
  against the fast sampler's first k (``identical``);
* train: images/s of forward + backward of the NLL at batch 64 (a few steps, at most
  ``--train-budget`` seconds after one warm-up step).

A class-conditional model gets the labels 0, 1, ..., 9, 0, ... for its images, in all three.

Usage:
    PYTHONPATH=src python benchmarks/sequence_sampling.py [--models lstm wavenet] [--threads 1]
        [--n 64] [--scales laptop paper] [--naive-budget 120]
Prints a markdown table and writes JSON to benchmarks/results/sequence_sampling.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genzoo.config import build, load_params
from genzoo.models import MODELS
from genzoo.models.base import AutoregressiveModel
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
PARAMS = {"laptop": REPO / "params.yaml", "paper": REPO / "params-paper.yaml"}
SEQUENCE_MODELS = ("lstm", "wavenet", "transformer", "cond_transformer", "pixelsnail")  # benchmarked when present


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def labels(model, n: int) -> torch.Tensor | None:
    """Labels 0, 1, ..., for a class-conditional model's ``n`` images; None for the others."""
    return torch.arange(n) % model.num_classes if model.conditional else None


def naive_sample(model, n: int, pixels: int, seed: int) -> torch.Tensor:
    """The generic loop over the first ``pixels`` pixels only (an instance-level ordering)."""
    model.ordering = lambda: torch.arange(pixels)
    try:
        return AutoregressiveModel.sample(model, n, y=labels(model, n),
                                          generator=torch.Generator().manual_seed(seed))
    finally:
        del model.ordering


def bench(name: str, scale: str, args) -> dict:
    arch = load_params(PARAMS[scale])["models"][name]["arch"]
    config = build(MODELS[name].Config, arch, where=f"{PARAMS[scale].name}: models.{name}.arch")
    torch.manual_seed(0)
    model = MODELS[name](config, image_shape=(1, 28, 28), levels=2).eval()
    D, n = model.num_pixels, args.n
    result = {"model": name, "scale": scale, "config": vars(config),
              "parameters": model.num_parameters(), "n": n}

    fast_s, fast = timed(lambda: model.sample(n, y=labels(model, n),
                                              generator=torch.Generator().manual_seed(0)))
    result["fast_s"] = round(fast_s, 3)

    with torch.no_grad():  # one forward per pixel: estimate, then run all of it or a prefix
        step_s, _ = timed(lambda: model(torch.zeros(n, 1, 28, 28), labels(model, n)))
    pixels = D if step_s * D <= args.naive_budget else max(2, int(args.naive_budget / step_s))
    naive_s, naive = timed(lambda: naive_sample(model, n, pixels, seed=0))
    result["naive_s"] = round(naive_s * D / pixels, 3)
    result["naive_pixels"] = pixels
    result["identical"] = bool(torch.equal(naive.flatten(1)[:, :pixels],
                                           fast.flatten(1)[:, :pixels]))
    result["speedup"] = round(result["naive_s"] / fast_s, 1)

    model.train()
    x = (torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    y = labels(model, 64)
    model.loss(x, y).backward()  # warm-up
    steps, start = 0, time.perf_counter()
    while steps < args.train_steps and (
            steps == 0 or time.perf_counter() - start < args.train_budget):
        model.loss(x, y).backward()
        steps += 1
    result["train_images_per_s"] = round(64 * steps / (time.perf_counter() - start), 1)
    return result


def table(runs: list[dict]) -> str:
    lines = ["| model | scale | parameters | fast (s) | naive (s) | naive pixels run | speedup "
             "| identical | train images/s (batch 64) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        pixels = ("all 784" if run["naive_pixels"] == 784
                  else f"{run['naive_pixels']} (extrapolated)")
        lines.append(f"| {run['model']} | {run['scale']} | {run['parameters']:,} | {run['fast_s']} "
                     f"| {run['naive_s']} | {pixels} | {run['speedup']}x | {run['identical']} "
                     f"| {run['train_images_per_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=[name for name in SEQUENCE_MODELS if name in MODELS])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=64, help="images per sampling call")
    parser.add_argument("--naive-budget", type=float, default=120.0,
                        help="seconds: a longer naive loop runs a pixel prefix, extrapolated")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--train-budget", type=float, default=30.0)
    parser.add_argument("--scales", nargs="+", default=list(PARAMS), choices=list(PARAMS))
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "sequence_sampling.json")
    args = parser.parse_args()
    unknown = [name for name in args.models if name not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(sorted(MODELS))}")
    torch.set_num_threads(args.threads)
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_name(),
               "image": [1, 28, 28],
               "note": "random weights; naive times with naive_pixels < 784 are a prefix of that "
                       "many pixels scaled to 784, checked against the fast sampler's prefix",
               "runs": []}
    for name in args.models:
        for scale in args.scales:
            results["runs"].append(bench(name, scale, args))
            print(json.dumps(results["runs"][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['cpu']}, torch {results['torch']}, {results['threads']} thread(s), "
          f"n = {args.n} images\n")
    print(table(results["runs"]))


if __name__ == "__main__":
    main()
