"""NADE's likelihood, three ways: forward + backward time side by side in one process.

All compute a_d = c + sum_{j<d} W[:, j] x_j and the logits b_d + V_d . sigmoid(a_d) for every
pixel d:

* cumsum: the textbook form, an exclusive cumulative sum over all D pixels, (B, D, H) at once;
* row_blocked: the model's form until issue 11: within an image row a matmul with a strictly
  lower-triangular mask, across rows a running sum of row totals; autograd stores (B, D, H)
  tensors;
* scan: the model's form now (``NADEScan`` in models/nade.py): chunks of a few rows, laid out
  (pixel, batch, hidden), with a backward pass that recomputes each chunk.

Interleaved repetitions, medians; checks that they agree. Writes
benchmarks/results/nade_forward.json.

Usage: PYTHONPATH=src python benchmarks/nade_forward.py [--hidden 64 500] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def row_blocked_logits(model: NADE, x: torch.Tensor) -> torch.Tensor:
    """The model's forward before issue 11 (commit 33b5bb9)."""
    flat = x.flatten(1)  # (B, D)
    B, D = flat.shape
    width = model.image_shape[-1]
    rows = D // width
    strictly_lower = torch.ones(width, width).tril(-1)
    W_rows = model.W.t().reshape(rows, width, -1)  # (R, w, H)
    x_rows = flat.view(B, rows, width)  # (B, R, w)
    within = torch.matmul(x_rows.unsqueeze(2) * strictly_lower, W_rows)  # (B, R, w, H)
    totals = torch.einsum("brj,rjh->brh", x_rows, W_rows)  # (B, R, H)
    earlier_rows = torch.cumsum(totals, dim=1) - totals  # (B, R, H)
    hidden = torch.sigmoid(within + (earlier_rows + model.c).unsqueeze(2))  # (B, R, w, H)
    return torch.einsum("bdh,dh->bd", hidden.reshape(B, D, -1), model.V) + model.b


def scan_logits(model: NADE, x: torch.Tensor) -> torch.Tensor:
    return model(x).flatten(1)


FORMS = {"cumsum": cumsum_logits, "row_blocked": row_blocked_logits, "scan": scan_logits}


def seconds(fn, model: NADE, x: torch.Tensor, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        F.binary_cross_entropy_with_logits(fn(model, x), x.flatten(1), reduction="sum").backward()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 500])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=2, help="forward + backward per repetition")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "nade_forward.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = []
    for hidden in args.hidden:
        torch.manual_seed(0)
        model = NADE(NADEConfig(hidden=hidden))
        x = (torch.rand(args.batch, 1, 28, 28) < 0.3).float()
        reference = cumsum_logits(model, x)
        run = {"hidden": hidden, "batch": args.batch, "threads": args.threads,
               "max_abs_difference": {name: (fn(model, x) - reference).abs().max().item()
                                      for name, fn in FORMS.items()}}
        times = {name: [] for name in FORMS}
        for _ in range(args.repeats):
            for name, fn in FORMS.items():
                times[name].append(seconds(fn, model, x, args.steps))
        run["seconds"] = {name: round(statistics.median(t), 4) for name, t in times.items()}
        run["scan_speedup"] = {name: round(statistics.median(t) / run["seconds"]["scan"], 2)
                               for name, t in times.items()}
        runs.append(run)
        print(json.dumps(run), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
