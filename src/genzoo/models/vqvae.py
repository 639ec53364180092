"""VQ-VAE: a discrete autoencoder, then an autoregressive prior over its codes.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS 2017;
EMA codebook updates from the paper's appendix A.1 (and Razavi, van den Oord & Vinyals 2019).

    z_e = E(x)                           (B, D, 7, 7) for 28x28 images (two stride-2 convs)
    k   = argmin_j ||z_e - e_j||         (B, 7, 7) codes into a codebook of K vectors e_j
    z_q = e_k, passed on with the straight-through gradient z_e + sg[z_q - z_e]
    loss = -log p(x | z_q) + beta ||z_e - sg[z_q]||^2 (+ ||sg[z_e] - z_q||^2 without EMA)

With EMA (the default) the codebook is no parameter: each step, N_j <- g N_j + (1-g) n_j and
m_j <- g m_j + (1-g) sum_{i: k_i = j} z_e,i, and e_j = m_j / N_j with N Laplace-smoothed
(``ema_update``). Codes unused for ``restart_after`` training steps are restarted at random
encoder outputs of the batch.

The run has three cached jobs, declared in ``phases``: ``train`` fits the autoencoder (picking
the epoch by reconstruction NLL), ``codes`` maps every split to its code grids with the trained
encoder, ``prior`` fits a Gated PixelCNN (or the class-conditional one) with K levels on the
(1, 7, 7) code grids. Editing ``models.vqvae.prior`` refits the prior only. The model the stages
load has its prior attached (``load_phases``): it samples (codes from the prior, then the
decoder's Bernoulli pixels) and scores an upper bound on the image NLL.

Why the bound is valid: the model samples from p(x) = sum_z p_prior(z) p(x | z). Every term of the
sum is non-negative, so p(x) >= p_prior(z(x)) p(x | z(x)) for the encoder's codes z(x), i.e.
-log p(x) <= -log p_prior(z(x)) - log p(x | z(x)). It is the ELBO with a point-mass posterior
q(z|x) = [z = z(x)], whose entropy is 0 because z is discrete (for a continuous latent the same
step would not be a bound). It is loose by -log p(z(x) | x) under the model's true posterior, and
with the class-conditional prior it bounds -log p(x | y), not -log p(x).

NOTE: squared errors are summed over the code grid (D x 7 x 7) per image, like the reconstruction
term (nats summed over 784 pixels), so beta keeps the paper's meaning; implementations that
average them instead weigh the commitment ~1000x less against a summed reconstruction. The EMA
counts start at one (each code "has seen itself"), so unused codes stay put instead of
collapsing under the smoothing; dead-code restarts are not in the paper (they follow later VQ
work, e.g. Dhariwal et al. 2020's Jukebox).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TrainConfig, build, config_schema, knob
from ..data import SPLITS, DataError, Split, fixed_binarization, load_split, save_npz
from .base import (GenerativeModel, Phase, PhaseContext, ScoreSettings, binary_only, draw_levels,
                   first_problem, pixel_log_prob, sides_divisible)
from .figures import Figures, grid_layout, grid_png
from .gated_pixelcnn import GatedPixelCNNConfig
from .scoring import bits_per_dim, per_image_nll


@dataclass
class VQVAEConfig:
    codes: int = knob(64, "K, the codebook size (the prior predicts one of K codes per cell).",
                      minimum=2, maximum=32767)
    code_dim: int = knob(16, "D, the size of each code vector.", minimum=1)
    hidden: int = knob(32, "Channels of the encoder/decoder convolutions.", minimum=1)
    res_blocks: int = knob(1, "Residual blocks after the encoder convs and before the decoder's.", minimum=0)
    beta: float = knob(0.25, "Commitment loss weight.", minimum=0)
    ema: bool = knob(True, "EMA codebook updates (else a learned codebook with the codebook loss).")
    decay: float = knob(0.99, "EMA decay.", exclusiveMinimum=0, exclusiveMaximum=1)
    epsilon: float = knob(1e-5, "Laplace smoothing of the EMA code counts.", exclusiveMinimum=0)
    restart_after: int = knob(100, "Training steps without use before a code restarts (0 = never).",
                              minimum=0)


class Quantized(NamedTuple):
    z_q: Tensor  # (B, D, H, W) quantized vectors with the straight-through gradient to z_e
    codes: Tensor  # (B, H, W) int64
    commitment: Tensor  # (B,) ||z_e - sg[z_q]||^2 summed over D, H, W
    codebook: Tensor  # (B,) ||sg[z_e] - z_q||^2 (zeros with EMA: the codebook is not learned)


def ema_update(cluster_size: Tensor, embed_sum: Tensor, flat: Tensor, codes: Tensor, *,
               decay: float, epsilon: float) -> tuple[Tensor, Tensor, Tensor]:
    """One EMA codebook step (van den Oord et al. 2017, appendix A.1, with Laplace smoothing).

    Args:
        cluster_size: (K,) EMA count N_j of vectors assigned to each code.
        embed_sum: (K, D) EMA sum m_j of the vectors assigned to each code.
        flat: (N, D) encoder outputs of this batch; codes: (N,) their nearest codes.
    Returns:
        The new (cluster_size, embed_sum, codebook), where
        N_j <- decay N_j + (1 - decay) n_j,  m_j <- decay m_j + (1 - decay) sum_{codes_i = j} flat_i,
        e_j = m_j / ((N_j + epsilon) / (n + K epsilon) * n) with n = sum_j N_j.
    """
    K = cluster_size.shape[0]
    one_hot = F.one_hot(codes, K).to(flat.dtype)  # (N, K)
    cluster_size = decay * cluster_size + (1 - decay) * one_hot.sum(0)
    embed_sum = decay * embed_sum + (1 - decay) * one_hot.t() @ flat  # (K, D)
    total = cluster_size.sum()
    smoothed = (cluster_size + epsilon) / (total + K * epsilon) * total  # (K,)
    return cluster_size, embed_sum, embed_sum / smoothed.unsqueeze(1)


def code_usage_metrics(codes: Tensor, num_codes: int) -> dict[str, Any]:
    """The codebook usage the VQ-VAE's metrics report, for code grids (N, h, w)."""
    usage = code_usage(codes, num_codes)
    return {"code_perplexity": usage["perplexity"], "codes_used": int(usage["used_codes"]),
            "codes": num_codes, "code_grid": list(codes.shape[1:])}


def code_usage(codes: Tensor, num_codes: int) -> dict[str, float]:
    """Perplexity exp(H) of the code histogram (K when all codes are used evenly, 1 for one code)
    and the number and fraction of codes used at least once."""
    counts = torch.bincount(codes.flatten(), minlength=num_codes).double()
    probs = counts / counts.sum()
    entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum()
    used = int((counts > 0).sum())
    return {"perplexity": entropy.exp().item(), "used_codes": used, "usage": used / num_codes}


class VectorQuantizer(nn.Module):
    """Nearest-neighbour lookup into a codebook of ``num_codes`` vectors of size ``dim``."""

    def __init__(self, num_codes: int, dim: int, *, ema: bool = True, decay: float = 0.99,
                 epsilon: float = 1e-5, restart_after: int = 100) -> None:
        super().__init__()
        if num_codes < 2 or dim < 1:
            raise ValueError(f"need at least 2 codes of dim >= 1, got {num_codes} x {dim}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.num_codes, self.dim = num_codes, dim
        self.ema, self.decay, self.epsilon = ema, decay, epsilon
        self.restart_after = restart_after
        embedding = torch.empty(num_codes, dim).uniform_(-1 / num_codes, 1 / num_codes)
        if ema:
            self.register_buffer("embedding", embedding)
            self.register_buffer("cluster_size", torch.ones(num_codes))
            self.register_buffer("embed_sum", embedding.clone())
        else:
            self.embedding = nn.Parameter(embedding)
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))

    def nearest(self, flat: Tensor) -> Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row of (N, D): (N,)."""
        codebook = self.embedding.detach()  # (K, D)
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t()
                     + codebook.pow(2).sum(1))  # (N, K)
        return distances.argmin(1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Code vectors for integer codes (B, H, W): (B, D, H, W)."""
        return self.embedding[codes].permute(0, 3, 1, 2)

    def forward(self, z_e: Tensor) -> Quantized:
        B, D, H, W = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, D)  # (B*H*W, D)
        codes = self.nearest(flat.detach())  # (B*H*W,)
        z_q = self.embedding[codes].view(B, H, W, D).permute(0, 3, 1, 2)  # (B, D, H, W)
        commitment = (z_e - z_q.detach()).pow(2).flatten(1).sum(1)  # (B,)
        if self.ema:
            codebook = torch.zeros_like(commitment)
        else:
            codebook = (z_e.detach() - z_q).pow(2).flatten(1).sum(1)
        if self.training:
            self.update(flat.detach(), codes)
        z_q = z_e + (z_q - z_e).detach()  # straight-through: the decoder's gradient goes to z_e
        return Quantized(z_q, codes.view(B, H, W), commitment, codebook)

    @torch.no_grad()
    def update(self, flat: Tensor, codes: Tensor) -> None:
        """The training-time codebook step: EMA update (if enabled), then dead-code restarts."""
        if self.ema:
            cluster_size, embed_sum, embedding = ema_update(
                self.cluster_size, self.embed_sum, flat, codes, decay=self.decay,
                epsilon=self.epsilon)
            self.cluster_size.copy_(cluster_size)
            self.embed_sum.copy_(embed_sum)
            self.embedding.copy_(embedding)
        used = torch.bincount(codes, minlength=self.num_codes) > 0
        self.unused_steps.copy_(torch.where(used, torch.zeros_like(self.unused_steps),
                                            self.unused_steps + 1))
        if self.restart_after > 0:
            self.restart_dead_codes(flat)

    @torch.no_grad()
    def restart_dead_codes(self, flat: Tensor) -> Tensor:
        """Move codes unused for ``restart_after`` steps onto random rows of ``flat`` (N, D),
        drawn with the global RNG; returns the restarted code indices."""
        dead = torch.nonzero(self.unused_steps >= self.restart_after).flatten()
        if dead.numel() == 0:
            return dead
        picks = torch.randint(len(flat), (dead.numel(),), device=flat.device)
        vectors = flat[picks].to(self.embedding.dtype)  # (n_dead, D)
        self.embedding.data[dead] = vectors
        if self.ema:
            self.cluster_size[dead] = 1.0
            self.embed_sum[dead] = vectors
        self.unused_steps[dead] = 0
        return dead


class _Residual(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the paper's residual block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                                   nn.ReLU(), nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class VQVAE(GenerativeModel):
    """Conv encoder (H, W) -> (H/4, W/4) grid of D-vectors, vector quantizer, conv decoder, and
    (once the ``prior`` phase has run) the prior over the code grids."""

    Config = VQVAEConfig
    paper = "van den Oord et al. 2017"
    nll_kind = "bound"
    phases = (
        Phase("codes", outputs=tuple(f"{split}.npz" for split in SPLITS), run="write_codes",
              evaluate_keys=("batch_size",)),
        Phase("prior", outputs=("model.pt", "history.json"), run="fit_prior", section="prior",
              evaluate_keys=("batch_size",), trains=True),
    )

    @classmethod
    def networks_used(cls, section: dict[str, Any]) -> list[str]:
        return [section["prior"]["kind"]]

    @classmethod
    def section_schemas(cls) -> dict[str, dict]:
        """params.yaml's models.vqvae.prior: the prior fitted over the codes (phase 2)."""
        kind = ("gated_pixelcnn, or cond_gated_pixelcnn (class-conditional: the samples become a grid "
                "with one row per digit, and the NLL bound is conditional on the label).")
        return {"prior": {
            "description": "The autoregressive prior over the (1, 7, 7) code grid, K levels.",
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {
                "kind": {"description": kind, "enum": list(PRIOR_KINDS),
                         "default": "gated_pixelcnn"},
                "arch": config_schema(GatedPixelCNNConfig, "Gated PixelCNN architecture."),
                "train": {"$ref": "#/$defs/train", "default": {}},
            },
        }}

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels, any channels, sides divisible by 4 (the code grid is H/4 x W/4)."""
        return first_problem(binary_only(cls.__name__, levels),
                             sides_divisible(cls.__name__, image_shape, 4,
                                             "two stride-2 convolutions to the code grid"))

    def __init__(self, config: VQVAEConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        C, H, W = self.image_shape
        c, D = config.hidden, config.code_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(C, c, 4, 2, 1), nn.ReLU(),  # (B, c, H/2, W/2)
            nn.Conv2d(c, c, 4, 2, 1),  # (B, c, H/4, W/4)
            *[_Residual(c) for _ in range(config.res_blocks)], nn.ReLU(),
            nn.Conv2d(c, D, 1))  # (B, D, H/4, W/4)
        self.quantizer = VectorQuantizer(config.codes, D, ema=config.ema, decay=config.decay,
                                         epsilon=config.epsilon, restart_after=config.restart_after)
        self.decoder = nn.Sequential(
            nn.Conv2d(D, c, 3, padding=1),  # (B, c, H/4, W/4)
            *[_Residual(c) for _ in range(config.res_blocks)], nn.ReLU(),
            nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ReLU(),  # (B, c, H/2, W/2)
            nn.ConvTranspose2d(c, C, 4, 2, 1))  # (B, C, H, W) logits
        self.prior: GenerativeModel | None = None  # attached by load_phases / attach_prior
        self.prior_facts: dict[str, Any] = {}

    @property
    def code_shape(self) -> tuple[int, int, int]:
        """Shape of one image's codes as the prior sees them: (1, H/4, W/4), levels = K."""
        _, H, W = self.image_shape
        return (1, H // 4, W // 4)

    # -- the autoencoder -------------------------------------------------------------------------

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Quantized]:
        """Reconstruction logits (B, C, H, W) and the quantizer's outputs."""
        quantized = self.quantizer(self.encoder(x))
        return self.decoder(quantized.z_q), quantized

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Reconstruction NLL (nats/image) + beta * commitment (+ codebook loss without EMA)."""
        logits, quantized = self(x)
        reconstruction = -pixel_log_prob(logits, x, 2)  # (B,)
        total = reconstruction + self.config.beta * quantized.commitment + quantized.codebook
        return total.mean()

    def validation_nll(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """-log p(x | z_q(x)) in nats, (B,): the reconstruction NLL that picks the autoencoder's
        best epoch (the prior does not exist yet while the autoencoder trains)."""
        logits, _ = self(x)
        return -pixel_log_prob(logits, x, 2)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Nearest codes of images (B, C, H, W): (B, H/4, W/4) int64 in [0, K)."""
        z_e = self.encoder(x)  # (B, D, h, w)
        B, D, h, w = z_e.shape
        codes = self.quantizer.nearest(z_e.permute(0, 2, 3, 1).reshape(-1, D))
        return codes.view(B, h, w)

    @torch.no_grad()
    def encode_all(self, images: Tensor, *, batch_size: int = 1000) -> Tensor:
        """Code grids (N, h, w) int64 of images (N, C, H, W) in {0, 1}, in batches."""
        return torch.cat([self.encode(images[i:i + batch_size].to(self.device, self.dtype)).cpu()
                          for i in range(0, len(images), batch_size)])

    def decode(self, codes: Tensor) -> Tensor:
        """Bernoulli logits (B, C, H, W) of codes (B, h, w), or (B, 1, h, w) floats from a prior."""
        if codes.dim() == 4:
            codes = codes.squeeze(1)
        codes = codes.long()
        if codes.min() < 0 or codes.max() >= self.config.codes:
            raise ValueError(f"codes must lie in [0, {self.config.codes}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        return self.decoder(self.quantizer.lookup(codes))

    @torch.no_grad()
    def perplexity(self, x: Tensor) -> float:
        """Perplexity of the codes used for a batch of images (see ``code_usage``)."""
        return code_usage(self.encode(x), self.config.codes)["perplexity"]

    # -- phase "codes": every split's code grids ---------------------------------------------------

    def write_codes(self, context: PhaseContext) -> None:
        """``codes/{train,val,test}.npz``: each split's code grids (``gray``, (N, 7, 7)), labels
        and K (``levels``), stored like data/processed. The training images are binarized once
        with the run's seed (the autoencoder trained on dynamic bits); val and test use the
        stored bits."""
        dtype = np.uint8 if self.config.codes <= 256 else np.int16
        for name in SPLITS:
            split = load_split(context.data_dir / f"{name}.npz")
            if split.binary is not None:
                bits = split.binary
            else:  # training bits are dynamic; the prior is fitted on one fixed draw
                bits = torch.from_numpy(fixed_binarization(split.gray.numpy(), context.seed,
                                                           TRAIN_CODES_STREAM))
            codes = self.encode_all(bits.float(), batch_size=context.settings["batch_size"])
            save_npz(context.out_dir / f"{name}.npz", gray=codes.numpy().astype(dtype),
                     labels=split.labels.numpy(), levels=np.array(self.config.codes))

    # -- phase "prior": the autoregressive prior over the code grids -------------------------------

    def fit_prior(self, context: PhaseContext) -> None:
        """Train the prior (``models.vqvae.prior``: kind, arch, train) on the code grids; writes
        ``prior/model.pt`` and ``prior/history.json``."""
        section = context.settings["prior"]
        kind = section["kind"]
        if kind not in PRIOR_KINDS:
            raise ValueError(f"models.vqvae.prior.kind must be one of {PRIOR_KINDS}, got {kind!r}")
        codes_dir = context.run_dir / "codes"
        config = build(TrainConfig, section["train"], where="models.vqvae.prior.train")
        levels = code_levels(codes_dir / "train.npz")  # first: its error names the codes phase
        context.fit(kind, section["arch"], config, train_split=load_split(codes_dir / "train.npz"),
                    val_split=load_split(codes_dir / "val.npz"), out_dir=context.out_dir,
                    variant="codes", levels=levels, timings=context.timings,
                    where="models.vqvae.prior.arch")

    def load_phases(self, run_dir: Path, load: Callable[[Path], tuple[GenerativeModel, dict]]) -> None:
        """Attach the prior fitted by the ``prior`` phase."""
        path = Path(run_dir) / "prior" / "model.pt"
        if not path.exists():
            raise FileNotFoundError(f"missing {path}: the VQ-VAE's prior phase writes it "
                                    f"(the prior job) after its codes phase")
        prior, payload = load(path)
        self.attach_prior(prior, model=payload["model"], epoch=payload["epoch"],
                          step=payload["step"])

    def attach_prior(self, prior: GenerativeModel, **facts: Any) -> None:
        if prior.levels != self.config.codes or tuple(prior.image_shape) != self.code_shape:
            raise ValueError(f"a prior over {prior.levels} codes on {tuple(prior.image_shape)} "
                             f"does not fit this VQ-VAE's {self.config.codes} codes on "
                             f"{self.code_shape}: was it fitted on this VQ-VAE's codes?")
        self.prior = prior.to(self.device).eval()
        self.prior_facts = facts
        self.conditional = prior.conditional  # the model's samples are labelled if the prior's are

    def _prior(self) -> GenerativeModel:
        if self.prior is None:
            raise ValueError("this VQ-VAE has no prior yet: its 'prior' phase fits one "
                             "(the fit_prior job), and the stages attach it with load_phases")
        return self.prior

    # -- the complete model: prior, then decoder ---------------------------------------------------

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """log p_prior(z(x)) + log p(x | z(x)) in nats, (B,): a lower bound on log p(x) (or on
        log p(x | y) with a conditional prior; see the module docstring)."""
        codes = self.encode(x)  # (B, h, w)
        reconstruction = pixel_log_prob(self.decode(codes), x, 2)  # (B,)
        return self._prior().log_prob(codes.unsqueeze(1).to(self.dtype), y) + reconstruction

    @torch.no_grad()
    def draw(self, n: int, *, y: Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Codes (n, 1, h, w) from the prior and their decoded images (n, C, H, W) in {0, 1};
        ``generator`` drives both draws."""
        codes = self._prior().sample(n, y=y, generator=generator)  # (n, 1, h, w) float levels
        return codes, draw_levels(self.decode(codes), 2, generator)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Images (n, C, H, W) in {0, 1}: codes from the prior, then the decoder's pixels."""
        return self.draw(n, y=y, generator=generator)[1]

    # -- the evaluate and sample stages ----------------------------------------------------------

    @torch.no_grad()
    def test_nll(self, test: Split, settings: ScoreSettings, *, variant: str,
                 generator: torch.Generator) -> tuple[Tensor, dict[str, Any]]:
        """The bound -log p_prior(z(x)) - log p(x | z(x)) per test image, with its two terms,
        the reconstruction error and the codebook usage beside it."""
        prior = self._prior()
        images = test.images(variant)
        batch = settings.batch_size
        codes = self.encode_all(images, batch_size=batch)  # (N, h, w)
        recon, errors = [], []
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(self.device, self.dtype)
            logits = self.decode(codes[i:i + batch].to(self.device))
            recon.append(-pixel_log_prob(logits, x, 2).double().cpu())
            errors.append(((logits > 0).to(x.dtype) != x).flatten(1).double().mean(1).cpu())
        recon = torch.cat(recon)
        prior_nll = per_image_nll(prior, codes.unsqueeze(1).to(prior.dtype), test.labels,
                                  batch_size=batch, device=self.device)  # (N,) per code grid
        code_dims = math.prod(self.code_shape)
        return recon + prior_nll, {
            "nll_conditional": prior.conditional,
            "reconstruction_nll_nats": recon.mean().item(),
            "reconstruction_bits_per_dim": bits_per_dim(recon.mean().item(), self.num_pixels),
            "reconstruction_pixel_error": torch.cat(errors).mean().item(),
            **code_usage_metrics(codes, self.config.codes),
            "prior_model": self.prior_facts.get("model", type(prior).__name__),
            "prior_paper": type(prior).paper,
            "prior_nll_nats": prior_nll.mean().item(),
            "prior_bits_per_code": bits_per_dim(prior_nll.mean().item(), code_dims),
            "prior_num_parameters": prior.num_parameters(),
            "prior_best_epoch": self.prior_facts.get("epoch"),
            "prior_steps": self.prior_facts.get("step"),
        }

    def num_parameters(self) -> int:
        """The autoencoder's parameters (the prior's are reported as ``prior_num_parameters``)."""
        prior = self.prior
        return super().num_parameters() - (prior.num_parameters() if prior is not None else 0)

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """Samples through the prior (a 10 x 10 grid, row d = digit d, with a conditional prior)
        and ``reconstructions.png``: rows of test images, each followed by their decoded codes."""
        figures = Figures()
        n, labels, nrow = grid_layout(self, n=n, nrow=nrow)
        if labels is not None:
            figures.arrays["labels"] = labels.cpu().numpy()
        codes, images = self.draw(n, y=labels, generator=generator)
        figures.arrays["codes"] = codes.squeeze(1).cpu().numpy().astype(np.int16)
        figures.pngs["samples.png"] = grid_png(images, nrow=nrow)
        if test is not None:
            x = test.images(variant)[:RECONSTRUCTIONS].to(self.device, self.dtype)
            recon = torch.sigmoid(self.decode(self.encode(x)))
            rows = torch.cat([torch.cat([x[i:i + 8], recon[i:i + 8]]) for i in range(0, len(x), 8)])
            figures.pngs["reconstructions.png"] = grid_png(rows, nrow=8)
        figures.arrays["samples"] = images.cpu().numpy().astype(np.uint8)
        return figures


PRIOR_KINDS = ("gated_pixelcnn", "cond_gated_pixelcnn")
TRAIN_CODES_STREAM = 3  # data.binarize() uses streams 0-2 for train/val/test
RECONSTRUCTIONS = 16  # test images shown with their reconstructions


def code_levels(path: Path) -> int:
    """K, the number of codes, stored beside the code grids by ``write_codes``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing {path}: run the VQ-VAE's codes phase first")
    with np.load(path) as arrays:
        if "levels" not in arrays:
            raise DataError(f"{path}: not a code file (no 'levels'); rerun the codes phase")
        return int(arrays["levels"])
