"""Sample quality on the judge's features: Fréchet distance (FID), precision and recall.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017, eq. 6) is the Fréchet distance between two Gaussians fitted to the
features of two image sets:

    d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).

NOTE: the features are the penultimate layer of the pipeline's own classifier of the dataset (the
judge, ``models/classifier.py``: grey or colour images, any levels), not Inception-v3's pool3
layer: Inception's weights are not available offline and are a poor judge of 28x28 digits. So our
FIDs compare models with each other and with the floor (real images against real images), never
with FIDs published on Inception features (CIFAR-10's included).

Precision and recall follow Kynkäänniemi et al., "Improved Precision and Recall Metric for
Assessing Generative Models", NeurIPS 2019, section 2 (eq. 1-3): each feature vector of a set is
the centre of a ball whose radius is the distance to its k-th nearest neighbour within the set
(k = 3 in the paper); precision is the share of samples inside some real image's ball, recall the
share of real images inside some sample's ball. The radii shrink as a set grows, so the two sets
should have the same size (the paper uses equal sizes; so do we).

Everything is computed in float64. The matrix square root comes from symmetric
eigendecompositions (no scipy): tr((S_1 S_2)^(1/2)) = tr((A S_2 A)^(1/2)) with A = S_1^(1/2), because
S_1 S_2 = A (A S_2 A) A^(-1) is similar to the symmetric positive semi-definite A S_2 A.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor


def gaussian_fit(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) in float64 of features (N, D), N >= 2."""
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need a (N, D) feature matrix with N >= 2, got shape {tuple(features.shape)}")
    x = features.double()
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / (len(x) - 1)


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mean1: Tensor, cov1: Tensor, mean2: Tensor, cov2: Tensor) -> float:
    """Fréchet distance between N(mean1, cov1) and N(mean2, cov2) (float64)."""
    mean1, cov1, mean2, cov2 = (t.double() for t in (mean1, cov1, mean2, cov2))
    square = (*mean1.shape, *mean1.shape)
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != square:
        raise ValueError(f"mismatched Gaussians: means {tuple(mean1.shape)}, {tuple(mean2.shape)}; "
                         f"covariances {tuple(cov1.shape)}, {tuple(cov2.shape)}")
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1  # (D, D), similar to cov1 @ cov2
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mean1 - mean2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    # A distance is >= 0; a set against itself can round to -1e-13.
    return max(distance.item(), 0.0)


def fid(features1: Tensor, features2: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*gaussian_fit(features1), *gaussian_fit(features2))


def _distance_rows(a: Tensor, b: Tensor, batch_size: int = 1000):
    """Euclidean distances from ``a`` to ``b`` in float64, ``batch_size`` rows (of a) at a time,
    computed pair by pair (no |a|^2 + |b|^2 - 2ab rounding: a point's distance to its copy is
    exactly 0), so memory stays at batch_size x N_b."""
    a, b = a.double(), b.double()
    for start in range(0, len(a), batch_size):
        yield torch.cdist(a[start:start + batch_size], b,
                          compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(features: Tensor, k: int) -> Tensor:
    """Distance (N,) from each feature vector to its k-th nearest neighbour in the same set."""
    if not 1 <= k < len(features):
        raise ValueError(f"k must be in 1..{len(features) - 1} for {len(features)} features, got {k}")
    # The smallest distance of a row is the point itself (0); the (k+1)-th is its k-th neighbour.
    return torch.cat([rows.kthvalue(k + 1, dim=1).values
                      for rows in _distance_rows(features, features)])


def coverage(points: Tensor, centres: Tensor, radii: Tensor) -> float:
    """Share of ``points`` inside at least one ball (centre, radius): Kynkäänniemi et al. eq. 1-2."""
    inside = torch.cat([(rows <= radii.double()[None, :]).any(dim=1)  # (batch,) of (batch, N_c)
                        for rows in _distance_rows(points, centres)])
    return inside.double().mean().item()


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of ``fake`` features against ``real`` ones (Kynkäänniemi et al. 2019)."""
    precision = coverage(fake, real, knn_radii(real, k))
    recall = coverage(real, fake, knn_radii(fake, k))
    return precision, recall


def check_judged_shape(judge, images: Tensor) -> None:
    """A clear ValueError unless the images (N, C, H, W) have the shape the judge was built for
    (grey or R, G, B; its size): a judge of another dataset would score nonsense."""
    if tuple(images.shape[1:]) != tuple(judge.image_shape):
        raise ValueError(f"the judge reads images of shape {tuple(judge.image_shape)}, "
                         f"got {tuple(images.shape[1:])}")


@torch.no_grad()
def judge_features(judge, images: Tensor, *, levels: int, batch_size: int = 1000) -> Tensor:
    """The judge's penultimate features (N, F) float64, on the judge's device, of images
    (N, C, H, W) holding ``levels`` levels (rescaled to the judge's own levels), in batches, in
    eval mode. Grey or colour alike: C is the judge's (``check_judged_shape``)."""
    check_judged_shape(judge, images)
    was_training = judge.training
    judge.eval()
    scale = (judge.levels - 1) / (levels - 1)
    chunks = [judge.features(images[i:i + batch_size].to(judge.device, judge.dtype) * scale)
              .double() for i in range(0, len(images), batch_size)]
    judge.train(was_training)
    return torch.cat(chunks)


@torch.no_grad()
def draw_samples(model, n: int, *, batch_size: int, generator: torch.Generator,
                 test_images: Tensor | None = None) -> Tensor:
    """``n`` images (n, C, H, W) from the model's ``quality_samples`` (its own sampler, or its
    translations of ``test_images``), ``batch_size`` at a time; a class-conditional model gets
    labels spread evenly over the classes (0, 1, ..., 9, 0, ...)."""
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        y = ((torch.arange(start, start + count, device=model.device) % model.num_classes)
             if model.conditional else None)
        chunks.append(model.quality_samples(count, y=y, generator=generator,
                                            test_images=test_images, offset=start).cpu())
    model.train(was_training)
    return torch.cat(chunks)


def quality_scores(real: Tensor, fake: Tensor, *, samples: int, k: int) -> dict[str, Any]:
    """FID of ``fake`` features against every ``real`` one, precision and recall against the
    first ``len(fake)`` real ones (equal sizes: the k-NN radii depend on the set's size)."""
    precision, recall = precision_recall(real[:len(fake)], fake, k=k)
    return {"fid": fid(fake, real), "precision": precision, "recall": recall,
            "fid_samples": samples, "pr_neighbours": k}


def sample_quality(model, judge, test_images: Tensor, *, samples: int, k: int, batch_size: int,
                   generator: torch.Generator) -> tuple[dict[str, Any], float]:
    """The quality scores of ``samples`` draws of ``model`` against ``test_images`` (the model's
    levels) on the judge's features, and the wall seconds the draws took."""
    start = time.perf_counter()
    images = draw_samples(model, samples, batch_size=batch_size, generator=generator,
                          test_images=test_images)
    seconds = time.perf_counter() - start
    real = judge_features(judge, test_images, levels=model.levels, batch_size=batch_size)
    fake = judge_features(judge, images, levels=model.levels, batch_size=batch_size)
    return quality_scores(real, fake, samples=samples, k=k), seconds
