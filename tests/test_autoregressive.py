"""MADE: one masked network gives every conditional of p(x) = Π_d p(x_d | x_<d).

The masks must make the parameters of dimension d a function of x_<d alone (checked by autograd), and the product of
the conditionals must then be a normalised distribution (checked by summing over every image of a tiny space).
"""

from __future__ import annotations

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.evaluation import log_density_grid
from dgm_core.models.autoregressive import MADE, made_masks
from tests.core_helpers import all_images, tiny_spec

torch.set_num_threads(1)


def _made(spec, seed: int = 0, **kwargs) -> MADE:
    torch.manual_seed(seed)
    return MADE(spec, **kwargs)


def _dependency(model: MADE, u: torch.Tensor) -> torch.Tensor:
    """dep[d, j] = Σ |∂ params(x)[:, :, d] / ∂ u_j| over a batch: which inputs each dimension's parameters see."""
    jac = torch.autograd.functional.jacobian(lambda v: model._params(v).sum(0), u)  # (P, D, N, D)
    return jac.abs().sum((0, 2))


@pytest.mark.parametrize(
    "spec, kwargs",
    [
        (load_dataset("moons").spec, {}),
        (tiny_spec(levels=4, shape=(1, 3, 3)), {"hidden": 32}),
        (tiny_spec(levels=4, shape=(1, 3, 3)), {"hidden": 32, "layers": 3}),
    ],
    ids=["points", "image-3x3", "image-3x3-deep"],
)
def test_conditional_d_depends_exactly_on_inputs_before_d(spec, kwargs):
    """∂θ_d/∂x_j = 0 for j ≥ d (no peeking), and ≠ 0 for some items when j < d (the masks don't cut everything)."""
    model = _made(spec, **kwargs)
    dep = _dependency(model, torch.randn(8, spec.dim))
    d = spec.dim
    allowed = torch.ones(d, d).tril(-1).bool()  # allowed[d, j] ⇔ j < d
    assert (dep[~allowed] == 0).all()
    assert (dep[allowed] > 0).all()


def test_masks_respect_degrees():
    """Hidden unit of degree m sees inputs of degree ≤ m; an output of degree d sees hidden units with m < d."""
    masks = made_masks(dim=5, hidden=12, layers=2, outputs_per_dim=3)
    assert [tuple(m.shape) for m in masks] == [(12, 5), (12, 12), (15, 12)]
    reach = masks[0].float()
    for mask in masks[1:]:
        reach = (mask.float() @ reach).clamp(max=1)
    strictly_lower = torch.ones(5, 5).tril(-1)
    assert torch.equal(reach, strictly_lower.repeat(3, 1))  # output p·D + d sees exactly inputs < d


@pytest.mark.parametrize("levels, shape", [(2, (1, 2, 2)), (3, (1, 2, 2)), (5, (1, 1, 3))])
def test_discrete_probabilities_sum_to_one(levels, shape):
    """Σ over all levels**dim images of exp log p(x) = 1: the conditionals form one normalised distribution."""
    spec = tiny_spec(levels, shape)
    model = _made(spec, hidden=16)
    with torch.no_grad():
        p = model.log_prob(all_images(spec)).double().exp()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert p.max() / p.min() > 1.05  # not merely uniform


def test_discrete_samples_follow_the_model_probabilities():
    """Ancestral samples reproduce exp log p(x): total variation over the 27 images of 3 pixels × 3 levels < 0.03."""
    spec = tiny_spec(levels=3, shape=(1, 1, 3))
    model = _made(spec, hidden=16)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)  # sharpen the distribution so a wrong sampler shows
        p = model.log_prob(all_images(spec)).exp()
        torch.manual_seed(1)
        samples = model.sample(40_000)
    index = (samples.flatten(1).long() * torch.tensor([9, 3, 1])).sum(1)  # base-3 code, x_1 first, as all_images
    freq = torch.bincount(index, minlength=27).float() / len(samples)
    assert 0.5 * (freq - p).abs().sum().item() < 0.03
    assert p.max() > 0.1


def test_continuous_density_integrates_to_one_over_the_plane():
    """The mixture-of-Gaussians conditionals, standardised, give ∫ p(x) dx ≈ 1 on a grid over [−10, 10]²."""
    model = _made(load_dataset("moons").spec, hidden=32)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2)
    n, half = 300, 10.0
    log_p = log_density_grid(model, (-half, half, -half, half), n=n)
    assert log_p.exp().sum().item() * (2 * half / (n - 1)) ** 2 == pytest.approx(1.0, abs=0.01)


def test_continuous_samples_match_the_density():
    """Samples of a 2D MADE follow its density: sample mean ≈ ∫ x p(x) dx and mean log p ≈ ∫ p log p (grid sums)."""
    model = _made(load_dataset("moons").spec, hidden=32)
    n, half = 300, 10.0
    xs = torch.linspace(-half, half, n, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2)
        log_p = log_density_grid(model, (-half, half, -half, half), n=n).double()  # rows follow y, columns x
        mass = log_p.exp() * (2 * half / (n - 1)) ** 2
        torch.manual_seed(2)
        samples = model.sample(20_000)
        assert model.log_prob(samples).mean().item() == pytest.approx((mass * log_p).sum().item(), abs=0.05)
    density_mean = [(mass.sum(0) * xs).sum().item(), (mass.sum(1) * xs).sum().item()]
    assert samples.mean(0).tolist() == pytest.approx(density_mean, abs=0.05)
