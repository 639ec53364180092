"""One trainer for every model: Adam, epochs or a step budget, best-by-validation checkpoint.

A model declares its optimizers (``optimizer_specs``: one Adam over every parameter by default,
a GAN's two players each their own) and takes its steps (``training_step``); the trainer builds
the optimizers, checks and applies each update, schedules their learning rate and keeps their
states. A model without a validation NLL (``has_validation_nll = False``) keeps its last epoch,
and only a non-finite loss stops it.

Reproducibility and preemption safety:

* Everything random is seeded from ``seed``: initialisation, each epoch's order and dynamic
  binarization (``data.epoch_batches``) and the global RNG the models draw noise from.
* A resume checkpoint (``resume.pt`` beside the outputs) is written every ``checkpoint_every``
  steps, at each epoch's end, and when SIGTERM or SIGUSR1 arrives (SIGTERM: scancel, preemption,
  a kill; SIGUSR1: the SLURM profile's warning that the time limit is near). Rerunning the same
  command resumes from it, mid-epoch included, and ends with the same bytes as an uninterrupted
  run. It is ignored when the settings differ and removed once training finishes.
* Inside a SLURM job, SIGUSR1 also puts the job back in the queue (``requeue_slurm_job``): the
  same job ID runs again and resumes, so a training longer than the time limit needs no retries.

The outputs are ``model.pt`` (the best checkpoint, or the last) and ``history.json`` (the
per-epoch losses, by the names the model's ``training_step`` gives them),
both the same bytes for the same seed on one machine, and the wall-clock times in a separate
timings file, which DVC does not cache.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import checkpoint
from .config import TrainConfig
from .data import Split, atomic_write_bytes, epoch_batches, levels_of
from .datasets import dataset_of
from .models import JUDGE, PhaseContext, Trainable, build_model
from .models.base import ADAM_BETAS, DEFAULT_OPTIMIZER
from .models.scoring import per_image_nll

INTERRUPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again", the resume checkpoint is on disk
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingError(RuntimeError):
    """Training cannot go on: a non-finite loss, or a validation NLL worse than a model that
    learned nothing (``Trainable.trivial_nll``) after an epoch: it diverged."""


class Interrupted(RuntimeError):
    """A stop signal arrived; the resume checkpoint has been written."""

    def __init__(self, message: str, *, signal_number: int, progressed: bool):
        super().__init__(message)
        self.signal_number = signal_number
        self.progressed = progressed  # steps were trained since this process started (or resumed)


TIME_LIMIT_SIGNAL = signal.SIGUSR1  # the SLURM profile's `--signal=USR1@120`


def requeue_slurm_job(stop: Interrupted, environ=os.environ, run=subprocess.run) -> str:
    """After a time-limit warning inside a SLURM job, put the job back in the queue; return what
    happened, for the log.

    SLURM restarts a requeued job under the same job ID, so Snakemake keeps waiting for it, and
    the command resumes from resume.pt. Only SIGUSR1 requeues: SIGTERM comes from scancel (the
    user's cancel is final: the SLURM profile sets no retries) or from preemption (SLURM requeues
    a preempted job itself: the profile's slurm-requeue). A job that trained nothing since it
    started is not requeued: it would only reach its time limit again."""
    job = environ.get("SLURM_JOB_ID")
    if stop.signal_number != TIME_LIMIT_SIGNAL or not job:
        return ""
    if not stop.progressed:
        return (f"not requeued: SLURM job {job} trained no step before its time limit; "
                "raise its runtime in the profile (set-resources)")
    try:
        done = run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not requeue SLURM job {job}: {error}"
    if done.returncode != 0:
        return f"could not requeue SLURM job {job}: {done.stderr.strip() or done.returncode}"
    return f"requeued SLURM job {job}: it resumes from the checkpoint when it runs again"


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Progress:
    """Where training stands; saved in the resume checkpoint."""

    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # batches of this epoch already done
    step: int = 0  # optimizer steps so far
    loss_sums: dict[str, float] = field(default_factory=dict)  # each loss summed over this epoch
    seconds: float = 0.0  # training wall-clock so far (not part of the model checkpoint)
    validation_seconds: float = 0.0  # wall-clock of the validation passes so far
    epoch_seconds: float = 0.0  # wall-clock of the current epoch so far
    best_val: float = math.inf  # stays inf for a model without a validation NLL
    best_epoch: int = -1  # the epoch kept: the best by validation NLL, or the last
    history: list[dict[str, float]] = field(default_factory=list)


@contextmanager
def stop_requests():
    """Turn SIGTERM/SIGUSR1 into a flag checked between steps (never mid-update)."""
    requested: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda number, frame: requested.append(number))
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def fingerprint(name: str, arch: dict, train: TrainConfig, seed: int, variant: str) -> str:
    """Identifies the settings a resume checkpoint belongs to."""
    text = json.dumps([name, arch, asdict(train), seed, variant], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class NonFiniteLoss(ArithmeticError):
    """The loss of a training step is NaN or infinite (its value is the first argument)."""


def adam(parameters, config: TrainConfig, *, betas: tuple[float, float] = ADAM_BETAS
         ) -> torch.optim.Optimizer:
    """The optimizer of every training: Adam with the configured learning rate, fused or as
    PyTorch picks for the device."""
    return torch.optim.Adam(parameters, lr=config.lr, betas=betas, fused=config.fused_adam or None)


def make_optimizers(model: Trainable, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """One Adam per optimizer the model declares (``optimizer_specs``), by its name."""
    return {name: adam(spec.parameters, config, betas=spec.betas)
            for name, spec in model.optimizer_specs().items()}


def make_optimizer(model: Trainable, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of a model that declares one (every model but the GANs)."""
    optimizers = make_optimizers(model, config)
    if len(optimizers) != 1:
        raise ValueError(f"{type(model).__name__} has {len(optimizers)} optimizers "
                         f"({', '.join(optimizers)}): use make_optimizers")
    (optimizer,) = optimizers.values()
    return optimizer


def scheduled_lr(config: TrainConfig, done: float) -> float:
    """The learning rate once a fraction ``done`` (0..1) of the run is over: ``lr``, or for the
    cosine schedule a half cosine from ``lr`` to 0 (Loshchilov & Hutter 2017, SGDR, one cycle)."""
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16 or AMX (elsewhere PyTorch emulates bf16, slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of the training forward passes: ``train.precision`` on ``device``."""
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return torch.float32


def training_step(model: Trainable,
                  optimizers: torch.optim.Optimizer | dict[str, torch.optim.Optimizer],
                  x: torch.Tensor, y: torch.Tensor | None, config: TrainConfig
                  ) -> dict[str, torch.Tensor]:
    """The model's ``training_step`` on the batch (x, y) with these optimizers (one, or by name);
    returns its losses (detached), by name.

    Raises:
        NonFiniteLoss: a loss is NaN or infinite (checked before its update).
    """
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = {DEFAULT_OPTIMIZER: optimizers}
    dtype = training_dtype(config.precision, x.device)
    mixed = dtype != torch.float32

    def update(name: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLoss(loss.item())
        optimizer = optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, enabled=False):  # the update itself stays fp32
            loss.float().backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(
                    [p for group in optimizer.param_groups for p in group["params"]],
                    config.grad_clip)
            optimizer.step()

    # Mixed precision: matrix products and convolutions of the forward pass in bf16 (the weights,
    # the gradients and the optimizer stay fp32; losses come out fp32); scoring is always fp32.
    with torch.autocast(x.device.type, dtype=dtype, enabled=mixed):
        return model.training_step(x, y, update)


class Trainer:
    """Trains one model on the training and validation splits of one dataset."""

    def __init__(self, name: str, arch: dict[str, Any], config: TrainConfig, *, train_split: Split,
                 val_split: Split, out_dir: Path, seed: int = 0, variant: str = "binarized",
                 dataset: str = "mnist", device: str = "auto", eval_batch_size: int = 1000,
                 progress: bool | None = None, log=None, levels: int | None = None,
                 where: str | None = None) -> None:
        self.name, self.arch, self.config = name, arch, config
        # The epochs are scored on the first val_images of the split (all when None).
        self.train_split, self.val_split = train_split, val_split.subset(config.val_images)
        self.out_dir = Path(out_dir)
        self.seed, self.variant, self.dataset = seed, variant, dataset
        self.device = pick_device(device)
        self.eval_batch_size = eval_batch_size
        self.progress = progress
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        # Pixel levels the model predicts: from the variant, or given (K for a prior over codes).
        self.levels = levels_of(variant) if levels is None else levels
        self.resume_path = self.out_dir / "resume.pt"
        self.fingerprint = fingerprint(name, arch, config, seed,
                                       variant if levels is None else f"{variant}/{levels}")

        torch.manual_seed(seed)
        self.model: Trainable = build_model(
            name, arch, image_shape=tuple(train_split.gray.shape[1:]), levels=self.levels,
            where=where,
        ).to(self.device)
        self.optimizers = make_optimizers(self.model, config)
        self.state = Progress()
        self.started_at_step = 0  # where this process began: a resumed run starts further on
        self.best: dict[str, Any] | None = None  # model + optimizer state at the best epoch
        # The params section of this training, for messages: models.<name>.train, the judge's
        # classifier.train, models.vqvae.prior.train for a network trained in a model's phase.
        self.train_key = (where.removesuffix(".arch") if where else
                          JUDGE if name == JUDGE else f"models.{name}") + ".train"

    # -- checkpoints ------------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        # state_dict() returns live tensors: copy them, or the "best" state would keep training.
        return copy.deepcopy({"model": self.model.state_dict(), "optimizers": {
            name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}})

    def save_resume(self, why: str = "") -> None:
        """`why`: said when a run resumes from it (a requeued SLURM job's log starts afresh)."""
        checkpoint.save(self.resume_path, {
            "format": checkpoint.FORMAT, "fingerprint": self.fingerprint,
            "progress": asdict(self.state), "current": self._snapshot(), "best": self.best,
            "rng": _rng_state(), "why": why,
        })

    def try_resume(self) -> bool:
        if not self.resume_path.exists():
            return False
        try:
            payload = checkpoint.load(self.resume_path, map_location=self.device)
        except ValueError as error:  # a damaged resume file costs the progress, not the run
            self.log(f"ignoring {error}")
            return False
        if payload.get("fingerprint") != self.fingerprint:
            self.log(f"ignoring {self.resume_path}: it was written with other settings")
            return False
        try:
            progress = Progress(**payload["progress"])
        except TypeError:  # another genzoo version's progress record
            self.log(f"ignoring {self.resume_path}: written by another version of the trainer")
            return False
        self.model.load_state_dict(payload["current"]["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(payload["current"]["optimizers"][name])
        self.state = progress
        self.best = payload["best"]
        _set_rng_state(payload["rng"])
        why = f", saved when {payload['why']}" if payload.get("why") else ""
        self.log(f"resuming {self.name} from epoch {self.state.epoch + 1}, "
                 f"step {self.state.step} ({self.resume_path}{why})")
        return True

    def _final_checkpoint(self) -> dict[str, Any]:
        best = self.best or self._snapshot()
        self.model.load_state_dict(best["model"])
        # One optimizer's state under "optimizer" (as before there were several), else by name.
        states = best["optimizers"]
        optimizer = ({"optimizer": states[DEFAULT_OPTIMIZER]} if list(states) == [DEFAULT_OPTIMIZER]
                     else {"optimizers": states})
        return checkpoint.model_payload(
            self.name, self.model, **optimizer, train=asdict(self.config), seed=self.seed,
            dataset=self.dataset, variant=self.variant, epoch=self.state.best_epoch, step=self.state.step,
            val_nll=self._best_val_nll(),
        )

    def _best_val_nll(self) -> float | None:
        """The kept epoch's validation NLL; None for a model without one."""
        return self.state.best_val if self.model.has_validation_nll else None

    # -- loop -------------------------------------------------------------------------------

    def _budget_left(self, running: float = 0.0) -> bool:
        """Steps and seconds left? `running`: seconds of training not yet added to the state."""
        config, state = self.config, self.state
        if config.max_steps is not None and state.step >= config.max_steps:
            return False
        spent = state.seconds + state.validation_seconds + running
        return config.max_seconds is None or spent < config.max_seconds

    def _fraction_done(self, running: float = 0.0) -> float:
        """How much of the run is over (0..1), by whichever budget binds first: steps (epochs or
        max_steps) or seconds (max_seconds). `running`: seconds not yet added to the state."""
        config, state = self.config, self.state
        total = config.epochs * math.ceil(len(self.train_split) / config.batch_size)
        if config.max_steps is not None:
            total = min(total, config.max_steps)
        done = state.step / total
        if config.max_seconds is not None:
            spent = state.seconds + state.validation_seconds + running
            done = max(done, spent / config.max_seconds)
        return done

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, running: float = 0.0
                    ) -> dict[str, float]:
        self.model.train()
        if self.config.lr_schedule != "constant":
            lr = scheduled_lr(self.config, self._fraction_done(running))
            for optimizer in self.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = lr
        try:
            losses = training_step(self.model, self.optimizers, x.to(self.device),
                                   y.to(self.device), self.config)
        except NonFiniteLoss as error:
            raise TrainingError(
                f"{self.name}: non-finite loss ({error.args[0]}) at step {self.state.step + 1}, "
                f"epoch {self.state.epoch + 1}; {self._advice()}") from None
        return {key: loss.item() for key, loss in losses.items()}

    def _run_epoch(self, stop: list[int]) -> None:
        state, config = self.state, self.config
        batches_per_epoch = math.ceil(len(self.train_split) / config.batch_size)
        batches = epoch_batches(self.train_split, variant=self.variant,
                                batch_size=config.batch_size, seed=self.seed,
                                epoch=state.epoch, skip=state.batch_in_epoch)
        bar = tqdm(batches, total=batches_per_epoch, initial=state.batch_in_epoch,
                   desc=f"{self.name} epoch {state.epoch + 1}/{config.epochs}",
                   disable=None if self.progress is None else not self.progress, leave=False)
        started = time.perf_counter()
        for x, y in bar:
            for key, loss in self._train_step(x, y, time.perf_counter() - started).items():
                state.loss_sums[key] = state.loss_sums.get(key, 0.0) + loss
            state.batch_in_epoch += 1
            state.step += 1
            bar.set_postfix({key: f"{total / state.batch_in_epoch:.2f}"
                             for key, total in state.loss_sums.items()})
            if (stop or state.step % config.checkpoint_every == 0
                    or not self._budget_left(time.perf_counter() - started)):
                now = time.perf_counter()
                state.epoch_seconds += now - started
                state.seconds += now - started
                started = now
                if stop:
                    self._stop(stop[0])
                if not self._budget_left():
                    break
                self.save_resume()
        bar.close()
        elapsed = time.perf_counter() - started
        state.epoch_seconds += elapsed
        state.seconds += elapsed

    def _advice(self) -> str:
        return (f"try a lower {self.train_key}.lr (now {self.config.lr:g}) or set "
                f"{self.train_key}.grad_clip" + (f" (now {self.config.grad_clip:g})"
                                                if self.config.grad_clip is not None else ""))

    def _judge(self, val_nll: float) -> None:
        """Stop a run that diverged, before it writes anything (so no model.pt, and the evaluate
        stage never scores it). The bar is the validation NLL of a model that learned nothing
        (``trivial_nll``: uniform over the levels; the classifier: over the classes). After the
        first epoch a run must beat it. The first epoch only has to stay below twice that value:
        a network at its initialisation sits near (a few percent above) the uniform model, and a
        short first epoch (a smoke test's few steps, a test on noise) may end there; anything
        worse than twice it is the optimizer blowing up, not a model still warming up."""
        trivial = self.model.trivial_nll()
        first = self.state.epoch == 0
        bar = 2 * trivial if first else trivial
        if math.isfinite(val_nll) and val_nll <= bar:
            return
        worse = (f"more than twice the {trivial:.1f} nats" if first else
                 f"worse than the {trivial:.1f} nats")
        raise TrainingError(
            f"{self.name}: diverged: validation NLL {val_nll:.6g} nats after epoch "
            f"{self.state.epoch + 1} (step {self.state.step}) is {worse} of a model that learned "
            f"nothing (uniform); {self._advice()}")

    def _end_epoch(self) -> None:
        state = self.state
        batches = max(state.batch_in_epoch, 1)
        losses = {key: total / batches for key, total in state.loss_sums.items()}
        record = {"epoch": state.epoch + 1, "step": state.step, **losses}
        said = ", ".join(f"{key} {value:.3f}" for key, value in losses.items())
        if self.model.has_validation_nll:
            started = time.perf_counter()
            val_nll = per_image_nll(self.model, self.val_split.images(self.variant),
                                    self.val_split.labels, batch_size=self.eval_batch_size,
                                    device=self.device).mean().item()
            state.validation_seconds += time.perf_counter() - started
            record["val_nll"] = val_nll
            said += f", val {val_nll:.3f} nats"
            if val_nll < state.best_val:
                state.best_val, state.best_epoch = val_nll, state.epoch + 1
                self.best = self._snapshot()
        else:  # nothing to pick the best epoch by: the last one is kept (self.best stays None)
            state.best_epoch = state.epoch + 1
        record["seconds"] = state.epoch_seconds
        state.history.append(record)
        self.log(f"{self.name} epoch {record['epoch']}/{self.config.epochs}: {said} "
                 f"({record['seconds']:.1f} s)")
        if self.model.has_validation_nll:
            self._judge(record["val_nll"])
        state.epoch += 1
        state.batch_in_epoch, state.loss_sums, state.epoch_seconds = 0, {}, 0.0

    def _stop(self, signal_number: int) -> None:
        """Save the resume checkpoint and end this process's training."""
        job = os.environ.get("SLURM_JOB_ID")
        self.save_resume(f"{signal.Signals(signal_number).name} stopped "
                         + (f"SLURM job {job}" if job else f"process {os.getpid()}"))
        raise Interrupted(
            f"{self.name}: stopped by signal {signal.Signals(signal_number).name} at step "
            f"{self.state.step}; resume checkpoint {self.resume_path}: rerun to continue",
            signal_number=signal_number, progressed=self.state.step > self.started_at_step)

    def fit(self) -> dict[str, Any]:
        """Train to the end (resuming if possible); return the best checkpoint's payload."""
        self.try_resume()
        self.started_at_step = self.state.step
        with stop_requests() as stop:
            # Printed once the stop signals are handled: from here on SIGTERM saves a checkpoint.
            self.log(f"training {self.name} on {self.device}: {self.model.num_parameters():,} "
                     f"parameters, {self.config.epochs} epochs of {len(self.train_split):,} images")
            while self.state.epoch < self.config.epochs and self._budget_left():
                self._run_epoch(stop)
                self._end_epoch()
                if stop:
                    self._stop(stop[0])
                if self.state.epoch < self.config.epochs and self._budget_left():
                    self.save_resume()
        return self._final_checkpoint()

    def history(self) -> dict[str, Any]:
        """The training curve and the best epoch: no wall-clock times (see ``timings``), so the
        same seed gives the same bytes. ``epochs`` is the first list, which DVC plots."""
        state = self.state
        epochs = [{key: value for key, value in record.items() if key != "seconds"}
                  for record in state.history]
        return {"epochs": epochs, "model": self.name, "dataset": self.dataset, "seed": self.seed,
                "variant": self.variant,
                "num_parameters": self.model.num_parameters(), "steps": state.step,
                "best_epoch": state.best_epoch, "best_val_nll": self._best_val_nll()}

    def timings(self) -> dict[str, Any]:
        """Wall-clock seconds of the training (resumed runs add up their parts) and the device."""
        state = self.state
        epochs = [record["seconds"] for record in state.history]
        return {"model": self.name, "dataset": self.dataset, "seed": self.seed,
                "device": str(self.device),
                "precision": str(training_dtype(self.config.precision, self.device)).split(".")[-1],
                "train_seconds": state.seconds, "validation_seconds": state.validation_seconds,
                "epoch_seconds": epochs,
                "seconds_per_epoch": sum(epochs) / len(epochs) if epochs else None}


def train(name: str, arch: dict[str, Any], config: TrainConfig, *, train_split: Split,
          val_split: Split, out_dir: Path, timings: Path | None = None,
          **kwargs: Any) -> dict[str, Any]:
    """Train and write ``model.pt`` and ``history.json`` into ``out_dir`` (and the wall-clock
    times to ``timings``); return the history with the timings."""
    trainer = Trainer(name, arch, config, train_split=train_split, val_split=val_split,
                      out_dir=out_dir, **kwargs)
    payload = trainer.fit()
    history, spent = trainer.history(), trainer.timings()
    checkpoint.save(Path(out_dir) / "model.pt", payload)
    atomic_write_bytes(Path(out_dir) / "history.json", json.dumps(history, indent=2).encode())
    if timings is not None:
        atomic_write_bytes(Path(timings), json.dumps(spent, indent=2).encode())
    trainer.resume_path.unlink(missing_ok=True)
    return {**history, **spent}


def run_phase(run_dir: Path, settings: dict[str, Any], *, data_dir: Path,
              timings: Path | None = None, device: str = "auto") -> None:
    """Run the phase ``settings['phase']`` of the trained model in ``run_dir``: the model's own
    method does the work, into ``run_dir/<phase>/``; a phase that trains uses this trainer."""
    device = pick_device(device)
    model, _ = checkpoint.load_model(Path(run_dir) / "model.pt", device)
    phases = {phase.name: phase for phase in model.phases}
    if settings["phase"] not in phases:
        raise ValueError(f"{settings['model']} has no phase {settings['phase']!r} "
                         f"(its phases: {', '.join(phases) or 'none'})")
    phase = phases[settings["phase"]]
    fit = functools.partial(train, seed=settings["seed"], dataset=dataset_of(settings),
                            device=str(device),
                            eval_batch_size=settings.get("batch_size", 1000))
    context = PhaseContext(run_dir=Path(run_dir), out_dir=Path(run_dir) / phase.name,
                           data_dir=Path(data_dir), settings=settings, seed=settings["seed"],
                           device=device, fit=fit, timings=timings)
    getattr(model, phase.run)(context)
