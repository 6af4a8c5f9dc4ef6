"""The continuous-time variational diffusion model, by its defining properties.

On images whose pixels are independent with known level probabilities p_i(k), the best denoiser is known in closed
form: the posterior over each pixel's level given its own noisy value, with prior p_i. The model's denoiser is exactly
that when its network outputs log p_i(k) and nothing else, so its bound and its sampler can be checked against the
answer: the continuous-time bound of the exact denoiser is tight (up to its two end terms), and ancestral sampling
with it draws each pixel with probabilities p_i.
"""

from __future__ import annotations

import math

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.models.vdm import VDM
from tests.core_helpers import tiny_spec

torch.set_num_threads(1)

SPEC = tiny_spec(levels=5, shape=(1, 2, 2))


def _independent_pixels(seed: int = 0) -> tuple[VDM, torch.Tensor]:
    """A VDM whose network answers log p_i(k) for every input (weights zero, bias the log-probabilities), and the
    probabilities p (D, L), each pixel with its own, drawn from a Dirichlet."""
    torch.manual_seed(seed)
    probabilities = torch.distributions.Dirichlet(torch.ones(SPEC.levels)).sample((SPEC.dim,))
    probabilities = (probabilities + 0.02) / (1 + 0.02 * SPEC.levels)  # every level possible
    model = VDM(SPEC, hidden=8, dropout=0.0).eval()
    with torch.no_grad():
        model.network.net[-1].weight.zero_()
        model.network.net[-1].bias.copy_(probabilities.log().flatten())
    return model, probabilities


def _draw(probabilities: torch.Tensor, n: int) -> torch.Tensor:
    levels = torch.distributions.Categorical(probs=probabilities).sample((n,))  # (n, D)
    return levels.float().reshape(n, *SPEC.shape)


def test_the_untrained_denoiser_is_the_posterior_mean_of_uniformly_random_levels() -> None:
    model = VDM(SPEC, hidden=8).eval()
    z, log_snr = torch.randn(6, SPEC.dim), torch.linspace(-4, 6, 6)
    alpha, sigma = torch.sigmoid(log_snr).sqrt()[:, None, None], torch.sigmoid(-log_snr).sqrt()[:, None, None]
    values = torch.linspace(-1, 1, SPEC.levels)
    log_likelihood = torch.distributions.Normal(alpha * values, sigma).log_prob(z[..., None])  # (6, D, L)
    expected = log_likelihood.softmax(-1) @ values
    assert torch.allclose(model.denoise(z, log_snr), expected, atol=1e-5)


def test_the_bound_with_the_exact_denoiser_is_the_true_log_likelihood() -> None:
    model, probabilities = _independent_pixels()
    model.strata = 64
    x = _draw(probabilities, 400)
    true_log_p = torch.distributions.Categorical(probs=probabilities).log_prob(x.flatten(1).long()).sum(1)
    with torch.no_grad():
        bound = torch.stack([model.log_prob(x) for _ in range(16)]).mean(0)
    gap = (true_log_p - bound).mean().item()
    # tight: the end terms cost < 10⁻⁴ nats; the estimate's standard error here is ≈ 0.018 nats (of 4.5 per item)
    assert abs(gap) < 0.08, gap


def test_a_network_that_ignores_the_other_pixels_cannot_beat_independent_pixels() -> None:
    """The same bound, for data whose pixels are copies of one another: the one-pixel denoiser still pays each pixel's
    entropy in full, while the data's true NLL is one pixel's."""
    model, probabilities = _independent_pixels()
    with torch.no_grad():
        model.network.net[-1].bias.copy_(probabilities[0].log().repeat(SPEC.dim))
    first = torch.distributions.Categorical(probs=probabilities[0]).sample((400,))
    x = first[:, None].repeat(1, SPEC.dim).float().reshape(-1, *SPEC.shape)
    entropy = -(probabilities[0] * probabilities[0].log()).sum().item()
    with torch.no_grad():
        nll = -model.log_prob(x).mean().item()
    assert nll == pytest.approx(SPEC.dim * entropy, abs=0.05 * SPEC.dim)
    assert nll > 2 * entropy


def test_ancestral_sampling_with_the_exact_denoiser_draws_each_pixel_with_its_probabilities() -> None:
    model, probabilities = _independent_pixels()
    samples = model.sample(4000).flatten(1).long()
    frequencies = torch.stack([torch.bincount(samples[:, i], minlength=SPEC.levels) for i in range(SPEC.dim)]) / 4000
    assert samples.min() >= 0 and samples.max() < SPEC.levels
    assert (frequencies - probabilities).abs().max() < 0.04


def test_training_brings_the_bound_of_correlated_pixels_below_independent_pixels() -> None:
    """Pixels that copy one another (the same level everywhere): independent pixels cost D entropies, the data one."""
    torch.manual_seed(3)
    spec = tiny_spec(levels=5, shape=(1, 2, 2))
    first = torch.randint(0, spec.levels, (512,))
    x = first[:, None].repeat(1, spec.dim).float().reshape(-1, *spec.shape)
    model = VDM(spec, hidden=64, dropout=0.0)
    (optimizer,) = model.configure_optimizers(3e-3)
    for _ in range(400):
        model.train_step(x[torch.randint(0, len(x), (128,))], [optimizer])
    model.eval()
    with torch.no_grad():
        nll = -model.log_prob(x).mean().item()
    independent = spec.dim * math.log(spec.levels)
    assert nll < 0.5 * independent, (nll, independent)


def test_vdm_says_what_it_bounds_and_what_sampling_costs() -> None:
    model = VDM(SPEC)
    assert model.capabilities.likelihood == "bound" and "bound" in model.capabilities.likelihood_name
    assert model.sampling_cost == "100 sequential passes"
    terms = model.loss(_draw(torch.full((SPEC.dim, SPEC.levels), 1 / SPEC.levels), 32))
    assert set(terms) == {"loss", "diffusion", "decoder", "prior"}
    parts = sum(terms[name].item() for name in ("diffusion", "decoder", "prior"))
    assert terms["loss"].item() == pytest.approx(parts, rel=1e-5)
    with pytest.raises(ValueError, match="images"):
        VDM(load_dataset("moons").spec)
