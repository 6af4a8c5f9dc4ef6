"""The discretized logistic: an honest distribution over a pixel's levels, scored directly or as a table."""

from __future__ import annotations

import pytest
import torch

from dgm_core.models.discretized_logistic import level_log_probs


def _parameters(n: int = 64, dim: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    mean = 1.5 * torch.randn(n, dim, generator=generator)  # some beyond [−1, 1]: the outer bins take the tails
    log_scale = torch.randn(n, dim, generator=generator) - 2
    return mean, log_scale


@pytest.mark.parametrize("levels", [2, 3, 17, 256])
def test_the_levels_probabilities_sum_to_one(levels):
    table = level_log_probs(*_parameters(), levels)
    assert table.shape == (64, levels, 5)
    torch.testing.assert_close(table.exp().sum(1), torch.ones(64, 5), atol=1e-5, rtol=0)


@pytest.mark.parametrize("levels", [2, 17])
def test_scoring_the_observed_levels_reads_the_same_numbers_as_the_table(levels):
    mean, log_scale = _parameters()
    x = torch.randint(levels, mean.shape, generator=torch.Generator().manual_seed(1)).float()
    table = level_log_probs(mean, log_scale, levels)
    torch.testing.assert_close(level_log_probs(mean, log_scale, levels, x), table.gather(1, x.long()[:, None])[:, 0])


def test_a_narrow_logistic_puts_its_mass_on_the_level_nearest_its_mean():
    levels = 17
    target = torch.arange(levels, dtype=torch.float32)
    mean = (2 * target / (levels - 1) - 1 + 0.02)[None]  # just off each level's centre, (1, L)
    table = level_log_probs(mean, torch.full_like(mean, -6.0), levels)
    assert torch.equal(table.argmax(1)[0], target.long())
    assert (table.max(1).values.exp() > 0.99).all()


def test_the_gradient_is_finite_where_a_bin_holds_almost_no_mass():
    mean = torch.tensor([[0.99, -0.99, 0.0]], requires_grad=True)
    log_scale = torch.full((1, 3), -7.0, requires_grad=True)
    far = torch.tensor([[0.0, 16.0, 16.0]])  # levels whose bins lie many scales from the means
    level_log_probs(mean, log_scale, 17, far).sum().backward()
    assert torch.isfinite(mean.grad).all() and torch.isfinite(log_scale.grad).all()
