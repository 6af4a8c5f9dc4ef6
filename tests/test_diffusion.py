"""Diffusion and score-based models: the forward process, the variational bound's terms, and a learned score."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec, load_dataset
from dgm_core.learn.evaluation import mmd_test
from dgm_core.models.denoising import langevin_step
from dgm_core.models.diffusion import DDPM, discretized_gaussian_log_prob
from dgm_core.models.score import NCSN

torch.set_num_threads(1)


def _gaussian_spec(mean: float = 0.0, std: float = 1.0) -> DataSpec:
    """One-dimensional continuous data; models standardise with (mean, std)."""
    return DataSpec("gaussian-1d", "points2d", (1,), None, (mean,), (std,))


class OracleNoise(nn.Module):
    """ε*(y_t, t) = E[ε | y_t] = √(1 − ᾱ_t) y_t: the exact noise predictor when y_0 ~ N(0, I)."""

    def __init__(self, model: DDPM) -> None:
        super().__init__()
        self.alpha_bar = model.alpha_bar
        self.steps = model.steps
        self.unused = nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, y: Tensor, level: Tensor) -> Tensor:
        t = torch.round(level * self.steps).long()
        return (1 - self.alpha_bar[t - 1, None]).sqrt() * y


# --- the forward process ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_noising_ends_at_a_standard_normal(schedule):
    """q(y_T | y_0) ≈ N(0, I) whatever y_0: moons (standardised) pushed to step T have mean ≈ 0 and covariance ≈ I."""
    model = DDPM(load_dataset("moons").spec, hidden=8, schedule=schedule)
    torch.manual_seed(0)
    y0, _ = model.standardize(load_dataset("moons").train[:10_000])
    t = torch.full((len(y0),), model.steps)
    y_T = model.q_sample(y0, t, torch.randn_like(y0))
    assert model.alpha_bar[-1] < 1e-3
    assert y_T.mean(0).abs().max() < 0.05
    assert (torch.cov(y_T.T) - torch.eye(2)).abs().max() < 0.05


def test_closed_form_marginal_matches_the_step_by_step_chain():
    """Running y_t = √α_t y_{t−1} + √β_t z step by step gives the closed form N(√ᾱ_t y_0, (1 − ᾱ_t) I)."""
    model = DDPM(_gaussian_spec(), hidden=8, steps=50)
    torch.manual_seed(0)
    y0 = torch.full((20_000, 1), 1.5)
    y = y0.clone()
    for t in range(1, model.steps + 1):
        beta = model.betas[t - 1]
        y = (1 - beta).sqrt() * y + beta.sqrt() * torch.randn_like(y)
        if t in (1, 5, 20, 50):
            alpha_bar = model.alpha_bar[t - 1]
            assert y.mean().item() == pytest.approx((alpha_bar.sqrt() * 1.5).item(), abs=0.02)
            assert y.var().item() == pytest.approx((1 - alpha_bar).item(), abs=0.02)


# --- the variational bound ------------------------------------------------------------------------------------------


def test_discretized_gaussian_puts_unit_mass_on_the_levels():
    """Σ over the L levels of the bin masses is 1 (outer bins open to ±∞), for any mean and width."""
    levels = 17
    y = 2 * torch.arange(levels, dtype=torch.float32) / (levels - 1) - 1
    for mean, std in [(0.0, 0.03), (0.93, 0.2), (-1.4, 0.01), (3.0, 1.0)]:
        log_mass = discretized_gaussian_log_prob(y[:, None], torch.tensor(mean), torch.tensor(std), 1 / (levels - 1))
        assert log_mass.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.isfinite(log_mass).all()


@pytest.mark.parametrize("kl_draws", [None, 20])
def test_bound_is_exact_on_gaussian_data_with_the_exact_denoiser(kl_draws):
    """For y_0 ~ N(0, 1), ε* and σ_t² = β_t, p_θ equals q's reverse chain, so E[bound] = log p(x) exactly; with
    σ_t² = β̃_t it is strictly below. The data are N(1.5, 0.7²) in data units, so the standardisation's log-det counts.
    The stratified estimate (kl_draws = 20) estimates the same bound."""
    torch.manual_seed(0)
    x = 1.5 + 0.7 * torch.randn(20_000, 1)
    true_log_p = torch.distributions.Normal(1.5, 0.7).log_prob(x).squeeze(1).mean().item()
    bounds = {}
    for variance in ("beta", "posterior"):
        model = DDPM(_gaussian_spec(1.5, 0.7), hidden=8, reverse_variance=variance, kl_draws=kl_draws)
        model.network = OracleNoise(model)
        with torch.no_grad():
            bounds[variance] = model.log_prob(x).mean().item()
    assert bounds["beta"] == pytest.approx(true_log_p, abs=0.06)
    assert bounds["posterior"] < true_log_p - 0.5


def test_bound_terms_are_kls_and_a_mass():
    """Every L_{t−1} is a KL (≥ 0), L_T ≈ 0 (ᾱ_T ≈ 0), and the decoder's log-mass of a digit is ≤ 0."""
    model = DDPM(load_dataset("digits").spec, hidden=32)
    x = load_dataset("digits").test[:32]
    with torch.no_grad():
        log_decoder, kls, prior_kl, log_det = model.bound_terms(x)
        bound = model.log_prob(x)
    assert kls.shape == (32, model.steps - 1) and (kls >= -1e-5).all()
    assert (prior_kl >= 0).all() and (prior_kl < 0.01).all()
    assert (log_decoder <= 0).all() and (log_det == 0).all()
    assert (bound < 0).all()


def test_ddpm_says_what_it_bounds_and_what_sampling_costs():
    model = DDPM(load_dataset("moons").spec, hidden=8, steps=40)
    assert model.capabilities.likelihood == "bound" and "T=40" in model.capabilities.likelihood_name
    assert model.sampling_cost == "40 sequential passes"


# --- scores and Langevin dynamics ----------------------------------------------------------------------------------


def test_langevin_dynamics_samples_a_gaussian():
    """x ← x + η ∇ log p + √(2η) z with ∇ log p = −(x − μ)/s² settles at N(μ, s²) (η ≪ s²: bias ≈ η/(4s²))."""
    torch.manual_seed(0)
    mean, std = -1.0, 1.5
    x = torch.zeros(10_000, 1)
    for _ in range(1500):
        x = langevin_step(x, -(x - mean) / std**2, step_size=0.01)
    assert x.mean().item() == pytest.approx(mean, abs=0.05)
    assert x.std().item() == pytest.approx(std, rel=0.03)


def test_ncsn_learns_the_score_of_a_blurred_gaussian():
    """Data N(2, 0.5²) blurred by N(0, σ²) have score −(y − 2)/(0.25 + σ²); a small network learns it at every level
    to within 15% (relative L1 over y within 2 blurred standard deviations of the mean)."""
    torch.manual_seed(0)
    model = NCSN(_gaussian_spec(), hidden=32, noise_levels=5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 600)
    for _ in range(600):
        terms = model.loss(2 + 0.5 * torch.randn(1024, 1))
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        for level, sigma in enumerate(model.sigmas.tolist()):
            spread = math.sqrt(0.25 + sigma**2)
            y = torch.linspace(2 - 2 * spread, 2 + 2 * spread, 101)[:, None]
            expected = -(y - 2) / spread**2
            error = (model.score(y, level) - expected).abs().mean() / expected.abs().mean()
            assert error < 0.15, f"level {level} (σ = {sigma:.3f}): relative error {error:.3f}"


def test_ncsn_says_how_many_langevin_steps_sampling_takes():
    model = NCSN(load_dataset("moons").spec, hidden=8, noise_levels=6, steps_per_level=5)
    assert model.capabilities.likelihood == "none"
    assert model.sampling_cost.startswith("30 Langevin steps")
    assert model.sigmas[0] > model.sigmas[-1] and torch.allclose(
        model.sigmas[1:] / model.sigmas[:-1], model.sigmas[1] / model.sigmas[0]
    )


# --- how it works: noising, the denoiser's direction, the reverse chains ----------------------------------------------


def test_the_reverse_trajectory_ends_at_what_sample_draws_and_noising_reaches_a_standard_gaussian() -> None:
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = DDPM(data.spec, hidden=16, steps=20).eval()
    torch.manual_seed(3)
    expected = model.sample(30)
    torch.manual_seed(3)
    path = model.reverse_trajectory(30)
    assert path.shape == (21, 30, 2) and model.capabilities.denoising
    torch.testing.assert_close(path[0], expected)
    x = data.test[:4000]
    assert torch.equal(model.noised(x, 0, torch.randn(4000, 2)), x)
    standardised = model.standardize(model.noised(x, 20, torch.randn(4000, 2)))[0]
    assert standardised.std(0).sub(1).abs().max() < 0.1 and standardised.mean(0).abs().max() < 0.1


def test_the_denoisers_direction_points_to_its_guess_of_the_clean_point() -> None:
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = DDPM(data.spec, hidden=16, steps=20).eval()
    x, t = data.test[:50], 7
    y = model.standardize(x)[0]
    steps = torch.full((50,), t)
    alpha_bar = model.alpha_bar[t - 1]
    guess = model.standardize.inverse((y - (1 - alpha_bar).sqrt() * model.predict_noise(y, steps)) / alpha_bar.sqrt())
    torch.testing.assert_close(x + model.denoise_direction(x, t), guess.detach())


def test_the_score_models_annealed_chains_end_at_what_sample_draws() -> None:
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = NCSN(data.spec, hidden=16, noise_levels=5, steps_per_level=3).eval()
    torch.manual_seed(3)
    expected = model.sample(20)
    torch.manual_seed(3)
    path = model.reverse_trajectory(20)
    assert path.shape == (6, 20, 2) and model.capabilities.denoising and model.steps == 5
    torch.testing.assert_close(path[0], expected)
    x = data.test[:8]
    assert torch.equal(model.noised(x, 0, torch.randn(8, 2)), x)
    y = model.standardize(x)[0]
    tweedie = model.standardize.inverse(y + model.sigmas[-1] ** 2 * model.score(y, 4)).detach()
    torch.testing.assert_close(x + model.denoise_direction(x, 1), tweedie)


# --- fewer passes: respaced ancestral sampling, fewer Langevin steps per level ----------------------------------------


class PointMassNoise(nn.Module):
    """ε*(y_t, t) = (y_t − √ᾱ_t c) / √(1 − ᾱ_t): the exact noise predictor when every y_0 is c."""

    def __init__(self, model: DDPM, c: float) -> None:
        super().__init__()
        self.alpha_bar = model.alpha_bar
        self.steps = model.steps
        self.c = c
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, y: Tensor, level: Tensor) -> Tensor:
        alpha_bar = self.alpha_bar[torch.round(level * self.steps).long() - 1, None]
        return (y - alpha_bar.sqrt() * self.c) / (1 - alpha_bar).sqrt()


def _count_passes(model: nn.Module) -> list[int]:
    """A list that grows by one at each pass through the model's network."""
    calls: list[int] = []
    model.network.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_respaced_sampling_with_all_t_passes_is_the_trained_sampler(variance) -> None:
    torch.manual_seed(0)
    model = DDPM(load_dataset("moons").spec, hidden=16, steps=20, reverse_variance=variance).eval()
    torch.manual_seed(3)
    expected = model.sample(30)
    torch.manual_seed(3)
    assert torch.equal(model.sample_with(30, 20), expected)


def test_fewer_passes_visit_evenly_spaced_steps_with_one_network_pass_each() -> None:
    torch.manual_seed(0)
    model = DDPM(load_dataset("moons").spec, hidden=16, steps=100).eval()
    assert model.sampler_choices == (100, 50, 20, 10, 5)
    assert model.trajectory_steps(5) == [0, 1, 26, 50, 75, 100] and model.trajectory_steps(1) == [0, 100]
    calls = _count_passes(model)
    for passes in (*model.sampler_choices, 2, 1):
        calls.clear()
        torch.manual_seed(3)
        samples = model.sample_with(30, passes)
        assert len(calls) == passes and samples.shape == (30, 2) and torch.isfinite(samples).all()
        torch.manual_seed(3)
        path = model.reverse_trajectory(30, passes)
        assert path.shape == (passes + 1, 30, 2) and torch.equal(path[0], samples)
    with pytest.raises(ValueError):
        model.sample_with(3, 101)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_respaced_chains_keep_the_forward_marginals_with_the_exact_denoiser(schedule) -> None:
    """Every y_0 = c: with the exact ε and σ'² = β̃', the 4-pass chain is q's own reverse chain over the steps S it
    visits, so at each S it has q's marginal N(√ᾱ_S c, 1 − ᾱ_S) (a pass that kept the trained β_S instead of the merged
    β' = 1 − ᾱ_S / ᾱ_{S'} would leave the variance at step 34 near 0.94 instead of 0.70, linear schedule)."""
    c = 2.0
    model = DDPM(_gaussian_spec(), hidden=8, steps=100, schedule=schedule, reverse_variance="posterior")
    model.network = PointMassNoise(model, c)
    torch.manual_seed(0)
    path = model.reverse_trajectory(20_000, 4)
    steps = model.trajectory_steps(4)
    assert steps == [0, 1, 34, 67, 100]
    torch.testing.assert_close(path[0], torch.full_like(path[0], c))
    for row, step in enumerate(steps[1:-1], start=1):
        alpha_bar = model.alpha_bar[step - 1].item()
        assert path[row].mean().item() == pytest.approx(math.sqrt(alpha_bar) * c, abs=0.03), f"step {step}"
        assert path[row].var().item() == pytest.approx(1 - alpha_bar, abs=0.04), f"step {step}"


def test_a_trained_ddpm_passes_the_sample_test_with_its_steps_and_fails_with_two() -> None:
    """A small DDPM trained briefly on a correlated 2D Gaussian: 500 samples from all T = 50 passes are not told
    apart from 500 data points (p ≥ 5 %); from 2 passes (the first a jump from y_T straight to step 1) they are, with
    an MMD² many times larger."""

    def draw(n: int) -> Tensor:
        z = torch.randn(n, 2)
        return torch.stack([1 + 0.5 * z[:, 0], -2 + 2 * (0.6 * z[:, 0] + 0.8 * z[:, 1])], 1)

    torch.manual_seed(0)
    model = DDPM(
        DataSpec("gaussian-2d", "points2d", (2,), None, (1.0, -2.0), (0.5, 2.0)), hidden=32, layers=2, steps=50
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        terms = model.loss(draw(256))
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
    model.eval()
    test = draw(500)
    full_mmd, full_p = mmd_test(model.sample_with(500, 50), test)
    few_mmd, few_p = mmd_test(model.sample_with(500, 2), test)
    assert full_p >= 0.05 and few_p < 0.05
    assert few_mmd > 10 * max(full_mmd, 1e-3)


def test_a_score_model_takes_fewer_langevin_steps_at_the_same_noise_levels() -> None:
    torch.manual_seed(0)
    model = NCSN(load_dataset("moons").spec, hidden=16, noise_levels=5, steps_per_level=10).eval()
    assert model.sampler_choices == (50, 25, 10, 5)
    calls = _count_passes(model)
    for passes in model.sampler_choices:
        calls.clear()
        torch.manual_seed(3)
        samples = model.sample_with(20, passes)
        assert len(calls) == passes + 1 and samples.shape == (20, 2)  # L × k Langevin steps, then Tweedie's step
        torch.manual_seed(3)
        path = model.reverse_trajectory(20, passes)
        assert path.shape == (6, 20, 2) and model.trajectory_steps(passes) == list(range(6))
        assert torch.equal(path[0], samples)
    with pytest.raises(ValueError):
        model.sample_with(4, 12)
