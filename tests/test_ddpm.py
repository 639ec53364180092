"""DDPM: the schedules, the forward process (closed form against iterating its steps), the
posterior, the simple loss, the variational bound (its terms against their definition, the
estimator against the full sum, above the true NLL, the untrained network's value), DDIM and
the ancestral sampler, and the evaluate/sample hooks.

Tiny U-Nets on 2x2 and 4x4 images with T = 5..10 steps, in float64.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from genzoo.data import Split
from genzoo.models import MODELS, ScoreSettings, build_model
from genzoo.models.ddpm import CHAIN_COLUMNS, CHAIN_IMAGES, DDPM, DDPMConfig, noise_schedule


def tiny(shape=(1, 2, 2), *, scale: float = 0.0, seed: int = 1, **arch) -> DDPM:
    """A float64 DDPM; ``scale`` > 0 gives its zero-initialised output layer random weights, so
    that eps_theta depends on x_t and t."""
    torch.manual_seed(seed)
    config = {"channels": 4, "multipliers": [1], "timesteps": 10, "schedule": "cosine",
              "sample_steps": 5, **arch}
    model = build_model("ddpm", config, image_shape=shape, levels=2).double()
    if scale:
        with torch.no_grad():
            model.net.output.weight.normal_(0, scale)
            model.net.output.bias.normal_(0, scale)
    return model.eval()


def all_bits(shape=(1, 2, 2)) -> torch.Tensor:
    """Every binary image of ``shape``, (2^D, *shape) float64."""
    D = math.prod(shape)
    codes = torch.arange(2 ** D)
    return ((codes[:, None] >> torch.arange(D)) & 1).double().view(-1, *shape)


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    return values.mean().item(), values.std().item() / math.sqrt(len(values))


def test_the_model_is_in_the_zoo():
    assert MODELS["ddpm"] is DDPM and DDPM.nll_kind == "bound"
    assert DDPM.evaluate_keys() == ("batch_size", "bound_timesteps", "fid_samples", "pr_neighbours")


# -- the schedule and the forward process ----------------------------------------------------------

def test_the_linear_schedule_is_ho_et_als():
    betas = noise_schedule(DDPMConfig())
    assert betas.shape == (1000,) and betas.dtype == torch.float64
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    step = torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64)
    assert torch.allclose(betas.diff(), step)
    model = tiny(schedule="linear", timesteps=1000)
    assert model.alpha_bar[0] == 1 and model.betas[0] == 0
    assert torch.allclose(model.alpha_bar[1:], torch.cumprod(1 - betas, 0))
    assert model.alpha_bar[-1].item() == pytest.approx(4.04e-5, rel=0.01)  # L_T is ~0


def test_the_cosine_schedule_follows_nichol_and_dhariwal():
    T, s = 50, 0.008
    model = tiny(schedule="cosine", timesteps=T)
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    # abar_t = f(t) / f(0) wherever beta_t stays below the clip (all but the last step)
    assert torch.allclose(model.alpha_bar[:T], (f / f[0])[:T], rtol=1e-12)
    assert model.betas[T].item() == pytest.approx(0.999) and (model.betas[1:] <= 0.999).all()
    assert (model.alpha_bar.diff() < 0).all() and model.alpha_bar[T] > 0


def test_the_closed_form_of_q_is_the_steps_iterated():
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, 1 - abar_t): exactly the recursion of the Gaussian
    steps q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t), and by sampling."""
    model = tiny(schedule="linear", timesteps=10, beta_start=0.05, beta_end=0.4)
    scale, variance = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for t in range(1, 11):
        beta = model.betas[t]
        scale, variance = (1 - beta).sqrt() * scale, (1 - beta) * variance + beta
        assert scale.item() == pytest.approx(model.alpha_bar[t].sqrt().item(), rel=1e-12)
        assert variance.item() == pytest.approx(1 - model.alpha_bar[t].item(), rel=1e-12)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, 1.0], dtype=torch.float64).repeat(50_000).view(-1, 1, 1, 1)
    iterated = x0.clone()
    for t in range(1, 11):
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        iterated = (1 - model.betas[t]).sqrt() * iterated + model.betas[t].sqrt() * noise
    closed = model.q_sample(x0, 10, torch.randn(x0.shape, generator=generator, dtype=torch.float64))
    for sign in (0, 1):  # x_0 = -1, then +1
        a, b = iterated[sign::2].flatten(), closed[sign::2].flatten()
        assert a.mean().item() == pytest.approx(b.mean().item(), abs=0.02)
        assert a.var().item() == pytest.approx(b.var().item(), rel=0.03)
        quantiles = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)
        assert torch.allclose(a.quantile(quantiles), b.quantile(quantiles), atol=0.03)


def test_the_posterior_is_bayes_rule():
    """q(x_{t-1} | x_t, x_0) from the Gaussian prior N(sqrt(abar_{t-1}) x_0, 1 - abar_{t-1}) and
    the likelihood N(x_t; sqrt(alpha_t) x_{t-1}, beta_t), by precision-weighting."""
    model = tiny(timesteps=10)
    x0 = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64).view(3, 1, 1, 1)
    xt = torch.tensor([0.3, -0.7, 1.2], dtype=torch.float64).view(3, 1, 1, 1)
    for t in (1, 2, 5, 10):
        beta, abar_prev = model.betas[t], model.alpha_bar[t - 1]
        precision = (1 / (1 - abar_prev) if t > 1 else math.inf) + (1 - beta) / beta
        variance = 1 / precision
        mean = variance * ((abar_prev.sqrt() * x0 / (1 - abar_prev) if t > 1 else 0)
                           + (1 - beta).sqrt() * xt / beta)
        got_mean, got_variance = model.posterior(x0, xt, t)
        if t == 1:  # abar_0 = 1: x_0 is known, the posterior a point mass at it
            assert torch.allclose(got_mean, x0) and got_variance.item() == 0
        else:
            assert torch.allclose(got_mean, mean, rtol=1e-12)
            assert got_variance.item() == pytest.approx(variance.item(), rel=1e-12)


# -- training --------------------------------------------------------------------------------------

def test_the_simple_loss_decreases_on_a_tiny_problem():
    model = tiny((1, 4, 4), multipliers=[1, 2]).train()
    torch.manual_seed(0)
    data = (torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for step in range(80):
        loss = model.loss(data.repeat(8, 1, 1, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.6 * first, (first, last)


# -- the bound -------------------------------------------------------------------------------------

def chains(model: DDPM, x0: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """log q(x_{1:T} | x_0) and log p(x_{0:T}) of one forward chain per row of x0 (levels in
    {-1, +1}), drawn step by step with q(x_t | x_{t-1}), straight from the definitions."""
    normal = lambda x, mean, var: (-0.5 * (x - mean) ** 2 / var
                                   - 0.5 * torch.log(2 * math.pi * var)).flatten(1).sum(1)
    T = model.T
    states = [x0]
    log_q = torch.zeros(len(x0), dtype=x0.dtype)
    for t in range(1, T + 1):
        beta = model.betas[t]
        x = (1 - beta).sqrt() * states[-1] + beta.sqrt() * torch.randn(
            x0.shape, generator=generator, dtype=x0.dtype)
        log_q += normal(x, (1 - beta).sqrt() * states[-1], beta)
        states.append(x)
    log_p = normal(states[T], 0.0, torch.tensor(1.0, dtype=x0.dtype))
    for t in range(T, 1, -1):
        steps = torch.full((len(x0),), t)
        eps = model.eps(states[t], steps)
        mean = (states[t] - model.betas[t] / (1 - model.alpha_bar[t]).sqrt() * eps) / (
            1 - model.betas[t]).sqrt()
        log_p += normal(states[t - 1], mean, model.sigma2(t, x0))
    mean = model.denoised(states[1], torch.ones(len(x0), dtype=torch.long),
                          model.eps(states[1], torch.ones(len(x0), dtype=torch.long)))
    log_p += torch.special.log_ndtr(x0 * mean / model.betas[1].sqrt()).flatten(1).sum(1)
    return log_q, log_p


@pytest.mark.parametrize("variance", ["posterior", "beta"])
@torch.no_grad()
def test_the_bound_is_its_definition(variance):
    """The full sum of closed-form KLs, the prior term and the decoder has the expectation of
    log q(x_{1:T} | x_0) - log p(x_{0:T}) over forward chains (Ho et al. eq. 3 = eq. 5)."""
    model = tiny(timesteps=6, scale=0.5, variance=variance)
    x = all_bits()[[0, 5, 15]].repeat(2000, 1, 1, 1)  # three images, 2000 copies each
    generator = torch.Generator().manual_seed(0)
    closed = model.bound(x, timesteps=None, generator=generator)["total"]
    log_q, log_p = chains(model, 2 * x - 1, generator)
    for image in range(3):
        a_mean, a_err = mean_and_stderr(closed[image::3])
        b_mean, b_err = mean_and_stderr((log_q - log_p)[image::3])
        assert abs(a_mean - b_mean) < 4 * math.hypot(a_err, b_err), (image, a_mean, b_mean)


@torch.no_grad()
def test_the_estimator_is_unbiased_for_the_full_sum():
    model = tiny((1, 4, 4), multipliers=[1, 2], timesteps=10, scale=0.5)
    x = (torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.5).double()
    generator = torch.Generator().manual_seed(0)
    full = model.bound(x.repeat(400, 1, 1, 1), timesteps=None, generator=generator)
    one = model.bound(x.repeat(4000, 1, 1, 1), timesteps=1, generator=generator)
    four = model.bound(x.repeat(1000, 1, 1, 1), timesteps=4, generator=generator)
    assert torch.isnan(one["mc_var"]).all() and (four["mc_var"] > 0).all()
    assert (full["mc_var"] == 0).all()
    for image in range(2):
        f_mean, f_err = mean_and_stderr(full["total"][image::2])
        for estimate in (one, four):
            e_mean, e_err = mean_and_stderr(estimate["total"][image::2])
            assert abs(f_mean - e_mean) < 4 * math.hypot(f_err, e_err), (f_mean, e_mean)
        # the spread of the K draws predicts the estimator's variance across images copies
        predicted = four["mc_var"][image::2].mean().item()
        observed = four["diffusion"][image::2].var().item()
        assert predicted == pytest.approx(observed, rel=0.25)
    assert f_err < e_err  # the full sum is the tighter estimate


class LinearEps(nn.Module):
    """eps_theta(x_t, t) = a_t x_t + b_t, the same for every pixel: the reverse chain is then
    linear-Gaussian and p(x_0) has a closed form."""

    def __init__(self, T: int, generator: torch.Generator) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.rand(T + 1, generator=generator, dtype=torch.float64) * 0.6)
        self.b = nn.Parameter(torch.randn(T + 1, generator=generator, dtype=torch.float64) * 0.5)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        view = (-1, *([1] * (x.dim() - 1)))
        return self.a[t].view(view) * x + self.b[t].view(view)


def exact_log_p_plus(model: DDPM) -> float:
    """log p(x_0 = +1) of one pixel under a LinearEps model: x_T ~ N(0, 1), each reverse step
    x_{t-1} = A x_t + B + sigma_t z keeps x_t Gaussian, and the decoder's mean mu = C x_1 + D
    gives p(+1) = E Phi(mu / sigma_1) = Phi(E mu / sqrt(sigma_1^2 + Var mu))."""
    a, b, T = model.net.a.detach(), model.net.b.detach(), model.T
    mean, var = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    for t in range(T, 1, -1):
        k = model.betas[t] / (1 - model.alpha_bar[t]).sqrt()
        A, B = (1 - k * a[t]) / (1 - model.betas[t]).sqrt(), -k * b[t] / (1 - model.betas[t]).sqrt()
        mean, var = A * mean + B, A ** 2 * var + model.sigma2(t, mean)
    root, rest = model.alpha_bar[1].sqrt(), (1 - model.alpha_bar[1]).sqrt()
    C, D = (1 - rest * a[1]) / root, -rest * b[1] / root
    mu_mean, mu_var = C * mean + D, C ** 2 * var
    return torch.special.log_ndtr(mu_mean / (model.betas[1] + mu_var).sqrt()).item()


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_the_bound_is_above_the_exact_nll(variance):
    """-log p(x_0) in closed form for a linear eps_theta fitted by the bound to a fair coin:
    the bound (expected over the data) falls as it fits, and stays above the exact
    cross-entropy, itself above the data's entropy ln 2; importance sampling with q agrees
    with the closed form."""
    model = tiny((1, 1, 1), timesteps=6, variance=variance)
    model.net = LinearEps(model.T, torch.Generator().manual_seed(0))
    x = torch.tensor([1.0, 0.0], dtype=torch.float64).view(2, 1, 1, 1).repeat(200, 1, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    bounds = []
    for step in range(100):
        bound = model.bound(x, timesteps=None, generator=generator)["total"].mean()
        optimizer.zero_grad()
        bound.backward()
        optimizer.step()
        bounds.append(bound.item())
    assert sum(bounds[-10:]) < 0.2 * sum(bounds[:10]), "the fit tightens the bound"
    with torch.no_grad():
        nll_plus = -exact_log_p_plus(model)
        nll_minus = -math.log(-math.expm1(-nll_plus))  # p(-1) = 1 - p(+1)
        copies = x.repeat(20, 1, 1, 1)  # 4000 of each value
        bound = model.bound(copies, timesteps=None, generator=generator)["total"].view(-1, 2)
        mean, err = mean_and_stderr(bound.mean(1))
        cross_entropy = (nll_plus + nll_minus) / 2
        assert mean > cross_entropy - 4 * err and cross_entropy >= math.log(2)
        # (a linear eps_theta cannot read the sign of x_t: the bound stays over a nat above)
        assert mean - cross_entropy < 2.0, "a loose bound would make the check vacuous"
        log_q, log_p = chains(model, 2 * copies - 1, generator)
        log_w = (log_p - log_q).view(-1, 2)
        iwae = -(torch.logsumexp(log_w, 0) - math.log(len(log_w)))
        assert iwae.tolist() == pytest.approx([nll_plus, nll_minus], abs=0.15)


@pytest.mark.parametrize("parameterization", ["eps", "tanh_x0"])
@torch.no_grad()
def test_the_untrained_network_bound_is_trivial_nll(parameterization):
    for variance in ("posterior", "beta"):
        model = tiny((1, 4, 4), timesteps=10, variance=variance,  # output layer zero
                     parameterization=parameterization)
        x = (torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.5).double()
        bound = model.bound(x.repeat(2000, 1, 1, 1), timesteps=None,
                            generator=torch.Generator().manual_seed(0))
        mean, err = mean_and_stderr(bound["total"] - bound["decoder"])
        assert abs(mean - model.trivial_nll()) < 4 * err + 1e-9  # tanh_x0: no noise at all


def test_the_bound_falls_as_the_model_fits_one_image_and_stays_positive():
    """Data: one fixed 4x4 image (entropy 0). Every term is a KL or a -log of a probability."""
    model = tiny((1, 4, 4), multipliers=[1, 2], timesteps=10)
    x = (torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.5).double()
    batch = x.repeat(200, 1, 1, 1)

    def bound() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return model.eval().bound(batch, timesteps=None,
                                      generator=torch.Generator().manual_seed(0))

    before = bound()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    torch.manual_seed(0)
    values = [before["total"].mean().item()]
    for round_ in range(3):
        model.train()
        for step in range(60):
            loss = model.loss(batch[:32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        values.append(bound()["total"].mean().item())
    assert values[1] < values[0] and values[3] < 0.2 * values[0], values
    after = bound()
    for part in ("prior", "decoder", "diffusion", "total"):
        assert (before[part] >= 0).all() and (after[part] >= 0).all()


class Constant(nn.Module):
    def __init__(self, value: Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.value


@torch.no_grad()
def test_tanh_x0_gets_the_noise_right_when_it_knows_x0():
    """A network whose tanh says x_0 outright predicts the very noise that made x_t: every
    L_{t-1} vanishes, and the bound is L_T + L_0."""
    model = tiny((1, 4, 4), timesteps=10, parameterization="tanh_x0")
    x = (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.5).double()
    model.net = Constant(40 * (2 * x - 1))  # tanh(40) = 1 in float64
    for t in (2, 5, 10):
        term = model.diffusion_term(2 * x - 1, torch.full((3,), t))
        assert torch.allclose(term, torch.zeros(3, dtype=torch.float64), atol=1e-9)
    bound = model.bound(x, timesteps=None)
    assert torch.allclose(bound["total"], bound["prior"] + bound["decoder"], atol=1e-9)


def test_bound_timesteps_below_one_is_refused():
    with pytest.raises(ValueError, match="timesteps per image must be >= 1"):
        tiny().bound(all_bits(), timesteps=0)


# -- sampling --------------------------------------------------------------------------------------

def test_the_ddim_steps_run_from_1_to_t():
    model = tiny(timesteps=10)
    assert model.ddim_steps(10) == list(range(1, 11))
    assert model.ddim_steps(2) == [1, 10]
    steps = model.ddim_steps(4)
    assert steps[0] == 1 and steps[-1] == 10 and len(set(steps)) == 4 and steps == sorted(steps)
    for bad in (1, 11):
        with pytest.raises(ValueError, match=r"DDIM steps must be in 2\.\.T = 10"):
            model.ddim_steps(bad)


def test_ddim_with_eta_0_is_deterministic_given_the_seed():
    model = tiny((1, 4, 4), multipliers=[1, 2], scale=0.5)
    first, states = model.ddim_chain(6, steps=5, eta=0.0,
                                     generator=torch.Generator().manual_seed(7))
    torch.manual_seed(123)  # the global generator plays no part
    again, states_again = model.ddim_chain(6, steps=5, eta=0.0,
                                           generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again) and all(map(torch.equal, states, states_again))
    assert len(states) == 5
    # x_T is the only draw: given it, the chain is a function
    generator = torch.Generator().manual_seed(7)
    x_T = torch.randn((6, 1, 4, 4), generator=generator, dtype=torch.float64)
    assert torch.equal(states[0], x_T)
    other, other_states = model.ddim_chain(6, steps=5, eta=0.0,
                                           generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other_states[-1], states[-1])


def test_ddim_with_all_steps_and_eta_1_is_the_ancestral_sampler():
    """Song et al. eq. 16: eta = 1 gives sigma_t^2 = beta~_t, Ho et al.'s sampler with the
    posterior variance; with every step they draw the same numbers in the same order."""
    model = tiny((1, 4, 4), multipliers=[1, 2], scale=0.5, timesteps=8)
    bits, states = model.ddim_chain(5, steps=8, eta=1.0, generator=torch.Generator().manual_seed(2))
    ancestral_bits, ancestral_states = model.ancestral_chain(
        5, generator=torch.Generator().manual_seed(2))
    assert len(states) == len(ancestral_states) == 8
    for a, b in zip(states, ancestral_states):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    assert torch.equal(bits, ancestral_bits)
    # with eta = 0 they part
    _, deterministic = model.ddim_chain(5, steps=8, eta=0.0,
                                        generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(deterministic[-1], ancestral_states[-1])


@pytest.mark.parametrize("sampler", ["ddim", "ancestral"])
def test_samples_are_bits_of_the_right_shape_and_repeat_with_the_seed(sampler):
    model = tiny((1, 4, 4), multipliers=[1, 2], scale=0.5, sampler=sampler, eta=0.5).train()
    samples = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (7, 1, 4, 4) and samples.dtype == model.dtype
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    assert model.training, "sample() puts the model back in training mode"
    again = model.sample(7, generator=torch.Generator().manual_seed(0))
    assert again.numpy().tobytes() == samples.numpy().tobytes()


# -- the stages' hooks and bad input ---------------------------------------------------------------

def binary_split(n: int, side: int = 4) -> Split:
    gray = torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(1))
    return Split(gray=gray, labels=torch.arange(n) % 10, binary=(gray > 127).to(torch.uint8))


def test_score_reports_the_bound_and_what_was_computed():
    model = tiny((1, 4, 4), multipliers=[1, 2], scale=0.5)
    test = binary_split(12)

    def score(k: int) -> dict:
        return model.score(test, ScoreSettings(batch_size=5, bound_timesteps=k),
                           variant="binarized", generator=torch.Generator().manual_seed(0))

    two = score(2)
    assert two == score(2), "same seed, same scores"
    assert two["nll_kind"] == "bound" and two["test_images"] == 12
    assert two["bound_timesteps"] == 2 and two["diffusion_timesteps"] == 10
    assert "unbiased: 2 step(s)" in two["bound_estimator"]
    parts = two["bound_prior_nats"] + two["bound_decoder_nats"] + two["bound_diffusion_nats"]
    assert two["test_nll_nats"] == pytest.approx(parts, rel=1e-9)
    assert two["test_bits_per_dim"] == pytest.approx(two["test_nll_nats"] / (16 * math.log(2)))
    assert two["bound_timestep_stderr_nats"] > 0
    assert score(1)["bound_timestep_stderr_nats"] is None
    full = score(0)
    assert full["bound_estimator"].startswith("all 10 terms") and full["bound_timesteps"] == 0


def test_figures_are_the_grid_and_the_denoising_chain():
    model = tiny((1, 4, 4), multipliers=[1, 2], scale=0.5)
    figures = model.figures(None, n=6, nrow=3, variant="binarized",
                            generator=torch.Generator().manual_seed(0))
    assert set(figures.pngs) == {"samples.png", "chain.png"}
    assert figures.arrays["samples"].shape == (6, 1, 4, 4)
    chain = Image.open(io.BytesIO(figures.pngs["chain.png"]))
    cell = (4 + 2) * 2  # image + padding, scaled 2x
    assert chain.size == ((CHAIN_COLUMNS * cell + 2 * 2), (CHAIN_IMAGES * cell + 2 * 2))


@pytest.mark.parametrize("arch, message", [
    ({"schedule": "quadratic"}, "schedule must be one of"),
    ({"variance": "learned"}, "variance must be one of"),
    ({"sampler": "euler"}, "sampler must be one of"),
    ({"parameterization": "v"}, "parameterization must be one of"),
    ({"sample_steps": 11}, r"DDIM steps must be in 2\.\.T = 10"),
    ({"multipliers": [1, 2, 2]}, "3 resolutions need height and width divisible by 4, got 2x2"),
    ({"schedule": "linear", "beta_start": 0.1, "beta_end": 0.01}, "beta_start <= beta_end"),
])
def test_bad_settings_fail_in_one_line(arch, message):
    with pytest.raises(ValueError, match=message):
        tiny(**arch)


def test_grayscale_is_refused():
    with pytest.raises(ValueError, match="binarized"):
        build_model("ddpm", {"channels": 2, "multipliers": [1]}, image_shape=(1, 2, 2), levels=256)
