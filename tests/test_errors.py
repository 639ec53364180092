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


# -- download: a damaged file on a mirror ----------------------------------------------------------


def test_a_damaged_gzip_on_the_mirror_is_one_line_and_is_not_kept(tmp_path, mirror, monkeypatch, capsys):
    """A flipped byte inside the deflate stream is a zlib.error (not BadGzipFile): it used to end
    the download with a traceback."""
    import shutil

    monkeypatch.delenv("GENZOO_DATA_MIRROR", raising=False)
    bad = tmp_path / "mirror"
    shutil.copytree(mirror, bad)
    payload = bytearray((bad / "train-labels-idx1-ubyte.gz").read_bytes())
    payload[100] ^= 0xFF
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(bytes(payload))
    assert main(["download", "--quiet", "--out-dir", str(tmp_path / "raw"), "--mirror", str(bad)]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"genzoo download: error: could not get train-labels-idx1-ubyte.gz; tried: {bad} (truncated "
        "or corrupt gzip (Error -3 while decompressing data: invalid distance too far back)) (to use "
        "a local copy, set $GENZOO_DATA_MIRROR to the folder holding it)\n")
    assert not (tmp_path / "raw/train-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "raw").glob(".*tmp"))


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
    out = tmp_path / "data/models/made/mnist/seed0"
    code = main(["train", "--settings", str(tmp_path / "settings/made/mnist/seed0/train.json"),
                 "--data-dir", str(processed), "--out-dir", str(out), "--device", "cpu",
                 "--timings", str(tmp_path / "timings.json")])
    assert code == 1
    lines = capsys.readouterr().err.splitlines()  # the trainer's progress lines, then the error
    assert [line for line in lines if "error" in line] == lines[-1:]
    line = lines[-1]
    assert line.startswith("genzoo train: error: made: diverged: validation NLL ")
    assert "after epoch 1 (step 5)" in line and "543.4 nats" in line and "lr (now 1e+06)" in line
    assert not (out / "model.pt").exists() and not (tmp_path / "timings.json").exists()


# -- params files: YAML pitfalls and which file is wrong ------------------------------------------


@pytest.mark.parametrize("text, where, problem", [
    ("models:\n  made:\n    train: {lr: 0.001\n", "line 4, column 1",
     "expected ',' or '}', but got '<stream end>' (while parsing a flow mapping that starts at line 3, column 12)"),
    ("models:\n\tmade: {}\n", "line 2, column 1", "(YAML indents with spaces, not tabs)"),
    ("models:\n  made:\n    train:\n      lr: 0.1\n     epochs: 2\n", "line 5, column 6",
     "expected <block end>, but found '<block mapping start>'"),
])
def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path, capsys, text, where, problem):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    assert main(["validate", str(params)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"genzoo validate: error: {params}: {where}: not valid YAML: ")
    assert problem in line


@pytest.mark.parametrize("loader", ["genzoo", "yaml 1.1"])
def test_exponent_floats_are_numbers_whoever_reads_the_file(tmp_path, loader):
    """`1e-3` is a string to YAML 1.1 (PyYAML, and Snakemake, which reads params.yaml and every
    --configfile itself): the schema would refuse it as "'1e-3' is not of type 'number'"."""
    import yaml

    from genzoo.config import read_params_file

    text = "models:\n  made:\n    train: {lr: 1e-3, grad_clip: 5E-1, max_steps: 2e3, epochs: 3.0}\n"
    (tmp_path / "params.yaml").write_text(text)
    raw = read_params_file(tmp_path / "params.yaml") if loader == "genzoo" else yaml.safe_load(text)
    train = validate_params(raw)["models"]["made"]["train"]
    assert train["lr"] == 0.001 and train["grad_clip"] == 0.5
    assert train["max_steps"] == 2000 and type(train["max_steps"]) is int  # integer keys get ints
    assert train["epochs"] == 3 and type(train["epochs"]) is int
    assert TrainConfig(**train).lr == 0.001


@pytest.mark.parametrize("value, message", [
    ("'1e-3x'", "models.made.train.lr: '1e-3x' is not of type 'number'"),
    ("-1e-3", "models.made.train.lr: -0.001 is less than or equal to the minimum of 0"),
])
def test_what_is_no_number_is_still_refused(tmp_path, value, message):
    from genzoo.config import ParamsError, load_params

    (tmp_path / "params.yaml").write_text(f"models: {{made: {{train: {{lr: {value}}}}}}}\n")
    with pytest.raises(ParamsError, match=f"^{tmp_path / 'params.yaml'}: {message}$".replace(".", r"\.")):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match=r"max_steps: 0\.001 is not of type 'integer', 'null'"):
        validate_params({"models": {"made": {"train": {"max_steps": "1e-3"}}}})


def test_an_error_names_the_file_that_sets_the_key(tmp_path, capsys):
    """Several params files (as Snakemake's --configfile merges them): the message names the one
    that holds the bad key, not the first file."""
    (tmp_path / "params.yaml").write_text("models: {made: {train: {lr: 0.001}}}\n")
    (tmp_path / "extra.yaml").write_text("models: {made: {arch: {hiden: 3}}}\n")
    (tmp_path / "lr.yaml").write_text("models: {made: {train: {lr: -1}}}\n")
    settings = ["settings", "--out-dir", str(tmp_path / "settings")]
    files = {name: str(tmp_path / name) for name in ("params.yaml", "extra.yaml", "lr.yaml")}
    assert main([*settings, files["params.yaml"], files["extra.yaml"]]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"genzoo settings: error: {files['extra.yaml']}: unknown key models.made.arch.hiden "
        "(allowed: hidden, mask_seed, ordering)\n")
    assert main([*settings, files["params.yaml"], files["lr.yaml"]]) == 2
    assert one_line(capsys.readouterr().err).startswith(
        f"genzoo settings: error: {files['lr.yaml']}: models.made.train.lr: -1 is less than")
    assert main([*settings, files["lr.yaml"], files["params.yaml"]]) == 0  # the later file wins
    capsys.readouterr()
    (tmp_path / "settings").rename(tmp_path / "written")
    assert main([*settings, files["params.yaml"], str(tmp_path / "missing.yaml")]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"genzoo settings: error: {tmp_path / 'missing.yaml'}: no such params file\n")
    assert not (tmp_path / "settings").exists()
