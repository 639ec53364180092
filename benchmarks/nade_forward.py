"""NADE's likelihood: a cumulative sum over all D pixels vs the row-blocked form of models/nade.py.

Both compute a_d = c + sum_{j<d} W[:, j] x_j for every pixel d. The model computes it one image row
at a time (a masked matmul within a row, a running sum of row totals across rows); this script
times forward + backward of both, side by side in one process, checks they agree, and prints the
ratio as JSON (written to benchmarks/results/nade_forward.json).

Usage: PYTHONPATH=src python benchmarks/nade_forward.py [--hidden 64 128 500] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genzoo.models.nade import NADE, NADEConfig


def cumsum_logits(model: NADE, x: torch.Tensor) -> torch.Tensor:
    """The textbook form: an exclusive cumulative sum over all D pixels."""
    flat = x.flatten(1)  # (B, D)
    contributions = flat.unsqueeze(2) * model.W.t()  # (B, D, H)
    before = F.pad(torch.cumsum(contributions, dim=1)[:, :-1], (0, 0, 1, 0))  # (B, D, H)
    hidden = torch.sigmoid(before + model.c)
    return torch.einsum("bdh,dh->bd", hidden, model.V) + model.b


def seconds_per_step(fn, x: torch.Tensor, repeats: int) -> float:
    for _ in range(2):
        fn(x).sum().backward()
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x).sum().backward()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 128, 500])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "nade_forward.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = []
    for hidden in args.hidden:
        torch.manual_seed(0)
        model = NADE(NADEConfig(hidden=hidden))
        x = (torch.rand(args.batch, 1, 28, 28) < 0.3).float()
        difference = (cumsum_logits(model, x) - model(x).flatten(1)).abs().max().item()
        cumsum_s = seconds_per_step(lambda inp: cumsum_logits(model, inp), x, args.repeats)
        rows_s = seconds_per_step(model, x, args.repeats)
        runs.append({"hidden": hidden, "batch": args.batch, "cumsum_s": round(cumsum_s, 4),
                     "row_blocked_s": round(rows_s, 4), "speedup": round(cumsum_s / rows_s, 2),
                     "max_abs_difference": difference})
        print(json.dumps(runs[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
