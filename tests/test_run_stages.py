"""A run's jobs after training, on tiny synthetic splits and latent-variable models: the VQ-VAE's
phases (codes, then the prior fitted on them) through ``train.run_phase``, and the generic evaluate
and sample stages that load the complete model (its phases attached) and let it score and draw
itself. Every job's settings come from ``genzoo.settings.run_settings``, as the workflow writes them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo import checkpoint
from genzoo.cli import main
from genzoo.config import TrainConfig, validate_params
from genzoo.data import DataError, Split, epoch_batches, load_split, save_npz
from genzoo.evaluate import evaluate
from genzoo.models.vqvae import code_levels
from genzoo.report import model_rows
from genzoo.sample import sample
from genzoo.settings import run_settings, write_settings
from genzoo.train import Trainer, run_phase, train

N = 40  # images per split
PRIOR = {"kind": "cond_gated_pixelcnn", "arch": {"channels": 4, "layers": 2, "head_channels": 4},
         "train": {"epochs": 1, "max_steps": 2, "batch_size": 20}}
PARAMS = {
    "models": {
        "vqvae": {"arch": {"codes": 5, "code_dim": 3, "hidden": 4, "res_blocks": 0},
                  "train": {"epochs": 1, "max_steps": 2, "batch_size": 20},
                  "prior": PRIOR, "sample": {"n": 4, "nrow": 2}},
        "vae": {"arch": {"hidden": [8], "latent": 2},
                "train": {"epochs": 1, "max_steps": 2, "batch_size": 20},
                "sample": {"n": 4, "nrow": 2}},
    },
    "evaluate": {"batch_size": 16, "iwae_k": 50, "iwae_batch_size": 16},
}


def write_processed(folder: Path) -> Path:
    """data/processed-like splits of N random 28x28 images (val/test with fixed bits)."""
    generator = torch.Generator().manual_seed(0)
    for stream, name in enumerate(("train", "val", "test")):
        gray = torch.randint(0, 256, (N, 28, 28), generator=generator, dtype=torch.uint8)
        arrays = {"gray": gray.numpy(), "labels": (np.arange(N) % 10).astype(np.int64)}
        if name != "train":
            arrays["binary"] = (gray > 127).numpy().astype(np.uint8)
        save_npz(folder / f"{name}.npz", **arrays)
    return folder


def train_run(name: str, processed: Path, run_dir: Path, timings: Path) -> dict:
    """Train ``name`` of PARAMS for its two steps as the train job does; return its jobs' settings."""
    jobs = run_settings(validate_params(PARAMS), name, 0)
    settings = jobs["train"]
    train(name, settings["arch"], TrainConfig(**settings["train"]),
          train_split=load_split(processed / "train.npz"), val_split=load_split(processed / "val.npz"),
          out_dir=run_dir, seed=settings["seed"], variant=settings["variant"],
          eval_batch_size=settings["eval_batch_size"], timings=timings, progress=False,
          log=lambda message: None)
    return jobs


@pytest.fixture(scope="module")
def vqvae_run(tmp_path_factory):
    """A tiny VQ-VAE trained for two steps, its codes phase, and its prior phase (a conditional
    Gated PixelCNN fitted on the codes for two steps)."""
    root = tmp_path_factory.mktemp("latent")
    processed = write_processed(root / "processed")
    run_dir, timings = root / "vqvae/seed0", root / "timings"
    jobs = train_run("vqvae", processed, run_dir, timings / "train.json")
    assert list(jobs) == ["train", "codes", "prior", "evaluate", "sample"]
    run_phase(run_dir, jobs["codes"], data_dir=processed, device="cpu")
    run_phase(run_dir, jobs["prior"], data_dir=processed, timings=timings / "prior.json",
              device="cpu")
    return root, processed, run_dir, jobs


def test_codes_phase_writes_code_grids_in_the_processed_layout(vqvae_run):
    _, processed, run_dir, _ = vqvae_run
    model, _ = checkpoint.load_model(run_dir / "model.pt")
    for name in ("train", "val", "test"):
        path = run_dir / "codes" / f"{name}.npz"
        split = load_split(path)
        assert split.gray.shape == (N, 1, 7, 7) and split.gray.dtype == torch.uint8
        assert int(split.gray.max()) < 5 and code_levels(path) == 5
        assert torch.equal(split.labels, load_split(processed / f"{name}.npz").labels)
    test = load_split(processed / "test.npz")
    expected = model.eval().encode(test.binary.float())
    codes = load_split(run_dir / "codes/test.npz").images("codes").squeeze(1).long()
    assert torch.equal(codes, expected)


def test_prior_checkpoint_describes_itself(vqvae_run):
    root, _, run_dir, _ = vqvae_run
    prior, payload = checkpoint.load_model(run_dir / "prior/model.pt")
    assert payload["model"] == "cond_gated_pixelcnn" and payload["variant"] == "codes"
    assert prior.levels == 5 and tuple(prior.image_shape) == (1, 7, 7)
    history = json.loads((run_dir / "prior/history.json").read_text())
    assert history["steps"] == 2
    assert not any("seconds" in key for key in history)  # wall-clock times go to the timings
    assert json.loads((root / "timings/prior.json").read_text())["train_seconds"] > 0


def test_the_loaded_run_is_the_complete_model(vqvae_run):
    _, _, run_dir, _ = vqvae_run
    model, payload = checkpoint.load_run(run_dir)
    assert payload["model"] == "vqvae" and model.prior is not None and model.conditional
    assert model.prior_facts == {"model": "cond_gated_pixelcnn", "epoch": 1, "step": 2}
    images = model.sample(10, y=torch.arange(10), generator=torch.Generator().manual_seed(0))
    assert images.shape == (10, 1, 28, 28) and set(images.unique().tolist()) <= {0.0, 1.0}


def test_vqvae_metrics_add_up_to_the_bound(vqvae_run):
    root, processed, run_dir, jobs = vqvae_run
    timings = [root / "timings/train.json", root / "timings/prior.json"]
    metrics = evaluate(run_dir, load_split(processed / "test.npz"), jobs["evaluate"],
                       timings=timings)
    assert metrics["model"] == "vqvae" and metrics["seed"] == 0
    assert metrics["nll_kind"] == "bound" and metrics["nll_conditional"] is True
    assert metrics["test_images"] == N
    assert metrics["test_nll_nats"] == pytest.approx(
        metrics["reconstruction_nll_nats"] + metrics["prior_nll_nats"])
    assert 1 <= metrics["code_perplexity"] <= 5 and 1 <= metrics["codes_used"] <= 5
    assert 0 <= metrics["reconstruction_pixel_error"] <= 1
    assert metrics["prior_nll_nats"] < 49 * np.log(5) + 5  # near uniform after two steps
    assert metrics["prior_model"] == "cond_gated_pixelcnn" and metrics["prior_steps"] == 2
    # The run's facts: its training (checkpoint, history, timings) and the prior's timings.
    assert metrics["steps"] == 2 and metrics["epochs_trained"] == 1
    assert metrics["train_device"] == "cpu" and metrics["train_seconds"] > 0
    assert metrics["prior_train_seconds"] > 0
    assert "label_agreement" not in metrics  # the VQ-VAE's score does not use the judge


def test_vqvae_samples_through_its_prior(vqvae_run, tmp_path):
    _, processed, run_dir, jobs = vqvae_run
    out = tmp_path / "figures"
    sample(run_dir, jobs["sample"], out_npz=tmp_path / "samples.npz", out_dir=out,
           test=load_split(processed / "test.npz"))
    with np.load(tmp_path / "samples.npz") as arrays:  # conditional prior: one row per digit
        assert arrays["samples"].shape == (100, 1, 28, 28) and arrays["codes"].shape == (100, 7, 7)
        assert list(arrays["labels"][::10]) == list(range(10))
    assert {p.name for p in out.glob("*.png")} == {"samples.png", "reconstructions.png"}


def without_prior(run_dir: Path, target: Path) -> Path:
    """A copy of the run whose prior phase has not run."""
    shutil.copytree(run_dir, target)
    shutil.rmtree(target / "prior")
    return target


def test_a_run_without_its_prior_is_refused_by_the_stages(vqvae_run, tmp_path):
    root, processed, run_dir, jobs = vqvae_run
    bare = without_prior(run_dir, tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match=r"prior/model\.pt"):
        sample(bare, jobs["sample"], out_npz=tmp_path / "x.npz", out_dir=tmp_path / "figures")
    with pytest.raises(FileNotFoundError, match=r"prior/model\.pt"):
        evaluate(bare, load_split(processed / "test.npz"), jobs["evaluate"])
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "figures").exists()


def test_cli_refuses_a_vqvae_evaluation_without_prior(vqvae_run, tmp_path, capsys):
    _, processed, run_dir, _ = vqvae_run
    bare = without_prior(run_dir, tmp_path / "bare")
    write_settings(validate_params(PARAMS), tmp_path / "settings")
    code = main(["evaluate", "--settings", str(tmp_path / "settings/vqvae/mnist/seed0/evaluate.json"),
                 "--run-dir", str(bare), "--test", str(processed / "test.npz"),
                 "--out", str(tmp_path / "m.json"), "--device", "cpu"])
    error = capsys.readouterr().err
    assert code == 1 and "prior/model.pt" in error and error.count("\n") == 1
    assert not (tmp_path / "m.json").exists()


def test_phase_order_and_names_are_checked(vqvae_run, tmp_path):
    _, processed, run_dir, jobs = vqvae_run
    fresh = without_prior(run_dir, tmp_path / "fresh")
    shutil.rmtree(fresh / "codes")
    with pytest.raises(DataError, match=r"codes/train\.npz"):  # the prior needs the codes first
        run_phase(fresh, jobs["prior"], data_dir=processed, device="cpu")
    with pytest.raises(ValueError, match="vqvae has no phase 'decode'"):
        run_phase(fresh, {**jobs["codes"], "phase": "decode"}, data_dir=processed, device="cpu")


def test_vae_evaluation_and_figures(tmp_path):
    processed = write_processed(tmp_path / "processed")
    run_dir, timings = tmp_path / "vae/seed0", tmp_path / "timings/train.json"
    jobs = train_run("vae", processed, run_dir, timings)
    assert list(jobs) == ["train", "evaluate", "sample"]  # no phases
    test = load_split(processed / "test.npz")
    metrics = evaluate(run_dir, test, jobs["evaluate"], timings=[timings])
    assert metrics["nll_kind"] == "bound" and metrics["iwae_k"] == 50
    assert metrics["test_nll_nats"] < metrics["neg_elbo_nats"]  # L_50 >= L_1 on average
    assert metrics == evaluate(run_dir, test, jobs["evaluate"], timings=[timings])
    sample(run_dir, jobs["sample"], out_npz=tmp_path / "s.npz", out_dir=tmp_path / "figures",
           test=test)
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} == {"samples.png",
                                                                      "interpolation.png"}
    with np.load(tmp_path / "s.npz") as arrays:
        assert arrays["samples"].shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="vae has no phase 'prior'"):
        run_phase(run_dir, {"model": "vae", "seed": 0, "phase": "prior"}, data_dir=processed,
                  device="cpu")


def test_codes_variant_trains_on_the_levels_as_they_are(tmp_path):
    gray = torch.randint(0, 7, (10, 1, 3, 3), dtype=torch.uint8)
    split = Split(gray=gray, labels=torch.zeros(10, dtype=torch.int64))
    [(x, _)] = list(epoch_batches(split, variant="codes", batch_size=10, seed=0, epoch=0))
    assert torch.equal(x.sort(0).values, gray.float().sort(0).values)  # shuffled, not binarized
    trainer = Trainer("gated_pixelcnn", {"channels": 2, "layers": 1, "head_channels": 2},
                      TrainConfig(epochs=1), train_split=split, val_split=split, out_dir=tmp_path,
                      variant="codes", levels=7, progress=False)
    assert trainer.model.levels == 7


def test_report_puts_models_without_an_image_nll_last(tmp_path):
    paths = []
    for name, nats in (("nade", 90.0), ("vqvae", None), ("vae", 85.0)):
        row = {"model": name, "test_nll_nats": nats, "nll_kind": "none" if nats is None else "bound"}
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(row))
    rows, _ = model_rows(paths, [], [])
    assert [row["model"] for row in rows] == ["vae", "nade", "vqvae"]
