"""Sampling and training throughput of the PixelCNN family, fast cached sampler vs generic loop.

Builds each model with random weights (timing needs no training) on 28x28 binary images, at its
default config and at a paper-scale config, and measures:

* fast: ``model.sample(n)`` (the cached sampler), wall seconds for n images;
* naive: ``AutoregressiveModel.sample`` (one full forward pass per pixel) on the same model and
  seed. When the whole loop would exceed ``--naive-budget`` seconds it runs only the first k
  pixels and extrapolates to 784 (``naive_extrapolated_from_pixels`` says k); either way the
  naive pixels are checked against the fast sampler's (``naive_matches_fast``);
* train: images/s of forward + backward of the NLL at batch 64.

Usage: PYTHONPATH=src python benchmarks/sampling.py [--threads 1] [--n 64] [--scales default paper]
Prints JSON and writes it to benchmarks/results/sampling.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from genzoo.models.base import AutoregressiveModel
from genzoo.models.cond_gated_pixelcnn import CondGatedPixelCNN, CondGatedPixelCNNConfig
from genzoo.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig

# Paper scale: 15 layers of 128 channels (2016a table 1 / 2016b; pytorch-generative's MNIST
# models use 15 residual blocks x 128 and 10-15 gated layers x 128 with a 32-channel head).
CONFIGS = {
    "pixelcnn": (PixelCNN, {"default": PixelCNNConfig(),
                            "paper": PixelCNNConfig(channels=128, blocks=15, head_channels=32)}),
    "gated_pixelcnn": (GatedPixelCNN, {"default": GatedPixelCNNConfig(),
                                       "paper": GatedPixelCNNConfig(channels=128, layers=15,
                                                                    head_channels=32)}),
    "cond_gated_pixelcnn": (CondGatedPixelCNN, {
        "default": CondGatedPixelCNNConfig(),
        "paper": CondGatedPixelCNNConfig(channels=128, layers=15, head_channels=32)}),
}


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def naive_sample(model, n: int, y, pixels: int, seed: int) -> torch.Tensor:
    """The generic loop over the first ``pixels`` pixels only (an instance-level ordering)."""
    model.ordering = lambda: torch.arange(pixels)
    try:
        generator = torch.Generator().manual_seed(seed)
        return AutoregressiveModel.sample(model, n, y=y, generator=generator)
    finally:
        del model.ordering


def bench(name: str, scale: str, args) -> dict:
    cls, configs = CONFIGS[name]
    torch.manual_seed(0)
    model = cls(configs[scale], image_shape=(1, 28, 28), levels=2).eval()
    D, n = model.num_pixels, args.n
    y = torch.arange(n) % model.num_classes if model.conditional else None
    result = {"model": name, "scale": scale, "config": vars(configs[scale]),
              "parameters": model.num_parameters(), "n": n}

    fast_s, fast = timed(lambda: model.sample(n, y=y, generator=torch.Generator().manual_seed(0)))
    result["fast_sample_s"] = round(fast_s, 3)

    with torch.no_grad():  # one forward per pixel: estimate, then run all of it or a prefix
        step_s, _ = timed(lambda: model(torch.zeros(n, 1, 28, 28), y))
    pixels = D if step_s * D <= args.naive_budget else max(2, int(args.naive_budget / 4 / step_s))
    naive_s, naive = timed(lambda: naive_sample(model, n, y, pixels, seed=0))
    result["naive_sample_s"] = round(naive_s * D / pixels, 3)
    result["naive_extrapolated_from_pixels"] = None if pixels == D else pixels
    result["naive_matches_fast"] = bool(torch.equal(naive.flatten(1)[:, :pixels],
                                                    fast.flatten(1)[:, :pixels]))
    result["speedup"] = round(result["naive_sample_s"] / fast_s, 1)

    model.train()
    x = (torch.rand(64, 1, 28, 28) < 0.3).float()
    yb = torch.arange(64) % model.num_classes if model.conditional else None
    model.loss(x, yb).backward()  # warm-up
    steps = args.train_steps
    train_s, _ = timed(lambda: [model.loss(x, yb).backward() for _ in range(steps)])
    result["train_images_per_s"] = round(64 * steps / train_s, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=64, help="images per sampling call")
    parser.add_argument("--naive-budget", type=float, default=120.0,
                        help="seconds: a longer naive loop runs a pixel prefix, extrapolated")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(CONFIGS))
    parser.add_argument("--scales", nargs="+", default=["default", "paper"])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "sampling.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "machine": platform.processor() or platform.machine(), "image": [1, 28, 28],
               "note": "random weights; 'paper' = paper-scale config; naive times with "
                       "naive_extrapolated_from_pixels set are a k-pixel prefix scaled to 784",
               "runs": []}
    for name in args.models:
        for scale in args.scales:
            results["runs"].append(bench(name, scale, args))
            print(json.dumps(results["runs"][-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
