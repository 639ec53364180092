"""The trainer: same seed -> same bytes, interrupted + resumed == uninterrupted, clean failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from genzoo import checkpoint
from genzoo.config import TrainConfig
from genzoo.data import load_split
from genzoo.train import Interrupted, Trainer, TrainingError, train

ARCH = {"made": {"hidden": [64], "ordering": "random"}, "nade": {"hidden": 16}}


@pytest.fixture(scope="module")
def splits(processed):
    return (load_split(processed / "train.npz").subset(600),
            load_split(processed / "val.npz").subset(200))


def run(tmp_path, splits, name="made", **config):
    settings = {"epochs": 2, "batch_size": 50, **config}
    return train(name, ARCH[name], TrainConfig(**settings), train_split=splits[0],
                 val_split=splits[1], out_dir=tmp_path, seed=7, progress=False, log=lambda m: None)


@pytest.mark.parametrize("name", sorted(ARCH))
def test_same_seed_gives_the_same_checkpoint_bytes(tmp_path, splits, name):
    run(tmp_path / "a", splits, name)
    run(tmp_path / "b", splits, name)
    assert (tmp_path / "a/model.pt").read_bytes() == (tmp_path / "b/model.pt").read_bytes()
    assert not (tmp_path / "a/resume.pt").exists()


def test_checkpoint_describes_itself(tmp_path, splits):
    history = run(tmp_path, splits)
    model, payload = checkpoint.load_model(tmp_path / "model.pt")
    assert payload["model"] == "made" and payload["seed"] == 7
    assert payload["config"]["hidden"] == [64] and payload["train"]["batch_size"] == 50
    assert "optimizer" in payload and payload["genzoo_version"]
    assert payload["epoch"] == history["best_epoch"]
    assert len(history["epochs"]) == 2 and history["steps"] == 24


def test_step_budget_stops_training(tmp_path, splits):
    history = run(tmp_path, splits, epochs=5, max_steps=15)
    assert history["steps"] == 15 and len(history["epochs"]) == 2


@pytest.mark.parametrize("stop_at", [5, 12, 17])  # mid-epoch, the epoch boundary, after a save
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, splits, monkeypatch, stop_at):
    run(tmp_path / "straight", splits, epochs=3, checkpoint_every=10)

    original = Trainer._train_step

    def step_then_signal(self, x, y):
        loss = original(self, x, y)
        if self.state.step + 1 == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, as SLURM sends it
        return loss

    monkeypatch.setattr(Trainer, "_train_step", step_then_signal)
    with pytest.raises(Interrupted, match="SIGTERM|signal"):
        run(tmp_path / "resumed", splits, epochs=3, checkpoint_every=10)
    assert (tmp_path / "resumed/resume.pt").exists()
    assert not (tmp_path / "resumed/model.pt").exists()
    monkeypatch.setattr(Trainer, "_train_step", original)
    run(tmp_path / "resumed", splits, epochs=3, checkpoint_every=10)
    straight = (tmp_path / "straight/model.pt").read_bytes()
    assert (tmp_path / "resumed/model.pt").read_bytes() == straight


def test_resume_checkpoint_of_other_settings_is_ignored(tmp_path, splits, monkeypatch):
    original = Trainer._train_step

    def interrupt(self, x, y):
        loss = original(self, x, y)
        os.kill(os.getpid(), signal.SIGUSR1)
        return loss

    monkeypatch.setattr(Trainer, "_train_step", interrupt)
    with pytest.raises(Interrupted):
        run(tmp_path / "x", splits, lr=0.01)
    monkeypatch.setattr(Trainer, "_train_step", original)
    history = run(tmp_path / "x", splits, lr=0.002)  # different lr: starts afresh
    assert history["steps"] == 24


def test_nan_loss_is_a_clear_error(tmp_path, splits, monkeypatch):
    from genzoo.models.made import MADE

    monkeypatch.setattr(MADE, "loss", lambda self, x, y=None: torch.tensor(float("nan")))
    with pytest.raises(TrainingError, match=r"non-finite loss .* step 1.*models\.made\.train\.lr"):
        run(tmp_path, splits)
    assert not (tmp_path / "model.pt").exists()


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "genzoo", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_train_evaluate_sample(tmp_path, processed):
    section = json.dumps({"arch": {"hidden": [32]}, "train": {"epochs": 1, "max_steps": 5}})
    out = tmp_path / "made"
    assert cli("--threads", "1", "train", "--model", "made", "--params", section, "--data-dir",
               str(processed), "--out-dir", str(out), "--device", "cpu").returncode == 0
    metrics = tmp_path / "metrics.json"
    result = cli("evaluate", "--model", "made", "--checkpoint", str(out / "model.pt"), "--test",
                 str(processed / "test.npz"), "--history", str(out / "history.json"),
                 "--out", str(metrics), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    values = json.loads(metrics.read_text())
    assert values["test_images"] == 10_000 and values["nll_kind"] == "exact"
    assert values["test_bits_per_dim"] == pytest.approx(values["test_nll_nats"] / (784 * 0.6931471805599453))
    result = cli("sample", "--checkpoint", str(out / "model.pt"), "--params",
                 '{"n": 16, "nrow": 4, "completions": 2, "completion_samples": 2}',
                 "--test", str(processed / "test.npz"), "--out-npz", str(tmp_path / "s.npz"),
                 "--out-dir", str(tmp_path / "figures"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("samples.png", "completions.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("section, message", [
    ('{"arch": {"hiden": 3}}', "unknown key models.made.arch.hiden"),
    ('{"train": {"lr": -0.1}}', "models.made.train.lr: -0.1 is less than or equal to the minimum of 0"),
    ('{"arch": ', "not valid JSON"),
])
def test_cli_rejects_bad_params_in_one_line(tmp_path, processed, section, message):
    result = cli("train", "--model", "made", "--params", section, "--data-dir", str(processed),
                 "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_missing_data_is_a_clear_error(tmp_path):
    result = cli("train", "--model", "nade", "--params", "{}", "--data-dir", str(tmp_path),
                 "--out-dir", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "missing" in result.stderr and "binarize" in result.stderr


def test_grayscale_variant_trains_a_256_level_pixelcnn(tmp_path, splits):
    """data.variant: grayscale gives a 256-way categorical model, scored in bits/dim."""
    from genzoo.evaluate import evaluate

    arch = {"channels": 8, "blocks": 1, "head_channels": 8, "embed_dim": 4}
    train("pixelcnn", arch, TrainConfig(epochs=1, max_steps=3, batch_size=50),
          train_split=splits[0], val_split=splits[1], out_dir=tmp_path, seed=0,
          variant="grayscale", progress=False, log=lambda m: None)
    model, payload = checkpoint.load_model(tmp_path / "model.pt")
    assert payload["variant"] == "grayscale" and model.levels == 256
    metrics = evaluate(tmp_path / "model.pt", splits[1].subset(50))
    assert 0 < metrics["test_bits_per_dim"] <= 8.5  # near log2(256) = 8 untrained, finite
    with pytest.raises(ValueError, match="binarized"):
        train("nade", ARCH["nade"], TrainConfig(epochs=1, max_steps=1), train_split=splits[0],
              val_split=splits[1], out_dir=tmp_path / "nade", variant="grayscale")


@pytest.mark.parametrize("name", ["params.yaml", "params-paper.yaml", "tests/smoke/params.yaml"])
def test_shipped_params_files_are_valid(name):
    from conftest import REPO

    result = cli("validate", str(REPO / name))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
