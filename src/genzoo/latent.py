"""The latent-variable models' own stages: VAE scoring and figures, the VQ-VAE's second phase.

VAE (``models/vae.py``): the test NLL is the IWAE bound with k importance samples (Burda et al.
2015; k = 5000 in params-paper.yaml), reported beside the ELBO; figures: samples and a latent
interpolation strip (decoded points on the line between the posterior means of two test digits).

VQ-VAE (``models/vqvae.py``), after ``train`` has fitted the autoencoder:

* ``encode_splits`` (stage encode_codes): the trained encoder maps every split to its code grids,
  stored like data/processed (``gray`` = codes (N, 7, 7), ``labels``, and ``levels`` = K). The
  training images are binarized once with a fixed seed (the VQ-VAE trained on dynamic bits);
  validation and test use the stored bits.
* ``fit_prior`` (stage fit_prior): the zoo's Gated PixelCNN (or the class-conditional one) with K
  levels on the (1, 7, 7) code grid, trained by the one trainer (variant ``codes``).
* ``evaluate_vqvae`` / ``sample_latent``: reconstruction error, codebook usage, the prior's NLL
  per code grid, and an upper bound on the image NLL; prior samples decoded, reconstructions.

Why the bound is valid: the model that ``sample_vqvae`` samples from is
p(x) = sum_z p_prior(z) p(x | z), with p(x | z) the decoder's Bernoulli pixels. Every term of the
sum is non-negative, so p(x) >= p_prior(z(x)) p(x | z(x)) for the encoder's codes z(x), i.e.
-log p(x) <= -log p_prior(z(x)) - log p(x | z(x)). It is the ELBO with a point-mass posterior
q(z|x) = [z = z(x)], whose entropy is 0 because z is discrete (for a continuous latent the same
step would not be a bound). It is loose by -log p(z(x) | x) under the model's true posterior, and
with the class-conditional prior it bounds -log p(x | y), not -log p(x).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint
from .config import SampleConfig, TrainConfig
from .data import SPLITS, DataError, Split, fixed_binarization, load_split, save_npz
from .evaluate import bits_per_dim, nll_metrics, per_image_nll
from .models.base import draw_levels, pixel_log_prob
from .models.vae import VAE, iwae_nll
from .models.vqvae import VQVAE, code_usage
from .sample import NUM_DIGITS, class_labels, grid_png, write_outputs

PRIOR_KINDS = ("gated_pixelcnn", "cond_gated_pixelcnn")
TRAIN_CODES_STREAM = 3  # binarize() uses streams 0-2 for train/val/test
INTERPOLATION_PAIRS = 8  # rows of the interpolation strip
INTERPOLATION_STEPS = 10  # decoded points per row, both ends included
RECONSTRUCTIONS = 16  # test images shown with their reconstructions


def _load(path: Path, expected: type, device) -> tuple[Any, dict[str, Any]]:
    model, payload = checkpoint.load_model(Path(path), device)
    if not isinstance(model, expected):
        raise ValueError(f"{path}: a {payload['model']} checkpoint, expected {expected.__name__}")
    return model, payload


# -- VQ-VAE phase 2: codes and prior --------------------------------------------------------------


@torch.no_grad()
def encode_images(model: VQVAE, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Code grids (N, h, w) int64 of images (N, C, H, W) in {0, 1}."""
    return torch.cat([model.encode(images[i:i + batch_size].to(model.device, model.dtype)).cpu()
                      for i in range(0, len(images), batch_size)])


def encode_splits(checkpoint_path: Path, data_dir: Path, out_dir: Path, *, seed: int = 0,
                  batch_size: int = 1000, device="cpu") -> dict[str, Path]:
    """Write ``out_dir/{train,val,test}.npz``: each split's code grids, labels and K."""
    model, _ = _load(checkpoint_path, VQVAE, device)
    K = model.config.codes
    dtype = np.uint8 if K <= 256 else np.int16
    paths = {}
    for name in SPLITS:
        split = load_split(Path(data_dir) / f"{name}.npz")
        if split.binary is not None:
            bits = split.binary
        else:  # training bits are dynamic; the prior is fitted on one fixed draw
            gray = split.gray.numpy()
            bits = torch.from_numpy(fixed_binarization(gray, seed, TRAIN_CODES_STREAM))
        codes = encode_images(model, bits.float(), batch_size=batch_size)  # (N, h, w)
        paths[name] = Path(out_dir) / f"{name}.npz"
        save_npz(paths[name], gray=codes.numpy().astype(dtype), labels=split.labels.numpy(),
                 levels=np.array(K))
    return paths


def code_levels(path: Path) -> int:
    """K, the number of codes, stored beside the code grids by ``encode_splits``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing {path}: run the encode_codes stage first")
    with np.load(path) as arrays:
        if "levels" not in arrays:
            raise DataError(f"{path}: not a code file (no 'levels'); rerun encode_codes")
        return int(arrays["levels"])


def fit_prior(section: dict[str, Any], codes_dir: Path, out_dir: Path, **kwargs) -> dict[str, Any]:
    """Train the prior (``section`` = models.vqvae.prior: kind, arch, train) on the code grids;
    write ``out_dir/model.pt`` and ``history.json``. Returns the history."""
    from .config import build
    from .train import train

    kind = section["kind"]
    if kind not in PRIOR_KINDS:
        raise ValueError(f"models.vqvae.prior.kind must be one of {PRIOR_KINDS}, got {kind!r}")
    config = build(TrainConfig, section["train"], where="models.vqvae.prior.train")
    codes_dir = Path(codes_dir)
    return train(kind, section["arch"], config, train_split=load_split(codes_dir / "train.npz"),
                 val_split=load_split(codes_dir / "val.npz"), out_dir=Path(out_dir),
                 variant="codes", levels=code_levels(codes_dir / "train.npz"), **kwargs)


# -- evaluation -----------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_vae(checkpoint_path: Path, test: Split, *, history_path: Path | None = None,
                 iwae_k: int = 5000, iwae_batch_size: int = 100, batch_size: int = 1000,
                 seed: int = 0, device="cpu") -> dict[str, Any]:
    """Test NLL bound -L_k (IWAE, k = ``iwae_k``) and the negative ELBO, in nats and bits/dim."""
    model, payload = _load(checkpoint_path, VAE, device)
    images = test.images(payload["variant"])
    generator = torch.Generator(device=model.device).manual_seed(seed)
    elbo = torch.cat([-model.elbo(images[i:i + batch_size].to(model.device, model.dtype),
                                  generator=generator).double().cpu()
                      for i in range(0, len(images), batch_size)])
    iwae = iwae_nll(model, images, iwae_k, batch_size=iwae_batch_size, generator=generator)
    metrics = nll_metrics(model, payload, iwae, history_path=history_path)
    nats = elbo.mean().item()
    metrics.update(iwae_k=iwae_k, neg_elbo_nats=nats,
                   neg_elbo_bits_per_dim=bits_per_dim(nats, model.num_pixels))
    return metrics


@torch.no_grad()
def evaluate_vqvae(checkpoint_path: Path, prior_path: Path, test: Split, *,
                   history_path: Path | None = None, prior_history_path: Path | None = None,
                   batch_size: int = 1000, device="cpu") -> dict[str, Any]:
    """Reconstruction error, codebook usage, prior NLL per code grid and the image NLL bound
    -log p_prior(z(x)) - log p(x | z(x)) (see the module docstring for why it is a bound)."""
    model, payload = _load(checkpoint_path, VQVAE, device)
    prior, prior_payload = checkpoint.load_model(Path(prior_path), device)
    if prior.levels != model.config.codes or tuple(prior.image_shape) != model.code_shape:
        raise ValueError(f"{prior_path}: a prior over {prior.levels} codes on {prior.image_shape}, "
                         f"the VQ-VAE has {model.config.codes} codes on {model.code_shape}")
    images = test.images(payload["variant"])
    codes = encode_images(model, images, batch_size=batch_size)  # (N, h, w)
    recon, errors = [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(model.device, model.dtype)
        logits = model.decode(codes[i:i + batch_size].to(model.device))
        recon.append(-pixel_log_prob(logits, x, 2).double().cpu())
        errors.append(((logits > 0).to(x.dtype) != x).flatten(1).double().mean(1).cpu())
    recon = torch.cat(recon)
    prior_nll = per_image_nll(prior, codes.unsqueeze(1).to(prior.dtype), test.labels,
                              batch_size=batch_size, device=device)  # (N,) nats per code grid
    metrics = nll_metrics(model, payload, recon + prior_nll, history_path=history_path)
    usage = code_usage(codes, model.config.codes)
    code_dims = math.prod(model.code_shape)
    metrics.update(
        nll_kind="bound",
        nll_conditional=prior.conditional,
        reconstruction_nll_nats=recon.mean().item(),
        reconstruction_bits_per_dim=bits_per_dim(recon.mean().item(), model.num_pixels),
        reconstruction_pixel_error=torch.cat(errors).mean().item(),
        code_perplexity=usage["perplexity"], codes_used=int(usage["used_codes"]),
        codes=model.config.codes, code_grid=list(model.code_shape[1:]),
        prior_model=prior_payload["model"], prior_paper=type(prior).paper,
        prior_nll_nats=prior_nll.mean().item(),
        prior_bits_per_code=bits_per_dim(prior_nll.mean().item(), code_dims),
        prior_num_parameters=prior.num_parameters(),
        prior_best_epoch=prior_payload["epoch"], prior_steps=prior_payload["step"],
    )
    if prior_history_path is not None:
        metrics["prior_train_seconds"] = json.loads(Path(prior_history_path).read_text())["train_seconds"]
    return metrics


# -- figures --------------------------------------------------------------------------------------


def interpolation_rows(model: VAE, test: Split, *, variant: str, pairs: int = INTERPOLATION_PAIRS,
                       steps: int = INTERPOLATION_STEPS) -> torch.Tensor:
    """Rows [x_a, decoded line from z(x_a) to z(x_b) (Bernoulli means), x_b] for test pairs
    (2i, 2i+1): (pairs * (steps + 2), C, H, W) in [0, 1]."""
    images = test.images(variant)[:2 * pairs].to(model.device, model.dtype)
    x_a, x_b = images[0::2], images[1::2]
    line = model.interpolate(x_a, x_b, steps=steps)  # (P, steps, C, H, W)
    rows = torch.cat([x_a.unsqueeze(1), line, x_b.unsqueeze(1)], dim=1)
    return rows.flatten(0, 1)


def sample_latent(checkpoint_path: Path, *, config: SampleConfig, seed: int, out_npz: Path,
                  out_dir: Path, test: Split | None = None, prior_path: Path | None = None,
                  device="cpu") -> None:
    """Samples of a VAE (and its interpolation strip), or of a VQ-VAE through its prior (and
    reconstructions of test images)."""
    model, payload = checkpoint.load_model(Path(checkpoint_path), device)
    generator = torch.Generator(device=device).manual_seed(seed)
    figures, arrays = {}, {}
    if isinstance(model, VAE):
        images = model.sample(config.n, generator=generator)
        figures["samples.png"] = grid_png(images, nrow=config.nrow)
        if test is not None:
            rows = interpolation_rows(model, test, variant=payload["variant"])
            figures["interpolation.png"] = grid_png(rows, nrow=INTERPOLATION_STEPS + 2)
    elif isinstance(model, VQVAE):
        if prior_path is None:
            raise ValueError("sampling a VQ-VAE needs its prior (--prior): run fit_prior first")
        prior, _ = checkpoint.load_model(Path(prior_path), device)
        labels, nrow, n = None, config.nrow, config.n
        if prior.conditional:  # a 10 x 10 grid, row d = digit d
            labels, nrow = class_labels(NUM_DIGITS, model.device), NUM_DIGITS
            n = len(labels)
            arrays["labels"] = labels.cpu().numpy()
        codes = prior.sample(n, y=labels, generator=generator)  # (n, 1, h, w) levels
        if tuple(codes.shape[1:]) != model.code_shape:
            raise ValueError(f"{prior_path} draws {tuple(codes.shape[1:])} codes, the VQ-VAE "
                             f"decodes {model.code_shape}: was it fitted on this VQ-VAE's codes?")
        images = draw_levels(model.decode(codes), 2, generator)  # (n, C, H, W) in {0, 1}
        arrays["codes"] = codes.squeeze(1).cpu().numpy().astype(np.int16)
        figures["samples.png"] = grid_png(images, nrow=nrow)
        if test is not None:
            x = test.images(payload["variant"])[:RECONSTRUCTIONS].to(model.device, model.dtype)
            recon = torch.sigmoid(model.decode(model.encode(x)))
            rows = torch.cat([torch.cat([x[i:i + 8], recon[i:i + 8]]) for i in range(0, len(x), 8)])
            figures["reconstructions.png"] = grid_png(rows, nrow=8)
    else:
        raise ValueError(f"{checkpoint_path}: {payload['model']} is not a latent-variable model")
    arrays["samples"] = images.cpu().numpy().astype(np.uint8)
    write_outputs(out_npz, arrays, out_dir, figures)

