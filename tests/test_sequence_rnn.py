"""The raster sequence models (LSTM, WaveNet): causality by gradient, normalization, the
incremental samplers against the generic autoregressive loop, WaveNet's receptive field, and
sample frequencies.

Tiny models on 2x2 to 5x5 images, in float64.
"""

from __future__ import annotations

import pytest
import torch

from genzoo.models import MODELS
from genzoo.models.base import AutoregressiveModel
from genzoo.models.lstm import LSTM, LSTMConfig
from genzoo.models.wavenet import WaveNet, WaveNetConfig
from test_models import chi_square_p_value
from test_pixelcnn import all_images, causality_violations, dependencies, earlier

BUILDERS = {
    "lstm": lambda shape, levels=2, **kw: LSTM(
        LSTMConfig(**{"hidden": 8, "layers": 2, "position_dim": 4, "head_hidden": 8,
                      "embed_dim": 3, **kw}), image_shape=shape, levels=levels),
    # dilations 1, 2, 4 twice: a receptive field of 15 pixels, all of a 4x4 image
    "wavenet": lambda shape, levels=2, **kw: WaveNet(
        WaveNetConfig(**{"channels": 6, "skip_channels": 5, "layers_per_stack": 3, "stacks": 2,
                         "head_channels": 7, "position_dim": 4, "embed_dim": 3, **kw}),
        image_shape=shape, levels=levels),
}
NAMES = sorted(BUILDERS)


def with_weight_noise(model: AutoregressiveModel, scale: float) -> AutoregressiveModel:
    """The model in float64, eval mode, with extra weight noise (std scale / sqrt(fan-in)), so
    that its distribution is far from uniform."""
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
            parameter.add_(torch.randn_like(parameter) * scale / fan_in ** 0.5)
    return model.double().eval()


def build(name: str, shape, levels: int = 2, scale: float = 1.5, **kw) -> AutoregressiveModel:
    """A fresh noisy model (``with_weight_noise``) in float64."""
    torch.manual_seed(1)
    return with_weight_noise(BUILDERS[name](shape, levels, **kw), scale)


def test_the_models_are_in_the_zoo():
    assert MODELS["lstm"] is LSTM and MODELS["wavenet"] is WaveNet


@pytest.mark.parametrize("name", NAMES)
def test_causality_by_gradient(name):
    dep = dependencies(build(name, (1, 4, 4)), images=16)  # (ReLUs off at a few images hide some)
    assert not causality_violations(dep).any(), "an output depends on itself or a later pixel"
    assert dep[earlier(16)].all(), "an earlier pixel never reaches a later output"


def test_the_causality_check_catches_an_unshifted_input():
    """Reading pixel t instead of t - 1 at step t leaks the pixel into its own logits."""
    model = build("lstm", (1, 4, 4))
    model.previous.forward = lambda flat: 2 * flat[:, :, None] - 1  # no shift
    assert causality_violations(dependencies(model, images=16)).diagonal().all()


@pytest.mark.parametrize("stacks, layers", [(1, 2), (2, 2), (1, 3)])
def test_wavenet_sees_exactly_its_receptive_field(stacks, layers):
    """Pixel d depends on pixels d - R .. d - 1 and no others, R = 1 + stacks (2^n - 1)."""
    model = build("wavenet", (1, 4, 5), stacks=stacks, layers_per_stack=layers)
    R = model.receptive_field()
    assert R == 1 + stacks * (2 ** layers - 1) < 20
    dep = dependencies(model, shape=(1, 4, 5), images=16)
    d, j = torch.meshgrid(torch.arange(20), torch.arange(20), indexing="ij")
    assert torch.equal(dep, (j < d) & (j >= d - R))


def check_categorical_causality(model: AutoregressiveModel) -> None:
    """A 3-level model of 3x3 images: change one pixel of a few images, see which outputs move
    (exactly the later pixels')."""
    x = torch.randint(0, 3, (8, 1, 3, 3), generator=torch.Generator().manual_seed(3)).double()
    base = model(x)
    assert base.shape == (8, 3, 1, 3, 3)
    for j in range(9):
        changed = x.clone()
        changed.view(8, -1)[:, j] = (changed.view(8, -1)[:, j] + 1) % 3
        moved = (model(changed) - base).abs().amax(dim=(0, 1, 2)).flatten() > 0  # (9,)
        assert not moved[:j + 1].any() and moved[j + 1:].all()


@pytest.mark.parametrize("name", NAMES)
def test_categorical_outputs_are_causal_by_perturbation(name):
    """levels > 2 reads an embedding (no input gradient), so perturb instead of differentiate."""
    check_categorical_causality(build(name, (1, 3, 3), levels=3))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("levels,shape", [(2, (1, 3, 3)), (3, (1, 2, 2))])
def test_probabilities_of_all_images_sum_to_one(name, levels, shape):
    """Bernoulli head on 512 3x3 images; categorical head on 81 2x2 images at 3 levels."""
    model = build(name, shape, levels=levels)
    log_probs = model.log_prob(all_images(levels, shape))
    assert log_probs.shape == (levels ** (shape[1] * shape[2]),)
    assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-9)
    assert log_probs.max() - log_probs.min() > 2, "weak test: distribution near uniform"


def check_sampler_matches_the_generic_loop(model: AutoregressiveModel, levels: int, complete: bool,
                                          y: torch.Tensor | None = None) -> None:
    """Same generator -> the model's sampler draws the same 24 images as AutoregressiveModel.sample,
    completion (top two rows and the last pixel given) included."""
    shape, n = model.image_shape, 24
    kwargs = {"y": y}
    if complete:  # top two rows and the last pixel given, the rest drawn
        given = torch.randint(0, levels, (n, *shape), generator=torch.Generator().manual_seed(6))
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, :2] = True
        mask[:, -1, -1] = True
        kwargs.update(given=given.double(), given_mask=mask)
    fast = model.sample(n, generator=torch.Generator().manual_seed(5), **kwargs)
    slow = AutoregressiveModel.sample(model, n, generator=torch.Generator().manual_seed(5),
                                      **kwargs)
    assert torch.equal(fast, slow)
    assert fast.shape == (n, *shape) and len(fast.unique()) == levels
    if complete:
        assert torch.equal(fast[mask.expand_as(fast)], kwargs["given"][mask.expand_as(fast)])
        assert not torch.equal(fast[:, :, 2:], kwargs["given"][:, :, 2:])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("complete", [False, True], ids=["sample", "complete"])
def test_fast_sampler_matches_the_generic_loop(name, levels, complete):
    """5x4 = 20 pixels: more than the test WaveNet's receptive field (15), so its queues wrap."""
    check_sampler_matches_the_generic_loop(build(name, (1, 5, 4), levels=levels), levels, complete)


def test_wavenet_queues_cover_the_full_models_receptive_field():
    """The sampler must read h_{t-d} of every layer, however far back: a model whose farthest
    taps (the last layer's, dilation 4 of 1, 2, 4) are zeroed draws other pixels from the same
    generator, and the sampler still matches the generic loop of the intact model."""
    shape, n = (1, 5, 4), 200
    model = build("wavenet", shape, layers_per_stack=3, stacks=1)  # receptive field 8 of 20
    C = model.config.channels
    fast = model.sample(n, generator=torch.Generator().manual_seed(7))
    slow = AutoregressiveModel.sample(model, n, generator=torch.Generator().manual_seed(7))
    assert torch.equal(fast, slow)
    with torch.no_grad():
        model.dilated[-1].weight[:, :C] = 0  # the (h_{t-4}) half of the kernel
    short = model.sample(n, generator=torch.Generator().manual_seed(7))
    assert not torch.equal(fast, short), "the equality test cannot see the farthest taps"


@pytest.mark.parametrize("name", NAMES)
def test_sample_frequencies_match_probabilities(name):
    """20,000 fast samples of a 3x3 model against its 512 exact probabilities."""
    model = build(name, (1, 3, 3), scale=2.0)
    probs = model.log_prob(all_images(2, (1, 3, 3))).exp().detach()
    samples = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    weights = 2 ** torch.arange(8, -1, -1, dtype=torch.float64)  # row-major bits -> image index
    counts = torch.bincount((samples.flatten(1) @ weights).long(), minlength=512).double()
    assert chi_square_p_value(counts, probs) > 1e-3
    wrong = build(name, (1, 3, 3), scale=2.0)  # the same samples, scored by another model
    with torch.no_grad():
        wrong.head[-1].bias.add_(0.5)
    assert chi_square_p_value(counts, wrong.log_prob(all_images(2, (1, 3, 3))).exp()) < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_one_image_channel_only(name):
    with pytest.raises(ValueError, match="one image channel"):
        BUILDERS[name]((3, 4, 4))
