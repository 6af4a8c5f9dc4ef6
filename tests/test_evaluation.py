"""Honest numbers: MMD as a two-sample test, baselines every model must beat, and unit conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dgm_core.data import load_dataset, toy2d
from dgm_core.learn.evaluation import (
    baseline_nll,
    bits_per_dim,
    item_log_probs,
    log_density_grid,
    mean_log_prob,
    mmd,
    mmd_test,
)
from dgm_core.learn.seeding import EVAL_SEED
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.registry import build_model

torch.set_num_threads(1)


class _Analytic(GenerativeModel):
    """A parameter-free stand-in with log p(x) = a·x₁ + b·x₂ (not a density; it makes grid layout visible)."""

    def __init__(self, spec, a: float = 1.0, b: float = 100.0):
        super().__init__(spec)
        self.a, self.b = a, b
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device
        self.capabilities = Capabilities(likelihood="exact")

    def log_prob(self, x):
        return self.a * x[:, 0] + self.b * x[:, 1]


# --- MMD --------------------------------------------------------------------------------------------------------------


def test_mmd_near_zero_for_one_distribution_large_for_two():
    """Unbiased MMD² has mean 0 when both samples come from one law: |MMD²| stays within sampling noise."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    same = mmd(x, y)
    assert abs(same) < 0.002
    assert mmd(x, y + torch.tensor([1.0, 0.0])) > 0.03
    assert mmd(x, 2 * y) > 0.03  # same mean, other spread


def test_mmd_grows_with_the_shift_and_is_symmetric():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
    values = [mmd(x, y + shift) for shift in (0.25, 0.5, 1.0, 2.0)]
    assert values == sorted(values)
    assert mmd(x, y + 1) == pytest.approx(mmd(y + 1, x), rel=1e-9)


def test_mmd_tells_datasets_apart():
    moons, eights = load_dataset("moons"), load_dataset("8gaussians")
    held_out = mmd(moons.val[:500], moons.test[:500])
    assert abs(held_out) < 0.005
    assert mmd(moons.val[:500], eights.test[:500]) > 20 * max(abs(held_out), 1e-3)


def test_mmd_with_fixed_bandwidth_is_the_unbiased_estimator():
    """MMD² = mean_{i≠j} k(x_i,x_j) + mean_{i≠j} k(y_i,y_j) − 2 mean_{i,j} k(x_i,y_j), here written with loops."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 3, generator=g).double(), torch.randn(5, 3, generator=g).double() + 0.5

    def k(a, b):
        return math.exp(-float((a - b).pow(2).sum()) / (2 * 0.7**2))

    kxx = sum(k(x[i], x[j]) for i in range(6) for j in range(6) if i != j) / 30
    kyy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    kxy = sum(k(x[i], y[j]) for i in range(6) for j in range(5)) / 30
    assert mmd(x, y, bandwidth=0.7) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-9)


def test_mmd_flattens_images():
    digits = load_dataset("digits")
    assert mmd(digits.val[:100], digits.test[:100]) == pytest.approx(
        mmd(digits.val[:100].flatten(1), digits.test[:100].flatten(1)), rel=1e-12
    )


def test_mmd_test_keeps_one_distribution_and_rejects_two():
    """Same law: the p-value is roughly uniform, here well above 0.05. A shift: the smallest p-value possible."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(300, 2, generator=g), torch.randn(300, 2, generator=g)
    statistic, p_same = mmd_test(x, y)
    assert statistic == pytest.approx(mmd(x, y), rel=1e-9)
    assert p_same > 0.05
    _, p_shifted = mmd_test(x, y + torch.tensor([0.6, 0.0]))
    assert p_shifted == pytest.approx(1 / 201)  # no relabelling comes close: the smallest p-value possible


def test_mmd_test_p_values_are_seeded_and_counted_over_permutations():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(40, 3, generator=g), torch.randn(50, 3, generator=g) + 0.1
    _, p = mmd_test(x, y, n_permutations=99, seed=7)
    assert mmd_test(x, y, n_permutations=99, seed=7)[1] == p
    assert 0 < p <= 1 and (p * 100) == pytest.approx(round(p * 100))  # (1 + count) / (1 + 99)
    assert mmd_test(x, y, n_permutations=99, seed=8)[1] != p


def test_mmd_test_is_calibrated_under_the_null():
    """Over many pairs of samples of one law, about 5% of p-values fall at or below 0.05."""
    g = torch.Generator().manual_seed(5)
    p_values = [mmd_test(torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g), 99, i)[1] for i in range(60)]
    assert sum(p <= 0.05 for p in p_values) <= 9  # Binomial(60, 0.05): P(≥ 10) < 0.3%


def _moment_matched_gaussian(data, n: int, seed: int) -> torch.Tensor:
    """n draws from the Gaussian with the training data's own mean and covariance: a blob with the right moments."""
    train = data.train.double()
    blob = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return blob.sample((n,)).float()


@pytest.mark.parametrize("name", toy2d.DESCRIPTIONS)
def test_mmd_test_tells_a_moment_matched_gaussian_from_every_2d_set(name):
    """The blob a VAE or a DDPM draws early on has the data's mean and covariance: at 500 points a side the test must
    reject it (a median-bandwidth MMD alone accepted it on 7 of the 8 sets)."""
    data = load_dataset(name)
    _, p = mmd_test(_moment_matched_gaussian(data, 500, seed=0), data.test[:500])
    assert p < 0.05, p


def test_mmd_test_tells_independent_pixels_from_digits():
    data = load_dataset("digits")
    counts = torch.nn.functional.one_hot(data.train.flatten(1).long(), data.spec.levels).sum(0).double() + 1
    with torch.random.fork_rng():
        torch.manual_seed(0)
        pixels = torch.distributions.Categorical(counts / counts.sum(-1, keepdim=True)).sample((len(data.test),))
    _, p = mmd_test(pixels.float().reshape(data.test.shape), data.test)
    assert p < 0.05, p


@pytest.mark.parametrize("name", ["moons", "rings", "digits"])
def test_mmd_test_keeps_real_against_real(name):
    """Held-out data split at random into two halves, 20 times: at most 1 in 20 is called different at 5%."""
    data = load_dataset(name)
    pool = torch.cat([data.val, data.test])
    n = min(500, len(pool) // 2)
    rejected = 0
    for repeat in range(20):
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(100 + repeat))
        rejected += mmd_test(pool[order[:n]], pool[order[n : 2 * n]], seed=repeat)[1] < 0.05
    assert rejected <= 1, rejected


# --- per-item log-likelihoods -----------------------------------------------------------------------------------------


def test_item_log_probs_are_per_item_and_do_not_depend_on_the_batch():
    model = _Analytic(load_dataset("moons").spec)
    x = load_dataset("moons").test[:100]
    expected = model.log_prob(x)
    for batch in (1000, 7):
        torch.testing.assert_close(item_log_probs(model, x, batch=batch), expected)


def test_item_log_probs_of_a_stochastic_bound_are_seeded_like_the_trainers_evaluation():
    """A VAE's ELBO draws z: item_log_probs draws it from the evaluation seed, whatever the global generator says,
    and leaves that generator where it was."""
    data = load_dataset("digits")
    model = build_model("VAE", data.spec, hidden=32)
    x = data.test[:50]
    torch.manual_seed(0)
    first = item_log_probs(model, x)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(item_log_probs(model, x), first) and torch.equal(torch.rand(1), after)
    torch.manual_seed(EVAL_SEED)
    with torch.no_grad():
        assert torch.equal(model.log_prob(x), first)
    assert first.shape == (50,) and not model.training


# --- baselines and units ----------------------------------------------------------------------------------------------


def test_bits_per_dim_is_nats_over_d_ln2():
    assert bits_per_dim(64 * math.log(2), load_dataset("digits").spec) == pytest.approx(1.0)
    assert bits_per_dim(2 * math.log(2) * 3.5, load_dataset("moons").spec) == pytest.approx(3.5)


def test_gaussian_baseline_is_the_fitted_gaussians_entropy():
    """On fresh data from the same law, the fitted Gaussian's NLL ≈ its entropy ½ log det(2πe Σ)."""
    data = load_dataset("moons")
    label, nll = baseline_nll(data)
    cov = np.cov(data.train.numpy().T)
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    assert label == "single Gaussian"
    assert nll == pytest.approx(entropy, abs=0.03)
    assert data.spec.entropy_nats + 0.5 < nll  # moons are far from Gaussian


def test_independent_pixel_baseline_on_digits():
    """Per-pixel categoricals with add-one smoothing: ≈ 2.40 bits/dim (field notes), well under log₂ 17 ≈ 4.09."""
    data = load_dataset("digits")
    label, nll = baseline_nll(data)
    assert label == "independent pixels"
    assert bits_per_dim(nll, data.spec) == pytest.approx(2.40, abs=0.05)
    binary = load_dataset("digits-binary")
    binary_bpd = bits_per_dim(baseline_nll(binary)[1], binary.spec)
    assert 0.3 < binary_bpd < 1.0  # at most log₂ 2 = 1 bit


def test_independent_pixel_baseline_matches_counting():
    """For one pixel: −mean log((count(level) + 1) / (N + L)) over test items, summed over pixels."""
    data = load_dataset("digits-binary")
    train, test = data.train.flatten(1), data.test.flatten(1)
    ones = train.sum(0)
    p_one = (ones + 1) / (len(train) + 2)
    expected = -(test * p_one.log() + (1 - test) * (1 - p_one).log()).sum(1).mean().item()
    assert baseline_nll(data)[1] == pytest.approx(expected, rel=1e-6)


def test_mean_log_prob_does_not_depend_on_the_batch_size():
    model = _Analytic(load_dataset("moons").spec)
    x = load_dataset("moons").test[:1000]
    expected = model.log_prob(x).double().mean().item()
    for batch_size in (1000, 333, 7):
        assert mean_log_prob(model, x, batch_size=batch_size) == pytest.approx(expected, rel=1e-9)


def test_log_density_grid_rows_follow_y_and_columns_follow_x():
    model = _Analytic(load_dataset("moons").spec, a=1.0, b=100.0)
    grid = log_density_grid(model, (-1.0, 2.0, 10.0, 12.0), n=4)
    assert grid.shape == (4, 4)
    xs, ys = torch.linspace(-1.0, 2.0, 4), torch.linspace(10.0, 12.0, 4)
    torch.testing.assert_close(grid, xs[None, :] + 100 * ys[:, None])
