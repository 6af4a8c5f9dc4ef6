"""The VAE family's bounds: ELBO = IWAE_1 ≤ IWAE_k ≤ IWAE_{k'} ≤ log p(x) for k ≤ k', with any prior (N(0, I), learned
Gaussians or the VampPrior) and either image decoder (categorical or discretized logistic); the mixture priors'
densities, draws and KL."""

from __future__ import annotations

import math

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.models.latent import IWAE, VAE, BetaVAE
from tests.core_helpers import all_images, perturb, tiny_spec

DRAWS = 200_000  # prior draws behind each log p(x): its Monte Carlo error stays well under the 0.01 nats allowed
VARIANTS = {
    "N(0, I) prior, categorical pixels": {},
    "VampPrior, discretized logistic pixels": {"pseudo_inputs": 3, "pixels": "logistic"},
    "learned Gaussians prior, categorical pixels": {"prior_components": 3},
}


def _tiny_vae(variant: str = "N(0, I) prior, categorical pixels") -> tuple[VAE, torch.Tensor, torch.Tensor]:
    """A VAE on the 27 images of 1×3 pixels in three levels, far from its initialisation, with log p(x) by Monte
    Carlo over draws from its prior, log p(x) = log E_{z ~ p(z)} p(x | z)."""
    spec = tiny_spec(levels=3, shape=(1, 1, 3))
    torch.manual_seed(0)
    model = VAE(spec, hidden=16, **VARIANTS[variant])
    perturb(model.decoder, 0.3)
    perturb(model.encoder, 0.2, seed=1)
    x = all_images(spec)
    with torch.no_grad():
        params = model._decoder_params(model.draw_latents(DRAWS, torch.Generator().manual_seed(0)))
        log_px_given_z = model._level_logits(params).log_softmax(1)  # (K, L, D)
        picked = log_px_given_z[:, x.flatten(1).long(), torch.arange(spec.dim)].sum(-1)  # (K, 27)
        log_px = torch.logsumexp(picked, 0) - math.log(DRAWS)
    return model, x, log_px


@torch.no_grad()
def _mean_iwae(model: VAE, x: torch.Tensor, k: int, repeats: int = 400) -> torch.Tensor:
    return model.iwae_bound(x.repeat(repeats, 1, 1, 1), k).reshape(repeats, len(x)).mean(0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_model_sums_to_one_over_every_image(variant):
    _, _, log_px = _tiny_vae(variant)
    assert log_px.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_iwae_with_one_sample_is_the_elbo(variant):
    """IWAE_1 = E_q[log p(x, z) − log q(z|x)] = ELBO: the ELBO's KL term (analytic for N(0, I), one draw for the
    VampPrior) and the bound's agree on average, within four standard errors of the two estimates."""
    model, x, _ = _tiny_vae(variant)
    torch.manual_seed(1)
    repeats = 20_000
    with torch.no_grad():
        elbo = model.log_prob(x.repeat(repeats, 1, 1, 1), n_samples=1).reshape(repeats, len(x))
        iwae = model.iwae_bound(x.repeat(repeats, 1, 1, 1), 1).reshape(repeats, len(x))
    standard_error = ((elbo.var(0) + iwae.var(0)) / repeats).sqrt()
    assert ((elbo.mean(0) - iwae.mean(0)).abs() < 4 * standard_error).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_iwae_tightens_with_k_toward_log_p_but_never_passes_it(variant):
    model, x, log_px = _tiny_vae(variant)
    torch.manual_seed(2)
    elbo, iwae_5, iwae_200 = (_mean_iwae(model, x, k) for k in (1, 5, 200))
    assert (elbo < iwae_5).all() and (iwae_5 < iwae_200).all()
    assert (iwae_200 <= log_px + 0.01).all()
    assert (log_px - iwae_200).max() < 0.5 * (log_px - elbo).max()  # most of the gap closes


def test_iwae_model_trains_and_scores_on_its_own_bound():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = IWAE(data.spec, hidden=32, k=4)
    assert model.capabilities.likelihood == "bound" and "k=4" in model.capabilities.likelihood_name
    x = data.train[:8]
    torch.manual_seed(3)
    loss = model.loss(x)["loss"]
    torch.manual_seed(3)
    assert loss.item() == pytest.approx(-model.log_prob(x).mean().item() / data.spec.dim, rel=1e-6)


# --- mixture priors: learned Gaussians, the VampPrior ----------------------------------------------------------------

MIXTURES = {"learned Gaussians": {"prior_components": 4}, "VampPrior": {"pseudo_inputs": 4}}


def _mixture_prior_on_a_plane(prior: str) -> VAE:
    """A VAE with a 2-dimensional latent and a prior mixing 4 Gaussians, moved off their start."""
    torch.manual_seed(0)
    model = VAE(tiny_spec(levels=3), hidden=16, latent_dim=2, **MIXTURES[prior])
    perturb(model.encoder, 0.5, seed=2)
    if model.prior_log_vars is not None:
        with torch.no_grad():
            model.prior_log_vars.uniform_(-1.5, 0.5)
    return model


@pytest.mark.parametrize("prior", MIXTURES)
@torch.no_grad()
def test_a_mixture_prior_is_a_density_and_its_draws_follow_it(prior: str):
    """∫ p(z) dz = 1 on a grid over the plane, and the share of 100,000 draws in each quadrant matches the mass the
    density gives that quadrant (a prior drawn from N(0, I) instead misses by far more than the tolerance)."""
    model = _mixture_prior_on_a_plane(prior)
    side = torch.linspace(-8, 8, 801)
    cell = float(side[1] - side[0]) ** 2
    grid = torch.cartesian_prod(side, side)
    density = model.prior_log_prob(grid).exp()
    assert density.sum().item() * cell == pytest.approx(1.0, abs=1e-3)
    draws = model.draw_latents(100_000, torch.Generator().manual_seed(1))
    for signs in [(1, 1), (1, -1), (-1, 1), (-1, -1)]:
        in_grid = ((grid * torch.tensor(signs)) > 0).all(1)
        in_draws = ((draws * torch.tensor(signs)) > 0).all(1)
        assert in_draws.float().mean().item() == pytest.approx(density[in_grid].sum().item() * cell, abs=0.01)


@pytest.mark.parametrize("prior", MIXTURES)
def test_a_mixture_prior_learns_with_the_networks(prior: str):
    model = _mixture_prior_on_a_plane(prior)
    x = all_images(model.spec)
    before = [t.detach().clone() for t in model.prior_components()]
    optimizers = model.configure_optimizers(1e-2)
    model.train_step(x, optimizers)
    assert all(not torch.equal(a, b) for a, b in zip(model.prior_components(), before))
    learned = "pseudo_inputs" if model.pseudo_inputs is not None else "prior_means"
    assert learned in model.state_dict()  # saved and restored with the weights


@pytest.mark.parametrize("prior", ["N(0, I)", *MIXTURES])
def test_each_items_kl_to_the_prior_matches_a_monte_carlo_estimate(prior: str):
    """``posterior_kl``: closed form for N(0, I), Monte Carlo over seeded draws for a mixture; here both against
    100,000 draws through torch.distributions, to 2 % (a KL against N(0, I) instead of the mixture misses by far
    more)."""
    plain = prior == "N(0, I)"
    model = VAE(tiny_spec(levels=3), hidden=16, latent_dim=2) if plain else _mixture_prior_on_a_plane(prior)
    x = all_images(model.spec)[:8]
    with torch.no_grad():
        mean, std = model.posterior(x)
        q = torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)
        z = q.sample((100_000,))
        expected = (q.log_prob(z) - model.prior_log_prob(z)).mean(0)
        torch.testing.assert_close(model.posterior_kl(x, draws=100_000), expected, rtol=0.02, atol=0.01)


# --- β-VAE ------------------------------------------------------------------------------------------------------------


def test_beta_vae_with_beta_one_and_no_warm_up_has_exactly_the_vae_loss():
    data = load_dataset("digits")
    torch.manual_seed(0)
    vae = VAE(data.spec, hidden=32)
    torch.manual_seed(0)
    beta_vae = BetaVAE(data.spec, hidden=32, beta=1.0, warmup_steps=0)
    x = data.train[:16]
    torch.manual_seed(3)
    expected = vae.loss(x)
    torch.manual_seed(3)
    terms = beta_vae.loss(x)
    assert terms.pop("beta").item() == 1.0
    assert terms.keys() == expected.keys() and all(torch.equal(terms[k], expected[k]) for k in terms)


def test_beta_vae_loss_weighs_the_kl_by_the_current_beta():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = BetaVAE(data.spec, hidden=32, beta=4.0, warmup_steps=0)
    terms = model.loss(data.train[:16])
    torch.testing.assert_close(terms["loss"], terms["recon"] + 4.0 * terms["kl"])


def test_beta_vae_warm_up_ramps_beta_linearly_from_zero_counting_its_own_training_steps():
    data = load_dataset("moons")
    model = BetaVAE(data.spec, hidden=16, beta=4.0, warmup_steps=4)
    optimizers = model.configure_optimizers(1e-3)
    betas = []
    for _ in range(6):
        betas.append(model.current_beta().item())
        terms = model.train_step(data.train[:32], optimizers)
        assert terms["beta"].item() == betas[-1]
    assert betas == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    assert model.state_dict()["steps_taken"].item() == 6  # saved and restored with the weights


def test_beta_vae_is_scored_on_the_honest_elbo_whatever_beta():
    data = load_dataset("digits")
    torch.manual_seed(0)
    vae = VAE(data.spec, hidden=32)
    torch.manual_seed(0)
    beta_vae = BetaVAE(data.spec, hidden=32, beta=8.0)
    assert beta_vae.capabilities.likelihood == "bound" and "β = 1" in beta_vae.capabilities.likelihood_name
    x = data.test[:16]
    torch.manual_seed(5)
    expected = vae.log_prob(x)
    torch.manual_seed(5)
    torch.testing.assert_close(beta_vae.log_prob(x), expected)


# --- free bits --------------------------------------------------------------------------------------------------------


def _loss_and_encoder_gradient(model: VAE, x: torch.Tensor, part: str = "loss") -> tuple[torch.Tensor, list]:
    model.zero_grad()
    torch.manual_seed(3)  # the same ε for every call
    value = model.loss(x)[part]
    value.backward()
    return value.detach(), [p.grad.clone() for p in model.encoder.parameters()]


def test_free_bits_count_each_latent_dimension_as_at_least_lambda_nats_and_never_press_it_below():
    data = load_dataset("moons")
    x = data.train[:64]
    torch.manual_seed(0)
    model = VAE(data.spec, hidden=16, free_nats=1e6)  # every dimension far under λ: the KL term is a constant
    loss, gradient = _loss_and_encoder_gradient(model, x)
    reconstruction, reconstruction_gradient = _loss_and_encoder_gradient(model, x, "recon")
    torch.testing.assert_close(loss, reconstruction + 1e6 * model.latent_dim / data.spec.dim)
    assert all(torch.allclose(a, b) for a, b in zip(gradient, reconstruction_gradient))  # no pull to the prior
    model.free_nats = 0.0  # λ = 0: the plain −ELBO / D, whose KL does pull
    loss, gradient = _loss_and_encoder_gradient(model, x)
    terms = model.loss(x)
    assert not all(torch.allclose(a, b) for a, b in zip(gradient, reconstruction_gradient))
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])


def test_free_bits_under_a_mixture_prior_hold_the_whole_kl_at_lambda_times_the_latent_dimensions():
    data = load_dataset("moons")
    x = data.train[:64]
    torch.manual_seed(0)
    model = VAE(data.spec, hidden=16, prior_components=4, free_nats=1e6)
    loss, gradient = _loss_and_encoder_gradient(model, x)
    reconstruction, reconstruction_gradient = _loss_and_encoder_gradient(model, x, "recon")
    torch.testing.assert_close(loss, reconstruction + 1e6 * model.latent_dim / data.spec.dim)
    assert all(torch.allclose(a, b) for a, b in zip(gradient, reconstruction_gradient))  # no pull to the prior
    model.free_nats = 0.0
    terms = model.loss(x)
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])


@pytest.mark.slow
def test_the_registrys_vae_uses_both_latent_dimensions_on_moons():
    """Without free bits one of the two dimensions collapses onto the prior (its posterior σ → 1 for every point) and
    the decoder's own noise blurs the moons."""
    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    run = Run(RunSpec.defaults("VAE", "moons", steps=COLLAPSE_STEPS), eval_every_s=None, sample_every_s=None)
    run.start()
    while run.active:
        run.advance(10.0)
    with run.inspecting(seed=0) as model:
        _, sigma = model.posterior(run.data.test[:1000])
    assert (sigma.median(0).values < 0.8).all(), sigma.median(0).values


COLLAPSE_STEPS = 700  # without free bits one dimension of the moons VAE has collapsed by then (σ 0.23 and 0.99)


@pytest.mark.slow
def test_the_registrys_vae_draws_the_eight_gaussians_without_bridges_between_them():
    """With N(0, I) the prior's centre decoded between the modes: after these 2,000 steps 14.5 % of the draws fell
    off them (beyond 3σ of every centre; the data: 1.1 %). The learned mixture gives each mode its own Gaussians:
    4.8 % (3.8 % after 3,000 steps, 1.9 % after 5,000), each mode drawn about as often as the data's."""
    from dgm_core.inspect.modes import mode_coverage
    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    run = Run(RunSpec.defaults("VAE", "8gaussians", steps=2000), eval_every_s=None, sample_every_s=None)
    run.start()
    while run.active:
        run.advance(10.0)
    shares = mode_coverage(run.draw(4000, seed=0), "8gaussians").shares
    assert 1 - sum(shares) < 0.07 and min(shares) > 0.08 and max(shares) < 0.17, shares
