"""DDIM against ancestral DDPM sampling: seconds per sample for several step counts.

Loads a trained DDPM (``--checkpoint``, e.g. data/models/ddpm/mnist/seed0/model.pt), or builds one with
random weights from the ``ddpm`` arch of params.yaml (timing needs no training), and draws ``n``
images with deterministic DDIM (eta = 0) at each of ``--steps`` and with the ancestral sampler
over all T steps. For each it records wall and CPU seconds per sample (the CPU figure is the
one to trust on a machine shared with other jobs) and, as a check that needs no FID, the
fraction of pixels on which the DDIM sample agrees with the DDIM sample of the most steps from
the same x_T (Song et al. 2021, section 5.3: x_T fixes the image whatever the step count). With
``--pngs`` it writes each sampler's grid beside the JSON, for a look.

Usage:
    PYTHONPATH=src python benchmarks/ddim.py [--checkpoint PATH] [--n 64] [--threads 1]
        [--steps 10 20 50 100 250] [--no-ancestral] [--pngs]
Prints a markdown table and writes JSON to benchmarks/results/ddim.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genzoo import checkpoint
from genzoo.config import load_params
from genzoo.models import build_model
from genzoo.models.figures import grid_png
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
MODEL = "ddpm"


def load(path: Path | None):
    """The trained model at ``path``, or one with random weights at params.yaml's arch."""
    if path is not None:
        return checkpoint.load_model(path, "cpu")[0].eval(), str(path)
    arch = load_params(REPO / "params.yaml")["models"][MODEL]["arch"]
    torch.manual_seed(0)
    return build_model(MODEL, arch, image_shape=(1, 28, 28), levels=2).eval(), "random weights"


def timed(draw) -> tuple[float, float, torch.Tensor]:
    wall, cpu = time.perf_counter(), time.process_time()
    bits = draw()
    return time.perf_counter() - wall, time.process_time() - cpu, bits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--n", type=int, default=64, help="images per sampling call")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 250])
    parser.add_argument("--no-ancestral", action="store_true", help="skip the T-step sampler")
    parser.add_argument("--pngs", action="store_true", help="write each sampler's grid")
    parser.add_argument("--out", type=Path, default=RESULTS / "ddim.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, source = load(args.checkpoint)
    bad = [steps for steps in args.steps if not 2 <= steps <= model.T]
    if bad:
        parser.error(f"--steps {bad}: DDIM steps must be in 2..T = {model.T}")

    runs, bits_of = [], {}
    for steps in sorted(args.steps):
        generator = torch.Generator().manual_seed(args.seed)
        wall, cpu, bits = timed(lambda: model.ddim_chain(args.n, steps=steps, eta=0.0,
                                                         generator=generator, keep=False)[0])
        bits_of[steps] = bits
        runs.append({"sampler": f"ddim eta=0, {steps} steps", "steps": steps,
                     "wall_s_per_sample": wall / args.n, "cpu_s_per_sample": cpu / args.n})
    most = max(bits_of)
    for run in runs:
        run["pixel_agreement_with_most_steps"] = (
            (bits_of[run["steps"]] == bits_of[most]).double().mean().item())
    if not args.no_ancestral:
        generator = torch.Generator().manual_seed(args.seed)
        wall, cpu, bits = timed(lambda: model.ancestral_chain(args.n, generator=generator,
                                                              keep=False)[0])
        bits_of["ancestral"] = bits
        runs.append({"sampler": f"ancestral, {model.T} steps", "steps": model.T,
                     "wall_s_per_sample": wall / args.n, "cpu_s_per_sample": cpu / args.n,
                     "pixel_agreement_with_most_steps": None})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.pngs:
        for key, bits in bits_of.items():
            name = f"ddim-{key}.png" if key != "ancestral" else "ancestral.png"
            (args.out.parent / name).write_bytes(grid_png(bits, nrow=8))
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_name(),
               "model": source, "timesteps": model.T, "n": args.n, "runs": runs}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{source}, T = {model.T}, {args.n} samples, {results['threads']} thread(s), "
          f"{results['cpu']}")
    print("| sampler | wall s/sample | CPU s/sample | pixels agreeing with the most DDIM steps |")
    print("| --- | --- | --- | --- |")
    for run in runs:
        agree = run["pixel_agreement_with_most_steps"]
        print(f"| {run['sampler']} | {run['wall_s_per_sample']:.4f} | "
              f"{run['cpu_s_per_sample']:.4f} | {'' if agree is None else f'{agree:.4f}'} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
