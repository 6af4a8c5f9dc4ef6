"""RealNVP: an invertible map whose log-determinant is exact, so its density is normalised.

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|

Each coupling starts as the identity (zero last layer), so the weights are perturbed first: the tests then exercise
real scales and shifts.
"""

from __future__ import annotations

import math

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.evaluation import log_density_grid
from dgm_core.models.flows import AffineCoupling, RealNVP, alternating_masks
from dgm_core.models.preprocess import DequantizeLogit, Standardize
from tests.core_helpers import all_images, perturb, tiny_spec

torch.set_num_threads(1)


def _flow(dataset: str, scale: float = 0.05, seed: int = 0, **kwargs) -> RealNVP:
    torch.manual_seed(seed)
    model = RealNVP(load_dataset(dataset).spec, **kwargs).double()
    perturb(model, scale, seed)
    return model


def _jacobian_log_det(f, x: torch.Tensor) -> torch.Tensor:
    """log |det ∂f/∂x| for each item of x, by autograd's full Jacobian (one item at a time)."""
    return torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(f, xi))[1] for xi in x])


def test_perturbed_flow_is_not_the_identity():
    model = _flow("moons")
    y = model.preprocess(load_dataset("moons").test[:64].double())[0]
    assert (model.forward_flow(y)[0] - y).abs().max() > 0.1


def test_masks_alternate_and_cover_every_coordinate():
    for dim in (2, 5, 64):
        masks = alternating_masks(dim, 4)
        assert torch.equal(masks[0] + masks[1], torch.ones(dim)) and torch.equal(masks[0], masks[2])
    board = alternating_masks(64, 1)[0].reshape(8, 8)
    assert (board[:, 1:] != board[:, :-1]).all() and (board[1:] != board[:-1]).all()  # a checkerboard


def test_coupling_leaves_the_masked_half_unchanged():
    torch.manual_seed(0)
    coupling = AffineCoupling(torch.tensor([1.0, 0.0, 1.0, 0.0]), hidden=16, layers=2)
    perturb(coupling, 0.5)
    x = torch.randn(32, 4)
    y, _ = coupling(x)
    assert torch.equal(y[:, [0, 2]], x[:, [0, 2]])
    assert (y[:, [1, 3]] - x[:, [1, 3]]).abs().max() > 0.1


def test_points_round_trip_x_to_z_to_x():
    model = _flow("moons")
    x = load_dataset("moons").test[:256].double()
    torch.testing.assert_close(model.decode(model.encode(x)), x, rtol=0, atol=1e-9)


def test_images_round_trip_in_latent_space():
    """z → f⁻¹(z) → f(f⁻¹(z)) = z on the 64-dim logit space; and decode ∘ encode recovers the integer levels."""
    model = _flow("digits", hidden=32)
    z = torch.randn(16, 64, dtype=torch.float64)
    torch.testing.assert_close(model.forward_flow(model.inverse_flow(z))[0], z, rtol=0, atol=1e-8)
    torch.manual_seed(0)
    x = load_dataset("digits").test[:16].double()
    assert torch.equal(model.decode(model.encode(x)), x)


def test_points_log_det_equals_autograd_jacobian():
    """The summed log-scales (plus the standardisation's −Σ log σ) equal log |det ∂z/∂x| of the whole map."""
    model = _flow("moons")
    x = load_dataset("moons").test[:8].double()
    y, log_det_pre = model.preprocess(x)
    _, log_det_flow = model.forward_flow(y)
    expected = _jacobian_log_det(lambda xi: model.encode(xi[None])[0], x)
    torch.testing.assert_close(log_det_pre + log_det_flow, expected, rtol=1e-9, atol=1e-9)
    assert (log_det_flow.max() - log_det_flow.min()) > 0.01  # the log-det varies with x: a real test


def test_image_flow_log_det_equals_autograd_jacobian():
    """On 64-dim digits, the couplings' log-det equals log |det| of the 64×64 Jacobian, item by item."""
    model = _flow("digits", hidden=32, couplings=4)
    y = torch.randn(3, 64, dtype=torch.float64)
    _, log_det = model.forward_flow(y)
    expected = _jacobian_log_det(lambda yi: model.forward_flow(yi[None])[0][0], y)
    torch.testing.assert_close(log_det, expected, rtol=1e-9, atol=1e-8)


def test_dequantize_logit_log_det_equals_autograd_jacobian():
    """y = logit(α + (1−2α)(x + u)/L) with the noise u held fixed: ∂y/∂x is diagonal; its log-det is checked."""
    spec = load_dataset("digits").spec
    pre = DequantizeLogit(spec).double()
    x = load_dataset("digits").test[:3].flatten(1).double()

    def with_fixed_noise(xi):
        torch.manual_seed(7)
        return pre(xi[None])

    log_det = torch.cat([with_fixed_noise(xi)[1] for xi in x])
    expected = _jacobian_log_det(lambda xi: with_fixed_noise(xi)[0][0], x)
    torch.testing.assert_close(log_det, expected, rtol=1e-9, atol=1e-8)


def test_standardize_log_det_is_minus_sum_log_std():
    spec = load_dataset("moons").spec
    y, log_det = Standardize(spec)(load_dataset("moons").test[:4])
    assert log_det.tolist() == pytest.approx([-sum(math.log(s) for s in spec.std)] * 4, abs=1e-6)
    assert y.shape == (4, 2)


def test_density_integrates_to_one_over_the_plane():
    """∫ p(x) dx ≈ Σ_grid p · Δx Δy over [−10, 10]² (tails beyond are negligible) for a perturbed flow."""
    model = _flow("moons").float()
    n, half = 400, 10.0
    log_p = log_density_grid(model, (-half, half, -half, half), n=n)
    cell = (2 * half / (n - 1)) ** 2
    assert log_p.exp().sum().item() * cell == pytest.approx(1.0, abs=0.01)
    assert log_p.max() - log_p.min() > 5  # the density is far from flat


def test_dequantization_bound_sums_to_at_most_one():
    """E_u[log p(x + u)] ≤ log P(x) (Jensen), so Σ_x exp(bound(x)) ≤ 1 over all 81 images of a 3-level 2×2 space."""
    spec = tiny_spec(levels=3)
    torch.manual_seed(0)
    model = RealNVP(spec, hidden=16, couplings=4).double()
    perturb(model, 0.3)
    x = all_images(spec).double()
    with torch.no_grad():
        bound = model.log_prob(x.repeat(400, 1, 1, 1)).reshape(400, len(x)).mean(0)
    total = bound.exp().sum().item()
    assert 0.3 < total < 1.0
