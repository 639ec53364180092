"""A Gaussian mixture over latent codes, fitted by EM: the density the autoencoders sample from.

Full covariances, in float64; the fit runs a fixed number of EM steps from a seeded start, so the
same codes and seed give the same mixture (Dempster, Laird & Rubin, "Maximum Likelihood from
Incomplete Data via the EM Algorithm", JRSS B 1977; Bishop, "Pattern Recognition and Machine
Learning", 2006, section 9.2.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


@dataclass
class GaussianMixture:
    """Full-covariance Gaussian mixture over codes: weights (K,), means (K, L), scale_tril (K, L, L)
    (the Cholesky factor of each covariance)."""

    weights: Tensor
    means: Tensor
    scale_tril: Tensor

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) in nats, (N,), for codes z (N, L)."""
        return torch.logsumexp(self.joint(z), dim=1)

    def joint(self, z: Tensor) -> Tensor:
        """log w_k + log N(z; mu_k, Sigma_k), (N, K)."""
        eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
        inverse = torch.linalg.solve_triangular(self.scale_tril, eye, upper=False)  # (K, L, L)
        diff = z.unsqueeze(0) - self.means.unsqueeze(1)  # (K, N, L)
        mahalanobis = (diff @ inverse.transpose(1, 2)).pow(2).sum(-1)  # (K, N)
        log_det = torch.diagonal(self.scale_tril, dim1=-2, dim2=-1).log().sum(-1)  # (K,)
        L = z.shape[1]
        log_normal = -0.5 * (mahalanobis + L * LOG_2PI) - log_det.unsqueeze(1)
        return (self.weights.log().unsqueeze(1) + log_normal).t()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n codes (n, L): a component by its weight, then its Gaussian."""
        picks = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn((n, self.means.shape[1], 1), generator=generator,
                          device=self.means.device, dtype=self.means.dtype)
        return self.means[picks] + (self.scale_tril[picks] @ eps).squeeze(-1)

    def to(self, device: torch.device, dtype: torch.dtype) -> GaussianMixture:
        return GaussianMixture(*(t.to(device, dtype) for t in (self.weights, self.means,
                                                                self.scale_tril)))


def fit_mixture(codes: Tensor, config, generator: torch.Generator) -> GaussianMixture:
    """EM for a full-covariance Gaussian mixture (Dempster, Laird & Rubin 1977) on codes (N, L), in
    float64. ``config`` gives ``components`` (K), ``iterations`` and ``min_variance`` (added to
    each covariance's diagonal). Starts from K distinct codes drawn by ``generator`` as means, the
    codes' covariance for every component and equal weights; runs ``iterations`` steps, so the
    same codes and seed give the same mixture."""
    z = codes.double()
    N, L = z.shape
    K = min(config.components, N)
    eye = torch.eye(L, dtype=z.dtype)
    centred = z - z.mean(0)
    covariance = centred.t() @ centred / N + config.min_variance * eye  # (L, L)
    mixture = GaussianMixture(torch.full((K,), 1.0 / K, dtype=z.dtype),
                              z[torch.randperm(N, generator=generator)[:K]].clone(),
                              torch.linalg.cholesky(covariance).expand(K, L, L).clone())
    for _ in range(config.iterations):
        joint = mixture.joint(z)  # E step: (N, K)
        resp = torch.softmax(joint, dim=1)
        counts = resp.sum(0).clamp_min(1e-12)  # (K,)  M step
        means = resp.t() @ z / counts.unsqueeze(1)  # (K, L)
        diff = z.unsqueeze(0) - means.unsqueeze(1)  # (K, N, L)
        covariances = (resp.t().unsqueeze(-1) * diff).transpose(1, 2) @ diff / counts.view(K, 1, 1)
        mixture = GaussianMixture(counts / counts.sum(), means,
                                  torch.linalg.cholesky(covariances + config.min_variance * eye))
    return mixture
