"""What a user meets when something goes wrong, without Snakemake: one clear line naming the
problem, a non-zero exit, and nothing left behind that looks like a result (issue 10).
The same faults through Snakemake: tests/test_failures.py."""

from __future__ import annotations

import math

import pytest

from genzoo.cli import main
from genzoo.config import TrainConfig, validate_params
from genzoo.data import load_split
from genzoo.models import Trainable, build_model
from genzoo.models.classifier import Classifier
from genzoo.settings import write_settings
from genzoo.train import TrainingError, train


@pytest.fixture(scope="module")
def splits(processed):
    return (load_split(processed / "train.npz").subset(600),
            load_split(processed / "val.npz").subset(200))


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text


# -- divergence: a validation NLL worse than a model that learned nothing ------------------------


def test_trivial_nll_is_the_uniform_model():
    made = build_model("made", {"hidden": [8]}, image_shape=(1, 28, 28), levels=2)
    assert made.trivial_nll() == pytest.approx(784 * math.log(2)) == pytest.approx(543.43, abs=0.01)
    gray = build_model("pixelcnn", {"channels": 4, "blocks": 1, "head_channels": 4, "embed_dim": 2},
                       image_shape=(1, 28, 28), levels=256)
    assert gray.trivial_nll() == pytest.approx(784 * math.log(256))
    prior = build_model("gated_pixelcnn", {"channels": 4, "layers": 2, "head_channels": 4},
                        image_shape=(1, 7, 7), levels=8)  # the VQ-VAE's prior over 8 codes
    assert prior.trivial_nll() == pytest.approx(49 * math.log(8))
    judge = build_model("classifier", {"channels": 2, "features": 4}, image_shape=(1, 28, 28), levels=2)
    assert judge.trivial_nll() == pytest.approx(math.log(10))  # -log p(y|x) of a uniform guess


def test_a_diverged_run_stops_in_one_line_and_writes_nothing(tmp_path, splits):
    """MADE at lr 1e6 keeps a finite loss; its validation NLL after the first epoch is ~1e13."""
    out = tmp_path / "made"
    with pytest.raises(TrainingError) as caught:
        train("made", {"hidden": [16]}, TrainConfig(epochs=3, batch_size=50, lr=1e6),
              train_split=splits[0], val_split=splits[1], out_dir=out, progress=False,
              log=lambda message: None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("made: diverged: validation NLL ") and "after epoch 1 (step 12)" in message
    assert "more than twice the 543.4 nats of a model that learned nothing" in message
    assert "models.made.train.lr (now 1e+06)" in message and "models.made.train.grad_clip" in message
    assert not (out / "model.pt").exists() and not (out / "history.json").exists()


def test_after_the_first_epoch_a_run_must_beat_the_trivial_model(tmp_path, splits, monkeypatch):
    """The first epoch may end near the trivial NLL (a short run); later ones must be below it.
    With the bar at 300 nats, MADE's ~530 nats pass the first epoch (< 600) and fail the second."""
    monkeypatch.setattr(Trainable, "trivial_nll", lambda self: 300.0)
    logged = []
    with pytest.raises(TrainingError, match=r"^made: diverged: validation NLL 5\d\d\.\d+ nats after "
                       r"epoch 2 \(step 24\) is worse than the 300\.0 nats of a model that learned "
                       r"nothing \(uniform\); try a lower models\.made\.train\.lr \(now 0\.001\) or "
                       r"set models\.made\.train\.grad_clip \(now 5\)$"):
        train("made", {"hidden": [16]}, TrainConfig(epochs=3, batch_size=50, grad_clip=5.0),
              train_split=splits[0], val_split=splits[1], out_dir=tmp_path, progress=False,
              log=logged.append)
    assert [line.split(":")[0] for line in logged[1:]] == ["made epoch 1/3", "made epoch 2/3"]
    assert not (tmp_path / "model.pt").exists()


def test_the_classifier_is_judged_against_a_uniform_guess(tmp_path, splits, monkeypatch):
    """Its bar is ln 10 nats, and its params section is classifier.train, not models.*."""
    assert Classifier.trivial_nll is not Trainable.trivial_nll
    monkeypatch.setattr(Classifier, "trivial_nll", lambda self: 0.5)
    with pytest.raises(TrainingError, match=r"^classifier: diverged: .* after epoch 1 .* twice the "
                       r"0\.5 nats .* try a lower classifier\.train\.lr"):
        train("classifier", {"channels": 2, "features": 4}, TrainConfig(epochs=1, max_steps=2),
              train_split=splits[0], val_split=splits[1], out_dir=tmp_path, progress=False,
              log=lambda message: None)


def test_cli_train_of_a_diverging_run_exits_1_with_one_error_line(tmp_path, processed, capsys):
    write_settings(validate_params({"models": {"made": {
        "arch": {"hidden": [16]}, "train": {"epochs": 1, "max_steps": 5, "batch_size": 50, "lr": 1e6}}}}),
        tmp_path / "settings")
    out = tmp_path / "data/models/made/seed0"
    code = main(["train", "--settings", str(tmp_path / "settings/made/seed0/train.json"),
                 "--data-dir", str(processed), "--out-dir", str(out), "--device", "cpu",
                 "--timings", str(tmp_path / "timings.json")])
    assert code == 1
    lines = capsys.readouterr().err.splitlines()  # the trainer's progress lines, then the error
    assert [line for line in lines if "error" in line] == lines[-1:]
    line = lines[-1]
    assert line.startswith("genzoo train: error: made: diverged: validation NLL ")
    assert "after epoch 1 (step 5)" in line and "543.4 nats" in line and "lr (now 1e+06)" in line
    assert not (out / "model.pt").exists() and not (tmp_path / "timings.json").exists()
