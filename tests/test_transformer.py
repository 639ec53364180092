"""The pixel Transformer and its class-conditional variant: causality by gradient (and that the
check catches an unshifted input and a missing causal mask), normalization, the key/value-cache
sampler against the generic autoregressive loop, the label, and sample frequencies.

Tiny models (d = 8, 2 blocks, 2 heads) on 2x2 to 5x4 images, in float64.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from genzoo.models import MODELS
from genzoo.models import transformer as transformer_module
from genzoo.models.base import AutoregressiveModel
from genzoo.models.cond_transformer import CondTransformer, CondTransformerConfig
from genzoo.models.transformer import Transformer, TransformerConfig, causal_attention
from test_models import chi_square_p_value
from test_pixelcnn import all_images, causality_violations, dependencies, earlier, labels
from test_sequence_rnn import check_sampler_matches_the_generic_loop, with_weight_noise

TINY = {"dim": 8, "layers": 2, "heads": 2, "mlp_ratio": 2, "embed_dim": 3}
BUILDERS = {
    "transformer": lambda shape, levels=2, **kw: Transformer(
        TransformerConfig(**{**TINY, **kw}), image_shape=shape, levels=levels),
    "cond_transformer": lambda shape, levels=2, **kw: CondTransformer(
        CondTransformerConfig(**{**TINY, **kw}), image_shape=shape, levels=levels, num_classes=4),
}
NAMES = sorted(BUILDERS)


def build(name: str, shape, levels: int = 2, scale: float = 1.5, **kw) -> AutoregressiveModel:
    torch.manual_seed(1)
    return with_weight_noise(BUILDERS[name](shape, levels, **kw), scale)


def test_the_models_are_in_the_zoo():
    assert MODELS["transformer"] is Transformer and MODELS["cond_transformer"] is CondTransformer
    assert CondTransformer.conditional and not Transformer.conditional


def test_causal_attention_is_the_masked_softmax():
    """The fused kernel against softmax(q k^T / sqrt(d) + mask) v written out."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64) for _ in range(3))
    scores = (q @ k.transpose(-1, -2)) / 2.0  # sqrt(d_head = 4)
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    assert torch.allclose(causal_attention(q, k, v), torch.softmax(scores, -1) @ v, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_causality_by_gradient(name):
    dep = dependencies(build(name, (1, 4, 4)), images=8)
    assert not (causality_violations(dep).any() or (earlier(16) & ~dep).any()), \
        "an output depends on itself or a later pixel, or never sees an earlier one"


def read_the_current_pixel(model, monkeypatch):
    monkeypatch.setattr(model.previous, "forward", lambda flat: 2 * flat[:, :, None] - 1)


def attend_to_every_position(model, monkeypatch):
    monkeypatch.setattr(transformer_module, "causal_attention",
                        lambda q, k, v: F.scaled_dot_product_attention(q, k, v))


@pytest.mark.parametrize("breakage, leaks", [
    # step t reads pixel t instead of t - 1: each output sees its own pixel, nothing later
    (read_the_current_pixel, lambda d, j: j == d),
    # step t attends to the steps after it, which read pixels t .. D - 2 (the last is no input)
    (attend_to_every_position, lambda d, j: (j >= d) & (j < 15)),
], ids=["unshifted input", "no causal mask"])
def test_the_causality_check_catches_a_broken_model(breakage, leaks, monkeypatch):
    model = build("transformer", (1, 4, 4))
    breakage(model, monkeypatch)
    d, j = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    assert torch.equal(causality_violations(dependencies(model, images=8)), leaks(d, j))


@pytest.mark.parametrize("name", NAMES)
def test_categorical_outputs_are_causal_by_perturbation(name):
    """levels > 2 reads an embedding (no input gradient): change one pixel, see what moves."""
    model = build(name, (1, 3, 3), levels=3)
    x = torch.randint(0, 3, (8, 1, 3, 3), generator=torch.Generator().manual_seed(3)).double()
    y = labels(model, 8)
    base = model(x, y)
    assert base.shape == (8, 3, 1, 3, 3)
    for j in range(9):
        changed = x.clone()
        changed.view(8, -1)[:, j] = (changed.view(8, -1)[:, j] + 1) % 3
        moved = (model(changed, y) - base).abs().amax(dim=(0, 1, 2)).flatten() > 0  # (9,)
        assert not moved[:j + 1].any() and moved[j + 1:].all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("levels,shape", [(2, (1, 3, 3)), (3, (1, 2, 2))])
def test_probabilities_of_all_images_sum_to_one(name, levels, shape):
    """Bernoulli head on all 512 3x3 images; categorical head on all 81 2x2 images at 3 levels;
    the conditional model for two labels."""
    model = build(name, shape, levels=levels)
    images = all_images(levels, shape)
    for label in ([0, 3] if model.conditional else [None]):
        y = None if label is None else torch.full((len(images),), label)
        log_probs = model.log_prob(images, y)
        assert log_probs.shape == (levels ** (shape[1] * shape[2]),)
        assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-9)
        assert log_probs.max() - log_probs.min() > 2, "weak test: distribution near uniform"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("complete", [False, True], ids=["sample", "complete"])
def test_kv_cache_sampler_matches_the_generic_loop(name, levels, complete):
    """Same generator -> the same pixels as AutoregressiveModel.sample, completion included."""
    model = build(name, (1, 5, 4), levels=levels)
    check_sampler_matches_the_generic_loop(model, levels, complete, y=labels(model, 24))


def test_the_equality_catches_a_sampler_that_ignores_the_cache(monkeypatch):
    """A sampler step that attends only to its own position (no cached keys and values) draws
    other pixels from the same generator than the generic loop: the test above would fail."""
    shape, n = (1, 5, 4), 200
    model = build("transformer", shape)
    generic = AutoregressiveModel.sample(model, n, generator=torch.Generator().manual_seed(7))
    assert torch.equal(model.sample(n, generator=torch.Generator().manual_seed(7)), generic)

    def step_without_cache(self, h, t, cache):
        return self.merge(F.scaled_dot_product_attention(*self.split(h)))

    monkeypatch.setattr(transformer_module.CausalSelfAttention, "step", step_without_cache)
    assert not torch.equal(model.sample(n, generator=torch.Generator().manual_seed(7)), generic)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_samples(name):
    model = build(name, (1, 4, 4))
    y = labels(model, 16)
    draw = lambda seed: model.sample(16, y=y, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


@pytest.mark.parametrize("name", NAMES)
def test_sample_frequencies_match_probabilities(name):
    """20,000 cached samples of a 3x3 model against its 512 exact probabilities."""
    model = build(name, (1, 3, 3), scale=2.0)
    y = None if not model.conditional else torch.full((20_000,), 2)
    probs = model.log_prob(all_images(2, (1, 3, 3)), None if y is None else y[:512]).exp().detach()
    samples = model.sample(20_000, y=y, generator=torch.Generator().manual_seed(0))
    weights = 2 ** torch.arange(8, -1, -1, dtype=torch.float64)  # row-major bits -> image index
    counts = torch.bincount((samples.flatten(1) @ weights).long(), minlength=512).double()
    assert chi_square_p_value(counts, probs) > 1e-3
    wrong = build(name, (1, 3, 3), scale=2.0)  # the same samples, scored by another model
    with torch.no_grad():
        wrong.head.bias.add_(0.5)
    wrong_probs = wrong.log_prob(all_images(2, (1, 3, 3)), None if y is None else y[:512]).exp()
    assert chi_square_p_value(counts, wrong_probs) < 1e-6


def test_the_label_changes_the_distribution():
    model = build("cond_transformer", (1, 3, 3))
    images = all_images(2, (1, 3, 3))
    by_label = [model.log_prob(images, torch.full((512,), k)).exp() for k in range(4)]
    for a, b in itertools.combinations(by_label, 2):
        assert (a - b).abs().sum() > 0.05  # total variation between classes


def test_a_zero_label_embedding_is_the_unconditional_model():
    """The hook adds e(y) and nothing else: with e = 0 (as at initialisation) the conditional
    model computes what the unconditional one with the same weights does."""
    conditional = build("cond_transformer", (1, 3, 3))
    plain = BUILDERS["transformer"]((1, 3, 3)).double().eval()
    state = conditional.state_dict()
    del state["label_embedding.weight"]
    plain.load_state_dict(state)
    images = all_images(2, (1, 3, 3))
    assert not torch.allclose(conditional.log_prob(images, torch.full((512,), 1)),
                              plain.log_prob(images))
    with torch.no_grad():
        conditional.label_embedding.weight.zero_()
    assert torch.allclose(conditional.log_prob(images, torch.full((512,), 1)),
                          plain.log_prob(images), atol=1e-12)
    fresh = BUILDERS["cond_transformer"]((1, 3, 3))
    assert not fresh.label_embedding.weight.any()


def test_bad_arguments_fail_in_one_line():
    with pytest.raises(ValueError, match="one image channel"):
        BUILDERS["transformer"]((3, 4, 4))
    with pytest.raises(ValueError, match=r"heads \(3\) must divide dim \(8\)"):
        BUILDERS["transformer"]((1, 4, 4), heads=3)
    model = build("cond_transformer", (1, 2, 2))
    x = torch.zeros(3, 1, 2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="CondTransformer needs the class labels y"):
        model(x)
    with pytest.raises(ValueError, match="CondTransformer needs the class labels y"):
        model.sample(3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        model(x, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        model(x, torch.tensor([0, 1]))
