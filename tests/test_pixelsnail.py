"""PixelSNAIL: causality by gradient (and a broken attention mask caught), no blind spot thanks to
the attention, normalization, the cached sampler against the generic autoregressive loop, and
determinism.

Tiny models (6 channels, 2 blocks) on 2x2 to 5x5 images, in float64; one float32 check at
MNIST size on a prefix of the raster.
"""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.models import MODELS, build_model
from genzoo.models.base import AutoregressiveModel
from genzoo.models.pixelsnail import PixelSNAIL, PixelSNAILConfig, attend
from test_models import chi_square_p_value
from test_pixelcnn import all_images, blind_spots, causality_violations, dependencies
from test_sequence_rnn import check_categorical_causality, check_sampler_matches_the_generic_loop

TINY = {"channels": 6, "blocks": 2, "residual_blocks": 1, "kernel_size": 3,
        "first_kernel_size": 3, "key_channels": 3, "value_channels": 4, "head_channels": 5,
        "embed_dim": 3}


def build(shape, levels: int = 2, scale: float = 1.5, **kw) -> PixelSNAIL:
    """A fresh tiny model in float64, channels-last as build_model lays it out, with extra weight
    noise (std scale / sqrt(fan-in)) so its distribution is far from uniform."""
    torch.manual_seed(1)
    model = PixelSNAIL(PixelSNAILConfig(**{**TINY, **kw}), image_shape=shape, levels=levels)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
            parameter.add_(torch.randn_like(parameter) * scale / fan_in ** 0.5)
    return model.double().eval().to(memory_format=torch.channels_last)


def without_attention(model: PixelSNAIL) -> PixelSNAIL:
    """The same network with the attention's result never mixed into the stream."""
    with torch.no_grad():
        for attention in model.attentions:
            attention.mix_attention.weight.zero_()
    return model


def test_the_model_is_in_the_zoo():
    assert MODELS["pixelsnail"] is PixelSNAIL


def test_causality_by_gradient_and_no_blind_spot():
    """Every output depends on exactly the pixels before it: none after, and all before (the
    attention reaches the whole past, unlike the stacked masked convolutions)."""
    dep = dependencies(build((1, 4, 4)), images=8)
    assert not causality_violations(dep).any(), "an output depends on itself or a later pixel"
    assert not blind_spots(dep).any(), "an earlier pixel never reaches a later output"


def test_without_attention_the_masked_convolutions_leave_blind_spots():
    """So the no-blind-spot check can fail, and the attention is what passes it: the masked
    convolutions alone never see up-right of a pixel (the PixelCNN's blind spot)."""
    dep = dependencies(without_attention(build((1, 5, 5))), shape=(1, 5, 5), images=8)
    assert not causality_violations(dep).any()
    missed = blind_spots(dep)
    assert missed[1 * 5 + 1, 0 * 5 + 3] and missed[1 * 5 + 1, 0 * 5 + 4]  # (1, 1): (0, 3), (0, 4)
    assert not missed[1 * 5 + 1, 0 * 5 + 2]  # but it sees (0, 2)


def test_the_causality_check_catches_a_broken_attention_mask():
    """Keys and values read pixel j itself, so the mask must be strict (j < i): letting position
    i see its own slot leaks x_i into its own logits."""
    model = build((1, 4, 4))
    for attention in model.attentions:
        attention.past = lambda t: t  # no shift: slot i holds position i
    violations = causality_violations(dependencies(model, images=8))
    assert violations.diagonal().all(), "the causality check missed a non-strict attention mask"
    assert not violations.triu(1).any()


def test_categorical_outputs_are_causal_by_perturbation():
    """levels > 2 reads an embedding (no input gradient), so perturb instead of differentiate."""
    check_categorical_causality(build((1, 3, 3), levels=3))


@pytest.mark.parametrize("levels,shape", [(2, (1, 3, 3)), (3, (1, 2, 2))])
def test_probabilities_of_all_images_sum_to_one(levels, shape):
    """Bernoulli head on 512 3x3 images; categorical head on 81 2x2 images at 3 levels."""
    model = build(shape, levels=levels)
    log_probs = model.log_prob(all_images(levels, shape))
    assert log_probs.shape == (levels ** (shape[1] * shape[2]),)
    assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-9)
    assert log_probs.max() - log_probs.min() > 2, "weak test: distribution near uniform"


@pytest.mark.parametrize("dk, dv", [(3, 5), (6, 2), (4, 4)])
def test_attend_is_softmax_attention_over_the_causal_past(dk, dv):
    """The padded fused kernel computes softmax(q k^T / sqrt(d_k) + causal mask) v."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 7, dk, generator=g, dtype=torch.float64), torch.randn(
        2, 7, dk, generator=g, dtype=torch.float64)
    v = torch.randn(2, 7, dv, generator=g, dtype=torch.float64)
    scores = (q @ k.transpose(1, 2) / math.sqrt(dk)).masked_fill(
        ~torch.ones(7, 7, dtype=torch.bool).tril(), float("-inf"))
    torch.testing.assert_close(attend(q, k, v, causal=True), scores.softmax(-1) @ v)
    full = (q @ k.transpose(1, 2) / math.sqrt(dk)).softmax(-1) @ v
    torch.testing.assert_close(attend(q, k, v, causal=False), full)


@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("complete", [False, True], ids=["sample", "complete"])
def test_fast_sampler_matches_the_generic_loop(levels, complete):
    """The cached sampler draws the generic loop's pixels, completions included (5x4 images)."""
    check_sampler_matches_the_generic_loop(build((1, 5, 4), levels=levels, residual_blocks=2), levels, complete)


def test_the_sampler_equality_sees_the_attention():
    """The attention changes what the sampler draws (so the test above checks its caches), and
    the sampler of the model without it still matches that model's generic loop."""
    shape, n = (1, 5, 4), 200
    model = build(shape)
    intact = model.sample(n, generator=torch.Generator().manual_seed(7))
    blind = without_attention(model)
    cut = blind.sample(n, generator=torch.Generator().manual_seed(7))
    assert not torch.equal(intact, cut)
    assert torch.equal(cut, AutoregressiveModel.sample(
        blind, n, generator=torch.Generator().manual_seed(7)))


def test_fast_sampler_matches_at_mnist_size_in_float32():
    """The pipeline's layout (build_model: float32, channels-last) on 28x28: the first 60 pixels
    of the generic loop (an instance-level ordering) against the fast sampler's."""
    model = build_model("pixelsnail", {**TINY, "channels": 8}, image_shape=(1, 28, 28),
                        levels=2).eval()
    fast = model.sample(4, generator=torch.Generator().manual_seed(3))
    model.ordering = lambda: torch.arange(60)
    slow = AutoregressiveModel.sample(model, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fast.flatten(1)[:, :60], slow.flatten(1)[:, :60])
    assert fast.flatten(1)[:, :60].std() > 0


def test_sample_frequencies_match_probabilities():
    """20,000 fast samples of a 3x3 model against its 512 exact probabilities."""
    model = build((1, 3, 3), scale=2.0)
    probs = model.log_prob(all_images(2, (1, 3, 3))).exp().detach()
    samples = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    weights = 2 ** torch.arange(8, -1, -1, dtype=torch.float64)  # row-major bits -> image index
    counts = torch.bincount((samples.flatten(1) @ weights).long(), minlength=512).double()
    assert chi_square_p_value(counts, probs) > 1e-3
    wrong = build((1, 3, 3), scale=2.0)  # the same samples, scored by another model
    with torch.no_grad():
        wrong.head[-1].bias.add_(0.5)
    assert chi_square_p_value(counts, wrong.log_prob(all_images(2, (1, 3, 3))).exp()) < 1e-6


def test_sampling_is_deterministic():
    """Same seed: the same bytes, from the same model and from a rebuilt one; another seed: other
    images."""
    first = build((1, 4, 4)).sample(16, generator=torch.Generator().manual_seed(11))
    again = build((1, 4, 4)).sample(16, generator=torch.Generator().manual_seed(11))
    other = build((1, 4, 4)).sample(16, generator=torch.Generator().manual_seed(12))
    assert first.numpy().tobytes() == again.numpy().tobytes()
    assert not torch.equal(first, other)


def test_one_image_channel_only():
    with pytest.raises(ValueError, match="one image channel"):
        PixelSNAIL(PixelSNAILConfig(**TINY), image_shape=(3, 4, 4))
