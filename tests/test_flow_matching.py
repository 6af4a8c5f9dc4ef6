"""Flow matching: the regression target, the likelihood by the instantaneous change of variables, the ODE sampler."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.learn.evaluation import mmd_test
from dgm_core.models.flow_matching import FlowMatching

torch.set_num_threads(1)

MODES = 2.0  # the two-Gaussians data: modes at (±2, 0), σ = 0.5
SPREAD = 0.5


def _spec(mean: tuple[float, float] = (0.0, 0.0), std: tuple[float, float] = (1.0, 1.0)) -> DataSpec:
    return DataSpec("test-points", "points2d", (2,), None, mean, std)


def _two_gaussians(n: int) -> Tensor:
    """An even mixture of N((±2, 0), 0.5² I)."""
    side = torch.randint(2, (n, 1)) * 2 - 1.0
    return torch.cat([MODES * side, torch.zeros(n, 1)], 1) + SPREAD * torch.randn(n, 2)


class Oracle(nn.Module):
    """A fixed velocity field v(y, τ) in the model's standardised space, in place of the network."""

    def __init__(self, field) -> None:
        super().__init__()
        self.field = field
        self.unused = nn.Parameter(torch.zeros(()))  # gives the model a device

    def forward(self, y: Tensor, tau: Tensor) -> Tensor:
        return self.field(y, tau[:, None])


@pytest.fixture(scope="module")
def trained() -> FlowMatching:
    """A small model trained for about a second on the two Gaussians (600 steps, the learning rate decayed by a cosine:
    the regression target is noisy, and a constant rate leaves the weights as noisy)."""
    torch.manual_seed(0)
    model = FlowMatching(_spec(std=(math.sqrt(MODES**2 + SPREAD**2), SPREAD)), hidden=32)
    optimizers = model.configure_optimizers(1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizers[0], 600)
    for _ in range(600):
        model.train_step(_two_gaussians(512), optimizers)
        schedule.step()
    return model.eval()


def test_the_loss_is_zero_for_the_exact_velocity_of_a_point_mass() -> None:
    """Every y_1 = c: y_τ = (1 − τ) y_0 + τ c determines y_0, so v*(y, τ) = (c − y)/(1 − τ) is the target u = c − y_0
    itself, and the regression's loss is zero (any other field, here v = 0, pays E ‖c − y_0‖² = |c|² + 2)."""
    c = torch.tensor([1.5, -0.5])
    torch.manual_seed(0)
    model = FlowMatching(_spec(), hidden=8)
    x = c.expand(4096, 2)
    model.network = Oracle(lambda y, tau: (c - y) / (1 - tau))
    assert model.loss(x)["loss"].item() < 1e-5  # float32 rounding where τ → 1
    model.network = Oracle(lambda y, tau: torch.zeros_like(y))
    assert model.loss(x)["loss"].item() == pytest.approx(c.pow(2).sum().item() + 2, rel=0.1)


def test_the_exact_velocity_for_gaussian_data_gives_the_gaussians_log_density() -> None:
    """Standardised data N(m, s² I) and the base N(0, I) are jointly Gaussian with y_τ, so
        v*(y, τ) = E[y_1 − y_0 | y_τ = y] = m + (τ s² − (1 − τ)) / σ_τ² · (y − τ m),   σ_τ² = (1 − τ)² + τ² s²,
    and its ODE carries N(0, I) to N(m, s² I). log_prob by the ODE (backward, the divergence by autograd, the
    standardisation's log-det) must give the Gaussian's log density in data units, under ``torch.no_grad()`` too."""
    mean, std, m, s = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0]), torch.tensor([0.5, -1.0]), 0.6

    def velocity(y: Tensor, tau: Tensor) -> Tensor:
        return m + (tau * s**2 - (1 - tau)) / ((1 - tau) ** 2 + tau**2 * s**2) * (y - tau * m)

    model = FlowMatching(_spec(tuple(mean.tolist()), tuple(std.tolist())), hidden=8)
    model.network = Oracle(velocity)
    truth = torch.distributions.Normal(mean + std * m, std * s)
    torch.manual_seed(0)
    x = torch.cat([truth.sample((500,)), torch.tensor([[4.0, 3.0], [-1.0, -8.0]])])
    with torch.no_grad():
        log_p = model.log_prob(x)
    assert log_p.grad_fn is None
    torch.testing.assert_close(log_p, truth.log_prob(x).sum(1), atol=2e-3, rtol=0)


def test_the_likelihood_integrates_to_one_on_a_grid(trained: FlowMatching) -> None:
    """∫ p(x) dx = 1: the trapezoid rule over a grid reaching 4σ beyond the data on either axis."""
    xs, ys = torch.linspace(-8, 8, 161), torch.linspace(-3, 3, 61)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    with torch.no_grad():
        density = trained.log_prob(torch.stack([grid_x.flatten(), grid_y.flatten()], 1)).exp()
    mass = torch.trapezoid(torch.trapezoid(density.reshape(len(ys), len(xs)), xs, dim=1), ys)
    assert mass.item() == pytest.approx(1.0, abs=1e-2)


def test_doubling_the_likelihood_integrators_steps_changes_the_mean_log_likelihood_by_under_a_hundredth(
    trained: FlowMatching,
) -> None:
    torch.manual_seed(0)
    x = _two_gaussians(2000)
    with torch.no_grad():
        coarse = trained.log_prob(x).mean().item()
        trained.likelihood_steps *= 2
        try:
            fine = trained.log_prob(x).mean().item()
        finally:
            trained.likelihood_steps //= 2
    assert abs(fine - coarse) < 0.01, (coarse, fine)


def test_the_learned_ode_carries_the_base_to_the_data(trained: FlowMatching) -> None:
    """The trained sampler's draws fill both modes evenly, each with the data's mean and spread, and the MMD test does
    not tell them from the data at 1 %. One Euler step goes to y_0 + v(y_0, 0), and at τ = 0 the optimum is
    v*(y_0, 0) = E[y_1] − y_0: every draw near the data's mean."""
    torch.manual_seed(1)
    samples = trained.sample(2000)
    right = samples[:, 0] > 0
    assert right.float().mean().item() == pytest.approx(0.5, abs=0.05)
    for mode, side in ((samples[right], 1), (samples[~right], -1)):
        torch.testing.assert_close(mode.mean(0), torch.tensor([side * MODES, 0.0]), atol=0.15, rtol=0)
        torch.testing.assert_close(mode.std(0), torch.full((2,), SPREAD), atol=0.15, rtol=0)
    assert mmd_test(samples[:500], _two_gaussians(500))[1] >= 0.01
    assert (trained.sample_with(2000, 1).std(0) < 0.3 * samples.std(0)).all()


def test_the_reverse_trajectory_runs_from_the_samples_back_to_the_base_draw() -> None:
    """Rows follow the diffusion view: row 0 the samples (step 0), the last row the base draw (step T); one network
    pass per Euler step."""
    torch.manual_seed(0)
    model = FlowMatching(_spec((1.0, -2.0), (0.5, 2.0)), hidden=16).eval()
    assert model.sampler_choices == (100, 20, 10, 5, 2) and model.capabilities.denoising
    assert model.trajectory_steps(5) == [0, 20, 40, 60, 80, 100] and model.trajectory_steps(3) == [0, 33, 67, 100]
    calls: list[int] = []
    model.network.register_forward_hook(lambda *_: calls.append(1))
    for passes in (*model.sampler_choices, 3):
        torch.manual_seed(3)
        base = model.standardize.inverse(torch.randn(30, 2))
        torch.manual_seed(3)
        calls.clear()
        samples = model.sample_with(30, passes)
        assert len(calls) == passes
        torch.manual_seed(3)
        path = model.reverse_trajectory(30, passes)
        assert path.shape == (len(model.trajectory_steps(passes)), 30, 2)
        assert torch.equal(path[0], samples) and torch.equal(path[-1], base)
    with pytest.raises(ValueError):
        model.sample_with(3, 101)


def test_the_path_is_straight_and_the_arrows_point_at_the_guessed_endpoint() -> None:
    """noised(x, t, ε) is (1 − t/T) x + (t/T) ε in standardised units, x at t = 0 and ε at t = T; for a point mass at c
    the exact field's guess x̂_1 = y_τ + (1 − τ) v*(y_τ, τ) is c itself, from every point and step."""
    model = FlowMatching(_spec((1.0, -2.0), (0.5, 2.0)), hidden=8)
    c = torch.tensor([0.4, -1.2])  # standardised: (1.2, -4.4) in data units
    model.network = Oracle(lambda y, tau: (c - y) / (1 - tau))
    torch.manual_seed(0)
    x, noise = model.standardize.inverse(c.expand(50, 2)), torch.randn(50, 2)
    assert torch.equal(model.noised(x, 0, noise), x)
    torch.testing.assert_close(model.noised(x, 100, noise), model.standardize.inverse(noise))
    torch.testing.assert_close(model.noised(x, 25, noise), model.standardize.inverse(0.75 * c + 0.25 * noise))
    for t in (0, 1, 40, 99, 100):
        noisy = model.noised(x, t, noise)
        torch.testing.assert_close(noisy + model.denoise_direction(noisy, t), x, atol=1e-4, rtol=0)
