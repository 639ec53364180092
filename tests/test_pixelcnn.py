"""PixelCNN family: causality (and no blind spot) by gradient, normalization, conditioning, and the
cached samplers against the generic autoregressive loop.

Tiny models (8 channels, 3 layers) on 2x2 to 5x5 images, in float64.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from conftest import dependencies, labels
from genzoo.models import build_model
from genzoo.models.base import AutoregressiveModel
from genzoo.models.cond_gated_pixelcnn import CondGatedPixelCNN, CondGatedPixelCNNConfig
from genzoo.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig
from genzoo.nn import MaskedConv2d

BUILDERS = {
    "pixelcnn": lambda shape, levels=2, **kw: PixelCNN(
        PixelCNNConfig(**{"channels": 8, "blocks": 2, "head_channels": 8, "embed_dim": 3, **kw}),
        image_shape=shape, levels=levels),
    "gated_pixelcnn": lambda shape, levels=2, **kw: GatedPixelCNN(
        GatedPixelCNNConfig(**{"channels": 8, "layers": 3, "head_channels": 8, "embed_dim": 3,
                               **kw}), image_shape=shape, levels=levels),
    "cond_gated_pixelcnn": lambda shape, levels=2, **kw: CondGatedPixelCNN(
        CondGatedPixelCNNConfig(**{"channels": 8, "layers": 3, "head_channels": 8, "embed_dim": 3,
                                   **kw}), image_shape=shape, levels=levels, num_classes=4),
}
NAMES = sorted(BUILDERS)


def build(name: str, shape, levels: int = 2, scale: float = 1.5, **kw) -> AutoregressiveModel:
    """A fresh model in float64 with extra random weight noise (std scale / sqrt(fan-in)), so its
    distribution is far from uniform, and no saturated gates (exact-zero gradients)."""
    torch.manual_seed(1)
    model = BUILDERS[name](shape, levels, **kw)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
            parameter.add_(torch.randn_like(parameter) * scale / fan_in ** 0.5)
    # The layout build_model gives every model (channels-last weights), so the samplers and the
    # masks are tested as the pipeline runs them.
    return model.double().eval().to(memory_format=torch.channels_last)


def earlier(D: int) -> torch.Tensor:
    """allowed[d, j]: pixel j comes strictly before pixel d in raster order."""
    return torch.ones(D, D, dtype=torch.bool).tril(-1)


def causality_violations(dep: torch.Tensor) -> torch.Tensor:
    return dep & ~earlier(len(dep))  # depends on itself or a later pixel


def blind_spots(dep: torch.Tensor) -> torch.Tensor:
    return earlier(len(dep)) & ~dep  # an earlier pixel the output never sees


@pytest.mark.parametrize("name", NAMES)
def test_causality_by_gradient(name):
    dep = dependencies(build(name, (1, 4, 4)))
    assert not causality_violations(dep).any(), "an output depends on itself or a later pixel"
    assert dep[earlier(16)].double().mean() > 0.5, "the model ignores its context"


@pytest.mark.parametrize("name", ["gated_pixelcnn", "cond_gated_pixelcnn"])
def test_gated_models_have_no_blind_spot(name):
    """3 layers with 3x3 kernels reach 3 rows up and 3 columns either side: all of a 4x4 image."""
    assert not blind_spots(dependencies(build(name, (1, 4, 4)))).any()


def test_the_checks_catch_a_blind_spot_and_a_first_layer_residual():
    """Broken Gated PixelCNNs: the same checks must flag them."""
    blind = build("gated_pixelcnn", (1, 4, 4))
    with torch.no_grad():  # vertical kernels that only look up-left, like stacked masked convs
        for layer in blind.layers:
            layer.vertical.weight[..., layer.p + 1:] = 0
    missed = blind_spots(dependencies(blind)).nonzero().tolist()
    assert missed, "the blind-spot check missed a blind spot"
    assert all(j // 4 < d // 4 and j % 4 > d % 4 for d, j in missed), "blind spot not up-right"
    assert [5, 2] in missed  # (1, 1) never sees (0, 2)
    assert not causality_violations(dependencies(blind)).any()

    leaky = build("gated_pixelcnn", (1, 4, 4))
    leaky.layers[0].residual = True  # the first layer's input is the image: x_rc leaks to rc
    violations = causality_violations(dependencies(leaky))
    assert violations.diagonal().all(), "the causality check missed a first-layer residual"


def test_pixelcnn_has_the_papers_blind_spot():
    """Stacked 3x3 masked convolutions never reach up-one-right-two (2016b, figure 1)."""
    dep = dependencies(build("pixelcnn", (1, 4, 4), first_kernel_size=3, blocks=3))
    assert not dep[1 * 4 + 1, 0 * 4 + 3]  # (1, 1) misses (0, 3)
    assert dep[1 * 4 + 1, 0 * 4 + 2]  # but sees (0, 2)


@pytest.mark.parametrize("name", NAMES)
def test_categorical_outputs_are_causal_by_perturbation(name):
    """levels > 2 reads an embedding (no input gradient): change one pixel, see what moves."""
    model = build(name, (1, 3, 3), levels=3)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (1, 1, 3, 3), generator=g).double()
    y = labels(model, 1)
    base = model(x, y)
    assert base.shape == (1, 3, 1, 3, 3)
    for j in range(9):
        changed = x.clone()
        changed.view(-1)[j] = (changed.view(-1)[j] + 1) % 3
        moved = (model(changed, y) - base).abs().amax(dim=(0, 1, 2)).flatten() > 0  # (9,)
        assert not moved[:j + 1].any() and moved[j + 1:].all()


def all_images(levels: int, shape) -> torch.Tensor:
    count = shape[0] * shape[1] * shape[2]
    rows = list(itertools.product(range(levels), repeat=count))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *shape)  # (levels^D, C, H, W)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("levels,shape", [(2, (1, 3, 3)), (3, (1, 2, 2))])
def test_probabilities_of_all_images_sum_to_one(name, levels, shape):
    """Bernoulli head on 512 3x3 images; categorical head on 81 2x2 images at 3 levels."""
    model = build(name, shape, levels=levels)
    images = all_images(levels, shape)
    for label in ([0, 3] if model.conditional else [None]):
        y = None if label is None else torch.full((len(images),), label)
        log_probs = model.log_prob(images, y)
        assert log_probs.shape == (len(images),)
        assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-5)
        assert log_probs.max() - log_probs.min() > 2, "weak test: distribution near uniform"


def test_the_label_changes_the_distribution():
    model = build("cond_gated_pixelcnn", (1, 3, 3))
    images = all_images(2, (1, 3, 3))
    by_label = [model.log_prob(images, torch.full((512,), k)).exp() for k in range(4)]
    for a, b in itertools.combinations(by_label, 2):
        assert (a - b).abs().sum() > 0.05  # total variation between classes
    with pytest.raises(ValueError, match="labels"):
        model(images[:2])
    with pytest.raises(ValueError, match="labels"):
        model.sample(2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("complete", [False, True], ids=["sample", "complete"])
def test_fast_sampler_matches_the_generic_loop(name, levels, complete):
    """Same generator -> the same pixels as AutoregressiveModel.sample, completion included."""
    shape, n = (1, 5, 4), 24
    model = build(name, shape, levels=levels)
    kwargs = {"y": labels(model, n, seed=4)}
    if complete:  # top half given, bottom half sampled
        given = torch.randint(0, levels, (n, *shape), generator=torch.Generator().manual_seed(6))
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, :2] = True
        kwargs |= {"given": given.double(), "given_mask": mask}
    fast = model.sample(n, generator=torch.Generator().manual_seed(5), **kwargs)
    slow = AutoregressiveModel.sample(model, n, generator=torch.Generator().manual_seed(5),
                                      **kwargs)
    assert torch.equal(fast, slow)
    assert fast.shape == (n, *shape) and len(fast.unique()) == levels
    if complete:
        assert torch.equal(fast[:, :, :2], kwargs["given"][:, :, :2])


@pytest.mark.parametrize("name", NAMES)
def test_build_model_lays_weights_out_channels_last_computing_the_same(name):
    arch = {"channels": 8, "head_channels": 8, **({"blocks": 2} if name == "pixelcnn" else {"layers": 2})}
    model = build_model(name, arch, image_shape=(1, 6, 6), levels=2).double()
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    assert not any(p.is_contiguous(memory_format=torch.channels_last) for p in plain.parameters()
                   if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1)
    x = (torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    y = torch.arange(5) % 10
    torch.testing.assert_close(model.log_prob(x, y), plain.log_prob(x, y))


def test_conditional_samples_depend_on_the_label():
    model = build("cond_gated_pixelcnn", (1, 4, 4), scale=3.0)
    draws = [model.sample(200, y=torch.full((200,), k), generator=torch.Generator().manual_seed(0))
             for k in range(2)]
    assert not torch.equal(draws[0], draws[1])


def test_masked_conv_masks_and_option_checks():
    a = MaskedConv2d(1, 1, 3, mask_type="A").mask
    b = MaskedConv2d(1, 1, 3, mask_type="B").mask
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2d(1, 1, 3, mask_type="C")
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2d(1, 1, 4, mask_type="A")
    with pytest.raises(ValueError, match="one image channel or three"):
        BUILDERS["pixelcnn"]((2, 4, 4))
    with pytest.raises(ValueError, match=r"channels // 2 = 4 must be divisible by 3"):
        BUILDERS["pixelcnn"]((3, 4, 4))  # colour: 8 channels do not split into R, G, B


# -- the gated activation's tanh -------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3), (8, 16, 6, 6)])  # below and above fast_tanh's size cut
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_tanh_is_tanh_in_value_and_gradient(shape, dtype):
    from genzoo.nn import fast_tanh

    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0)) * 4
    x[..., 0] = torch.tensor([-80.0, 0.0])[torch.arange(x[..., 0].numel()) % 2].view_as(x[..., 0])
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    tolerance = {"atol": 1e-6, "rtol": 0} if dtype == torch.float32 else {"atol": 1e-14, "rtol": 0}
    torch.testing.assert_close(fast_tanh(ours), torch.tanh(theirs), **tolerance)
    upstream = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    fast_tanh(ours).backward(upstream)
    torch.tanh(theirs).backward(upstream)
    torch.testing.assert_close(ours.grad, theirs.grad, **tolerance)
    with torch.no_grad():
        torch.testing.assert_close(fast_tanh(x), torch.tanh(x), **tolerance)
