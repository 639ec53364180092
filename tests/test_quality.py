"""Sample quality (genzoo.quality): FID, precision and recall on the judge's features, the samples
they are computed on, the judge's floor phase and the evaluate stage that scores every generative
model with them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from genzoo.config import TrainConfig, validate_params
from genzoo.data import load_split, save_npz
from genzoo.evaluate import evaluate, write_metrics
from genzoo.models.classifier import Classifier, ClassifierConfig
from genzoo.models.cond_gated_pixelcnn import CondGatedPixelCNN, CondGatedPixelCNNConfig
from genzoo.quality import (draw_samples, fid, frechet_distance, gaussian_fit, judge_features,
                            knn_radii, precision_recall)
from genzoo.settings import run_settings
from genzoo.train import run_phase, train


def features(n: int, dim: int = 6, *, seed: int = 0, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return torch.randn(n, dim, generator=generator, dtype=torch.float64) @ mixing + shift


# -- the Fréchet distance ----------------------------------------------------------------------------

def test_fid_of_a_set_against_itself_is_zero():
    x = features(300)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    singular = torch.cat([x[:, :3], x[:, :3]], dim=1)  # rank-deficient covariance
    assert fid(singular, singular) == pytest.approx(0.0, abs=1e-9)


def test_fid_is_symmetric_and_grows_with_the_shift():
    a, b = features(400, seed=1), features(500, seed=2, shift=0.5)
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-9)
    assert fid(a, b) > 0
    assert fid(a, a + 1.0) == pytest.approx(a.shape[1] * 1.0, rel=1e-9)  # |shift|^2, same covariance
    assert fid(a, a + 1.0) < fid(a, a + 2.0)


def test_gaussian_fit_is_the_sample_mean_and_unbiased_covariance():
    x = features(50)
    mean, cov = gaussian_fit(x.float())
    assert mean.dtype == cov.dtype == torch.float64
    assert torch.allclose(mean, x.mean(0)) and torch.allclose(cov, torch.cov(x.T), atol=1e-5)
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_fit(x[:1])


def test_the_distance_matches_the_closed_form_of_two_gaussians():
    # Non-commuting 2x2 covariances: tr((S1 S2)^(1/2)) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
    cov1 = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    cov2 = torch.tensor([[0.5, -0.3], [-0.3, 1.5]], dtype=torch.float64)
    mean1, mean2 = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])
    trace_sqrt = math.sqrt((cov1 @ cov2).trace().item()
                           + 2 * math.sqrt(torch.det(cov1).item() * torch.det(cov2).item()))
    expected = 8.0 + cov1.trace().item() + cov2.trace().item() - 2 * trace_sqrt
    assert frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mean2, cov2, mean1, cov1) == pytest.approx(expected, rel=1e-12)
    # Diagonal covariances in a rotated basis: |dm|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(0),
                                              dtype=torch.float64))
    a, b = torch.tensor([1.0, 4.0, 9.0, 0.25, 2.0]), torch.tensor([4.0, 1.0, 9.0, 1.0, 0.5])
    cov_a = rotation @ torch.diag(a).double() @ rotation.T
    cov_b = rotation @ torch.diag(b).double() @ rotation.T
    expected = 3.0 + (a.sqrt() - b.sqrt()).square().sum().item()
    shift = torch.full((5,), 1 / math.sqrt(5 / 3), dtype=torch.float64)  # |shift|^2 = 3
    assert frechet_distance(torch.zeros(5), cov_a, shift, cov_b) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="mismatched Gaussians"):
        frechet_distance(mean1, cov1, torch.zeros(3), torch.eye(3))


def test_fid_of_samples_approaches_the_distance_of_their_gaussians():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20_000, 2, generator=generator, dtype=torch.float64)
    b = torch.randn(20_000, 2, generator=generator, dtype=torch.float64) * 2 + 1
    # N(0, I) against N(1, 4 I): |dm|^2 = 2, tr = 2 + 8 - 2 * 2 * 2 = 2.
    assert fid(a, b) == pytest.approx(4.0, abs=0.15)


# -- precision and recall --------------------------------------------------------------------------

def test_knn_radii_are_the_distance_to_the_kth_neighbour():
    x = features(30)
    brute = torch.cdist(x, x).sort(dim=1).values[:, 3]  # column 0 is the point itself
    assert torch.allclose(knn_radii(x, 3), brute)
    with pytest.raises(ValueError, match="k must be in 1..29"):
        knn_radii(x, 30)


def test_precision_and_recall_are_one_for_identical_sets_and_fall_for_disjoint_ones():
    real = features(200)
    assert precision_recall(real, real.clone(), k=3) == (1.0, 1.0)
    far = features(200, seed=1, shift=1000.0)
    assert precision_recall(real, far, k=3) == (0.0, 0.0)
    # Half the samples real, half far away: precision halves, while the real half alone covers
    # nearly all the real set (recall measures coverage, not purity).
    mixed = torch.cat([real[:100], far[:100]])
    precision, recall = precision_recall(real, mixed, k=3)
    assert precision == 0.5 and 0.9 < recall < 1.0
    # Samples collapsed on a tenth of the real set (mode collapse): precision 1, recall falls.
    collapsed = real[:20].repeat(10, 1) + 1e-6 * features(200, seed=2)
    precision, recall = precision_recall(real, collapsed, k=3)
    assert precision == 1.0 and recall < 0.5


# -- on real digits: FID ranks corrupted test images worse -----------------------------------------

@pytest.fixture(scope="module")
def fixed_judge():
    """A fixed (seeded, untrained) feature map of the classifier's architecture on binary images."""
    torch.manual_seed(0)
    return Classifier(ClassifierConfig(channels=8, features=32), levels=2).eval()


def test_fid_ranks_corrupted_test_images_worse_than_clean_ones(processed, fixed_judge):
    test = load_split(processed / "test.npz").images("binarized")
    reference, clean = test[:2000], test[5000:6000]
    generator = torch.Generator().manual_seed(0)
    flips = torch.rand(clean.shape, generator=generator) < 0.1
    noisy = torch.where(flips, 1 - clean, clean)  # 10 % of the bits flipped
    blanked = clean.clone()
    blanked[:, :, 14:] = 0  # the bottom half erased

    def scores(images):
        real = judge_features(fixed_judge, reference, levels=2, batch_size=500)
        fake = judge_features(fixed_judge, images, levels=2, batch_size=500)
        return fid(fake, real), precision_recall(real[:len(fake)], fake, k=3)

    clean_fid, (clean_precision, clean_recall) = scores(clean)
    for corrupted in (noisy, blanked):
        corrupted_fid, (precision, recall) = scores(corrupted)
        assert corrupted_fid > 3 * clean_fid
        assert precision < clean_precision
    assert clean_fid == pytest.approx(scores(clean)[0])  # the same images, the same score
    assert fid(*(2 * [judge_features(fixed_judge, clean, levels=2)])) == pytest.approx(0.0, abs=1e-9)


# -- the samples FID is computed on ----------------------------------------------------------------

def test_samples_are_class_balanced_batched_and_reproducible():
    torch.manual_seed(0)
    model = CondGatedPixelCNN(CondGatedPixelCNNConfig(channels=4, layers=2, head_channels=4),
                              image_shape=(1, 5, 5)).eval()
    asked = []
    sample = model.sample
    model.sample = lambda n, *, y=None, generator=None: asked.append(y.tolist()) or sample(
        n, y=y, generator=generator)
    images = draw_samples(model, 23, batch_size=10, generator=torch.Generator().manual_seed(3))
    assert images.shape == (23, 1, 5, 5)
    assert [len(y) for y in asked] == [10, 10, 3]
    assert sum(asked, []) == [i % 10 for i in range(23)]
    again = draw_samples(model, 23, batch_size=10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(images, again)


# -- the floor phase and the evaluate stage --------------------------------------------------------

N = 40
PARAMS = {
    "models": {"made": {"arch": {"hidden": [8]}, "train": {"epochs": 1, "max_steps": 2,
                                                          "batch_size": 20}}},
    "classifier": {"arch": {"channels": 2, "features": 8},
                   "train": {"epochs": 1, "max_steps": 2, "batch_size": 20}},
    "evaluate": {"batch_size": 16, "fid_samples": 20, "pr_neighbours": 2},
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Tiny random splits, a judge and a MADE trained two steps each, the judge's floor phase."""
    root = tmp_path_factory.mktemp("quality")
    generator = torch.Generator().manual_seed(0)
    for name in ("train", "val", "test"):
        gray = torch.randint(0, 256, (N, 28, 28), generator=generator, dtype=torch.uint8)
        arrays = {"gray": gray.numpy(), "labels": (np.arange(N) % 10).astype(np.int64)}
        if name != "train":
            arrays["binary"] = (gray > 127).numpy().astype(np.uint8)
        save_npz(root / "processed" / f"{name}.npz", **arrays)
    params = validate_params(PARAMS)
    jobs = {}
    for name in ("classifier", "made"):
        jobs[name] = run_settings(params, name, 0)
        settings = jobs[name]["train"]
        train(name, settings["arch"], TrainConfig(**settings["train"]),
              train_split=load_split(root / "processed/train.npz"),
              val_split=load_split(root / "processed/val.npz"), out_dir=root / name / "seed0",
              seed=0, variant=settings["variant"], eval_batch_size=16,
              timings=root / "timings" / name / "train.json", progress=False,
              log=lambda message: None)
    run_phase(root / "classifier/seed0", jobs["classifier"]["floor"],
              data_dir=root / "processed", device="cpu")
    return root, jobs


def test_the_floor_phase_scores_training_images_as_samples(scored):
    root, jobs = scored
    assert list(jobs["classifier"]) == ["train", "floor", "evaluate"]
    floor = json.loads((root / "classifier/seed0/floor/floor.json").read_text())
    assert floor["fid_samples"] == 20 and floor["pr_neighbours"] == 2
    assert floor["fid"] > 0 and 0 <= floor["precision"] <= 1 and 0 <= floor["recall"] <= 1
    metrics = evaluate(root / "classifier/seed0", load_split(root / "processed/test.npz"),
                       jobs["classifier"]["evaluate"])
    assert {key: metrics[f"floor_{key}"] for key in floor} == floor
    assert "fid" not in metrics  # the judge has no samples of its own


def test_evaluate_scores_the_samples_and_keeps_wall_clock_times_out_of_the_metrics(scored, tmp_path):
    root, jobs = scored
    test = load_split(root / "processed/test.npz")

    def score(out):
        metrics = evaluate(root / "made/seed0", test, jobs["made"]["evaluate"],
                           judge=root / "classifier/seed0/model.pt",
                           timings=[root / "timings/made/train.json"],
                           timings_out=tmp_path / "timings" / out)
        write_metrics(tmp_path / out, metrics)
        return metrics

    metrics = score("first.json")
    assert metrics["fid"] > 0 and 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert metrics["fid_samples"] == 20 and metrics["pr_neighbours"] == 2
    assert not any("seconds_per_sample" in key or "sample_seconds" in key for key in metrics)
    spent = json.loads((tmp_path / "timings/first.json").read_text())
    assert spent["model"] == "made" and spent["fid_samples"] == 20
    assert spent["seconds_per_sample"] == pytest.approx(spent["sample_seconds"] / 20)
    assert spent["evaluate_seconds"] >= spent["sample_seconds"] > 0
    score("second.json")  # scored again: the same bytes (DVC caches the metrics)
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "second.json").read_bytes()
    # Without the judge (a model scored by hand) there is no sample quality, and no error.
    assert "fid" not in evaluate(root / "made/seed0", test, jobs["made"]["evaluate"])
