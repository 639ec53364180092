"""The VAE's and VQ-VAE's pipeline stages (genzoo.latent) on tiny synthetic splits and models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo import checkpoint
from genzoo.cli import main
from genzoo.config import SampleConfig, TrainConfig
from genzoo.data import Split, epoch_batches, load_split, save_npz
from genzoo.latent import (code_levels, encode_splits, evaluate_vae, evaluate_vqvae, fit_prior,
                           sample_latent)
from genzoo.models.vae import VAE, VAEConfig
from genzoo.models.vqvae import VQVAE, VQVAEConfig
from genzoo.report import model_rows
from genzoo.train import Trainer

N = 40  # images per split


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


def save_model(model, path: Path, name: str) -> Path:
    checkpoint.save(path, checkpoint.model_payload(name, model, variant="binarized", epoch=1,
                                                   step=1, val_nll=0.0))
    return path


@pytest.fixture
def vqvae_run(tmp_path):
    """A random tiny VQ-VAE, its codes and a prior fitted on them for two steps."""
    processed = write_processed(tmp_path / "processed")
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig(codes=5, code_dim=3, hidden=4, res_blocks=0))
    model_path = save_model(model, tmp_path / "vqvae/model.pt", "vqvae")
    codes = encode_splits(model_path, processed, tmp_path / "vqvae/codes", seed=0, batch_size=16)
    section = {"kind": "cond_gated_pixelcnn", "arch": {"channels": 4, "layers": 2, "head_channels": 4},
               "train": {"epochs": 1, "max_steps": 2, "batch_size": 20}}
    fit_prior(section, tmp_path / "vqvae/codes", tmp_path / "vqvae/prior", seed=0, progress=False,
              log=lambda message: None)
    return tmp_path, processed, model, codes


def test_encode_writes_code_grids_in_the_processed_layout(vqvae_run):
    tmp_path, processed, model, codes = vqvae_run
    for name, path in codes.items():
        split = load_split(path)
        assert split.gray.shape == (N, 1, 7, 7) and split.gray.dtype == torch.uint8
        assert int(split.gray.max()) < 5 and code_levels(path) == 5
        assert torch.equal(split.labels, load_split(processed / f"{name}.npz").labels)
    test = load_split(processed / "test.npz")
    expected = model.eval().encode(test.binary.float())
    assert torch.equal(load_split(codes["test"]).images("codes").squeeze(1).long(), expected)


def test_prior_checkpoint_describes_itself(vqvae_run):
    tmp_path = vqvae_run[0]
    prior, payload = checkpoint.load_model(tmp_path / "vqvae/prior/model.pt")
    assert payload["model"] == "cond_gated_pixelcnn" and payload["variant"] == "codes"
    assert prior.levels == 5 and tuple(prior.image_shape) == (1, 7, 7)
    history = json.loads((tmp_path / "vqvae/prior/history.json").read_text())
    assert history["steps"] == 2


def test_vqvae_metrics_add_up_to_the_bound(vqvae_run):
    tmp_path, processed, _, _ = vqvae_run
    metrics = evaluate_vqvae(tmp_path / "vqvae/model.pt", tmp_path / "vqvae/prior/model.pt",
                             load_split(processed / "test.npz"), batch_size=16,
                             prior_history_path=tmp_path / "vqvae/prior/history.json")
    assert metrics["nll_kind"] == "bound" and metrics["nll_conditional"] is True
    assert metrics["test_nll_nats"] == pytest.approx(
        metrics["reconstruction_nll_nats"] + metrics["prior_nll_nats"])
    assert 1 <= metrics["code_perplexity"] <= 5 and 1 <= metrics["codes_used"] <= 5
    assert 0 <= metrics["reconstruction_pixel_error"] <= 1
    assert metrics["prior_nll_nats"] < 49 * np.log(5) + 5  # near uniform after two steps


def test_vqvae_samples_through_its_prior(vqvae_run, tmp_path):
    run_dir, processed, _, _ = vqvae_run
    out = tmp_path / "figures"
    sample_latent(run_dir / "vqvae/model.pt", config=SampleConfig(n=4, nrow=2), seed=0,
                  out_npz=tmp_path / "samples.npz", out_dir=out,
                  test=load_split(processed / "test.npz"), prior_path=run_dir / "vqvae/prior/model.pt")
    with np.load(tmp_path / "samples.npz") as arrays:  # conditional prior: one row per digit
        assert arrays["samples"].shape == (100, 1, 28, 28) and arrays["codes"].shape == (100, 7, 7)
        assert list(arrays["labels"][::10]) == list(range(10))
    assert {p.name for p in out.glob("*.png")} == {"samples.png", "reconstructions.png"}
    with pytest.raises(ValueError, match="needs its prior"):
        sample_latent(run_dir / "vqvae/model.pt", config=SampleConfig(), seed=0,
                      out_npz=tmp_path / "x.npz", out_dir=out)


def test_vae_evaluation_and_figures(tmp_path):
    processed = write_processed(tmp_path / "processed")
    torch.manual_seed(0)
    path = save_model(VAE(VAEConfig(hidden=[8], latent=2)), tmp_path / "vae.pt", "vae")
    test = load_split(processed / "test.npz")
    metrics = evaluate_vae(path, test, iwae_k=50, iwae_batch_size=16, batch_size=16, seed=0)
    assert metrics["nll_kind"] == "bound" and metrics["iwae_k"] == 50
    assert metrics["test_nll_nats"] < metrics["neg_elbo_nats"]  # L_50 >= L_1 on average
    assert metrics == evaluate_vae(path, test, iwae_k=50, iwae_batch_size=16, batch_size=16, seed=0)
    sample_latent(path, config=SampleConfig(n=4, nrow=2), seed=0, out_npz=tmp_path / "s.npz",
                  out_dir=tmp_path / "figures", test=test)
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} == {"samples.png",
                                                                      "interpolation.png"}


def test_codes_variant_trains_on_the_levels_as_they_are(tmp_path):
    gray = torch.randint(0, 7, (10, 1, 3, 3), dtype=torch.uint8)
    split = Split(gray=gray, labels=torch.zeros(10, dtype=torch.int64))
    [(x, _)] = list(epoch_batches(split, variant="codes", batch_size=10, seed=0, epoch=0))
    assert torch.equal(x.sort(0).values, gray.float().sort(0).values)  # shuffled, not binarized
    trainer = Trainer("gated_pixelcnn", {"channels": 2, "layers": 1, "head_channels": 2},
                      TrainConfig(epochs=1), train_split=split, val_split=split, out_dir=tmp_path,
                      variant="codes", levels=7, progress=False)
    assert trainer.model.levels == 7


def test_cli_refuses_a_vqvae_evaluation_without_prior(vqvae_run, capsys):
    tmp_path, processed = vqvae_run[0], vqvae_run[1]
    code = main(["evaluate", "--model", "vqvae", "--checkpoint", str(tmp_path / "vqvae/model.pt"),
                 "--test", str(processed / "test.npz"), "--out", str(tmp_path / "m.json")])
    assert code == 1 and "needs its prior" in capsys.readouterr().err


def test_report_puts_models_without_an_image_nll_last(tmp_path):
    paths = []
    for name, nats in (("nade", 90.0), ("vqvae", None), ("vae", 85.0)):
        row = {"model": name, "test_nll_nats": nats, "nll_kind": "none" if nats is None else "bound"}
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(row))
    rows, _ = model_rows(paths, [], [])
    assert [row["model"] for row in rows] == ["vae", "nade", "vqvae"]
