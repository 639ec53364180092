"""Colour images and what each network takes.

The PixelCNN family on R, G, B (van den Oord et al. 2016a, section 3.4): causality over the
sub-pixels in raster-then-RGB order by gradient and by perturbation, exact normalization over all
3^12 images of 2x2x3 at 3 levels, the cached samplers against the generic loop. Every network's
``data_problem`` against what it does on the datasets' shapes (build, a training step with its
backward pass, samples), the judge and the sample-quality scores on colour, and RGB sample grids.

Tiny models in float64 on tiny images; the claims are checked at the datasets' real sizes.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import dependencies, labels
from genzoo.mixture import fit_mixture
from genzoo.models import JUDGE, MODELS, NETWORKS, build_model
from genzoo.models.ae import MixtureConfig
from genzoo.models.base import AutoregressiveModel, Trainable, raster_colour_order
from genzoo.models.figures import grid_png, sample_grid
from genzoo.models.scoring import label_agreement, label_histogram
from genzoo.nn import GatedStackLayer, MaskedConv2d, colour_groups
from genzoo.quality import judge_features, quality_scores, sample_quality

COLOUR_MODELS = ("pixelcnn", "gated_pixelcnn", "cond_gated_pixelcnn")
COLOUR_ARCH = {  # each colour group: 2 or 4 bottleneck / gated units, 2 head units
    "pixelcnn": {"channels": 12, "blocks": 2, "head_channels": 6, "embed_dim": 2,
                 "first_kernel_size": 3},
    "gated_pixelcnn": {"channels": 6, "layers": 3, "head_channels": 6, "embed_dim": 2},
    "cond_gated_pixelcnn": {"channels": 6, "layers": 3, "head_channels": 6, "embed_dim": 2},
}
WIDE = {"channels": 24, "head_channels": 24}  # the dependency tests: no group of dead ReLUs


def colour_model(name: str, shape=(3, 3, 3), levels: int = 2, scale: float = 1.5,
                 **arch) -> AutoregressiveModel:
    """A fresh colour model in float64 (channels-last, as build_model lays it out) with extra
    weight noise (std scale / sqrt(fan-in)), so that its distribution is far from uniform."""
    torch.manual_seed(1)
    model = build_model(name, {**COLOUR_ARCH[name], **arch}, image_shape=shape, levels=levels,
                        num_classes=4)
    with torch.no_grad():
        for parameter in model.parameters():
            fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
            parameter.add_(torch.randn_like(parameter) * scale / fan_in ** 0.5)
    return model.double().eval()


def position_in_order(model) -> torch.Tensor:
    """position[j]: the step at which sub-pixel j (a flat index into C*H*W) is drawn."""
    order = model.ordering()
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))
    return position


def earlier_in_order(model) -> torch.Tensor:
    """allowed[d, j]: sub-pixel j is drawn strictly before sub-pixel d, (D, D) bool."""
    position = position_in_order(model)
    return position[None, :] < position[:, None]


# -- the order and the masks -----------------------------------------------------------------------

def test_the_order_is_raster_then_rgb():
    order = raster_colour_order((3, 2, 2))  # flat index = colour * 4 + pixel
    assert order.tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert torch.equal(raster_colour_order((1, 3, 4)), torch.arange(12))
    for name in COLOUR_MODELS:
        assert torch.equal(colour_model(name).ordering(), raster_colour_order((3, 3, 3)))


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_a_masked_convolution_reads_earlier_colours_at_the_centre(mask_type):
    """Output group g at (r, c) reads every input at earlier positions, and at (r, c) the input
    groups < g (mask A) or <= g (mask B); nothing after (r, c)."""
    torch.manual_seed(0)
    conv = MaskedConv2d(6, 9, 3, mask_type=mask_type, colours=3).double()
    x = torch.randn(1, 6, 3, 3, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda inp: conv(inp)[0, :, 1, 1], x)[:, 0]
    reads = jacobian != 0  # (9 outputs, 6 inputs, 3, 3)
    out_groups, in_groups = colour_groups(9, 3), colour_groups(6, 3)
    assert out_groups.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert reads[:, :, 0].all() and reads[:, :, 1, 0].all()  # the row above, left of centre
    assert not reads[:, :, 2].any() and not reads[:, :, 1, 2].any()  # below, right
    centre = (in_groups[None, :] < out_groups[:, None] if mask_type == "A"
              else in_groups[None, :] <= out_groups[:, None])
    assert torch.equal(reads[:, :, 1, 1], centre)


@pytest.mark.parametrize("first", [True, False], ids=["mask_A", "mask_B"])
def test_a_gated_layer_masks_its_horizontal_stack_by_colour(first):
    """The gated horizontal stack at (r, c): its output group g reads the input groups < g
    (first layer) or <= g (later layers) at (r, c), everything to the left, and through the
    vertical stack every colour of the rows above."""
    torch.manual_seed(0)
    layer = GatedStackLayer(6, 6, 3, first=first, colours=3).double()
    image = torch.randn(1, 6, 3, 3, dtype=torch.float64)

    def horizontal_out(x: torch.Tensor) -> torch.Tensor:
        _, h, skip = layer(x, x)
        return torch.cat([h[0, :, 1, 1], skip[0, :, 1, 1]])  # (12,): h' and skip at (1, 1)

    reads = torch.autograd.functional.jacobian(horizontal_out, image)[:, 0] != 0
    groups = torch.cat([colour_groups(6, 3)] * 2)  # of h' and of skip
    inputs = colour_groups(6, 3)
    assert reads[:, :, 0].all() and reads[:, :, 1, 0].all()  # the row above, the pixel left
    assert not reads[:, :, 2].any() and not reads[:, :, 1, 2].any()
    centre = inputs[None, :] < groups[:, None] if first else inputs[None, :] <= groups[:, None]
    assert torch.equal(reads[:, :, 1, 1], centre)


# -- the colour models: causality, normalization, sampling -----------------------------------------

@pytest.mark.parametrize("name", COLOUR_MODELS)
def test_causality_over_colours_by_gradient(name):
    """The logits of sub-pixel (r, c, colour) depend only on sub-pixels earlier in raster-then-RGB
    order (mask A in the first layer, mask B after it); within a pixel, G reads R and B reads R
    and G."""
    shape = (3, 4, 4)
    model = colour_model(name, shape, **WIDE)
    dep = dependencies(model, shape, images=8)
    allowed = earlier_in_order(model)
    assert not (dep & ~allowed).any(), "a logit depends on its own or a later sub-pixel"
    assert dep[allowed].double().mean() > 0.5, "the model ignores its context"
    pixels = 16
    for pixel in range(pixels):
        r, g, b = pixel, pixels + pixel, 2 * pixels + pixel
        assert dep[g, r] and dep[b, r] and dep[b, g]
        assert not dep[r, g] and not dep[r, b] and not dep[g, b]
    if name != "pixelcnn":  # the gated stacks leave no blind spot: every earlier sub-pixel
        assert dep[allowed].all()


@pytest.mark.parametrize("name", COLOUR_MODELS)
def test_categorical_colour_logits_are_causal_by_perturbation(name):
    """levels > 2 reads an embedding (no input gradient): change one sub-pixel of a few images,
    see which logits move: only later ones, and (gated: no blind spot) all of them."""
    shape, levels, images = (3, 2, 3), 3, 4
    model = colour_model(name, shape, levels, **WIDE)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, levels, (images, *shape), generator=g).double()
    y = labels(model, images)
    base = model(x, y)
    assert base.shape == (images, levels, *shape)  # (B, levels, 3, H, W)
    position = position_in_order(model)
    for j in range(x[0].numel()):
        changed = x.clone()
        changed.view(images, -1)[:, j] = (changed.view(images, -1)[:, j] + 1) % levels
        moved = (model(changed, y) - base).abs().amax(dim=(0, 1)).flatten() > 0  # (D,)
        assert not moved[position <= position[j]].any()
        if name != "pixelcnn":  # stacked masked convolutions leave the paper's blind spot
            assert moved[position > position[j]].all()
        pixels = shape[1] * shape[2]
        later_colours = list(range(j + pixels, x[0].numel(), pixels))  # of the same pixel
        assert moved[later_colours].all()


def all_images(levels: int, shape) -> torch.Tensor:
    count = shape[0] * shape[1] * shape[2]
    rows = list(itertools.product(range(levels), repeat=count))
    return torch.tensor(rows, dtype=torch.float64).view(-1, *shape)  # (levels^D, C, H, W)


@pytest.mark.parametrize("name", COLOUR_MODELS)
def test_probabilities_of_all_2x2_colour_images_sum_to_one(name):
    """All 3^12 = 531,441 images of 2x2 pixels, R, G, B at 3 levels each."""
    shape, levels = (3, 2, 2), 3
    model = colour_model(name, shape, levels)
    images = all_images(levels, shape)
    assert len(images) == 3 ** 12
    for label in ([0, 3] if model.conditional else [None]):
        with torch.no_grad():
            log_probs = torch.cat([
                model.log_prob(chunk, None if label is None else torch.full((len(chunk),), label))
                for chunk in images.split(2 ** 16)])
        assert torch.logsumexp(log_probs, 0).exp().item() == pytest.approx(1.0, abs=1e-6)
        assert log_probs.max() - log_probs.min() > 2, "weak test: distribution near uniform"


@pytest.mark.parametrize("name", COLOUR_MODELS)
@pytest.mark.parametrize("levels", [2, 3, 256])
@pytest.mark.parametrize("complete", [False, True], ids=["sample", "complete"])
def test_fast_colour_sampler_matches_the_generic_loop(name, levels, complete):
    """Same generator -> the same sub-pixels as AutoregressiveModel.sample, in raster-then-RGB
    order; completion given any set of sub-pixels, parts of pixels included."""
    shape, n = (3, 4, 3), 16
    model = colour_model(name, shape, levels)
    kwargs = {"y": labels(model, n, seed=4)}
    if complete:  # a random half of the sub-pixels given
        g = torch.Generator().manual_seed(6)
        given = torch.randint(0, levels, (n, *shape), generator=g).double()
        mask = torch.rand(shape, generator=g) < 0.5
        kwargs |= {"given": given, "given_mask": mask}
    fast = model.sample(n, generator=torch.Generator().manual_seed(5), **kwargs)
    slow = AutoregressiveModel.sample(model, n, generator=torch.Generator().manual_seed(5),
                                      **kwargs)
    assert torch.equal(fast, slow)
    assert fast.shape == (n, *shape) and fast.min() >= 0 and fast.max() <= levels - 1
    if levels < 256:
        assert len(fast.unique()) == levels
    if complete:
        assert torch.equal(fast[:, kwargs["given_mask"]], kwargs["given"][:, kwargs["given_mask"]])


def test_colour_needs_feature_maps_divisible_by_three():
    with pytest.raises(ValueError, match=r"PixelCNN .* channels // 2 = 4 must be divisible by 3"):
        build_model("pixelcnn", {"channels": 8, "head_channels": 6}, image_shape=(3, 4, 4),
                    levels=256)
    with pytest.raises(ValueError, match=r"head_channels = 8 must be divisible by 3"):
        build_model("pixelcnn", {"channels": 12, "head_channels": 8}, image_shape=(3, 4, 4),
                    levels=256)
    with pytest.raises(ValueError, match=r"GatedPixelCNN .* channels = 8 must be divisible by 3"):
        build_model("gated_pixelcnn", {"channels": 8, "head_channels": 6}, image_shape=(3, 4, 4),
                    levels=256)
    with pytest.raises(ValueError, match=r"CondGatedPixelCNN .* head_channels = 4"):
        build_model("cond_gated_pixelcnn", {"channels": 6, "head_channels": 4},
                    image_shape=(3, 4, 4), levels=256)
    # One channel splits nothing: any counts, as before.
    build_model("gated_pixelcnn", {"channels": 8, "head_channels": 4}, image_shape=(1, 4, 4),
                levels=256)


# -- data_problem: every network on the datasets' shapes -------------------------------------------

# (C, H, W), levels: binarized and 8-bit grey MNIST / Fashion-MNIST, colored MNIST, CIFAR-10.
DATASET_SHAPES = [((1, 28, 28), 2), ((1, 28, 28), 256), ((3, 28, 28), 256), ((3, 32, 32), 256)]
# Beyond the datasets: what the answers claim there is checked too.
OTHER_SHAPES = [((3, 28, 28), 2), ((1, 32, 32), 2), ((1, 30, 30), 2)]
SHAPE_IDS = [f"{c}x{h}x{w}@{levels}" for (c, h, w), levels in DATASET_SHAPES + OTHER_SHAPES]

# The networks that take each dataset's shape (the others give their line); a change here is a
# change of what the zoo can run.
GREY = {"independent", "lstm", "wavenet", "transformer", "cond_transformer", "pixelsnail",
        "pixelcnn", "gated_pixelcnn", "cond_gated_pixelcnn", JUDGE}
COLOUR = {"independent", "pixelcnn", "gated_pixelcnn", "cond_gated_pixelcnn", JUDGE}
SUPPORTED = {((1, 28, 28), 2): set(NETWORKS), ((1, 28, 28), 256): GREY,
             ((3, 28, 28), 256): COLOUR, ((3, 32, 32), 256): COLOUR}

TINY = {  # small architectures; a network missing here fails test_every_network_has_a_tiny_arch
    "ae": {"hidden": [8], "latent": 2},
    "dae": {"hidden": [8], "latent": 2},
    "dcgan": {"latent": 4, "channels": 4},
    "cond_dcgan": {"latent": 4, "channels": 4},
    "pixelcnn": {"channels": 6, "blocks": 1, "head_channels": 6, "embed_dim": 2,
                 "first_kernel_size": 3},
    "gated_pixelcnn": {"channels": 6, "layers": 2, "head_channels": 6, "embed_dim": 2},
    "cond_gated_pixelcnn": {"channels": 6, "layers": 2, "head_channels": 6, "embed_dim": 2},
    "transformer": {"dim": 8, "layers": 1, "heads": 2, "mlp_ratio": 2, "embed_dim": 3},
    "cond_transformer": {"dim": 8, "layers": 1, "heads": 2, "mlp_ratio": 2, "embed_dim": 3},
    "cppn": {"hidden": [8], "latent": 2, "cppn_hidden": 4, "cppn_layers": 1, "frequencies": 1},
    "ddpm": {"channels": 4, "multipliers": [1, 2], "timesteps": 4, "sample_steps": 2},
    "independent": {},
    "lstm": {"hidden": 8, "position_dim": 4, "head_hidden": 8, "embed_dim": 3},
    "made": {"hidden": [8]},
    "nade": {"hidden": 4},
    "pix2pix": {"channels": 4},
    "pixelsnail": {"channels": 4, "blocks": 1, "residual_blocks": 1, "first_kernel_size": 3,
                   "key_channels": 4, "value_channels": 4, "head_channels": 4, "embed_dim": 2},
    "pixelvae": {"hidden": [8], "latent": 2, "pixel_channels": 4, "pixel_layers": 1},
    "vae": {"hidden": [8], "latent": 2},
    "vqvae": {"codes": 4, "code_dim": 2, "hidden": 4, "res_blocks": 0},
    "wavenet": {"channels": 4, "skip_channels": 4, "layers_per_stack": 2, "stacks": 1,
                "head_channels": 4, "position_dim": 2, "embed_dim": 2},
    JUDGE: {"channels": 2, "features": 8},
}


def test_every_network_has_a_tiny_arch_and_answers_for_itself():
    assert set(TINY) == set(NETWORKS)
    for name, cls in NETWORKS.items():  # no network inherits the default that claims everything
        assert cls.data_problem.__func__ is not Trainable.data_problem.__func__, name


def ready_to_sample(name: str, model, x: torch.Tensor, generator: torch.Generator) -> None:
    """What a model's phases attach before it samples: the autoencoders' mixture over their
    codes, the VQ-VAE's prior over its code grids (a fresh Gated PixelCNN)."""
    if hasattr(model, "attach_mixture"):
        model.attach_mixture(fit_mixture(model.encode_all(x), MixtureConfig(components=1,
                                                                            iterations=2),
                                         generator))
    if hasattr(model, "attach_prior"):
        model.attach_prior(build_model("gated_pixelcnn", TINY["gated_pixelcnn"],
                                       image_shape=model.code_shape, levels=model.config.codes))


def exercise(name: str, shape, levels: int) -> None:
    """Build the network, take a training step (the loss and its backward pass), then draw
    samples (a generative model) or features and predictions (the judge), checking shapes."""
    torch.manual_seed(0)
    model = build_model(name, TINY[name], image_shape=shape, levels=levels, num_classes=10)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, levels, (2, *shape), generator=g).float()
    y = torch.tensor([3, 7])
    steps = []

    def update(optimizer: str, loss: torch.Tensor) -> None:
        assert torch.isfinite(loss), f"{name}: loss {loss}"
        loss.backward()
        steps.append(optimizer)

    model.train()
    model.training_step(x, y, update)
    assert steps and any(p.grad is not None and p.grad.abs().sum() > 0
                         for p in model.parameters()), f"{name}: no gradient"
    model.eval()
    if name == JUDGE:
        assert model.features(x).shape == (2, TINY[name]["features"])
        assert model.predict(x).shape == (2,)
        return
    ready_to_sample(name, model, x, g)
    samples = model.quality_samples(2, y=y if model.conditional else None, generator=g,
                                    test_images=x)
    assert samples.shape == (2, *shape)
    assert samples.min() >= 0 and samples.max() <= levels - 1


@pytest.mark.parametrize("shape, levels", DATASET_SHAPES + OTHER_SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_data_problem_is_what_the_network_does(name, shape, levels):
    """None: the network builds, trains a step and samples; else one line, which building it
    raises."""
    cls = NETWORKS[name]
    problem = cls.data_problem(shape, levels)
    if (shape, levels) in SUPPORTED:
        assert (problem is None) == (name in SUPPORTED[shape, levels]), problem
    if problem is None:
        exercise(name, shape, levels)
        return
    assert isinstance(problem, str) and problem.strip() and "\n" not in problem
    with pytest.raises(ValueError) as raised:
        build_model(name, TINY[name], image_shape=shape, levels=levels)
    assert str(raised.value) == problem


def test_the_refusals_say_why():
    assert MODELS["nade"].data_problem((3, 28, 28), 256) == (
        "NADE models binary pixels only (data.variant 'binarized'), not 256 levels")
    assert MODELS["lstm"].data_problem((3, 32, 32), 256) == (
        "the raster LSTM assumes one image channel, got 3")
    assert MODELS["pixelcnn"].data_problem((2, 8, 8), 256) == (
        "PixelCNN masks take one image channel or three (R, G, B), got 2 channels")
    assert MODELS["dcgan"].data_problem((1, 30, 30), 2) == (
        "DCGAN needs height and width divisible by 4, got 30x30 (two stride-2 layers in G and D)")
    assert NETWORKS[JUDGE].data_problem((3, 3, 8), 256) == (
        "the classifier pools twice by 2: needs sides of 4 or more, got 3x8")


# -- the judge and the sample-quality scores on colour ---------------------------------------------

def tiny_judge(shape, levels: int):
    torch.manual_seed(0)
    return build_model(JUDGE, TINY[JUDGE], image_shape=shape, levels=levels).eval()


@pytest.mark.parametrize("shape, levels", DATASET_SHAPES, ids=SHAPE_IDS[:len(DATASET_SHAPES)])
def test_the_judge_reads_every_dataset(shape, levels):
    """Input scaled as x / (levels - 1): an image at the top level reads as ones, whatever the
    levels."""
    judge = tiny_judge(shape, levels)
    top = torch.full((2, *shape), float(levels - 1))
    ones = tiny_judge(shape, 2)  # the same weights
    torch.testing.assert_close(judge.features(top), ones.features(torch.ones(2, *shape)))
    x = torch.randint(0, levels, (5, *shape), generator=torch.Generator().manual_seed(0)).float()
    assert judge_features(judge, x, levels=levels, batch_size=2).shape == (5, 8)
    # Samples at other levels are rescaled to the judge's: binary ones against a 256-level judge.
    torch.testing.assert_close(judge_features(judge, torch.ones(2, *shape), levels=2),
                               judge_features(judge, top, levels=levels))


def test_the_judge_refuses_images_of_another_shape():
    judge = tiny_judge((1, 28, 28), 256)
    with pytest.raises(ValueError, match=r"judge reads images of shape \(1, 28, 28\), got \(3, 28, 28\)"):
        judge_features(judge, torch.zeros(2, 3, 28, 28), levels=256)
    with pytest.raises(ValueError, match="judge reads images of shape"):
        judge.predict(torch.zeros(2, 3, 28, 28))


def test_fid_precision_and_recall_of_colour_samples():
    shape = (3, 32, 32)
    judge = tiny_judge(shape, 256)
    torch.manual_seed(0)
    model = build_model("independent", {}, image_shape=shape, levels=256).eval()
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (24, *shape), generator=g).float()
    scores, seconds = sample_quality(model, judge, real, samples=24, k=3, batch_size=10,
                                     generator=g)
    assert np.isfinite(scores["fid"]) and scores["fid"] >= 0 and seconds >= 0
    assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
    features = judge_features(judge, real, levels=256)
    assert quality_scores(features, features, samples=24, k=3)["fid"] == pytest.approx(0, abs=1e-6)


def test_label_agreement_and_histogram_on_colour_samples():
    shape = (3, 4, 4)
    judge = tiny_judge(shape, 256)
    model = build_model("cond_gated_pixelcnn", COLOUR_ARCH["cond_gated_pixelcnn"],
                        image_shape=shape, levels=256).double().eval()  # the judge reads float32
    agreement = label_agreement(model, judge, samples=12, generator=torch.Generator().manual_seed(0),
                                batch_size=5)
    assert 0 <= agreement <= 1
    unconditional = build_model("independent", {}, image_shape=shape, levels=256).eval()
    histogram = label_histogram(unconditional, judge, torch.arange(10), samples=12,
                                generator=torch.Generator().manual_seed(0), batch_size=5)
    assert sum(histogram["label_histogram"]) == pytest.approx(1.0)


# -- sample grids --------------------------------------------------------------------------------

def test_colour_samples_make_an_rgb_grid():
    torch.manual_seed(0)
    model = build_model("independent", {}, image_shape=(3, 5, 4), levels=256).eval()
    figures = sample_grid(model, n=6, nrow=3, generator=torch.Generator().manual_seed(0))
    samples = figures.arrays["samples"]  # (6, 3, 5, 4) uint8 levels
    assert samples.shape == (6, 3, 5, 4)
    picture = Image.open(io.BytesIO(figures.pngs["samples.png"]))
    assert picture.mode == "RGB" and picture.size == (2 * (3 * 6 + 2), 2 * (2 * 7 + 2))
    pixels = np.asarray(picture)  # (H', W', 3), each image pixel a 2x2 block, 2 pixels of padding
    for k in range(6):
        top, left = 2 * (2 + (k // 3) * 7), 2 * (2 + (k % 3) * 6)
        drawn = pixels[top:top + 10:2, left:left + 8:2]  # (5, 4, 3)
        assert np.array_equal(drawn, samples[k].transpose(1, 2, 0))
    assert np.all(pixels[0, 0] == 128)  # the grey padding, in all three channels


def test_grey_grids_stay_grey():
    images = torch.rand(5, 1, 4, 3, generator=torch.Generator().manual_seed(0))
    picture = Image.open(io.BytesIO(grid_png(images, nrow=2)))
    assert picture.mode == "L"
    expected = (images[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(np.asarray(picture)[4:12:2, 4:10:2], expected)
