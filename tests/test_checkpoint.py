"""Checkpoints: self-describing, loaded with ``weights_only=True`` (a file carrying code is refused
and the code never runs), and a damaged file is one line naming it."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo import checkpoint
from genzoo.cli import main
from genzoo.config import TrainConfig
from genzoo.data import Split, save_npz
from genzoo.models.made import MADE, MADEConfig
from genzoo.train import Trainer


class SideEffect:
    """Unpickling it runs a shell command (creates ``marker``): what a hostile file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def tiny_made() -> MADE:
    torch.manual_seed(0)
    return MADE(MADEConfig(hidden=[8]), image_shape=(1, 4, 4))


def save_made(path: Path, **extra) -> Path:
    checkpoint.save(path, checkpoint.model_payload("made", tiny_made(), variant="binarized", epoch=1,
                                                   step=1, val_nll=0.0, **extra))
    return path


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint that looks like genzoo's, with a pickled object that has a side effect."""
    payload = checkpoint.model_payload("made", tiny_made(), variant="binarized", epoch=1, step=1,
                                       val_nll=0.0)
    payload["history"] = SideEffect(marker)
    torch.save(payload, path)
    return path


def test_a_checkpoint_round_trips(tmp_path):
    path = save_made(tmp_path / "model.pt")
    model, payload = checkpoint.load_model(path)
    assert isinstance(model, MADE) and not model.training
    assert payload["format"] == checkpoint.FORMAT and payload["model"] == "made"
    for key, value in tiny_made().state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_the_side_effect_is_real_without_weights_only(tmp_path):
    """The control: the hostile file does run its command when loaded the unsafe way."""
    marker = tmp_path / "ran"
    path = hostile_checkpoint(tmp_path / "model.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = hostile_checkpoint(tmp_path / "model.pt", marker)
    for load in (checkpoint.load, checkpoint.load_model, lambda p: checkpoint.load_run(p.parent)):
        with pytest.raises(ValueError) as error:
            load(path)
        message = str(error.value)
        assert str(path) in message and "not a genzoo checkpoint" in message
        assert "\n" not in message
    assert not marker.exists(), "loading the checkpoint ran the code it carried"


def test_a_hostile_resume_file_is_ignored_without_running_it(tmp_path):
    gray = torch.randint(0, 256, (20, 1, 4, 4), dtype=torch.uint8)
    split = Split(gray=gray, labels=torch.zeros(20, dtype=torch.int64),
                  binary=(gray > 127).to(torch.uint8))
    messages = []
    trainer = Trainer("made", {"hidden": [8]}, TrainConfig(epochs=1, batch_size=10),
                      train_split=split, val_split=split, out_dir=tmp_path, progress=False,
                      log=messages.append)
    marker = tmp_path / "ran"
    hostile_checkpoint(trainer.resume_path, marker)
    assert trainer.try_resume() is False
    assert any("ignoring" in message and str(trainer.resume_path) in message for message in messages)
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_line_naming_the_file(tmp_path):
    path = save_made(tmp_path / "run/model.pt")
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError) as error:
        checkpoint.load_model(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "damaged" in message


def test_cli_reports_a_damaged_checkpoint_in_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    path = save_made(run_dir / "model.pt")
    path.write_bytes(path.read_bytes()[:100])
    settings = tmp_path / "evaluate.json"
    settings.write_text(json.dumps({"model": "made", "seed": 0, "variant": "binarized",
                                    "batch_size": 10}))
    test = tmp_path / "test.npz"
    gray = np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8)
    save_npz(test, gray=gray, binary=(gray > 127).astype(np.uint8), labels=np.arange(5))
    assert main(["evaluate", "--settings", str(settings), "--run-dir", str(run_dir), "--test",
                 str(test), "--out", str(tmp_path / "m.json"), "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error and "damaged" in error
    assert not (tmp_path / "m.json").exists()


def test_other_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing checkpoint"):
        checkpoint.load(tmp_path / "nothing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=f"other.pt: not a {checkpoint.FORMAT} file"):
        checkpoint.load(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="damaged"):
        checkpoint.load(tmp_path / "text.pt")
