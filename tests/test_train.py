"""The trainer: same seed -> same bytes, interrupted + resumed == uninterrupted, clean failures;
wall-clock times in the timings file only; the train/evaluate/sample commands on settings files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, smoke_models, smoke_params
from genzoo import checkpoint
from genzoo.cli import main
from genzoo.config import TrainConfig, validate_params
from genzoo.data import load_split
from genzoo.settings import write_settings
from genzoo.train import Interrupted, Trainer, TrainingError, train

ARCH = {"made": {"hidden": [64], "ordering": "random"}, "nade": {"hidden": 16}}


@pytest.fixture(scope="module")
def splits(processed):
    return (load_split(processed / "train.npz").subset(600),
            load_split(processed / "val.npz").subset(200))


def run(tmp_path, splits, name="made", timings=None, **config):
    settings = {"epochs": 2, "batch_size": 50, **config}
    return train(name, ARCH[name], TrainConfig(**settings), train_split=splits[0],
                 val_split=splits[1], out_dir=tmp_path, seed=7, progress=False, log=lambda m: None,
                 timings=timings)


@pytest.mark.parametrize("name", sorted(ARCH))
def test_same_seed_gives_the_same_checkpoint_bytes(tmp_path, splits, name):
    run(tmp_path / "a", splits, name, timings=tmp_path / "a.timings.json")
    run(tmp_path / "b", splits, name)
    assert (tmp_path / "a/model.pt").read_bytes() == (tmp_path / "b/model.pt").read_bytes()
    assert (tmp_path / "a/history.json").read_bytes() == (tmp_path / "b/history.json").read_bytes()
    assert not (tmp_path / "a/resume.pt").exists()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["history.json", "model.pt"]


def test_wall_clock_times_go_to_the_timings_file_only(tmp_path, splits):
    returned = run(tmp_path / "out", splits, timings=tmp_path / "timings/made.json")
    history = json.loads((tmp_path / "out/history.json").read_text())
    text = (tmp_path / "out/history.json").read_text()
    assert "seconds" not in text and "device" not in history
    assert [sorted(epoch) for epoch in history["epochs"]] == [
        ["epoch", "step", "train_loss", "val_nll"]] * 2
    assert history["steps"] == 24 and history["best_epoch"] in (1, 2)
    timings = json.loads((tmp_path / "timings/made.json").read_text())
    assert timings["model"] == "made" and timings["seed"] == 7 and timings["device"] == "cpu"
    assert len(timings["epoch_seconds"]) == 2 and all(s > 0 for s in timings["epoch_seconds"])
    assert timings["train_seconds"] == pytest.approx(sum(timings["epoch_seconds"]))
    assert timings["seconds_per_epoch"] == pytest.approx(timings["train_seconds"] / 2)
    assert returned == {**history, **timings}  # train() returns both
    payload = checkpoint.load(tmp_path / "out/model.pt")
    assert not any("seconds" in key for key in payload)


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


def test_time_budget_stops_training_at_the_first_step_past_it(tmp_path, splits):
    history = run(tmp_path / "one", splits, epochs=50, max_seconds=1e-9)
    assert history["steps"] == 1 and len(history["epochs"]) == 1  # one step, then validated
    assert (tmp_path / "one/model.pt").is_file()
    history = run(tmp_path / "some", splits, epochs=1000, max_seconds=0.5)
    spent = history["train_seconds"] + history["validation_seconds"]
    assert 1 < history["steps"] < 12000 and spent >= 0.5


def learning_rates(monkeypatch) -> list[float]:
    """The learning rate of every optimizer step of the runs that follow."""
    seen, original = [], Trainer._train_step

    def recording(self, x, y, *args):
        loss = original(self, x, y, *args)
        seen.append(self.optimizers["model"].param_groups[0]["lr"])
        return loss

    monkeypatch.setattr(Trainer, "_train_step", recording)
    return seen


@pytest.mark.parametrize("budget, steps", [({"epochs": 2}, 24), ({"epochs": 5, "max_steps": 10}, 10)])
def test_cosine_schedule_falls_from_lr_to_zero_over_the_run(tmp_path, splits, monkeypatch, budget,
                                                            steps):
    seen = learning_rates(monkeypatch)
    run(tmp_path, splits, lr=0.01, lr_schedule="cosine", **budget)
    assert len(seen) == steps and seen[0] == 0.01
    assert all(later < earlier for earlier, later in zip(seen, seen[1:]))
    assert seen[steps // 2] == pytest.approx(0.005) and seen[-1] < 0.01 * 0.03


def test_cosine_schedule_follows_a_time_budget(tmp_path, splits, monkeypatch):
    seen = learning_rates(monkeypatch)
    run(tmp_path, splits, epochs=1000, lr=0.01, lr_schedule="cosine", max_seconds=0.5)
    assert seen[0] > 0.0099 and seen[-1] < 0.01 * 0.05  # the budget, not 1000 epochs, sets the end


def test_constant_schedule_keeps_lr(tmp_path, splits, monkeypatch):
    seen = learning_rates(monkeypatch)
    run(tmp_path, splits, lr=0.01)
    assert seen == [0.01] * 24


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("stop_at", [5, 12, 17])  # mid-epoch, the epoch boundary, after a save
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, splits, monkeypatch, stop_at,
                                                       schedule):
    run(tmp_path / "straight", splits, epochs=3, checkpoint_every=10, lr_schedule=schedule)

    original = Trainer._train_step

    def step_then_signal(self, x, y, *args):
        loss = original(self, x, y, *args)
        if self.state.step + 1 == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, as SLURM sends it
        return loss

    monkeypatch.setattr(Trainer, "_train_step", step_then_signal)
    with pytest.raises(Interrupted, match="SIGTERM|signal"):
        run(tmp_path / "resumed", splits, epochs=3, checkpoint_every=10, lr_schedule=schedule)
    assert (tmp_path / "resumed/resume.pt").exists()
    assert not (tmp_path / "resumed/model.pt").exists()
    monkeypatch.setattr(Trainer, "_train_step", original)
    run(tmp_path / "resumed", splits, epochs=3, checkpoint_every=10, lr_schedule=schedule,
        timings=tmp_path / "resumed.timings.json")
    straight = (tmp_path / "straight/model.pt").read_bytes()
    assert (tmp_path / "resumed/model.pt").read_bytes() == straight
    history = (tmp_path / "straight/history.json").read_bytes()
    assert (tmp_path / "resumed/history.json").read_bytes() == history
    timings = json.loads((tmp_path / "resumed.timings.json").read_text())
    assert len(timings["epoch_seconds"]) == 3  # the interrupted epoch's parts add up to one
    assert timings["train_seconds"] == pytest.approx(sum(timings["epoch_seconds"]))


def test_resume_checkpoint_of_other_settings_is_ignored(tmp_path, splits, monkeypatch):
    original = Trainer._train_step

    def interrupt(self, x, y, *args):
        loss = original(self, x, y, *args)
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


def made_settings(tmp_path, section):
    """Every job's settings file for params.yaml with ``models.made`` = section, written as the
    workflow does; returns the folder of made's seed-0 run settings."""
    write_settings(validate_params({"models": {"made": section}}), tmp_path / "settings")
    return tmp_path / "settings/made/mnist/seed0"


def test_cli_train_evaluate_sample(tmp_path, processed):
    settings = made_settings(tmp_path, {
        "arch": {"hidden": [32]}, "train": {"epochs": 1, "max_steps": 5},
        "sample": {"n": 16, "nrow": 4, "completions": 2, "completion_samples": 2}})
    out, timings = tmp_path / "made", tmp_path / "timings/train.json"
    result = cli("--threads", "1", "train", "--settings", str(settings / "train.json"),
                 "--data-dir", str(processed), "--out-dir", str(out), "--timings", str(timings),
                 "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "history.json").read_text())["steps"] == 5
    metrics = tmp_path / "metrics.json"
    result = cli("evaluate", "--settings", str(settings / "evaluate.json"), "--run-dir", str(out),
                 "--test", str(processed / "test.npz"), "--timings", str(timings),
                 "--out", str(metrics), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    values = json.loads(metrics.read_text())
    assert values["test_images"] == 10_000 and values["nll_kind"] == "exact"
    assert values["test_bits_per_dim"] == pytest.approx(values["test_nll_nats"] / (784 * 0.6931471805599453))
    assert values["model"] == "made" and values["seed"] == 0 and values["steps"] == 5
    assert values["train_seconds"] == json.loads(timings.read_text())["train_seconds"]
    assert values["train_device"] == "cpu" and values["epochs_trained"] == 1
    result = cli("sample", "--settings", str(settings / "sample.json"), "--run-dir", str(out),
                 "--test", str(processed / "test.npz"), "--out-npz", str(tmp_path / "s.npz"),
                 "--out-dir", str(tmp_path / "figures"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("samples.png", "completions.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(tmp_path / "s.npz") as arrays:
        assert arrays["samples"].shape == (16, 1, 28, 28)


@pytest.mark.parametrize("text, message", [
    ("models: {made: {arch: {hiden: 3}}}", "unknown key models.made.arch.hiden"),
    ("models: {made: {train: {lr: -0.1}}}",
     "models.made.train.lr: -0.1 is less than or equal to the minimum of 0"),
    ("models: {made: {arch: ", "not valid YAML"),
])
def test_cli_rejects_bad_params_in_one_line(tmp_path, capsys, text, message):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    assert main(["settings", str(params), "--out-dir", str(tmp_path / "settings")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and message in stderr
    assert not (tmp_path / "settings").exists()


def test_cli_rejects_a_hand_edited_settings_file_in_one_line(tmp_path, processed, capsys):
    settings = made_settings(tmp_path, {"arch": {"hidden": [32]}})
    edited = json.loads((settings / "train.json").read_text())
    edited["arch"]["hiden"] = 3
    (settings / "train.json").write_text(json.dumps(edited))
    assert main(["train", "--settings", str(settings / "train.json"), "--data-dir", str(processed),
                 "--out-dir", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "models.made.arch: unknown key hiden" in stderr
    assert not (tmp_path / "out").exists()


def test_cli_missing_data_is_a_clear_error(tmp_path, capsys):
    settings = made_settings(tmp_path, {})
    assert main(["train", "--settings", str(settings.parent.parent / "nade/seed0/train.json"),
                 "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")]) == 1
    stderr = capsys.readouterr().err  # no settings file: params.yaml has no nade
    assert stderr.count("\n") == 1 and "missing settings file" in stderr
    assert main(["train", "--settings", str(settings / "train.json"), "--data-dir", str(tmp_path),
                 "--out-dir", str(tmp_path / "out")]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "missing" in stderr and "prepare" in stderr
    assert not (tmp_path / "out").exists()


def test_grayscale_variant_trains_a_256_level_pixelcnn(tmp_path, splits):
    """data.variant: grayscale gives a 256-way categorical model, scored in bits/dim."""
    from genzoo.evaluate import evaluate

    arch = {"channels": 8, "blocks": 1, "head_channels": 8, "embed_dim": 4}
    train("pixelcnn", arch, TrainConfig(epochs=1, max_steps=3, batch_size=50),
          train_split=splits[0], val_split=splits[1], out_dir=tmp_path, seed=0,
          variant="grayscale", progress=False, log=lambda m: None)
    model, payload = checkpoint.load_model(tmp_path / "model.pt")
    assert payload["variant"] == "grayscale" and model.levels == 256
    metrics = evaluate(tmp_path, splits[1].subset(50), {"model": "pixelcnn", "seed": 0})
    assert metrics["variant"] == "grayscale" and metrics["test_images"] == 50
    assert 0 < metrics["test_bits_per_dim"] <= 8.5  # near log2(256) = 8 untrained, finite
    with pytest.raises(ValueError, match="binarized"):
        train("nade", ARCH["nade"], TrainConfig(epochs=1, max_steps=1), train_split=splits[0],
              val_split=splits[1], out_dir=tmp_path / "nade", variant="grayscale")


@pytest.mark.parametrize("name", ["params.yaml", "params-paper.yaml", "tests/smoke/params.yaml"])
def test_shipped_params_files_are_valid(name):
    result = cli("validate", str(REPO / name))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


# -- mixed precision ------------------------------------------------------------------------------

def smoke_arch(name: str) -> dict:
    """The model's arch in the smoke config (tiny networks; {} where it keeps the defaults)."""
    return smoke_params()["models"][name].get("arch", {})


@pytest.mark.parametrize("name", smoke_models())
def test_every_model_trains_a_step_in_bf16_and_stays_fp32(name):
    """``train.precision: bf16`` runs every model's forward under autocast; its losses are finite
    and the weights, their gradients and the update stay float32."""
    from genzoo.models import build_model
    from genzoo.train import make_optimizers, training_step

    torch.manual_seed(0)
    model = build_model(name, smoke_arch(name), image_shape=(1, 28, 28), levels=2)
    config = TrainConfig(precision="bf16", lr=0.01)
    optimizers = make_optimizers(model, config)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    x = (torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    losses = training_step(model, optimizers, x, torch.arange(4), config)
    assert losses and all(torch.isfinite(loss) for loss in losses.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    changed = [key for key, value in model.state_dict().items()
               if value.is_floating_point() and not torch.equal(value, before[key])]
    assert changed, f"{name}: no weight moved"


def test_auto_precision_is_bf16_only_where_native(monkeypatch):
    from genzoo import train as train_module

    cpu = torch.device("cpu")
    assert train_module.training_dtype("fp32", cpu) == torch.float32
    assert train_module.training_dtype("bf16", cpu) == torch.bfloat16
    for native in (True, False):
        monkeypatch.setattr(train_module, "native_bf16", lambda device, native=native: native)
        assert train_module.training_dtype("auto", cpu) == (torch.bfloat16 if native
                                                            else torch.float32)


def test_val_images_scores_the_first_images_of_the_validation_split(tmp_path, splits, monkeypatch):
    from genzoo import train as train_module

    scored = []
    real = train_module.per_image_nll

    def recording(model, images, labels, **kwargs):
        scored.append(images.clone())
        return real(model, images, labels, **kwargs)

    monkeypatch.setattr(train_module, "per_image_nll", recording)
    run(tmp_path / "subset", splits, val_images=50)
    assert len(scored) == 2 and all(torch.equal(s, splits[1].images("binarized")[:50]) for s in scored)
    scored.clear()
    run(tmp_path / "all", splits)
    assert [len(s) for s in scored] == [len(splits[1])] * 2
