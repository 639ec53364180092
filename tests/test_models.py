"""Properties every exact autoregressive model must have: causality, normalization, sampling;
and the independent-pixels baseline (normalization, sampling, completions, its fit on MNIST).

The models run on tiny images (2x2, 3x3, 4x4) so that all images can be enumerated.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genzoo.config import TrainConfig
from genzoo.data import load_split
from genzoo.models import JUDGE, MODELS, NETWORKS, AutoregressiveModel, ScoreSettings
from genzoo.models.independent import Independent, IndependentConfig
from genzoo.models.made import MADE, MADEConfig, made_masks
from genzoo.models.nade import NADE, NADEConfig, NADEScan

AUTOREGRESSIVE = {
    "nade": lambda shape: NADE(NADEConfig(hidden=16), image_shape=shape),
    "made_natural": lambda shape: MADE(MADEConfig(hidden=[32, 32]), image_shape=shape),
    "made_random": lambda shape: MADE(MADEConfig(hidden=[32], ordering="random", mask_seed=3),
                                      image_shape=shape),
}


def sharpen(model: torch.nn.Module, scale: float = 4.0) -> torch.nn.Module:
    """Scale up a fresh model's weights so its distribution is far from uniform."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * scale / parameter.shape[-1] ** 0.5)
    return model.double().eval()


def all_binary_images(shape) -> torch.Tensor:
    count = shape[0] * shape[1] * shape[2]
    rows = list(itertools.product([0.0, 1.0], repeat=count))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *shape)  # (2^D, C, H, W)


def position_in_order(model) -> torch.Tensor:
    order = model.ordering()
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))
    return position  # position[i] = step at which pixel i is generated


@pytest.mark.parametrize("name", sorted(AUTOREGRESSIVE))
def test_causality_by_gradient(name):
    """d logit_d / d x_j is zero for every j not strictly before d in the model's ordering."""
    model = sharpen(AUTOREGRESSIVE[name]((1, 4, 4)))
    x = (torch.rand(1, 1, 4, 4, dtype=torch.float64) < 0.5).double()
    jacobian = torch.autograd.functional.jacobian(lambda inp: model(inp).flatten(), x).view(16, 16)
    position = position_in_order(model)
    allowed = position[None, :] < position[:, None]  # allowed[d, j]: j comes before d
    assert torch.all(jacobian[~allowed] == 0), "an output depends on itself or a later pixel"
    assert (jacobian[allowed] != 0).float().mean() > 0.5, "the model ignores its context"


@pytest.mark.parametrize("name", sorted(AUTOREGRESSIVE))
def test_probabilities_of_all_3x3_images_sum_to_one(name):
    model = sharpen(AUTOREGRESSIVE[name]((1, 3, 3)))
    log_probs = model.log_prob(all_binary_images((1, 3, 3)))
    assert log_probs.shape == (512,)
    assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-5)
    assert log_probs.max() - log_probs.min() > 3, "test is weak: the distribution is near uniform"


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's chi-square goodness of fit; cells with expected count < 5 are pooled."""
    big = probs * counts.sum() >= 5
    expected = probs * counts.sum()
    observed, expected = counts[big], expected[big]
    if not big.all():
        observed = torch.cat([observed, counts[~big].sum().view(1)])
        expected = torch.cat([expected, (probs[~big] * counts.sum()).sum().view(1)])
    statistic = ((observed - expected) ** 2 / expected).sum()
    dof = len(observed) - 1
    return torch.special.gammaincc(torch.tensor(dof / 2.0), statistic / 2).item()


@pytest.mark.parametrize("name", sorted(AUTOREGRESSIVE))
def test_sample_frequencies_match_probabilities(name):
    model = sharpen(AUTOREGRESSIVE[name]((1, 3, 3)))
    probs = model.log_prob(all_binary_images((1, 3, 3))).exp()
    samples = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    weights = 2 ** torch.arange(8, -1, -1, dtype=torch.float64)  # image -> index, row-major bits
    index = (samples.flatten(1).double() @ weights).long()
    counts = torch.bincount(index, minlength=512).double()
    assert chi_square_p_value(counts, probs) > 1e-3


def test_chi_square_rejects_a_wrong_distribution():
    probs = torch.full((512,), 1 / 512, dtype=torch.float64)
    skewed = torch.distributions.Categorical(probs=torch.linspace(1, 3, 512)).sample((20_000,))
    assert chi_square_p_value(torch.bincount(skewed, minlength=512).double(), probs) < 1e-6


def test_nade_incremental_sampler_matches_the_generic_loop():
    """NADE's O(HD) sampler draws exactly what the recompute-everything loop draws."""
    model = sharpen(NADE(NADEConfig(hidden=8), image_shape=(1, 4, 4)))
    fast = model.sample(64, generator=torch.Generator().manual_seed(5))
    slow = super(NADE, model).sample(64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(fast, slow)


MADE_SAMPLER_CONFIGS = {
    "one_layer_natural": MADEConfig(hidden=[40]),
    "one_layer_random": MADEConfig(hidden=[40], ordering="random", mask_seed=3),
    "two_layers_random": MADEConfig(hidden=[30, 20], ordering="random", mask_seed=1),
    "three_layers_natural": MADEConfig(hidden=[25, 25, 25]),
}


@pytest.mark.parametrize("name", sorted(MADE_SAMPLER_CONFIGS))
@pytest.mark.parametrize("complete", [False, True], ids=["sample", "complete"])
def test_made_sampler_matches_the_generic_loop(name, complete):
    """MADE's sampler computes each hidden unit once: it draws exactly what the generic loop
    (one full forward pass per pixel) draws from the same generator, completion included."""
    shape, n = (1, 5, 4), 64
    model = sharpen(MADE(MADE_SAMPLER_CONFIGS[name], image_shape=shape))
    kwargs = {}
    if complete:  # the top two rows given
        given = torch.randint(0, 2, (n, *shape), generator=torch.Generator().manual_seed(6))
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, :2] = True
        kwargs = {"given": given.double(), "given_mask": mask}
    fast = model.sample(n, generator=torch.Generator().manual_seed(5), **kwargs)
    slow = AutoregressiveModel.sample(model, n, generator=torch.Generator().manual_seed(5), **kwargs)
    assert torch.equal(fast, slow)
    assert 0 < fast.mean() < 1
    if complete:
        assert torch.equal(fast[:, :, :2], kwargs["given"][:, :, :2])


def test_made_sampler_matches_at_mnist_size_in_float32():
    """MNIST-sized, float32 random weights (no sharpening): the same draws."""
    torch.manual_seed(0)
    model = MADE(MADEConfig(hidden=[100], ordering="random"), image_shape=(1, 28, 28)).eval()
    fast = model.sample(8, generator=torch.Generator().manual_seed(1))
    slow = AutoregressiveModel.sample(model, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(fast, slow)


def test_nade_scan_gradients_match_finite_differences():
    """NADEScan's hand-written backward pass (x, W, c, V, b), over several chunks."""
    K, P, B, H = 3, 4, 2, 5
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)
              for shape in [(K, P, B), (K, P, H), (H,), (K, P, H), (K, P)]]
    assert torch.autograd.gradcheck(NADEScan.apply, inputs)


def test_nade_logits_match_the_textbook_sum():
    """a_d = c + sum_{j<d} W[:, j] x_j, logit_d = b_d + V_d . sigmoid(a_d), pixel by pixel."""
    model = sharpen(NADE(NADEConfig(hidden=6), image_shape=(1, 6, 3)))  # 3 chunks of 2 rows
    x = (torch.rand(5, 1, 6, 3, dtype=torch.float64) < 0.5).double()
    flat = x.flatten(1)
    expected = torch.stack([model.b[d] + torch.sigmoid(model.c + flat[:, :d] @ model.W[:, :d].t())
                            @ model.V[d] for d in range(18)], 1)
    torch.testing.assert_close(model(x).flatten(1), expected)


def test_made_masks_follow_the_paper():
    degrees, masks = made_masks(6, [10, 10], "random", seed=0)
    assert sorted(degrees.tolist()) == [1, 2, 3, 4, 5, 6]
    assert [tuple(m.shape) for m in masks] == [(10, 6), (10, 10), (6, 10)]
    with pytest.raises(ValueError, match="ordering"):
        made_masks(6, [10], "zigzag", seed=0)


def test_models_reject_grayscale():
    with pytest.raises(ValueError, match="binarized"):
        NADE(NADEConfig(hidden=4), levels=256)


def schema_defaults(schema: dict, section: dict) -> dict:
    """{key: default} of a schema object, following a local $ref."""
    if "$ref" in section:
        section = schema["$defs"][section["$ref"].rsplit("/", 1)[-1]]
    return {key: value["default"] for key, value in section["properties"].items()}


def dataclass_defaults(config_class) -> dict:
    import dataclasses

    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(config_class)}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_config_defaults_match_schema(name):
    """The typed config's defaults are the schema's defaults (one source of truth for users)."""
    from genzoo.config import SampleConfig, load_schema
    from genzoo.models import model_class

    assert set(NETWORKS) == set(MODELS) | {JUDGE}
    schema = load_schema()
    if name == JUDGE:
        section = schema["properties"][JUDGE]["properties"]
    else:
        section = schema["properties"]["models"]["properties"][name]["properties"]
    assert schema_defaults(schema, section["arch"]) == dataclass_defaults(model_class(name).Config)
    assert schema_defaults(schema, section["train"]) == dataclass_defaults(TrainConfig)
    if "sample" in section:
        assert schema_defaults(schema, section["sample"]) == dataclass_defaults(SampleConfig)


def test_every_model_has_a_schema_entry():
    from genzoo.config import load_schema

    assert set(load_schema()["properties"]["models"]["properties"]) == set(MODELS)


# -- independent pixels: the baseline ---------------------------------------------------------------

def random_independent(levels: int, shape=(1, 2, 2), seed: int = 0) -> Independent:
    """Independent pixels with random logits (far from uniform), in float64."""
    model = Independent(IndependentConfig(), image_shape=shape, levels=levels).double()
    with torch.no_grad():
        model.logits.copy_(torch.randn(model.logits.shape, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(seed)) * 2)
    return model.eval()


def all_images(levels: int, shape) -> torch.Tensor:
    count = shape[0] * shape[1] * shape[2]
    rows = list(itertools.product(range(levels), repeat=count))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *shape)  # (levels^D, C, H, W)


def image_index(images: torch.Tensor, levels: int) -> torch.Tensor:
    """The row of each image in ``all_images``: its pixels as base-``levels`` digits."""
    flat = images.flatten(1).double()
    weights = levels ** torch.arange(flat.shape[1] - 1, -1, -1, dtype=torch.float64)
    return (flat @ weights).long()


@pytest.mark.parametrize("levels", [2, 3])
def test_independent_probabilities_of_all_2x2_images_sum_to_one(levels):
    """16 binary images, or 81 at three levels."""
    model = random_independent(levels)
    images = all_images(levels, (1, 2, 2))
    log_probs = model.log_prob(images)
    assert log_probs.shape == (levels ** 4,)
    assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-9)
    assert log_probs.max() - log_probs.min() > 3, "weak test: the distribution is near uniform"
    # It is a product of per-pixel distributions: p(x) = prod_d p(x_d).
    if levels == 2:
        p_on = torch.sigmoid(model.logits[0]).flatten()  # (4,)
        expected = (images.flatten(1) * p_on.log() + (1 - images.flatten(1)) * (1 - p_on).log()).sum(1)
    else:
        log_p = torch.log_softmax(model.logits, dim=0).flatten(1)  # (levels, 4)
        expected = log_p.gather(0, images.flatten(1).long()).sum(1)
    torch.testing.assert_close(log_probs, expected)


def test_independent_starts_uniform():
    model = Independent(IndependentConfig(), image_shape=(1, 28, 28))
    x = (torch.rand(3, 1, 28, 28) < 0.5).float()
    torch.testing.assert_close(model.log_prob(x), torch.full((3,), -784 * math.log(2)))


@pytest.mark.parametrize("levels", [2, 3])
def test_independent_samples_match_its_probabilities(levels):
    model = random_independent(levels, seed=1)
    samples = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (20_000, 1, 2, 2) and samples.dtype == torch.float64
    assert set(samples.unique().tolist()) == set(range(levels))
    probs = model.log_prob(all_images(levels, (1, 2, 2))).exp()
    counts = torch.bincount(image_index(samples, levels), minlength=levels ** 4).double()
    assert chi_square_p_value(counts, probs) > 1e-3
    again = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)


@pytest.mark.parametrize("levels", [2, 3])
def test_independent_completions_keep_the_given_pixels(levels):
    model = random_independent(levels, shape=(1, 4, 4))
    given = torch.randint(0, levels, (200, 1, 4, 4), generator=torch.Generator().manual_seed(2)).double()
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[:, :2] = True  # the top half is given
    completed = model.sample(200, generator=torch.Generator().manual_seed(3), given=given,
                             given_mask=mask)
    assert completed.shape == (200, 1, 4, 4)
    assert torch.equal(completed[:, :, :2], given[:, :, :2])
    assert not torch.equal(completed[:, :, 2:], given[:, :, 2:]), "the hidden half is drawn"
    assert set(completed[:, :, 2:].unique().tolist()) == set(range(levels))


def test_independent_learns_the_pixel_means_of_mnist(processed, tmp_path):
    """A few hundred steps take it from uniform (784 ln 2 = 543.4 nats) to within a few nats of
    its closed-form maximum-likelihood fit: each pixel's mean ink over the training images."""
    from genzoo import checkpoint
    from genzoo.train import train

    train_split = load_split(processed / "train.npz")
    val = load_split(processed / "val.npz").subset(2000)
    history = train("independent", {}, TrainConfig(epochs=1, max_steps=200, batch_size=100, lr=0.1),
                    train_split=train_split, val_split=val, out_dir=tmp_path, seed=0,
                    progress=False, log=lambda message: None)
    uniform = 784 * math.log(2)
    assert history["steps"] == 200 and history["best_val_nll"] < uniform
    p = (train_split.gray.double() / 255).mean(0).clamp(1e-6, 1 - 1e-6)  # (1, 28, 28)
    x = val.binary.double()
    fitted = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1).mean().item()
    assert fitted - 1 < history["best_val_nll"] < fitted + 5, (fitted, history["best_val_nll"])
    model, _ = checkpoint.load_model(tmp_path / "model.pt")
    test = load_split(processed / "test.npz").subset(1000)
    metrics = model.score(test, ScoreSettings(), variant="binarized",
                          generator=torch.Generator().manual_seed(0))
    assert metrics["nll_kind"] == "exact" and metrics["test_nll_nats"] < 0.5 * uniform
