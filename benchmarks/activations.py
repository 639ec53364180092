"""tanh through the sigmoid (``genzoo.nn.fast_tanh``) against ``torch.tanh``, side by side.

PyTorch's CPU tanh is a precise vectorized kernel several times slower than its sigmoid, and the
gated activation tanh(a) * sigmoid(b) of the Gated PixelCNN, its class-conditional form, the
VQ-VAE's prior and WaveNet applies it to half of every layer's features; the CPPN's decoder is a
tanh MLP run at every pixel. This times, in one process with interleaved repetitions:

* the activation alone, forward and forward + backward, on a (16, 32, 28, 28) tensor;
* one training step (``genzoo.train.training_step``, batch 16) of each model at params.yaml's
  settings, with ``fast_tanh`` and with ``torch.tanh`` put in its place.

Prints medians and ratios and the largest difference between the two tanh; writes
benchmarks/results/activations-<threads>t.json.

Usage: PYTHONPATH=src python benchmarks/activations.py [--threads 1] [--repeats 7]
           [--models gated_pixelcnn cond_gated_pixelcnn wavenet cppn]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

import genzoo.nn
from genzoo.config import TrainConfig, build, load_params
from genzoo.models import MODELS
from genzoo.train import make_optimizer, training_step
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
FAST_TANH = genzoo.nn.fast_tanh


def use_tanh(fast: bool) -> None:
    """Route every model's tanh through ``fast_tanh`` or through ``torch.tanh``."""
    genzoo.nn.fast_tanh = FAST_TANH if fast else torch.tanh


def seconds(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def side_by_side(step: Callable[[], object], repeats: int, inner: int) -> dict:
    """Median seconds of ``step`` with each tanh, interleaved, after one warm-up call each."""
    times: dict[str, list[float]] = {"torch_tanh": [], "fast_tanh": []}
    for fast in (False, True):
        use_tanh(fast)
        step()
    for _ in range(repeats):
        for fast, key in ((False, "torch_tanh"), (True, "fast_tanh")):
            use_tanh(fast)
            times[key].append(seconds(step, inner))
    use_tanh(True)
    median = {key: statistics.median(values) for key, values in times.items()}
    return {**{key: round(value * 1e3, 3) for key, value in median.items()},
            "speedup": round(median["torch_tanh"] / median["fast_tanh"], 2)}


def activation_rows(repeats: int) -> list[dict]:
    x = torch.randn(16, 32, 28, 28, generator=torch.Generator().manual_seed(0))
    leaf = x.clone().requires_grad_()
    largest = (FAST_TANH(leaf) - torch.tanh(x)).abs().max().item()
    forward = side_by_side(lambda: genzoo.nn.fast_tanh(x), repeats, 50)
    backward = side_by_side(lambda: genzoo.nn.fast_tanh(leaf).sum().backward(), repeats, 20)
    return [{"what": "tanh (16, 32, 28, 28), forward", **forward, "largest_difference": largest},
            {"what": "tanh (16, 32, 28, 28), forward + backward", **backward}]


def model_row(name: str, repeats: int) -> dict:
    params = load_params(REPO / "params.yaml")["models"][name]
    model_class = MODELS[name]
    config = build(model_class.Config, params["arch"], where=f"params.yaml: models.{name}.arch")
    torch.manual_seed(0)
    model = model_class(config, image_shape=(1, 28, 28), levels=2)
    model = model.to(memory_format=torch.channels_last)  # as genzoo.train.build_model does
    train = TrainConfig(lr=1e-4)
    optimizer = make_optimizer(model, train)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(16, 1, 28, 28, generator=generator) < 0.3).float()
    y = torch.randint(0, 10, (16,), generator=generator)
    row = side_by_side(lambda: training_step(model, optimizer, x, y, train), repeats, 3)
    return {"what": f"{name} training step, batch 16 (params.yaml)", **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", nargs="*",
                        default=["gated_pixelcnn", "cond_gated_pixelcnn", "wavenet", "cppn"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = activation_rows(args.repeats) + [model_row(name, args.repeats) for name in args.models]
    print(f"{cpu_name()}, {args.threads} thread(s), torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("| what | torch.tanh (ms) | fast_tanh (ms) | speedup |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['what']} | {row['torch_tanh']} | {row['fast_tanh']} | {row['speedup']}x |")
    print(f"largest |fast_tanh - torch.tanh|: {rows[0]['largest_difference']:.2e}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"activations-{args.threads}t.json"
    out.write_text(json.dumps({"cpu": cpu_name(), "threads": args.threads,
                               "torch": torch.__version__, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
