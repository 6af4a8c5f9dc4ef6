"""The layers the flows are built from, each checked against the promise that makes it a cheap bijection:
couplings leave their fixed half alone, MAF's shift and scale see only earlier coordinates, the rational-quadratic
spline is monotone with an exact inverse and derivative, the LU matrix's log-det is Σ s, actnorm starts standardised.
"""

from __future__ import annotations

import pytest
import torch

from dgm_core.models.base import FourierFeatures
from dgm_core.models.flows import (
    MAF,
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    InvertibleLinear,
    Knots,
    MaskedAffineAutoregressive,
    RationalQuadraticCoupling,
    Reverse,
    alternating_masks,
    rational_quadratic_spline,
    rational_quadratic_spline_inverse,
)
from tests.core_helpers import perturb, tiny_spec

torch.set_num_threads(1)

# --- couplings --------------------------------------------------------------------------------------------------------


def test_masks_alternate_and_cover_every_coordinate():
    for dim in (2, 5, 64):
        masks = alternating_masks(dim, 4)
        assert torch.equal(masks[0] + masks[1], torch.ones(dim)) and torch.equal(masks[0], masks[2])
    board = alternating_masks(64, 1)[0].reshape(8, 8)
    assert (board[:, 1:] != board[:, :-1]).all() and (board[1:] != board[:-1]).all()  # a checkerboard


@pytest.mark.parametrize("layer", [AffineCoupling, AdditiveCoupling])
def test_coupling_leaves_the_masked_half_unchanged(layer):
    torch.manual_seed(0)
    coupling = layer(torch.tensor([1.0, 0.0, 1.0, 0.0]), hidden=16, layers=2)
    perturb(coupling, 0.5)
    x = torch.randn(32, 4)
    y, _ = coupling(x)
    assert torch.equal(y[:, [0, 2]], x[:, [0, 2]])
    assert (y[:, [1, 3]] - x[:, [1, 3]]).abs().max() > 0.1


def test_additive_coupling_preserves_volume():
    torch.manual_seed(0)
    coupling = AdditiveCoupling(torch.tensor([1.0, 0.0]), hidden=16, layers=2).double()
    perturb(coupling, 0.5)
    x = torch.randn(5, 2, dtype=torch.float64)
    jacobians = torch.stack([torch.autograd.functional.jacobian(lambda v: coupling(v[None])[0][0], xi) for xi in x])
    torch.testing.assert_close(torch.linalg.det(jacobians), torch.ones(5, dtype=torch.float64))
    assert torch.equal(coupling(x)[1], torch.zeros(5, dtype=torch.float64))


def test_fourier_features_are_each_coordinate_then_its_sines_and_cosines_at_octaves():
    x = torch.tensor([[0.5, -1.0]])
    angles = torch.tensor([0.5, 1.0, 2.0, -1.0, -2.0, -4.0])  # x₁ · (1, 2, 4), then x₂ · (1, 2, 4)
    expected = torch.cat([x[0], angles.sin(), angles.cos()])[None]
    torch.testing.assert_close(FourierFeatures(3)(x), expected)


def test_a_spline_coupling_reading_fourier_features_starts_as_the_identity_and_bends_only_its_free_half():
    torch.manual_seed(0)
    mask = torch.tensor([1.0, 0.0])
    coupling = RationalQuadraticCoupling(mask, 16, 2, 8, 3.0, torch.nn.ReLU, frequencies=4).double()
    x = 2 * torch.randn(64, 2, dtype=torch.float64)
    y, log_det = coupling(x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(log_det, torch.zeros(64, dtype=torch.float64))
    perturb(coupling, 0.5)
    y, _ = coupling(x)
    assert torch.equal(y[:, 0], x[:, 0]) and (y[:, 1] - x[:, 1]).abs().max() > 0.1
    torch.testing.assert_close(coupling.inverse(y), x)


# --- MAF --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 5])
def test_maf_output_i_depends_only_on_inputs_up_to_i(dim):
    """∂u_i/∂x_j = 0 for j > i; the diagonal is exp(−α_i) ≠ 0; and μ_i, α_i see exactly the inputs j < i."""
    torch.manual_seed(0)
    layer = MaskedAffineAutoregressive(dim, hidden=16, layers=2).double()
    perturb(layer, 0.3)
    x = torch.randn(8, dim, dtype=torch.float64)
    output = torch.autograd.functional.jacobian(lambda v: layer(v)[0].sum(0), x).abs().sum(1)  # (D_out, D_in)
    params = torch.autograd.functional.jacobian(lambda v: torch.cat(layer.shift_log_scale(v), 1).sum(0), x)
    params = params.abs().sum(1).reshape(2, dim, dim).sum(0)
    before = torch.ones(dim, dim, dtype=torch.bool).tril(-1)  # before[i, j] ⇔ j < i
    assert (output[~before & ~torch.eye(dim, dtype=torch.bool)] == 0).all() and (output.diagonal() > 0).all()
    assert (params[~before] == 0).all() and (params[before] > 0).all()


def test_maf_reverses_the_order_between_transforms():
    """Seen from the coordinates it receives, every second transform conditions on the later ones: output i depends
    only on inputs j ≥ i (an upper-triangular Jacobian), so no coordinate is first in every layer."""
    torch.manual_seed(0)
    model = MAF(tiny_spec(levels=2, shape=(1, 1, 4)), hidden=16, transforms=3).double()
    perturb(model, 0.3)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [MaskedAffineAutoregressive, Reverse] * 2 + [MaskedAffineAutoregressive]
    reverse, second = model.layers[1], model.layers[2]
    x = torch.randn(8, 4, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: reverse.inverse(second(reverse(v)[0])[0]).sum(0), x)
    dependence = jacobian.abs().sum(1)  # (D_out, D_in)
    assert (dependence.tril(-1) == 0).all() and (dependence.triu(1)[0, 1:] > 0).all()


def test_maf_inverse_takes_one_pass_per_coordinate():
    """Sampling is sequential: after pass i of x ← u ⊙ exp(α(x)) + μ(x), coordinates 1..i are exact."""
    torch.manual_seed(0)
    layer = MaskedAffineAutoregressive(5, hidden=16, layers=2).double()
    perturb(layer, 0.3)
    x = torch.randn(8, 5, dtype=torch.float64)
    u, _ = layer(x)
    estimate = torch.zeros_like(u)
    for i in range(5):
        shift, log_scale = layer.shift_log_scale(estimate)
        estimate = u * log_scale.exp() + shift
        torch.testing.assert_close(estimate[:, : i + 1], x[:, : i + 1])
        if i == 0:
            assert (estimate[:, 1:] - x[:, 1:]).abs().max() > 0.1  # one pass is not enough
    torch.testing.assert_close(layer.inverse(u), x)


# --- rational-quadratic splines ---------------------------------------------------------------------------------------

B = 3.0


def _knots(n: int, seed: int = 0, bins: int = 6) -> Knots:
    """One random spline far from the identity, repeated for n inputs."""
    generator = torch.Generator().manual_seed(seed)
    raw = 2 * torch.randn(1, 3 * bins - 1, generator=generator, dtype=torch.float64)
    return Knots.from_raw(raw.expand(n, -1), B)


def _line(n: int) -> torch.Tensor:
    """n points on [−2B, 2B]: through every bin and both tails."""
    return torch.linspace(-2 * B, 2 * B, n, dtype=torch.float64)


def test_zero_parameters_give_the_identity():
    x = _line(101)
    y, log_det = rational_quadratic_spline(x, Knots.from_raw(torch.zeros(101, 3 * 8 - 1, dtype=torch.float64), B), B)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(log_det, torch.zeros_like(x))


def test_spline_is_strictly_increasing_through_the_bins_and_the_tails():
    x = _line(4001)
    y, _ = rational_quadratic_spline(x, _knots(len(x)), B)
    assert (y.diff() > 0).all()
    tails = x.abs() > B
    assert torch.equal(y[tails], x[tails])  # the identity outside [−B, B]
    assert (y[~tails] - x[~tails]).abs().max() > 0.3  # and far from it inside


def test_spline_passes_through_its_knots_with_slope_delta():
    knots = _knots(7, seed=1)  # 6 bins: 7 knots
    x, y, slopes = knots.x[0], knots.y[0], knots.derivative[0]
    values, log_det = rational_quadratic_spline(x, knots, B)
    torch.testing.assert_close(values, y)
    torch.testing.assert_close(log_det, slopes.log())
    assert slopes[0] == slopes[-1] == 1.0  # matching the linear tails


def test_spline_inverse_inverts_inside_and_outside():
    x = _line(1001)
    for seed in range(3):
        knots = _knots(len(x), seed)
        y, _ = rational_quadratic_spline(x, knots, B)
        torch.testing.assert_close(rational_quadratic_spline_inverse(y, knots, B), x, rtol=0, atol=1e-10)


def test_spline_log_derivative_matches_autograd():
    x = _line(2001).requires_grad_()
    y, log_det = rational_quadratic_spline(x, _knots(len(x), seed=2), B)
    (slope,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_det, slope.log())


def test_spline_slope_is_continuous_at_every_knot_including_the_tails():
    """Just left and just right of each knot (±B included) the slopes agree: the map is C¹."""
    knots = _knots(1, seed=3)
    at = knots.x[0]
    for side in (-1e-11, 1e-11):
        x = at + side
        _, log_det = rational_quadratic_spline(x, _knots(len(x), seed=3), B)
        torch.testing.assert_close(log_det, knots.derivative[0].log(), rtol=0, atol=1e-4)


# --- Glow -------------------------------------------------------------------------------------------------------------


def test_lu_linear_log_det_is_that_of_its_matrix_and_it_stays_invertible():
    """log |det W| = Σ s for any parameters, W = P L U, and the triangular solves invert it."""
    torch.manual_seed(0)
    layer = InvertibleLinear(6).double()
    torch.testing.assert_close(layer.weight() @ layer.weight().T, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-6)
    perturb(layer, 0.5)
    weight = layer.weight()
    x = torch.randn(10, 6, dtype=torch.float64)
    y, log_det = layer(x)
    torch.testing.assert_close(y, x @ weight.T)
    torch.testing.assert_close(log_det, torch.linalg.slogdet(weight)[1].expand(10))
    torch.testing.assert_close(layer.inverse(y), x)
    lower, upper = layer.factors()
    assert torch.equal(lower.diagonal(), torch.ones(6, dtype=torch.float64)) and torch.equal(lower, lower.tril())
    assert torch.equal(upper, upper.triu())
    assert sum(p.numel() for p in layer.parameters()) == 6 * 6  # 15 below, 15 above, 6 on the diagonal


def test_actnorm_initialises_from_the_first_training_batch_only():
    torch.manual_seed(0)
    layer = ActNorm(3)
    first = 5 + 3 * torch.randn(256, 3)
    layer.eval()
    assert torch.equal(layer(first)[0], first)  # evaluation never initialises...
    layer.train()
    with torch.no_grad():
        assert torch.equal(layer(first)[0], first)  # ...nor does a forward pass without gradients
    y, log_det = layer(first)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(y.std(0), torch.ones(3))
    torch.testing.assert_close(log_det, -first.std(0).log().sum().expand(256))
    second = torch.randn(256, 3)
    torch.testing.assert_close(layer(second)[0], (second - first.mean(0)) / first.std(0))  # not re-initialised
    torch.testing.assert_close(layer.inverse(layer(second)[0]), second)
