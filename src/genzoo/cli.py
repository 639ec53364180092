"""python -m genzoo <command>: the one entry point every Snakemake rule and DVC stage calls.

Each command takes explicit input paths, output paths and params, writes its outputs atomically,
and on bad input prints one line naming the problem and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .config import ParamsError, SampleConfig, TrainConfig, build, load_params, parse_json_arg, validate_params
from .data import DataError


def _model_section(name: str, text: str) -> dict:
    """Validate one model's params section (JSON) exactly as params.yaml would be validated."""
    section = parse_json_arg(text, what=f"--params for {name}")
    if name == "classifier":  # a top-level section of params.yaml, not one of the zoo
        return validate_params({"classifier": section}, source="--params")["classifier"]
    return validate_params({"models": {name: section}}, source="--params")["models"][name]


def cmd_validate(args) -> int:
    params = load_params(args.params)
    print(f"{args.params}: ok ({', '.join(params['models']) or 'no models'})")
    return 0


def cmd_download(args) -> int:
    from .data import download

    for path in download(Path(args.out_dir), args.mirror, progress=not args.quiet):
        print(path)
    return 0


def cmd_binarize(args) -> int:
    from .data import binarize

    for path in binarize(Path(args.raw_dir), Path(args.out_dir), val_size=args.val_size,
                         seed=args.seed).values():
        print(path)
    return 0


def cmd_train(args) -> int:
    from .data import load_split
    from .train import train

    section = _model_section(args.model, args.params)
    config = build(TrainConfig, section["train"], where=f"models.{args.model}.train")
    data_dir = Path(args.data_dir)
    history = train(args.model, section["arch"], config,
                    train_split=load_split(data_dir / "train.npz"),
                    val_split=load_split(data_dir / "val.npz"), out_dir=Path(args.out_dir),
                    seed=args.seed, variant=args.variant, device=args.device,
                    eval_batch_size=args.eval_batch_size)
    print(f"{args.model}: best validation NLL {history['best_val_nll']:.3f} nats "
          f"(epoch {history['best_epoch']}, {history['train_seconds']:.1f} s)")
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_split
    from .evaluate import write_metrics
    from .train import pick_device

    metrics, summary = _score(args, load_split(args.test), pick_device(args.device))
    write_metrics(Path(args.out), metrics)
    print(f"{metrics['model']}: {summary}")
    return 0


def _score(args, test, device) -> tuple[dict, str]:
    """The metrics of ``args.model`` and a one-line summary, by the kind of model."""
    if args.model == "classifier":
        from .evaluate import evaluate_classifier

        metrics = evaluate_classifier(Path(args.checkpoint), test, history_path=args.history,
                                      batch_size=args.batch_size, device=device)
        return metrics, f"test accuracy {metrics['test_accuracy']:.4f}"
    if args.model == "vae":
        from .latent import evaluate_vae

        metrics = evaluate_vae(Path(args.checkpoint), test, history_path=args.history,
                               iwae_k=args.iwae_k, iwae_batch_size=args.iwae_batch_size,
                               batch_size=args.batch_size, seed=args.seed, device=device)
        return metrics, (f"test NLL <= {metrics['test_nll_nats']:.3f} nats (IWAE, k={args.iwae_k}), "
                         f"{metrics['test_bits_per_dim']:.4f} bits/dim; "
                         f"-ELBO {metrics['neg_elbo_nats']:.3f}")
    if args.model == "vqvae":
        from .latent import evaluate_vqvae

        if not args.prior:
            raise ValueError("evaluating the VQ-VAE needs its prior (--prior): run fit_prior first")
        metrics = evaluate_vqvae(Path(args.checkpoint), Path(args.prior), test,
                                 history_path=args.history, prior_history_path=args.prior_history,
                                 batch_size=args.batch_size, device=device)
        return metrics, (f"reconstruction {metrics['reconstruction_nll_nats']:.3f} nats, code "
                         f"perplexity {metrics['code_perplexity']:.1f}/{metrics['codes']}, prior NLL "
                         f"{metrics['prior_nll_nats']:.3f} nats per code grid, test NLL <= "
                         f"{metrics['test_nll_nats']:.3f} nats")
    from .evaluate import evaluate

    metrics = evaluate(Path(args.checkpoint), test, history_path=args.history,
                       batch_size=args.batch_size, device=device, classifier_path=args.classifier,
                       agreement_samples=args.agreement_samples, seed=args.seed)
    summary = f"test NLL {metrics['test_nll_nats']:.3f} nats, {metrics['test_bits_per_dim']:.4f} bits/dim"
    if "label_agreement" in metrics:
        summary += f", label agreement {metrics['label_agreement']:.3f}"
    return metrics, summary


def cmd_encode(args) -> int:
    from .latent import encode_splits
    from .train import pick_device

    for path in encode_splits(Path(args.checkpoint), Path(args.data_dir), Path(args.out_dir),
                              seed=args.seed, batch_size=args.batch_size,
                              device=pick_device(args.device)).values():
        print(path)
    return 0


def cmd_fit_prior(args) -> int:
    from .latent import fit_prior

    section = _model_section("vqvae", json.dumps({"prior": parse_json_arg(args.params,
                                                                          what="--params")}))
    history = fit_prior(section["prior"], Path(args.codes_dir), Path(args.out_dir), seed=args.seed,
                        device=args.device, eval_batch_size=args.eval_batch_size)
    print(f"vqvae prior ({section['prior']['kind']}): best validation NLL "
          f"{history['best_val_nll']:.3f} nats per code grid (epoch {history['best_epoch']}, "
          f"{history['train_seconds']:.1f} s)")
    return 0


def cmd_sample(args) -> int:
    from .data import load_split
    from .sample import sample
    from .train import pick_device

    config = build(SampleConfig, parse_json_arg(args.params, what="--params"), where="sample")
    test = load_split(args.test) if args.test else None
    from .checkpoint import load

    if load(Path(args.checkpoint))["model"] in ("vae", "vqvae"):
        from .latent import sample_latent

        sample_latent(Path(args.checkpoint), config=config, seed=args.seed,
                      out_npz=Path(args.out_npz), out_dir=Path(args.out_dir), test=test,
                      prior_path=Path(args.prior) if args.prior else None,
                      device=pick_device(args.device))
        print(args.out_dir)
        return 0
    sample(Path(args.checkpoint), config=config, seed=args.seed, out_npz=Path(args.out_npz),
           out_dir=Path(args.out_dir), test=test, device=pick_device(args.device))
    print(args.out_dir)
    return 0


def cmd_summarize(args) -> int:
    from .summary import summarize_files

    summary = summarize_files([Path(p) for p in args.runs], Path(args.out))
    print(f"{summary['model']}: {len(summary['seeds'])} run(s), seeds {summary['seeds']}")
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    write_report(Path(args.out), metrics=[Path(p) for p in args.metrics],
                 histories=[Path(p) for p in args.history], figures=[Path(p) for p in args.figures],
                 title=args.title)
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

    p = commands.add_parser("download", help="fetch and verify the MNIST files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--mirror", action="append", default=[],
                   help="a mirror (folder or URL); repeat for fallbacks; $GENZOO_DATA_MIRROR goes first")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)

    p = commands.add_parser("binarize", help="split MNIST and store the fixed val/test bits")
    p.add_argument("--raw-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--val-size", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_binarize)

    p = commands.add_parser("train", help="train one model")
    p.add_argument("--model", required=True)
    p.add_argument("--params", required=True, help="the model's params section as JSON")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", choices=["binarized", "grayscale"], default="binarized")
    p.add_argument("--device", default="auto")
    p.add_argument("--eval-batch-size", type=int, default=1000)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="test NLL of a trained model")
    p.add_argument("--model", required=True, help="the model's name (classifier: accuracy)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--history", default=None)
    p.add_argument("--classifier", default=None,
                   help="classifier checkpoint: scores a conditional model's label agreement")
    p.add_argument("--agreement-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--iwae-k", type=int, default=5000, help="VAE: importance samples of the bound")
    p.add_argument("--iwae-batch-size", type=int, default=100, help="VAE: test images per IWAE pass")
    p.add_argument("--prior", default=None, help="VQ-VAE: the prior checkpoint (fit-prior)")
    p.add_argument("--prior-history", default=None, help="VQ-VAE: the prior's history.json")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("encode", help="VQ-VAE: code grids of every split")
    p.add_argument("--checkpoint", required=True, help="the trained VQ-VAE")
    p.add_argument("--data-dir", required=True, help="data/processed")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0, help="seed of the training images' fixed bits")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_encode)

    p = commands.add_parser("fit-prior", help="VQ-VAE: fit the autoregressive prior over codes")
    p.add_argument("--params", required=True, help="models.vqvae.prior as JSON")
    p.add_argument("--codes-dir", required=True, help="the code grids (encode)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--eval-batch-size", type=int, default=1000)
    p.set_defaults(func=cmd_fit_prior)

    p = commands.add_parser("sample", help="draw sample grids (and completions) from a trained model")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--params", default="{}", help="the model's sample section as JSON")
    p.add_argument("--test", default=None, help="test split whose images are completed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-npz", required=True)
    p.add_argument("--out-dir", required=True, help="folder of the model's PNG figures")
    p.add_argument("--prior", default=None, help="VQ-VAE: the prior checkpoint (fit-prior)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_sample)

    p = commands.add_parser("summarize", help="one model's runs (one per seed) as mean and std")
    p.add_argument("--runs", nargs="+", required=True, help="the runs' metrics files (evaluate)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_summarize)

    p = commands.add_parser("report", help="write the HTML report")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--history", nargs="+", required=True)
    p.add_argument("--figures", nargs="+", required=True, help="PNGs in one folder per model")
    p.add_argument("--title", default="genzoo")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from .train import INTERRUPTED_EXIT_CODE, Interrupted, TrainingError

    try:
        return args.func(args)
    except Interrupted as stop:
        print(f"genzoo {args.command}: {stop}", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except (ParamsError, DataError, TrainingError, FileNotFoundError, ValueError) as error:
        print(f"genzoo {args.command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ParamsError) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
