"""Preemption as SLURM does it: a real SIGTERM to a running `python -m genzoo train` process.

The trainer must write resume.pt, exit 75 (EX_TEMPFAIL) without a model.pt, and the same command
run again must resume and end with the bytes of an uninterrupted run.
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
            "--settings", str(settings_dir / "made/seed3/train.json"), "--data-dir", str(processed),
            "--out-dir", str(out_dir)]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def run_to_end(processed: Path, out_dir: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(train_command(processed, out_dir), env=env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_sigterm_then_rerun_equals_uninterrupted(processed, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_to_end(processed, straight)

    job = subprocess.Popen(train_command(processed, resumed), env=env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        # The first periodic checkpoint (step 50) proves training is under way, mid-epoch.
        deadline = time.monotonic() + 120
        while not (resumed / "resume.pt").exists():
            assert job.poll() is None, f"training ended before the signal:\n{job.stderr.read()}"
            assert time.monotonic() < deadline, "no resume.pt after 120 s"
            time.sleep(0.01)
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == INTERRUPTED, stderr[-3000:]
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
