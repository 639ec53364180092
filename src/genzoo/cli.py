"""python -m genzoo <command>: the one entry point every Snakemake rule and DVC stage calls.

Each command takes explicit input paths, output paths and params, writes its outputs atomically,
and on bad input prints one line naming the problem and exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import socket
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from .config import ParamsError, TrainConfig, build, load_params
from .data import DataError
from .datasets import dataset_of


def cmd_validate(args) -> int:
    params = load_params(args.params)
    print(f"{args.params}: ok ({', '.join(params['models']) or 'no models'})")
    return 0


def cmd_schema(args) -> int:
    import yaml

    from .config import load_schema

    schema = load_schema()
    if args.model:
        models = schema["properties"]["models"]["properties"]
        if args.model not in models:
            raise ParamsError(f"no model {args.model!r} (models: {', '.join(models)})")
        schema = models[args.model]
    print(yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=100), end="")
    return 0


def cmd_settings(args) -> int:
    from .config import merge_params
    from .settings import write_settings

    params = merge_params([Path(path) for path in args.params])
    changes = write_settings(params, Path(args.out_dir))
    print(f"{args.out_dir}: {len(changes)} settings file(s) changed")
    return 0


def cmd_download(args) -> int:
    import json

    from .data import download

    mirrors = list(args.mirror)
    if args.mirrors_from:  # the workflow's list, read at run time (see workflow/rules/data.smk)
        mirrors += json.loads(Path(args.mirrors_from).read_text()).get(args.dataset, [])
    for path in download(Path(args.out_dir), mirrors or None, dataset=args.dataset,
                         progress=not args.quiet):
        print(path)
    return 0


def cmd_prepare(args) -> int:
    from .data import prepare
    from .settings import read_settings

    settings = read_settings(Path(args.settings))
    paths = prepare(dataset_of(settings), Path(args.raw_dir), Path(args.out_dir),
                    val_size=settings["val_size"], seed=settings["seed"])
    for path in paths.values():
        print(path)
    return 0


def cmd_train(args) -> int:
    from .data import load_split
    from .settings import read_settings
    from .train import train

    settings = read_settings(Path(args.settings))
    name = settings["model"]
    config = build(TrainConfig, settings["train"], where=f"models.{name}.train")
    data_dir = Path(args.data_dir)
    history = train(name, settings["arch"], config,
                    train_split=load_split(data_dir / "train.npz"),
                    val_split=load_split(data_dir / "val.npz"), out_dir=Path(args.out_dir),
                    seed=settings["seed"], variant=settings["variant"],
                    dataset=dataset_of(settings), device=args.device,
                    eval_batch_size=settings["eval_batch_size"],
                    timings=Path(args.timings) if args.timings else None)
    kept = ("no validation NLL, kept the last epoch" if history["best_val_nll"] is None
            else f"best validation NLL {history['best_val_nll']:.3f} nats")
    print(f"{name}: {kept} (epoch {history['best_epoch']}, {history['train_seconds']:.1f} s)")
    return 0


def cmd_phase(args) -> int:
    from .settings import read_settings
    from .train import run_phase

    settings = read_settings(Path(args.settings))
    run_phase(Path(args.run_dir), settings, data_dir=Path(args.data_dir),
              timings=Path(args.timings) if args.timings else None, device=args.device)
    print(f"{settings['model']} seed {settings['seed']}: phase {settings['phase']} done")
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_split
    from .evaluate import evaluate, summary_line, write_metrics
    from .settings import read_settings
    from .train import pick_device

    settings = read_settings(Path(args.settings))
    metrics = evaluate(Path(args.run_dir), load_split(args.test), settings,
                       judge=Path(args.judge) if args.judge else None,
                       timings=[Path(path) for path in args.timings],
                       timings_out=Path(args.timings_out) if args.timings_out else None,
                       device=pick_device(args.device))
    write_metrics(Path(args.out), metrics)
    print(f"{metrics['model']}: {summary_line(metrics)}")
    return 0


def cmd_sample(args) -> int:
    from .data import load_split
    from .sample import sample
    from .settings import read_settings
    from .train import pick_device

    settings = read_settings(Path(args.settings))
    sample(Path(args.run_dir), settings, out_npz=Path(args.out_npz), out_dir=Path(args.out_dir),
           test=load_split(args.test) if args.test else None, device=pick_device(args.device))
    print(args.out_dir)
    return 0


def cmd_summarize(args) -> int:
    from .summary import summarize_files

    summary = summarize_files([Path(p) for p in args.runs], Path(args.out))
    print(f"{summary['model']}: {len(summary['seeds'])} run(s), seeds {summary['seeds']}")
    return 0


def cmd_report(args) -> int:
    from .report import Dataset, write_report
    from .settings import read_settings

    settings = read_settings(Path(args.settings))
    datasets = [Dataset.from_settings(entry) for entry in settings.get("datasets", [])]
    write_report(Path(args.out), metrics=[Path(p) for p in args.metrics],
                 histories=[Path(p) for p in args.history], figures=[Path(p) for p in args.figures],
                 timings=[Path(p) for p in args.timings], title=settings["title"],
                 datasets=datasets)
    print(args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genzoo", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice)")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("validate", help="check a params.yaml against the schema")
    p.add_argument("params", nargs="?", default="params.yaml")
    p.set_defaults(func=cmd_validate)

    from .datasets import DATASETS

    p = commands.add_parser("download", help="fetch and verify a dataset's raw files")
    p.add_argument("--dataset", default="mnist",
                   help=f"one of {', '.join(DATASETS)} (default: mnist); colored_mnist is "
                        "made from MNIST's files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--mirror", action="append", default=[],
                   help="a mirror (folder or URL); repeat for fallbacks (default: the dataset's "
                        "usual mirrors); the dataset's variable, e.g. $GENZOO_DATA_MIRROR for "
                        "MNIST, goes first")
    p.add_argument("--mirrors-from", metavar="JSON",
                   help="a file mapping each dataset to its mirrors (settings/mirrors.json): "
                        "this dataset's list follows any --mirror")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)

    p = commands.add_parser("schema", help="print the params schema: every key, its default and meaning")
    p.add_argument("--model", default=None, help="only this model's section")
    p.set_defaults(func=cmd_schema)

    p = commands.add_parser("settings", help="write every job's settings file (only those that changed)")
    p.add_argument("params", nargs="*", default=["params.yaml"],
                   help="params files, later ones merged over earlier ones (as --configfile)")
    p.add_argument("--out-dir", default="settings")
    p.set_defaults(func=cmd_settings)

    p = commands.add_parser("prepare", aliases=["binarize"],
                            help="split a dataset (train/val/test npz) and store the fixed "
                                 "val/test bits of a grey one")
    p.add_argument("--settings", required=True,
                   help="settings/data/<dataset>.json: dataset, seed, val_size")
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_prepare)

    p = commands.add_parser("train", help="train one run of a model")
    p.add_argument("--settings", required=True, help="the run's settings/<model>/<dataset>/seed<s>/train.json")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--timings", default=None, help="where to write the wall-clock times")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("phase", help="run one of a model's extra phases (e.g. the VQ-VAE's prior)")
    p.add_argument("--settings", required=True, help="settings/<model>/<dataset>/seed<s>/<phase>.json")
    p.add_argument("--run-dir", required=True, help="the trained run: data/models/<model>/<dataset>/seed<s>")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--timings", default=None, help="a phase that trains: its wall-clock times")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_phase)

    p = commands.add_parser("evaluate", help="test metrics of one run")
    p.add_argument("--settings", required=True, help="settings/<model>/<dataset>/seed<s>/evaluate.json")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--judge", default=None,
                   help="the classifier checkpoint, for models whose score uses it")
    p.add_argument("--timings", nargs="*", default=[],
                   help="the run's timings files: the training's first, then its phases'")
    p.add_argument("--timings-out", default=None,
                   help="where to write the wall-clock seconds of the scoring and the FID samples")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("sample", help="draw one run's figures (sample grids and the model's own)")
    p.add_argument("--settings", required=True, help="settings/<model>/<dataset>/seed<s>/sample.json")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--test", default=None, help="test split (completions, reconstructions, ...)")
    p.add_argument("--out-npz", required=True)
    p.add_argument("--out-dir", required=True, help="folder of the run's PNG figures")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_sample)

    p = commands.add_parser("summarize", help="one model's runs (one per seed) as mean and std")
    p.add_argument("--runs", nargs="+", required=True, help="the runs' metrics files (evaluate)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_summarize)

    p = commands.add_parser("report", help="write the HTML report, one section per dataset")
    p.add_argument("--metrics", nargs="+", required=True,
                   help="every summary, reports/metrics/<model>/<dataset>.json (the judges' too)")
    p.add_argument("--history", nargs="+", required=True,
                   help="every run's data/models/<model>/<dataset>/seed<s>/history.json")
    p.add_argument("--figures", nargs="+", required=True,
                   help="every run's PNG folder, reports/figures/<model>/<dataset>/seed<s>")
    p.add_argument("--timings", nargs="*", default=[],
                   help="every run's evaluate timings (seconds per FID sample)")
    p.add_argument("--settings", required=True,
                   help="settings/report.json (the title; the datasets, in the sections' order)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_report)
    return parser


def writes_to_a_file(stream) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # a captured stream has no file descriptor
        return False


def attempt_stamp(command: str, environ=os.environ) -> str:
    """The first line of a log: when, where and in which SLURM job the command ran, so a log
    is never mistaken for another attempt's (the workflow also deletes the logs of the jobs a run
    is about to start: a job cancelled before its command ran has no log, not an old one)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    slurm = f", SLURM job {environ['SLURM_JOB_ID']}" if environ.get("SLURM_JOB_ID") else ""
    return f"genzoo {command}: started {when} on {socket.gethostname()}{slurm}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if writes_to_a_file(sys.stderr):
        print(attempt_stamp(args.command), file=sys.stderr, flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    from .train import INTERRUPTED_EXIT_CODE, Interrupted, TrainingError, requeue_slurm_job

    try:
        return args.func(args)
    except Interrupted as stop:
        print(f"genzoo {args.command}: {stop}", file=sys.stderr, flush=True)
        requeued = requeue_slurm_job(stop)
        if requeued:
            print(f"genzoo {args.command}: {requeued}", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT_CODE
    except (ParamsError, DataError, TrainingError, FileNotFoundError, ValueError) as error:
        print(f"genzoo {args.command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ParamsError) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
