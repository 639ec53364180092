"""Preemption as SLURM does it: a real SIGTERM to a running `python -m genzoo train` process.

The trainer must write resume.pt, exit 75 (EX_TEMPFAIL) without a model.pt, and the same command
run again must resume and end with the bytes of an uninterrupted run. Inside a SLURM job, the time
limit's warning (SIGUSR1) also requeues the job, and SIGTERM (scancel, preemption) never does:
checked with a stand-in `scontrol` that records its arguments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO

from genzoo.config import validate_params
from genzoo.settings import write_settings
from genzoo.train import TIME_LIMIT_SIGNAL, Interrupted, requeue_slurm_job

INTERRUPTED = 75
# MADE with one small hidden layer, seed 3; 1000 batches of 50 per epoch, a checkpoint every 50
# steps.
SECTION = {"arch": {"hidden": [32]}, "seeds": [3],
           "train": {"epochs": 2, "max_steps": 1500, "batch_size": 50, "checkpoint_every": 50}}


def train_command(processed: Path, out_dir: Path) -> list[str]:
    """The train job's command, reading the run's settings file as the workflow writes it."""
    settings_dir = out_dir.parent / "settings"
    write_settings(validate_params({"models": {"made": SECTION}}), settings_dir)
    return [sys.executable, "-m", "genzoo", "--threads", "1", "train",
            "--settings", str(settings_dir / "made/mnist/seed3/train.json"), "--data-dir", str(processed),
            "--out-dir", str(out_dir)]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), **extra}


def run_to_end(processed: Path, out_dir: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(train_command(processed, out_dir), env=env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def interrupt(processed: Path, out_dir: Path, stop: signal.Signals, **environ: str) -> str:
    """Start the training, send `stop` once it is under way, mid-epoch; return its stderr."""
    job = subprocess.Popen(train_command(processed, out_dir), env=env(**environ),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The first periodic checkpoint (step 50) proves training is under way, mid-epoch.
        deadline = time.monotonic() + 120
        while not (out_dir / "resume.pt").exists():
            assert job.poll() is None, f"training ended before the signal:\n{job.stderr.read()}"
            assert time.monotonic() < deadline, "no resume.pt after 120 s"
            time.sleep(0.01)
        job.send_signal(stop)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == INTERRUPTED, stderr[-3000:]
    return stderr


def test_sigterm_then_rerun_equals_uninterrupted(processed, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_to_end(processed, straight)

    stderr = interrupt(processed, resumed, signal.SIGTERM)
    assert "stopped by signal SIGTERM" in stderr, stderr[-3000:]
    assert (resumed / "resume.pt").exists()
    assert not (resumed / "model.pt").exists() and not (resumed / "history.json").exists()

    again = run_to_end(processed, resumed)
    assert "resuming made from epoch" in again.stderr, again.stderr[-3000:]
    assert (resumed / "model.pt").read_bytes() == (straight / "model.pt").read_bytes()
    assert not (resumed / "resume.pt").exists()
    history = json.loads((resumed / "history.json").read_text())
    assert history["steps"] == 1500 and history["seed"] == 3
    assert (resumed / "history.json").read_bytes() == (straight / "history.json").read_bytes()


def fake_scontrol(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with an `scontrol` that appends its arguments to calls.txt and succeeds."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    script = bin_dir / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}, calls


def test_time_limit_warning_requeues_the_slurm_job_and_the_rerun_resumes(processed, tmp_path):
    slurm, calls = fake_scontrol(tmp_path)
    out_dir = tmp_path / "run"
    stderr = interrupt(processed, out_dir, signal.SIGUSR1, **slurm)
    assert "stopped by signal SIGUSR1" in stderr, stderr[-3000:]
    assert "requeued SLURM job 4242: it resumes from the checkpoint" in stderr, stderr[-3000:]
    assert calls.read_text() == "requeue 4242\n"
    # SLURM starts the requeued job afresh (a new log): the log says where it resumed and why.
    again = run_to_end(processed, out_dir)
    assert "saved when SIGUSR1 stopped SLURM job 4242" in again.stderr, again.stderr[-3000:]


def test_scancel_is_final_no_requeue(processed, tmp_path):
    slurm, calls = fake_scontrol(tmp_path)
    stderr = interrupt(processed, tmp_path / "run", signal.SIGTERM, **slurm)
    assert "stopped by signal SIGTERM" in stderr and "requeue" not in stderr, stderr[-3000:]
    assert not calls.exists()


def test_requeue_only_after_progress_and_says_when_scontrol_fails():
    usr1 = dict(signal_number=signal.SIGUSR1)
    calls = []

    def fails(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "scontrol: error: Invalid job id\n")

    in_job = {"SLURM_JOB_ID": "7"}
    stuck = Interrupted("x", progressed=False, **usr1)
    assert "not requeued" in requeue_slurm_job(stuck, in_job, fails) and not calls
    moved = Interrupted("x", progressed=True, **usr1)
    assert requeue_slurm_job(moved, {}, fails) == ""  # not in a SLURM job
    said = requeue_slurm_job(moved, in_job, fails)
    assert said == "could not requeue SLURM job 7: scontrol: error: Invalid job id"
    assert calls == [["scontrol", "requeue", "7"]]


def test_a_log_starts_with_the_attempt_it_belongs_to(tmp_path):
    log = tmp_path / "validate.log"
    with open(log, "w") as stderr:
        subprocess.run([sys.executable, "-m", "genzoo", "validate", str(REPO / "params.yaml")],
                       env=env(SLURM_JOB_ID="31"), stdout=stderr, stderr=stderr, check=True)
    first = log.read_text().splitlines()[0]
    assert first.startswith("genzoo validate: started 20") and first.endswith(", SLURM job 31")
    # Not on a terminal or a pipe: there the stamp would only be noise.
    piped = subprocess.run([sys.executable, "-m", "genzoo", "validate", str(REPO / "params.yaml")],
                           env=env(), capture_output=True, text=True, check=True)
    assert "started" not in piped.stderr


def test_the_slurm_profile_signals_what_the_trainer_requeues_on_and_never_retries():
    import yaml

    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["retries"] == 0  # a scancel is final
    assert profile["slurm-requeue"] is True  # preemption: SLURM requeues
    extra = [entry for entry in profile["default-resources"] if entry.startswith("slurm_extra=")]
    assert extra == [f"slurm_extra='--signal={TIME_LIMIT_SIGNAL.name.removeprefix('SIG')}@120'"]
