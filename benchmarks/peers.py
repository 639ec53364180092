"""Training throughput and sampling time, genzoo vs pytorch-generative, side by side in one process.

Issue 11, item 2. For each architecture of the issue's table (pytorch-generative's ``reproduce()``
sizes: NADE with 500 hidden units, MADE with one hidden layer of 8000, PixelCNN with 15 residual
blocks of 32 channels, Gated PixelCNN with 10 gated layers of 128 channels after its input layer)
it builds our model from params-paper.yaml's ``arch`` section with those sizes (``--scale paper``:
params-paper.yaml unchanged) and theirs to match, both with random weights, and measures:

* train: images/s of one optimizer step of the NLL (forward, backward, Adam step) on one batch
  of ``--batch`` random binary 28x28 images; ours is ``genzoo.train.training_step`` with the
  optimizer of ``genzoo.train.make_optimizer`` (what the trainer runs), theirs is their
  ``reproduce()`` loss (per-pixel BCE with logits, summed, batch mean) and ``torch.optim.Adam``;
* sample: wall seconds to draw ``--n`` images with each model's ``sample``. Where theirs would
  take longer than ``--sample-budget`` seconds (their Gated PixelCNN: about 5 minutes), their
  loop runs its first k forward passes (one per pixel) and the time is scaled to 784 pixels
  (``extrapolated_from_pixels`` says k).

Ours and theirs alternate within each of ``--repeats`` repetitions; the table shows medians.

Their code comes from the pytorch-generative snapshot (a bare git repository, ``--peer-git``), or
from a checkout (``--peer-src``); it is imported, never copied into this repository. Quirks,
handled here and nowhere else:

* Their package ``__init__`` files import every model and the trainer (TensorBoard and other
  dependencies unused here). Only the files this benchmark needs are extracted (their base
  classes, ``nn/convolution.py`` and the four model files), with stub ``__init__`` files: an
  empty one for the package and ``models``, and one for ``nn`` that re-exports the two layers
  of ``convolution.py`` the models use. Nothing else is stubbed.
* Their models record the image shape on their first forward call (sampling needs it): each is
  called once on one image before timing.
* Their PixelCNN adds each block's output to its input twice (``x = x + layer(x)`` around a
  block that is itself residual); kept as is, it costs one extra addition per block.
* Their Gated PixelCNN's input layer has a 7-wide kernel, its gated layers 3; ours has one
  kernel size, so ours gets one layer more than their ``n_gated`` (the same number of gated
  layers in all). Their layer has a few more, smaller convolutions than ours (a 1xk then a
  2x1 vertical convolution, and a 1x1 from the vertical input): about 19 C^2 multiply-adds per
  position against our 22 C^2.
* Their MADE draws its masks (a numpy permutation and 8000 degrees) in every forward call; that
  is their cost and stays in their time.

``--precision bf16`` (or ``auto``) trains ours with ``train.precision`` so: the forward pass under
bf16 autocast, weights and the update in fp32; theirs stays fp32, as their code has it.

Usage:
    PYTHONPATH=src python benchmarks/peers.py [--threads 2] [--repeats 5] [--models nade made ...]
        [--precision fp32]
Prints a markdown table and writes JSON to benchmarks/results/peers.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from genzoo.config import TrainConfig, build, load_params
from genzoo.models import MODELS
from genzoo.train import make_optimizer, training_step
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
PEER_GIT = Path("/work/.mirror/EugenHotaj+pytorch-generative/repo")
PEER_FILES = ["pytorch_generative/models/base.py",
              "pytorch_generative/models/autoregressive/nade.py",
              "pytorch_generative/models/autoregressive/made.py",
              "pytorch_generative/models/autoregressive/pixel_cnn.py",
              "pytorch_generative/models/autoregressive/gated_pixel_cnn.py",
              "pytorch_generative/nn/convolution.py"]
PEER_STUBS = {  # their package __init__ files, reduced to what the four models import
    "pytorch_generative/__init__.py": "",
    "pytorch_generative/models/__init__.py": "",
    "pytorch_generative/models/autoregressive/__init__.py": "",
    "pytorch_generative/nn/__init__.py":
        "from pytorch_generative.nn.convolution import CausalConv2d, GatedActivation\n",
}
# The issue's rows: params-paper.yaml's arch with pytorch-generative's reproduce() sizes.
ISSUE_SIZES = {"nade": {"hidden": 500}, "made": {"hidden": [8000]},
               "pixelcnn": {"channels": 32, "blocks": 15},
               "gated_pixelcnn": {"channels": 128, "layers": 11}}
IMAGE = (1, 28, 28)


# -- their code -------------------------------------------------------------------------------

def extract_peer(git_dir: Path) -> Path:
    """Their files at HEAD of ``git_dir`` and the stub ``__init__`` files, in a temp folder."""
    root = Path(tempfile.mkdtemp(prefix="pytorch-generative-"))
    for name in PEER_FILES:
        text = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{name}"],
                              check=True, capture_output=True, text=True).stdout
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name, text in PEER_STUBS.items():
        (root / name).write_text(text)
    return root


PEER_GENERIC_SAMPLE: list = []  # their AutoregressiveModel.sample, once imported


def import_peer(root: Path) -> None:
    sys.path.insert(0, str(root))
    base = importlib.import_module("pytorch_generative.models.base")
    PEER_GENERIC_SAMPLE.append(base.AutoregressiveModel.sample)


def peer_model(name: str, config) -> torch.nn.Module:
    """Their model with our ``config``'s sizes (their fixed kernels must equal ours)."""
    package = "pytorch_generative.models.autoregressive"
    D = IMAGE[1] * IMAGE[2]
    if name == "nade":
        return importlib.import_module(f"{package}.nade").NADE(D, config.hidden)
    if name == "made":
        return importlib.import_module(f"{package}.made").MADE(D, list(config.hidden), n_masks=1)
    if name == "pixelcnn":
        if (config.kernel_size, config.first_kernel_size) != (3, 7):
            raise ValueError("their PixelCNN has 7x7 then 3x3 kernels")
        return importlib.import_module(f"{package}.pixel_cnn").PixelCNN(
            1, 1, n_residual=config.blocks, residual_channels=config.channels // 2,
            head_channels=config.head_channels)
    if name == "gated_pixelcnn":
        if config.kernel_size != 3:
            raise ValueError("their gated layers have 3-wide kernels")
        return importlib.import_module(f"{package}.gated_pixel_cnn").GatedPixelCNN(
            1, 1, n_gated=config.layers - 1, gated_channels=config.channels,
            head_channels=config.head_channels)
    raise ValueError(f"no peer for {name!r}")


def peer_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Their reproduce() loss: BCE with logits summed over pixels, mean over the batch."""
    logits = model(x).view(x.shape[0], -1)
    return F.binary_cross_entropy_with_logits(logits, x.view(x.shape[0], -1),
                                              reduction="none").sum(1).mean()


class _Stop(Exception):
    pass


def peer_sample_seconds(model: torch.nn.Module, n: int, budget: float) -> tuple[float, int | None]:
    """Seconds for their ``sample(n)``: all of it, or, for a model on their generic loop (one
    ``forward`` per pixel: the PixelCNNs), the first k passes scaled to 784 when one pass x 784
    exceeds ``budget``. Returns (seconds, k or None)."""
    D = IMAGE[1] * IMAGE[2]
    generic = type(model).sample is PEER_GENERIC_SAMPLE[0]
    with torch.no_grad():
        start = time.perf_counter()
        model(torch.zeros(n, *IMAGE))
        step = time.perf_counter() - start
    if not generic or step * D <= budget:
        return timed(lambda: model.sample(n)), None
    pixels = max(2, int(budget / 4 / step))
    forward, calls = model.forward, [0]

    def counted(*args, **kwargs):  # their loop calls self.forward once per pixel
        calls[0] += 1
        if calls[0] > pixels:
            raise _Stop
        return forward(*args, **kwargs)

    model.forward = counted
    try:
        start = time.perf_counter()
        try:
            model.sample(n)
        except _Stop:
            pass
        seconds = time.perf_counter() - start
    finally:
        del model.forward
    return seconds * D / pixels, pixels


# -- ours -------------------------------------------------------------------------------------

def our_config(name: str, scale: str):
    arch = load_params(REPO / "params-paper.yaml")["models"][name]["arch"]
    config = build(MODELS[name].Config, arch, where=f"params-paper.yaml: models.{name}.arch")
    return replace(config, **ISSUE_SIZES[name]) if scale == "issue" else config


# -- timing -----------------------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, args) -> dict:
    config = our_config(name, args.scale)
    torch.manual_seed(0)
    ours = MODELS[name](config, image_shape=IMAGE, levels=2)
    theirs = peer_model(name, config)
    x = (torch.rand(args.batch, *IMAGE, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with torch.no_grad():
        theirs(x[:1])  # they record the image shape on the first call

    train = TrainConfig(lr=1e-3, precision=args.precision)
    our_opt = make_optimizer(ours, train)
    their_opt = torch.optim.Adam(theirs.parameters(), lr=1e-3)

    def their_step():
        their_opt.zero_grad(set_to_none=True)
        peer_loss(theirs, x).backward()
        their_opt.step()

    def our_step():
        training_step(ours, our_opt, x, None, train)

    our_train, their_train, our_sample, their_sample = [], [], [], []
    extrapolated = None
    for fn in (our_step, their_step):  # warm-up
        fn()
    for _ in range(args.repeats):
        ours.train(), theirs.train()
        our_train.append(args.steps * args.batch / timed(lambda: [our_step() for _ in range(args.steps)]))
        their_train.append(args.steps * args.batch / timed(lambda: [their_step() for _ in range(args.steps)]))
        ours.eval(), theirs.eval()
        generator = torch.Generator().manual_seed(0)
        our_sample.append(timed(lambda: ours.sample(args.n, generator=generator)))
        seconds, extrapolated = peer_sample_seconds(theirs, args.n, args.sample_budget)
        their_sample.append(seconds)
    median = statistics.median
    row = {"model": name, "config": asdict(config),
           "parameters": {"ours": sum(p.numel() for p in ours.parameters()),
                          "theirs": sum(p.numel() for p in theirs.parameters())},
           "train_images_per_s": {"ours": round(median(our_train), 1),
                                  "theirs": round(median(their_train), 1)},
           "sample_s": {"ours": round(median(our_sample), 4), "theirs": round(median(their_sample), 4)},
           "extrapolated_from_pixels": extrapolated,
           "raw": {"train_ours": our_train, "train_theirs": their_train,
                   "sample_ours": our_sample, "sample_theirs": their_sample}}
    row["train_ratio"] = round(median(our_train) / median(their_train), 2)
    row["sample_ratio"] = round(median(their_sample) / median(our_sample), 1)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| model | genzoo train img/s | pytorch-generative | ratio | genzoo sample n | theirs | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        train, sample = row["train_images_per_s"], row["sample_s"]
        note = f" (first {row['extrapolated_from_pixels']} px, x784)" if row["extrapolated_from_pixels"] else ""
        lines.append(f"| {row['model']} | {train['ours']} | {train['theirs']} | {row['train_ratio']}x "
                     f"| {sample['ours']:.3g} s | {sample['theirs']:.3g} s{note} | {row['sample_ratio']}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per timed repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=16, help="images per sampling call")
    parser.add_argument("--sample-budget", type=float, default=30.0,
                        help="seconds: a longer sampler of theirs runs a pixel prefix, extrapolated")
    parser.add_argument("--models", nargs="+", default=list(ISSUE_SIZES))
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                        help="our train.precision (theirs trains in fp32; sampling stays fp32)")
    parser.add_argument("--scale", choices=("issue", "paper"), default="issue",
                        help="issue: the issue's sizes; paper: params-paper.yaml unchanged")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--peer-git", type=Path, default=PEER_GIT,
                        help="pytorch-generative as a (bare) git repository")
    source.add_argument("--peer-src", type=Path, help="a pytorch-generative checkout")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peers.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import_peer(args.peer_src if args.peer_src else extract_peer(args.peer_git))
    rows = []
    for name in args.models:
        rows.append(bench(name, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "raw"}), flush=True)
    results = {"cpu": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "precision": args.precision,
               "batch": args.batch, "n": args.n, "scale": args.scale, "repeats": args.repeats,
               "note": "medians of interleaved repetitions; random weights; a sample time with "
                       "extrapolated_from_pixels set is that many pixels scaled to 784",
               "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['cpu']}, torch {results['torch']}, {results['threads']} threads, "
          f"batch {args.batch}, {args.n} samples, our training in {args.precision}, "
          f"medians of {args.repeats} interleaved repetitions\n")
    print(table(rows))


if __name__ == "__main__":
    main()
