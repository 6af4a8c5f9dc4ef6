"""GAN variants: the f-GAN's variational bound meets its divergence at the optimal discriminator, WGAN-GP's gradient
penalty vanishes exactly on unit-gradient critics, and the Jensen–Shannon f-GAN is the GAN up to constants."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec, load_dataset
from dgm_core.models.base import FourierFeatures
from dgm_core.models.energy import EnergyBasedModel
from dgm_core.models.fgan import DIVERGENCES, FGAN
from dgm_core.models.gan import GAN
from dgm_core.models.wgan import WGANGP, gradient_penalty, interpolates

torch.set_num_threads(1)

LINE = DataSpec("line", "points2d", (1,), None, (0.0,), (1.0,))  # 1-D points, standardised as they are
SAMPLES = 400_000


class Gaussian:
    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = mean, std

    def log_prob(self, x: Tensor) -> Tensor:
        return -0.5 * ((x - self.mean) / self.std) ** 2 - math.log(self.std) - 0.5 * math.log(2 * math.pi)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.mean + self.std * torch.randn(n, 1, generator=generator, dtype=torch.float64)


def kl_gaussians(p: Gaussian, q: Gaussian) -> float:
    """KL(p ‖ q) = log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²) / (2σ_q²) − ½."""
    return math.log(q.std / p.std) + (p.std**2 + (p.mean - q.mean) ** 2) / (2 * q.std**2) - 0.5


def js_by_quadrature(p: Gaussian, q: Gaussian) -> float:
    """JS(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, by the trapezoid rule on a fine grid."""
    x = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    log_p, log_q = p.log_prob(x), q.log_prob(x)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    integrand = 0.5 * log_p.exp() * (log_p - log_m) + 0.5 * log_q.exp() * (log_q - log_m)
    return torch.trapezoid(integrand, x).item()


class OptimalDiscriminator(nn.Module):
    """V*(x) = g_f⁻¹(f′(p(x)/q(x))): log p/q for every divergence here but KL, where it is 1 + log p/q."""

    def __init__(self, p: Gaussian, q: Gaussian, offset: float) -> None:
        super().__init__()
        self.p, self.q, self.offset = p, q, offset

    def forward(self, x: Tensor) -> Tensor:
        return self.p.log_prob(x) - self.q.log_prob(x) + self.offset


def _bound(divergence: str, p: Gaussian, q: Gaussian, shift: float = 0.0) -> float:
    """The model's F(V) on samples of p (data) and q (generator), with V = V* + shift."""
    model = FGAN(LINE, divergence=divergence).double()
    model.discriminator = OptimalDiscriminator(p, q, offset=(1.0 if divergence == "KL" else 0.0) + shift)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return model.variational_bound(p.sample(SAMPLES, generator), q.sample(SAMPLES, generator)).item()


# --- f-GAN ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("divergence", list(DIVERGENCES))
def test_f_gan_bound_of_identical_distributions(divergence):
    """p = q: the optimal V is a constant and F = D_f(P‖P) = 0, except the GAN row's 2·JS − log 4 = −log 4."""
    p = Gaussian(0.0, 1.0)
    expected = -math.log(4) if divergence == "GAN" else 0.0
    assert _bound(divergence, p, p) == pytest.approx(expected, abs=1e-9)


def test_f_gan_js_bound_at_the_optimal_discriminator_is_twice_the_js_divergence():
    p, q = Gaussian(0.0, 1.0), Gaussian(1.0, 1.5)
    js = js_by_quadrature(p, q)
    assert 0.05 < js < math.log(2)
    assert _bound("JS", p, q) == pytest.approx(2 * js, abs=0.01)
    assert _bound("GAN", p, q) == pytest.approx(2 * js - math.log(4), abs=0.01)


def test_f_gan_kl_bounds_at_the_optimal_discriminator_are_the_closed_forms():
    """KL(P‖Q) with q wider than p, reverse KL(Q‖P) with p wider than q (so the likelihood ratios stay bounded)."""
    narrow, wide = Gaussian(0.0, 1.0), Gaussian(1.0, 1.5)
    assert _bound("KL", narrow, wide) == pytest.approx(kl_gaussians(narrow, wide), abs=0.01)
    assert _bound("reverse KL", wide, narrow) == pytest.approx(kl_gaussians(narrow, wide), abs=0.01)


@pytest.mark.parametrize("divergence", list(DIVERGENCES))
def test_f_gan_any_other_discriminator_gives_a_lower_bound(divergence):
    p, q = Gaussian(0.0, 1.0), Gaussian(0.5, 1.2)
    best = _bound(divergence, p, q)
    assert _bound(divergence, p, q, shift=0.5) < best - 1e-3 and _bound(divergence, p, q, shift=-0.5) < best - 1e-3


@pytest.mark.parametrize("divergence", list(DIVERGENCES))
def test_f_gan_stable_form_is_the_conjugate_at_the_activation(divergence):
    f = DIVERGENCES[divergence]
    v = torch.linspace(-5, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(f.conjugate_of_activation(v), f.conjugate(f.activation(v)))


def test_f_gan_rejects_unknown_divergences():
    with pytest.raises(ValueError, match="Unknown divergence"):
        FGAN(LINE, divergence="Hellinger")


def test_js_f_gan_trains_exactly_like_the_gan():
    """Its losses are the GAN's minus the constants 2 log 2 (D) and log 2 (G): same gradients, same weights."""
    data = load_dataset("moons")
    torch.manual_seed(0)
    gan = GAN(data.spec, hidden=16)
    torch.manual_seed(0)
    fgan = FGAN(data.spec, hidden=16, divergence="JS")
    x = data.train[:64]
    torch.manual_seed(1)
    gan_terms = gan.train_step(x, gan.configure_optimizers(1e-2))
    torch.manual_seed(1)
    fgan_terms = fgan.train_step(x, fgan.configure_optimizers(1e-2))
    assert fgan_terms["loss"].item() == pytest.approx(gan_terms["loss"].item() - 2 * math.log(2), abs=1e-5)
    assert fgan_terms["generator"].item() == pytest.approx(gan_terms["generator"].item() - math.log(2), abs=1e-5)
    for a, b in zip(gan.parameters(), fgan.parameters()):
        torch.testing.assert_close(a, b)


# --- WGAN-GP ----------------------------------------------------------------------------------------------------------


def _linear_critic_penalty(weight_norm: float) -> float:
    torch.manual_seed(0)
    critic = nn.Linear(5, 1)
    with torch.no_grad():
        critic.weight.mul_(weight_norm / critic.weight.norm())
    points = interpolates(torch.randn(64, 5), torch.randn(64, 5)).requires_grad_(True)
    return gradient_penalty(critic(points), points).item()


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic_and_positive_otherwise():
    """D(x) = wᵀx + b has gradient w everywhere: penalty (‖w‖ − 1)²."""
    assert _linear_critic_penalty(1.0) == pytest.approx(0.0, abs=1e-10)
    assert _linear_critic_penalty(2.0) == pytest.approx(1.0, rel=1e-5)
    assert _linear_critic_penalty(0.5) == pytest.approx(0.25, rel=1e-5)


def test_gradient_penalty_is_differentiable_in_the_critics_weights():
    """The penalty trains the critic: its gradient with respect to w points toward ‖w‖ = 1."""
    critic = nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))
    points = torch.randn(8, 3, requires_grad=True)
    gradient_penalty(critic(points), points).backward()
    assert critic.weight.grad[0, 0] > 0 and critic.weight.grad[0, 1:].abs().max() < 1e-6


def test_wgan_critic_loss_is_the_negative_wasserstein_estimate_plus_ten_times_the_penalty():
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = WGANGP(data.spec, hidden=16)
    terms = model.loss(data.train[:64])
    assert set(terms) == {"loss", "wasserstein", "penalty", "generator"}
    assert terms["penalty"] > 0 and model.penalty == 10.0
    torch.testing.assert_close(terms["loss"], -terms["wasserstein"] + 10.0 * terms["penalty"])


def test_wgan_takes_five_critic_steps_per_generator_step():
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = WGANGP(data.spec, hidden=16)
    critic_optimizer, generator_optimizer = model.configure_optimizers(1e-3)
    model.train_step(data.train[:100], [critic_optimizer, generator_optimizer])
    assert critic_optimizer.state[model.discriminator[0].weight]["step"].item() == 5
    assert generator_optimizer.state[model.generator[0].weight]["step"].item() == 1


# --- how it works: the discriminator's field and the generator's pull (GAN Lab's picture) -----------------------------


@pytest.mark.parametrize("model_class", [GAN, WGANGP, FGAN], ids=["GAN", "WGAN-GP", "f-GAN"])
def test_the_field_is_the_discriminators_judgement_of_those_points(model_class) -> None:
    spec = load_dataset("8gaussians").spec
    torch.manual_seed(0)
    model = model_class(spec, hidden=16)
    points = torch.randn(50, 2) * 3
    raw = model.discriminator(model.standardize(points)[0]).squeeze(-1).detach()
    expected = torch.sigmoid(raw) if model_class is GAN else raw if model_class is WGANGP else model.f.activation(raw)
    torch.testing.assert_close(model.field(points), expected)
    assert model.capabilities.field and model.field_name


@pytest.mark.parametrize("model_class", [GAN, WGANGP], ids=["GAN", "WGAN-GP"])
def test_a_small_step_along_each_arrow_lowers_that_samples_generator_loss(model_class) -> None:
    spec = load_dataset("8gaussians").spec
    torch.manual_seed(1)
    model = model_class(spec, hidden=16)
    samples, directions = model.field_arrows(20)
    assert samples.shape == directions.shape == (20, 2)

    def loss_of_each(x: Tensor) -> Tensor:
        return torch.stack([model._generator_loss(model._real(point[None])) for point in x]).detach()

    step = 1e-3 / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    assert (loss_of_each(samples + step * directions) < loss_of_each(samples)).all()


def test_only_unconditional_gans_on_points_offer_the_field() -> None:
    from dgm_core.models.conditional import ConditionalGAN

    assert not GAN(load_dataset("digits").spec, hidden=8).capabilities.field
    assert not ConditionalGAN(load_dataset("digits").spec, hidden=8).capabilities.field


# --- one player at a time (GAN Lab's step D / step G) ---------------------------------------------------------------


@pytest.mark.parametrize("model_class", [GAN, WGANGP, FGAN], ids=["GAN", "WGAN-GP", "f-GAN"])
def test_stepping_one_player_changes_only_that_players_weights(model_class) -> None:
    data = load_dataset("8gaussians")
    torch.manual_seed(0)
    model = model_class(data.spec, hidden=16)
    optimizers = model.configure_optimizers(1e-2)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.step_player(data.train[:64], optimizers, "discriminator")
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"discriminator"}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.step_player(data.train[:64], optimizers, "generator")
    changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"generator"}
    with pytest.raises(ValueError, match="discriminator and the generator"):
        model.step_player(data.train[:64], optimizers, "referee")


def test_an_arena_steps_a_copy_and_a_discriminator_stepped_alone_tells_the_fixed_fakes_from_data() -> None:
    from dgm_core.inspect.arena import Arena

    data = load_dataset("8gaussians")
    torch.manual_seed(0)
    model = GAN(data.spec, hidden=32)
    original = [p.detach().clone() for p in model.parameters()]
    arena = Arena(model, data.train, lr=2e-3, batch_size=128)
    arena.step("discriminator", times=150)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), original))  # the run's model is untouched
    assert arena.steps == {"discriminator": 150, "generator": 0}
    real = arena.model.field(data.test[:1000]).mean()
    fake = arena.model.field(arena.model.sample(1000)).mean()
    assert real > 0.6 > 0.4 > fake  # the generator never moved: a discriminator alone wins
    with pytest.raises(ValueError, match="no players"):
        Arena(EnergyBasedModel(data.spec, hidden=8), data.train, lr=1e-3, batch_size=8)


# --- the registry's GAN on points: an averaged generator reading Fourier features of z ------------------------------


def test_samples_come_from_the_running_average_of_the_generators_weights_and_an_arena_from_the_live_one() -> None:
    from dgm_core.inspect.arena import Arena

    data = load_dataset("moons")
    torch.manual_seed(0)
    model = GAN(data.spec, hidden=16, latent_dim=8, frequencies=2, average=0.9)
    optimizers = model.configure_optimizers(1e-2)
    averaged = [p.detach().clone() for p in model.generator_average.parameters()]
    model.step_player(data.train[:64], optimizers, "discriminator")
    assert all(torch.equal(p, q) for p, q in zip(model.generator_average.parameters(), averaged))
    model.step_player(data.train[:64], optimizers, "generator")
    for before, after, live in zip(averaged, model.generator_average.parameters(), model.generator.parameters()):
        torch.testing.assert_close(after, 0.9 * before + 0.1 * live)  # θ̄ ← ρ θ̄ + (1 − ρ) θ
        assert not torch.equal(after, live)

    z = torch.randn(10, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.manual_seed(3)
        torch.testing.assert_close(model.sample(10), model.standardize.inverse(model.generator_average(z)))
        torch.manual_seed(3)
        arena = Arena(model, data.train, lr=1e-2, batch_size=64)
        torch.manual_seed(3)  # the arena steps the players themselves: its samples are the live generator's
        torch.testing.assert_close(arena.model.sample(10), model.standardize.inverse(model.generator(z)))
    assert isinstance(model.generator[0], FourierFeatures) and model.generator[1].in_features == 8 * (1 + 2 * 2)
    assert "running average" in model.sampling_cost and GAN(data.spec, hidden=8).sampling_cost == "one pass"
