"""DDPM: a denoising diffusion model of binarized MNIST, scored by its variational bound in nats.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020: the forward process
and its closed form (section 2, eq. 4), the bound (eq. 5), epsilon prediction and the simple loss
(section 3.2, eq. 11 and 14, algorithms 1 and 2), the discretized decoder (section 3.3, eq. 13).
The cosine schedule is Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models",
ICML 2021 (section 3.2, eq. 17); the fast sampler is Song, Meng & Ermon, "Denoising Diffusion
Implicit Models", ICLR 2021 (eq. 12 and 16).

The bits x of an image become x_0 = 2x - 1 in {-1, +1}; abar_t = prod_{s <= t} (1 - beta_s).

    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I)
    L_simple         = E_{t, eps} || eps - eps_theta(x_t, t) ||^2,
                       x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I),
                       mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t)
    p(x_0 | x_1)     = prod over pixels of Phi(x_0 mu_theta(x_1, 1) / sigma_1): the Gaussian
                       N(mu_theta, sigma_1^2) split into two bins at 0 (eq. 13 for two levels)
    -log p(x_0)     <= L_T + sum_{t=2}^T L_{t-1} + L_0  (eq. 5), in nats per image:
        L_T     = KL(q(x_T | x_0) || N(0, I))                               closed form
        L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))         one draw of x_t
        L_0     = E_q -log p(x_0 | x_1)                                     one draw of x_1

``bound(x, timesteps=None)`` sums all T terms; ``bound(x, timesteps=K)`` is the unbiased
estimator: K steps t drawn uniformly from 2..T per image, each term times T - 1, plus L_T and
L_0 (its expectation is the full sum: tests check it). The test NLL is that estimator with
``evaluate.bound_timesteps`` steps per image (0: the full sum), and its metrics say which.

Sampling (``arch.sampler``): ``ancestral`` is algorithm 2 over all T steps; ``ddim`` runs
``sample_steps`` steps t = 1 = tau_1 < ... < tau_S = T, evenly spaced, with noise scale ``eta``
(0: deterministic given x_T; 1 with all T steps: the ancestral sampler with sigma_t^2 = beta~_t).
Both end at x_1 with the decoder p(x_0 | x_1): the ancestral sampler (and DDIM with eta > 0) draws
the bits from it, deterministic DDIM takes its mode, the sign of mu_theta(x_1, 1).

NOTE: the U-Net is a compact one (a residual block per resolution, no self-attention, no dropout)
so that it trains in minutes on a CPU; Ho et al.'s has two blocks per resolution and attention at
16x16.
NOTE: sigma_t^2 = beta~_t (the posterior variance) by default: with beta_t (Ho et al.'s other
choice, ``variance: beta``) the terms of the bound pay for the variance mismatch even with a
perfect mean, 264 nats per image in all at T = 1000 (linear) on 784 pixels. The decoder uses sigma_1^2 = beta_1 either way (beta~_1 = 0).
NOTE: the samplers clip the predicted x_0 to [-1, 1] (``clip_denoised``), as Ho et al.'s code
does; the bound scores the unclipped model.
NOTE: ``parameterization: tanh_x0`` (not in the papers) reads the network's output as the
pre-tanh x_0 and derives eps_theta from it; the loss stays L_simple on eps. The default is Ho et
al.'s eps.
NOTE: the sampler settings live in ``arch`` (the model's sampler is part of the model, and its
FID samples come from it), so editing them retrains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import knob
from ..data import Split
from .base import GenerativeModel, ScoreSettings, binary_only
from .figures import Figures, grid_png, sample_grid

SCHEDULES = ("linear", "cosine")
VARIANCES = ("posterior", "beta")
SAMPLERS = ("ddim", "ancestral")
PARAMETERIZATIONS = ("eps", "tanh_x0")
COSINE_OFFSET = 0.008  # s of Nichol & Dhariwal eq. 17
MAX_BETA = 0.999  # their clip, so that beta_T < 1
CHAIN_IMAGES = 8  # rows of the denoising-chain figure
CHAIN_COLUMNS = 10  # noisy states shown per row, x_T first, then the sample's bits


@dataclass
class DDPMConfig:
    channels: int = knob(32, "Channels C of the U-Net at full resolution.", minimum=1)
    multipliers: list[int] = knob([1, 2, 2], "Channels per resolution, as multiples of C; each "
                                  "level after the first halves the resolution.",
                                  minItems=1, items={"minimum": 1})
    timesteps: int = knob(1000, "Diffusion steps T.", minimum=2)
    schedule: str = knob("linear", "Noise schedule: linear (Ho et al.) or cosine (Nichol & "
                         "Dhariwal).", choices=SCHEDULES)
    beta_start: float = knob(1e-4, "beta_1 of the linear schedule.", exclusiveMinimum=0,
                             maximum=1)
    beta_end: float = knob(0.02, "beta_T of the linear schedule.", exclusiveMinimum=0, maximum=1)
    parameterization: str = knob("eps", "eps: the network outputs eps_theta (Ho et al.); tanh_x0: "
                                 "it outputs f, and eps_theta is the noise that x_t and "
                                 "x_0 = tanh(f) imply.", choices=PARAMETERIZATIONS)
    variance: str = knob("posterior", "sigma_t^2 of p(x_{t-1}|x_t): posterior (beta~_t) or beta "
                         "(beta_t).", choices=VARIANCES)
    val_timesteps: int = knob(1, "Steps t drawn per validation image for the bound estimate "
                              "each epoch.", minimum=1)
    sampler: str = knob("ddim", "Sampler of the grid (and of sample()): ddim or ancestral (all "
                        "T steps).", choices=SAMPLERS)
    sample_steps: int = knob(50, "DDIM steps (2..T).", minimum=2)
    eta: float = knob(0.0, "DDIM noise scale: 0 deterministic, 1 ancestral-like.", minimum=0)
    clip_denoised: bool = knob(True, "Clip the predicted x_0 to [-1, 1] while sampling.")


# -- the noise schedule ------------------------------------------------------------------------

def noise_schedule(config: DDPMConfig) -> Tensor:
    """beta_1..beta_T as float64, shape (T,)."""
    T = config.timesteps
    if config.schedule == "linear":
        if not 0 < config.beta_start <= config.beta_end < 1:
            raise ValueError(f"the linear schedule needs 0 < beta_start <= beta_end < 1, got "
                             f"{config.beta_start} and {config.beta_end}")
        return torch.linspace(config.beta_start, config.beta_end, T, dtype=torch.float64)
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    alpha_bar = f / f[0]  # (T + 1,), alpha_bar_0 = 1
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=MAX_BETA)


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 where they divide the channels, else the largest divisor below."""
    return max(g for g in range(1, min(8, channels) + 1) if channels % g == 0)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of integer steps (B,) -> (B, dim) (Vaswani et al. 2017, as in Ho
    et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half, 1))
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    embedding = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(embedding, (0, dim - 2 * half))


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the step embedding added in between, and a residual path."""

    def __init__(self, c_in: int, c_out: int, embed_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.embed = nn.Linear(embed_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        out = self.conv1(F.silu(self.norm1(h)))  # (B, c_out, H, W)
        out = out + self.embed(F.silu(embedding))[:, :, None, None]
        out = self.conv2(F.silu(self.norm2(out)))
        return self.skip(h) + out


class UNet(nn.Module):
    """eps_theta(x_t, t): one residual block per resolution on the way down and up, skips
    between them, stride-2 convolutions down and nearest-neighbour upsampling."""

    def __init__(self, image_channels: int, channels: int, multipliers: list[int]) -> None:
        super().__init__()
        widths = [channels * m for m in multipliers]
        embed_dim = 4 * channels
        self.channels = channels
        self.embed = nn.Sequential(nn.Linear(channels, embed_dim), nn.SiLU(),
                                   nn.Linear(embed_dim, embed_dim))
        self.input = nn.Conv2d(image_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = widths[0]
        for level, width in enumerate(widths):
            self.down.append(ResBlock(previous, width, embed_dim))
            last = level == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(width, width, 3, 2, 1))
            previous = width
        self.middle = ResBlock(previous, previous, embed_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            self.up.append(ResBlock(previous + widths[level], widths[level], embed_dim))
            self.upsample.append(nn.Identity() if level == 0 else
                                 nn.Conv2d(widths[level], widths[level], 3, padding=1))
            previous = widths[level]
        self.out_norm = nn.GroupNorm(_groups(widths[0]), widths[0])
        self.output = nn.Conv2d(widths[0], image_channels, 3, padding=1)
        # Zero output at the start: trivial_nll is the bound of this network.
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """x: (B, C, H, W) noisy images, t: (B,) steps in 1..T -> (B, C, H, W): the predicted
        noise, or with ``tanh_x0`` the pre-tanh x_0."""
        embedding = self.embed(timestep_embedding(t, self.channels).to(x.dtype))  # (B, 4C)
        h = self.input(x)  # (B, C, H, W)
        skips = []
        for block, down in zip(self.down, self.downsample):
            h = block(h, embedding)
            skips.append(h)
            h = down(h)  # (B, width, H / 2, W / 2) but at the last level
        h = self.middle(h, embedding)
        for block, up in zip(self.up, self.upsample):
            h = block(torch.cat([h, skips.pop()], dim=1), embedding)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.output(F.silu(self.out_norm(h)))


class DDPM(GenerativeModel):
    """Denoising diffusion model with a compact U-Net, epsilon prediction and a two-bin
    discretized decoder; DDIM or ancestral sampling."""

    Config = DDPMConfig
    paper = "Ho, Jain & Abbeel 2020 (DDPM); DDIM sampling of Song, Meng & Ermon 2021"
    nll_kind = "bound"
    score_settings = ("batch_size", "bound_timesteps")

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels (the two-bin decoder), any channels; the U-Net's resolutions need
        sides divisible by 2^(levels - 1) of ``multipliers``: a check of ``__init__``."""
        return binary_only(cls.__name__, levels)

    def __init__(self, config: DDPMConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        for name, value, allowed in (("schedule", config.schedule, SCHEDULES),
                                     ("variance", config.variance, VARIANCES),
                                     ("sampler", config.sampler, SAMPLERS),
                                     ("parameterization", config.parameterization,
                                      PARAMETERIZATIONS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if config.timesteps < 2:
            raise ValueError(f"timesteps must be >= 2, got {config.timesteps}")
        if config.sampler == "ddim":
            self.check_steps(config.sample_steps)
        if config.eta < 0:
            raise ValueError(f"eta must be >= 0, got {config.eta}")
        if not config.multipliers or min(config.multipliers) < 1 or config.channels < 1:
            raise ValueError("channels and every multiplier must be >= 1")
        C, H, W = self.image_shape
        scale = 2 ** (len(config.multipliers) - 1)
        if H % scale or W % scale:
            raise ValueError(f"{len(config.multipliers)} resolutions need height and width "
                             f"divisible by {scale}, got {H}x{W}")
        self.net = UNet(C, config.channels, list(config.multipliers))
        betas = noise_schedule(config)  # (T,)
        # Index t = 0..T: entry 0 is the clean image (beta_0 = 0, abar_0 = 1).
        betas = torch.cat([betas.new_zeros(1), betas])
        alpha_bar = torch.cumprod(1 - betas, dim=0)
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)

    @property
    def T(self) -> int:
        return self.config.timesteps

    def check_steps(self, steps: int) -> None:
        if not 2 <= steps <= self.config.timesteps:
            raise ValueError(f"DDIM steps must be in 2..T = {self.config.timesteps}, got {steps}")

    def _at(self, values: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
        """values[t] shaped to broadcast over images like ``like``: (B, 1, 1, 1) or a scalar."""
        picked = values[t].to(like.dtype)
        return picked.view(-1, *([1] * (like.dim() - 1))) if picked.dim() else picked

    # -- the forward process q ---------------------------------------------------------------------

    def q_sample(self, x0: Tensor, t: Tensor | int, noise: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, the closed form of q(x_t | x_0)."""
        abar = self._at(self.alpha_bar, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def posterior(self, x0: Tensor, xt: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7), for t >= 1."""
        beta, abar = self._at(self.betas, t, x0), self._at(self.alpha_bar, t, x0)
        abar_prev = self._at(self.alpha_bar, t - 1, x0)
        mean = (abar_prev.sqrt() * beta * x0
                + (1 - beta).sqrt() * (1 - abar_prev) * xt) / (1 - abar)
        return mean, beta * (1 - abar_prev) / (1 - abar)

    def sigma2(self, t: Tensor | int, like: Tensor) -> Tensor:
        """sigma_t^2 of p(x_{t-1} | x_t) for t >= 2 (the decoder's sigma_1^2 is beta_1)."""
        beta, abar = self._at(self.betas, t, like), self._at(self.alpha_bar, t, like)
        if self.config.variance == "beta":
            return beta
        return beta * (1 - self._at(self.alpha_bar, t - 1, like)) / (1 - abar)

    def eps(self, xt: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t), (B, C, H, W), for steps t of shape (B,).

        With ``tanh_x0`` the network's output f gives E[x_0 | x_t] = tanh(f) and eps_theta =
        (x_t - sqrt(abar_t) tanh f) / sqrt(1 - abar_t): for x_0 in {-1, +1} the best noise
        prediction has exactly this form (E[x_0 | x_t] lies in (-1, 1)), and at small t, where
        the bound's weights are largest, a confident tanh gets the noise right without the
        network having to compute (x_t - sign x_t) / sqrt(1 - abar_t) itself."""
        out = self.net(xt, t)
        if self.config.parameterization == "eps":
            return out
        abar = self._at(self.alpha_bar, t, xt)
        return (xt - abar.sqrt() * torch.tanh(out)) / (1 - abar).sqrt()

    # -- training: the simple loss -----------------------------------------------------------------

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """L_simple: mean squared error of the predicted noise, t uniform in 1..T (algorithm 1)."""
        x0 = 2 * x - 1  # (B, C, H, W) in {-1, +1}
        t = torch.randint(1, self.T + 1, (len(x),), device=x.device)
        noise = torch.randn_like(x0)
        return F.mse_loss(self.eps(self.q_sample(x0, t, noise), t), noise)

    # -- the variational bound ---------------------------------------------------------------------

    def prior_term(self, x0: Tensor) -> Tensor:
        """L_T = KL(q(x_T | x_0) || N(0, I)) in nats per image, (B,), in closed form."""
        abar = self.alpha_bar[self.T].to(x0.dtype)
        kl = 0.5 * (abar * x0 ** 2 + (1 - abar) - 1 - torch.log1p(-abar))
        return kl.flatten(1).sum(1)

    def decoder_nll(self, x0: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """L_0 = -log p(x_0 | x_1) for one draw x_1 ~ q(x_1 | x_0), nats per image, (B,)."""
        t = torch.ones(len(x0), dtype=torch.long, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x1 = self.q_sample(x0, t, noise)
        mean = self.denoised(x1, t, self.eps(x1, t))  # mu_theta(x_1, 1) is the predicted x_0
        sigma = self.betas[1].to(x0.dtype).sqrt()
        return -torch.special.log_ndtr(x0 * mean / sigma).flatten(1).sum(1)

    def diffusion_term(self, x0: Tensor, t: Tensor, *,
                       generator: torch.Generator | None = None) -> Tensor:
        """L_{t-1} for one draw x_t ~ q(x_t | x_0), nats per image, (B,), steps t >= 2 (B,).

        The means differ by beta_t / sqrt(alpha_t (1 - abar_t)) (eps_theta - eps) (eq. 10-12),
        computed so rather than as a difference of two means close to x_t."""
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        eps = self.eps(self.q_sample(x0, t, noise), t)
        beta, abar = self._at(self.betas, t, x0), self._at(self.alpha_bar, t, x0)
        _, var_q = self.posterior(x0, x0, t)  # beta~_t (the variance does not depend on x)
        var_p = self.sigma2(t, x0)
        mean_gap2 = beta ** 2 / ((1 - beta) * (1 - abar)) * (eps - noise) ** 2
        kl = 0.5 * (torch.log(var_p / var_q) + (var_q + mean_gap2) / var_p - 1)
        return kl.flatten(1).sum(1)

    def bound(self, x: Tensor, *, timesteps: int | None = None,
              generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The bound's parts in nats per image, each (B,), for bits ``x`` (B, C, H, W).

        ``timesteps=None`` sums every L_{t-1}, t = 2..T (one x_t each); ``timesteps=K`` draws K
        steps uniformly from 2..T per image and averages (T - 1) L_{t-1} over them, an unbiased
        estimate of the same sum. Returns ``prior`` (L_T), ``decoder`` (L_0), ``diffusion`` (the
        sum over t), ``total``, and for K >= 2 ``mc_var``, the variance of ``diffusion``'s
        estimate from the spread of the K draws (0 for the full sum).
        """
        x0 = 2 * x - 1
        B = len(x0)
        prior = self.prior_term(x0)
        decoder = self.decoder_nll(x0, generator=generator)
        if timesteps is None:
            terms = [self.diffusion_term(x0, torch.full((B,), t, device=x0.device),
                                         generator=generator) for t in range(2, self.T + 1)]
            diffusion = torch.stack(terms).sum(0) if terms else torch.zeros_like(prior)
            mc_var = torch.zeros_like(prior)
        else:
            if timesteps < 1:
                raise ValueError(f"timesteps per image must be >= 1 (or None: all), "
                                 f"got {timesteps}")
            draws = []
            for _ in range(timesteps):
                t = torch.randint(2, self.T + 1, (B,), generator=generator, device=x0.device)
                draws.append((self.T - 1) * self.diffusion_term(x0, t, generator=generator))
            draws = torch.stack(draws)  # (K, B)
            diffusion = draws.mean(0)
            mc_var = draws.var(0) / timesteps if timesteps > 1 else torch.full_like(prior, math.nan)
        return {"prior": prior, "decoder": decoder, "diffusion": diffusion,
                "total": prior + decoder + diffusion, "mc_var": mc_var}

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Minus the bound estimate with ``val_timesteps`` steps per image: a lower bound on
        log p(x) in expectation, (B,)."""
        return -self.bound(x, timesteps=self.config.val_timesteps)["total"]

    def trivial_nll(self) -> float:
        """The bound of the untrained network (its output layer starts at zero: eps_theta = 0, or
        x_0 = 0 with ``tanh_x0``),
        the bar the trainer's divergence check needs: uniform pixels (784 ln 2) mean nothing to a
        diffusion bound, which starts in the thousands of nats. Its L_0 (below 1e-3 nats on
        binarized MNIST: the decoder reads the sign of x_1) is left out."""
        t = torch.arange(2, self.T + 1)
        betas, alpha_bar = self.betas.double().cpu(), self.alpha_bar.double().cpu()
        beta, abar, abar_prev = betas[t], alpha_bar[t], alpha_bar[t - 1]
        var_q = beta * (1 - abar_prev) / (1 - abar)
        var_p = var_q if self.config.variance == "posterior" else beta
        # E (eps_theta - eps)^2: 1 for eps_theta = 0; abar / (1 - abar) for x_0 = tanh 0 = 0
        error = 1 if self.config.parameterization == "eps" else abar / (1 - abar)
        mean_gap2 = beta ** 2 / ((1 - beta) * (1 - abar)) * error
        per_pixel = 0.5 * (torch.log(var_p / var_q) + (var_q + mean_gap2) / var_p - 1)
        abar_T = alpha_bar[self.T]
        prior = 0.5 * (abar_T + (1 - abar_T) - 1 - torch.log1p(-abar_T))  # x_0^2 = 1
        return float(self.num_pixels * (per_pixel.sum() + prior))

    # -- sampling ----------------------------------------------------------------------------------

    def denoised(self, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """The x_0 that x_t and the noise eps imply: (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        abar = self._at(self.alpha_bar, t, xt)
        return (xt - (1 - abar).sqrt() * eps) / abar.sqrt()

    def predict(self, xt: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """(x_0, eps) predicted at step t; with ``clip_denoised`` x_0 is clipped to [-1, 1] and
        eps re-derived from it, so both samplers step from the same pair."""
        steps = torch.full((len(xt),), t, dtype=torch.long, device=xt.device)
        eps = self.eps(xt, steps)
        x0 = self.denoised(xt, steps, eps)
        if self.config.clip_denoised:
            x0 = x0.clamp(-1, 1)
            abar = self.alpha_bar[t].to(xt.dtype)
            eps = (xt - abar.sqrt() * x0) / (1 - abar).sqrt()
        return x0, eps

    def decode(self, x0: Tensor, *, draw: bool, generator: torch.Generator | None) -> Tensor:
        """Bits from p(x_0 | x_1), whose mean is the predicted x_0: drawn (pixel +1 with
        probability Phi(x_0 / sigma_1)) or its mode (the sign). (B, C, H, W) levels {0, 1}."""
        if not draw:
            return (x0 > 0).to(x0.dtype)
        p_one = torch.special.ndtr(x0 / self.betas[1].to(x0.dtype).sqrt())
        uniform = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return (uniform < p_one).to(x0.dtype)

    def _noise(self, shape, generator: torch.Generator | None) -> Tensor:
        return torch.randn(shape, generator=generator, device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def ancestral_chain(self, n: int, *, generator: torch.Generator | None = None,
                        keep: bool = True) -> tuple[Tensor, list[Tensor]]:
        """Algorithm 2 over all T steps: the bits (n, C, H, W) and (if ``keep``) the states
        x_T, ..., x_1."""
        x = self._noise((n, *self.image_shape), generator)  # x_T
        chain = [x]
        for t in range(self.T, 1, -1):
            x0, _ = self.predict(x, t)
            mean, _ = self.posterior(x0, x, t)
            x = mean + self.sigma2(t, x).sqrt() * self._noise(x.shape, generator)
            if keep:
                chain.append(x)
        x0, _ = self.predict(x, 1)
        return self.decode(x0, draw=True, generator=generator), chain

    def ddim_steps(self, steps: int) -> list[int]:
        """tau_1 = 1 < ... < tau_S = T, evenly spaced (Song et al. section 4.2, 'linear')."""
        self.check_steps(steps)
        return torch.linspace(1, self.T, steps, dtype=torch.float64).round().long().tolist()

    @torch.no_grad()
    def ddim_chain(self, n: int, *, steps: int, eta: float = 0.0,
                   generator: torch.Generator | None = None,
                   keep: bool = True) -> tuple[Tensor, list[Tensor]]:
        """DDIM (eq. 12, sigma of eq. 16 times eta) from x_T down to x_1, then the decoder: the
        bits (n, C, H, W) and (if ``keep``) the states x_{tau_S}, ..., x_{tau_1}."""
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        taus = self.ddim_steps(steps)
        x = self._noise((n, *self.image_shape), generator)
        chain = [x]
        for t, previous in zip(taus[:0:-1], taus[-2::-1]):
            x0, eps = self.predict(x, t)
            abar, abar_prev = self.alpha_bar[t], self.alpha_bar[previous]  # float64 scalars
            sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
            direction = (1 - abar_prev - sigma ** 2).clamp(min=0).sqrt()
            x = abar_prev.sqrt().to(x.dtype) * x0 + direction.to(x.dtype) * eps
            if eta > 0:
                x = x + sigma.to(x.dtype) * self._noise(x.shape, generator)
            if keep:
                chain.append(x)
        x0, _ = self.predict(x, 1)
        return self.decode(x0, draw=eta > 0, generator=generator), chain

    def chain(self, n: int, *, generator: torch.Generator | None,
              keep: bool = True) -> tuple[Tensor, list[Tensor]]:
        """The configured sampler's bits and states, in eval mode."""
        was_training = self.training
        self.eval()
        if self.config.sampler == "ancestral":
            result = self.ancestral_chain(n, generator=generator, keep=keep)
        else:
            result = self.ddim_chain(n, steps=self.config.sample_steps, eta=self.config.eta,
                                     generator=generator, keep=keep)
        self.train(was_training)
        return result

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` images (n, C, H, W) in {0, 1} from the configured sampler, in eval mode."""
        return self.chain(n, generator=generator, keep=False)[0]

    # -- the evaluate and sample stages ------------------------------------------------------------

    @torch.no_grad()
    def test_nll(self, test: Split, settings: ScoreSettings, *, variant: str,
                 generator: torch.Generator) -> tuple[Tensor, dict]:
        """The bound per test image, (N,) nats: the full sum (``bound_timesteps`` 0) or the
        unbiased estimate with that many steps per image; the parts and the Monte Carlo error
        beside it."""
        was_training = self.training
        self.eval()
        images = test.images(variant)
        K = settings.bound_timesteps or None
        parts = {"prior": [], "decoder": [], "diffusion": [], "total": [], "mc_var": []}
        for start in range(0, len(images), settings.batch_size):
            x = images[start:start + settings.batch_size].to(self.device, self.dtype)
            for key, value in self.bound(x, timesteps=K, generator=generator).items():
                parts[key].append(value.double().cpu())
        self.train(was_training)
        parts = {key: torch.cat(value) for key, value in parts.items()}
        N = len(images)
        extra = {
            "bound_estimator": (f"all {self.T} terms per image, one x_t draw each" if K is None else
                                f"unbiased: {K} step(s) t ~ U{{2..{self.T}}} per image, term x "
                                f"{self.T - 1}, plus L_T exact and L_0 (one x_1 draw)"),
            "bound_timesteps": settings.bound_timesteps, "diffusion_timesteps": self.T,
            "bound_prior_nats": parts["prior"].mean().item(),
            "bound_decoder_nats": parts["decoder"].mean().item(),
            "bound_diffusion_nats": parts["diffusion"].mean().item(),
            # The error of the test mean from drawing t alone (the stderr of test_nll_nats also
            # covers the choice of images): from the spread of the K draws, so K >= 2 only.
            "bound_timestep_stderr_nats": (math.sqrt(parts["mc_var"].sum().item()) / N
                                           if K is not None and K >= 2 else None),
        }
        return parts["total"], extra

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """The sample grid and ``chain.png``: rows of x_T ... x_1 (evenly picked from the
        sampler's states, [-1, 1] shown as black to white) and the sample's bits last."""
        figures = sample_grid(self, n=n, nrow=nrow, generator=generator)
        bits, states = self.chain(CHAIN_IMAGES, generator=generator)
        picks = torch.linspace(0, len(states) - 1, CHAIN_COLUMNS - 1).round().long().tolist()
        columns = [((states[i] + 1) / 2).clamp(0, 1) for i in picks] + [bits]
        rows = torch.stack(columns, dim=1).flatten(0, 1)  # (images * columns, C, H, W)
        figures.pngs["chain.png"] = grid_png(rows, nrow=CHAIN_COLUMNS)
        return figures
