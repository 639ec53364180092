"""VAE: the variational autoencoder, scored with the importance-weighted (IWAE) bound.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014; the k-sample bound of
Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (arXiv 2015).

    q(z|x) = N(mu(x), diag sigma(x)^2)    p(z) = N(0, I)    p(x|z) = prod_d Bernoulli(x_d; f(z)_d)
    ELBO(x)   = E_q[log p(x|z)] - KL(q(z|x) || p(z))                       (KL in closed form)
    L_k(x)    = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)],  z_1..z_k ~ q(z|x)   (L_1 = ELBO <= L_k)

``loss`` is the negative ELBO (one reparameterized draw, analytic KL); ``log_prob`` is the cheap
bound the trainer validates with each epoch; the test NLL is ``iwae_nll`` with k = 5000, the
number Burda et al. report.

NOTE: ReLU instead of the papers' tanh units and Adam instead of Adagrad; ``train_k > 1`` trains on
the IWAE bound instead (Burda et al.'s k = 50 runs). Dynamically binarized training data.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import knob
from ..data import Split
from .base import GenerativeModel, ScoreSettings, binary_only, draw_levels, pixel_log_prob
from .figures import Figures, grid_png, sample_grid
from .scoring import bits_per_dim

NETWORKS = ("mlp", "conv")
LOG_2PI = math.log(2 * math.pi)
INTERPOLATION_PAIRS = 8  # rows of the interpolation strip
INTERPOLATION_STEPS = 10  # decoded points per row, both ends included


@dataclass
class VAEConfig:
    network: str = knob("mlp", "Encoder/decoder, mlp (fully connected) or conv (stride-2 convolutions).",
                        choices=("mlp", "conv"))
    hidden: list[int] = knob([400], "Hidden layer sizes of the mlp encoder (the decoder mirrors them).",
                             minItems=1, items={"minimum": 1})
    channels: int = knob(32, "conv network only, channels at 14x14 (twice as many at 7x7).", minimum=1)
    latent: int = knob(20, "Size of the latent z.", minimum=1)
    train_k: int = knob(1, "1 trains on the ELBO; k > 1 on the IWAE bound with k samples.", minimum=1)
    val_k: int = knob(1, "Importance samples of the per-epoch validation bound (1 = ELBO).", minimum=1)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size_in, size_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(size_in, size_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no ReLU on the output


class VAE(GenerativeModel):
    """Gaussian-posterior, Bernoulli-decoder VAE with an MLP or convolutional encoder/decoder."""

    Config = VAEConfig
    paper = "Kingma & Welling 2014; IWAE bound of Burda et al. 2015"
    nll_kind = "bound"
    score_settings = ("batch_size", "iwae_k", "iwae_batch_size")

    @classmethod
    def data_problem(cls, image_shape: tuple[int, int, int], levels: int) -> str | None:
        """Binary pixels of any shape (the conv network's sides divisible by 4: its check)."""
        return binary_only(cls.__name__, levels)

    def __init__(self, config: VAEConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        if config.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {config.network!r}")
        if config.latent < 1 or config.train_k < 1 or config.val_k < 1:
            raise ValueError("latent, train_k and val_k must be >= 1")
        self.encoder = self.build_encoder(config)
        self.decoder = self.build_decoder(config)

    def build_encoder(self, config: VAEConfig) -> nn.Module:
        """x (B, C, H, W) -> the mean and log-variance of q(z|x), concatenated: (B, 2 latent)."""
        C, H, W = self.image_shape
        L = config.latent
        if config.network == "mlp":
            if not config.hidden:
                raise ValueError("the mlp VAE needs at least one hidden layer")
            return nn.Sequential(nn.Flatten(), _mlp([C * H * W, *config.hidden, 2 * L]))
        if H % 4 or W % 4:
            raise ValueError(f"the conv VAE needs height and width divisible by 4, got {H}x{W}")
        c = config.channels
        return nn.Sequential(
            nn.Conv2d(C, c, 4, 2, 1), nn.ReLU(),  # (B, c, H/2, W/2)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),  # (B, 2c, H/4, W/4)
            nn.Flatten(), nn.Linear(2 * c * (H // 4) * (W // 4), 2 * L))

    def build_decoder(self, config: VAEConfig) -> nn.Module:
        """z (N, latent) -> Bernoulli logits (N, C, H, W), mirroring the encoder."""
        C, H, W = self.image_shape
        L = config.latent
        if config.network == "mlp":
            return nn.Sequential(_mlp([L, *list(config.hidden)[::-1], C * H * W]),
                                 nn.Unflatten(1, (C, H, W)))
        c = config.channels
        return nn.Sequential(
            nn.Linear(L, 2 * c * (H // 4) * (W // 4)), nn.ReLU(),
            nn.Unflatten(1, (2 * c, H // 4, W // 4)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(),  # (B, c, H/2, W/2)
            nn.ConvTranspose2d(c, C, 4, 2, 1))  # (B, C, H, W) logits

    # -- the two networks --------------------------------------------------------------------

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x), each (B, latent)."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits of p(x|z), (N, C, H, W) for z of shape (N, latent)."""
        return self.decoder(z)

    def reconstruction(self, z: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) in nats per image, (N,), for z (N, latent) and x (N, C, H, W)."""
        return pixel_log_prob(self.decode(z), x, 2)

    # -- bounds ------------------------------------------------------------------------------

    def elbo(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """ELBO in nats per image, (B,): one reparameterized draw, KL to N(0, I) in closed form."""
        mean, log_var = self.posterior(x)  # (B, L)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * log_var) * eps  # (B, L)
        reconstruction = self.reconstruction(z, x)  # (B,)
        kl = kl_to_prior(mean, log_var)  # (B,)
        return reconstruction - kl

    def log_weights(self, x: Tensor, k: int, *, chunk: int | None = 100,
                    generator: torch.Generator | None = None) -> Tensor:
        """log p(x, z_i) - log q(z_i|x) for k draws z_i ~ q(z|x), shape (k, B).

        Draws are taken one importance sample at a time (a (B, latent) normal each), so the
        values depend on the generator only, not on ``chunk`` (how many samples share one decoder
        pass; None = all k at once).
        """
        mean, log_var = self.posterior(x)  # (B, L)
        std = torch.exp(0.5 * log_var)
        log_q_const = -0.5 * log_var.sum(1) - 0.5 * mean.shape[1] * LOG_2PI  # (B,)
        chunk = k if chunk is None else max(1, int(chunk))
        B = x.shape[0]
        pieces = []
        for start in range(0, k, chunk):
            count = min(chunk, k - start)
            eps = torch.stack([torch.randn(mean.shape, generator=generator, device=mean.device,
                                           dtype=mean.dtype) for _ in range(count)])  # (c, B, L)
            z = mean + std * eps  # (c, B, L)
            x_rep = x.unsqueeze(0).expand(count, *x.shape).reshape(count * B, *x.shape[1:])
            log_px_z = self.reconstruction(z.reshape(count * B, -1), x_rep).view(count, B)  # (c, B)
            log_pz = -0.5 * (z.pow(2).sum(2) + mean.shape[1] * LOG_2PI)  # (c, B)
            log_qz = log_q_const - 0.5 * eps.pow(2).sum(2)  # (c, B)
            pieces.append(log_px_z + log_pz - log_qz)
        return torch.cat(pieces)  # (k, B)

    def iwae_bound(self, x: Tensor, k: int, *, chunk: int | None = 100,
                   generator: torch.Generator | None = None) -> Tensor:
        """The IWAE bound L_k in nats per image, (B,): logsumexp of the k log-weights - log k."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        log_w = self.log_weights(x, k, chunk=chunk, generator=generator)  # (k, B)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The validation bound (B,): the ELBO, or IWAE with ``val_k`` samples. A lower bound."""
        if self.config.val_k == 1:
            return self.elbo(x)
        return self.iwae_bound(x, self.config.val_k)

    def loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Negative ELBO (or negative IWAE bound if ``train_k > 1``), mean over the batch, nats."""
        if self.config.train_k == 1:
            return -self.elbo(x).mean()
        return -self.iwae_bound(x, self.config.train_k, chunk=None).mean()

    # -- sampling and figures ----------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, generator: torch.Generator | None = None,
               means: bool = False) -> Tensor:
        """z ~ N(0, I), then x ~ p(x|z): (n, C, H, W) in {0, 1} (Bernoulli means if ``means``)."""
        z = torch.randn((n, self.config.latent), generator=generator, device=self.device,
                        dtype=self.dtype)
        logits = self.decode(z)  # (n, C, H, W)
        if means:
            return torch.sigmoid(logits)
        return draw_levels(logits, 2, generator)

    # -- the evaluate and sample stages ----------------------------------------------------------

    @torch.no_grad()
    def test_nll(self, test: Split, settings: ScoreSettings, *, variant: str,
                 generator: torch.Generator) -> tuple[Tensor, dict]:
        """-L_k (IWAE, k = ``settings.iwae_k``) per test image, and the negative ELBO beside it."""
        images = test.images(variant)
        batch = settings.batch_size
        elbo = torch.cat([-self.elbo(images[i:i + batch].to(self.device, self.dtype),
                                     generator=generator).double().cpu()
                          for i in range(0, len(images), batch)])
        iwae = iwae_nll(self, images, settings.iwae_k, batch_size=settings.iwae_batch_size,
                        generator=generator)
        nats = elbo.mean().item()
        return iwae, {"iwae_k": settings.iwae_k, "neg_elbo_nats": nats,
                      "neg_elbo_bits_per_dim": bits_per_dim(nats, self.num_pixels)}

    def figures(self, test: Split | None, *, n: int, nrow: int, variant: str,
                generator: torch.Generator, **unused) -> Figures:
        """The sample grid and ``interpolation.png``: rows [x_a, the decoded line from z(x_a) to
        z(x_b) (Bernoulli means), x_b] for pairs of test images."""
        figures = sample_grid(self, n=n, nrow=nrow, generator=generator)
        if test is not None:
            images = test.images(variant)[:2 * INTERPOLATION_PAIRS].to(self.device, self.dtype)
            x_a, x_b = images[0::2], images[1::2]
            line = self.interpolate(x_a, x_b, steps=INTERPOLATION_STEPS)  # (P, steps, C, H, W)
            rows = torch.cat([x_a.unsqueeze(1), line, x_b.unsqueeze(1)], dim=1).flatten(0, 1)
            figures.pngs["interpolation.png"] = grid_png(rows, nrow=INTERPOLATION_STEPS + 2)
        return figures

    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 10) -> Tensor:
        """Decode the line between the posterior means of two images to Bernoulli means.

        Args:
            x_a, x_b: (C, H, W) images, or (B, C, H, W) batches of pairs.
        Returns:
            (steps, C, H, W) for single images, (B, steps, C, H, W) for batches; the first and last
            steps are the decoded posterior means of ``x_a`` and ``x_b``.
        """
        single = x_a.dim() == 3
        if single:
            x_a, x_b = x_a.unsqueeze(0), x_b.unsqueeze(0)
        mean_a, _ = self.posterior(x_a.to(self.device, self.dtype))  # (B, L)
        mean_b, _ = self.posterior(x_b.to(self.device, self.dtype))
        t = torch.linspace(0, 1, steps, device=self.device, dtype=self.dtype).view(1, steps, 1)
        z = (1 - t) * mean_a.unsqueeze(1) + t * mean_b.unsqueeze(1)  # (B, steps, L)
        images = torch.sigmoid(self.decode(z.flatten(0, 1)))  # (B*steps, C, H, W)
        images = images.view(x_a.shape[0], steps, *images.shape[1:])
        return images[0] if single else images


def capped_iwae_k(settings: ScoreSettings, test_k: int) -> ScoreSettings:
    """``settings`` with ``iwae_k`` lowered to a model's ``test_k`` when that is set and smaller
    (0: unchanged): the cap of the VAEs whose decoder pass is costly (pixelvae, cppn)."""
    if not test_k:
        return settings
    return dataclasses.replace(settings, iwae_k=min(settings.iwae_k, test_k))


def kl_to_prior(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, diag exp(log_var)) || N(0, I)) in nats, (B,), in closed form."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(1)


@torch.no_grad()
def iwae_nll(model: VAE, images: Tensor, k: int = 5000, *, batch_size: int = 100,
             chunk: int | None = 100, generator: torch.Generator | None = None,
             device: torch.device | str | None = None) -> Tensor:
    """-L_k per image in nats, (N,) float64 on the CPU: the test NLL upper bound (Burda et al.).

    Runs in eval mode. Memory grows with ``batch_size * chunk`` decoded images (the default,
    10,000 at a time, is about 30 MB of logits for the MLP). Pass a seeded ``generator`` (on the
    model's device) for reproducible numbers.
    """
    device = model.device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    pieces = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, model.dtype)
        pieces.append(-model.iwae_bound(x, k, chunk=chunk, generator=generator).double().cpu())
    model.train(was_training)
    return torch.cat(pieces)
