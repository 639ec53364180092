"""Properties every exact autoregressive model must have: causality, normalization, sampling.

The models run on tiny images (3x3, 4x4) so that all 2^D images can be enumerated.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from genzoo.models import MODELS
from genzoo.models.made import MADE, MADEConfig, made_masks
from genzoo.models.nade import NADE, NADEConfig

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


@pytest.mark.parametrize("name", sorted(MODELS) + ["classifier"])
def test_config_defaults_match_schema(name):
    """The typed config's defaults are the schema's defaults (one source of truth for users)."""
    from genzoo.config import SampleConfig, TrainConfig, load_schema
    from genzoo.models import model_class

    schema = load_schema()
    if name == "classifier":
        section = schema["properties"]["classifier"]["properties"]
    else:
        section = schema["properties"]["models"]["properties"][name]["properties"]
    assert schema_defaults(schema, section["arch"]) == dataclass_defaults(model_class(name).Config)
    assert schema_defaults(schema, section["train"]) == dataclass_defaults(TrainConfig)
    if "sample" in section:
        assert schema_defaults(schema, section["sample"]) == dataclass_defaults(SampleConfig)


def test_every_model_has_a_schema_entry():
    from genzoo.config import load_schema

    assert set(load_schema()["properties"]["models"]["properties"]) == set(MODELS)
