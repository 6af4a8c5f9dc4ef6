"""Every normalizing flow in the registry: an invertible map with an exact log-determinant, so a normalised density.

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|

Flows registered with family "flow" are covered here without editing this file. Their layers start as the identity
(zero last layers), so the weights are perturbed first: the tests then exercise real scales, shifts, mixings and bends.
Layer-by-layer promises (masks, splines, LU, actnorm, autoregressive order) are in test_flow_layers.py.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

from dgm_core.data import DataSpec, load_dataset
from dgm_core.learn.evaluation import log_density_grid
from dgm_core.models.flows import FlowModel, NeuralSplineFlow, RealNVP
from dgm_core.models.preprocess import DequantizeLogit, Standardize
from dgm_core.models.registry import MODELS, build_model
from tests.core_helpers import all_images, perturb, tiny_spec

torch.set_num_threads(1)

FLOWS = [name for name, info in MODELS.items() if info.family == "flow"]
BOUND = inspect.signature(NeuralSplineFlow).parameters["bound"].default  # the spline's [−B, B], standardised units:
# test points fall on both sides of it
IMAGE_SCALE = 0.05  # weight noise on 64-dim flows: 0.1 per entry of a 64×64 LU gives cond(W) ≈ 300 per Glow step,
# and eight such steps amplify rounding beyond what a float64 round trip can hide


def _flow(name: str, spec: DataSpec, scale: float = 0.1, seed: int = 0, hidden: int = 16) -> FlowModel:
    """A small flow of the registered kind in float64, weights perturbed, in eval mode (actnorm keeps its values)."""
    torch.manual_seed(seed)
    model = MODELS[name].make(spec, hidden=hidden).double().eval()
    perturb(model, scale, seed)
    return model


def _points() -> torch.Tensor:
    """Moons test points, and the same points ×3: standardised, some lie inside [−B, B]² and some far outside."""
    x = load_dataset("moons").test[:6].double()
    return torch.cat([x, 3 * x])


def _jacobian_log_det(f, x: torch.Tensor) -> torch.Tensor:
    """log |det ∂f/∂x| for each item of x, by autograd's full Jacobian (one item at a time)."""
    return torch.stack([torch.linalg.slogdet(torch.autograd.functional.jacobian(f, xi))[1] for xi in x])


def test_the_registry_lists_the_flow_zoo():
    assert {"NICE", "RealNVP", "Glow", "MAF", "NSF"} <= set(FLOWS)
    assert all(isinstance(MODELS[name].make(load_dataset("moons").spec), FlowModel) for name in FLOWS)


def test_test_points_cover_the_spline_region_and_the_tails():
    y = Standardize(load_dataset("moons").spec).double()(_points())[0]
    assert (y.abs() < BOUND).all(1).any() and (y.abs() > BOUND).any(1).any()


@pytest.mark.parametrize("name", FLOWS)
def test_perturbed_flow_is_not_the_identity(name):
    model = _flow(name, load_dataset("moons").spec)
    y = model.preprocess(_points())[0]
    assert (model.forward_flow(y)[0] - y).abs().max() > 0.1


@pytest.mark.parametrize("name", FLOWS)
def test_points_round_trip_x_to_z_to_x(name):
    model = _flow(name, load_dataset("moons").spec)
    x = _points()
    with torch.no_grad():
        torch.testing.assert_close(model.decode(model.encode(x)), x, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", FLOWS)
def test_images_round_trip_in_latent_space(name):
    """z → f⁻¹(z) → f(f⁻¹(z)) = z on the 64-dim logit space; and decode ∘ encode recovers the integer levels."""
    model = _flow(name, load_dataset("digits").spec, IMAGE_SCALE)
    torch.manual_seed(0)
    z = torch.randn(16, 64, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_flow(model.inverse_flow(z))[0], z, rtol=0, atol=1e-8)
        x = load_dataset("digits").test[:16].double()
        assert torch.equal(model.decode(model.encode(x)), x)


@pytest.mark.parametrize("name", FLOWS)
def test_points_log_det_equals_autograd_jacobian(name):
    """The layers' log-dets plus the standardisation's −Σ log σ equal log |det ∂z/∂x| of the whole map."""
    model = _flow(name, load_dataset("moons").spec)
    x = _points()
    y, log_det_pre = model.preprocess(x)
    _, log_det_flow = model.forward_flow(y)
    expected = _jacobian_log_det(lambda xi: model.encode(xi[None])[0], x)
    torch.testing.assert_close(log_det_pre + log_det_flow, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", FLOWS)
def test_image_log_det_equals_autograd_jacobian(name):
    """On 64-dim logits (some beyond ±B), the layers' log-det equals log |det| of the 64×64 Jacobian, item by item."""
    model = _flow(name, load_dataset("digits").spec, IMAGE_SCALE)
    torch.manual_seed(1)
    y = 2.5 * torch.randn(3, 64, dtype=torch.float64)
    assert (y.abs() > BOUND).any() and (y.abs() < BOUND).any()
    _, log_det = model.forward_flow(y)
    expected = _jacobian_log_det(lambda yi: model.forward_flow(yi[None])[0][0], y)
    torch.testing.assert_close(log_det, expected, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("name", FLOWS)
def test_density_integrates_to_one_over_the_plane(name):
    """∫ p(x) dx ≈ Σ_grid p · Δx Δy over [−10, 10]² (tails beyond are negligible) for a perturbed flow."""
    model = _flow(name, load_dataset("moons").spec).float()
    n, half = 300, 10.0
    log_p = log_density_grid(model, (-half, half, -half, half), n=n)
    cell = (2 * half / (n - 1)) ** 2
    assert log_p.exp().sum().item() * cell == pytest.approx(1.0, abs=0.01)
    assert log_p.max() - log_p.min() > 5  # the density is far from flat


@pytest.mark.parametrize("name", FLOWS)
def test_dequantization_bound_sums_to_at_most_one(name):
    """E_u[log p(x + u)] ≤ log P(x) (Jensen), so Σ_x exp(bound(x)) ≤ 1 over all 81 images of a 3-level 2×2 space."""
    spec = tiny_spec(levels=3)
    model = _flow(name, spec, scale=0.05)
    x = all_images(spec).double()
    with torch.no_grad():
        bound = model.log_prob(x.repeat(400, 1, 1, 1)).reshape(400, len(x)).mean(0)
    total = bound.exp().sum().item()
    assert 0.3 < total < 1.0


@pytest.mark.parametrize("name", FLOWS)
def test_sampling_cost_counts_the_network_passes(name):
    """Sampling in "one pass" runs each network as often as the density; in "D sequential passes", D times as often."""
    model = _flow(name, load_dataset("digits").spec)
    calls = {"n": 0}
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_hook(lambda *_: calls.update(n=calls["n"] + 1))
    with torch.no_grad():
        model.log_prob(load_dataset("digits").test[:4].double())
        density_passes, calls["n"] = calls["n"], 0
        model.sample(4)
    factor = {"one pass": 1, "D sequential passes": model.spec.dim}[model.sampling_cost]
    assert density_passes > 0 and calls["n"] == factor * density_passes


def test_nice_changes_volume_only_through_its_scaling():
    """Additive couplings have |det| = 1: NICE's log-det is the same constant Σ s for every input."""
    model = _flow("NICE", load_dataset("moons").spec)
    y = model.preprocess(_points())[0]
    _, log_det = model.forward_flow(y)
    torch.testing.assert_close(log_det, model.layers[-1].log_scale.sum().expand(len(y)))
    assert abs(log_det[0].item()) > 0.01


def _last_layer_gradient(name: str, dataset: str, mirrored: bool) -> float:
    """|∂loss/∂W| over the couplings' last layers for a fresh model (the identity map) on 5,000 training points, or
    on them and their reflections through the data's mean in each coordinate (exactly symmetric data)."""
    data = load_dataset(dataset)
    x, mean = data.train[:5000], torch.tensor(data.spec.mean)
    if mirrored:
        x = torch.cat([mean + (x - mean) * torch.tensor(flip) for flip in ([1, 1], [-1, 1], [1, -1], [-1, -1])])
    model = build_model(name, data.spec)
    model.loss(x)["loss"].backward()
    grads = [layer.net[-1].weight.grad.flatten() for layer in model.layers if hasattr(layer, "net")]
    return torch.cat(grads).norm().item()


@pytest.mark.parametrize("dataset", ["8gaussians", "rings", "circles"])
def test_nice_starts_at_a_stationary_point_on_mirror_symmetric_data(dataset):
    """At the identity, a shift's gradient is E[z_free | x_fixed] = 0 when the data are symmetric under
    x_free → −x_free, but a log-scale's is E[z_free² − 1 | x_fixed] ≠ 0: NICE may stall where RealNVP learns."""
    assert _last_layer_gradient("NICE", dataset, True) < _last_layer_gradient("RealNVP", dataset, True) / 20
    assert _last_layer_gradient("NICE", "moons", False) > 0.1  # not symmetric: the shifts have somewhere to go


def test_realnvp_log_det_varies_with_x():
    """Affine couplings change volume locally, unlike NICE: the log-det is a function of x."""
    torch.manual_seed(0)
    model = RealNVP(load_dataset("moons").spec, hidden=16, couplings=4).double()
    perturb(model, 0.1)
    _, log_det = model.forward_flow(model.preprocess(_points())[0])
    assert log_det.max() - log_det.min() > 0.01


@pytest.mark.parametrize("dataset", ["moons", "digits"])
def test_nsf_lets_every_coordinate_reach_beyond_the_first_box(dataset):
    """A spline maps [−B, B] onto itself, so the latent could never leave the first layers' box [−B, B]^D unless the
    last spline to bend each coordinate spans a wider range."""
    model = build_model("NSF", load_dataset(dataset).spec)
    last_bound = {}
    for layer in model.layers:
        last_bound.update(dict.fromkeys(layer.free.tolist(), layer.bound))
    assert len(last_bound) == model.spec.dim
    assert min(last_bound.values()) > model.layers[0].bound


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


# --- how it works: the layers one at a time ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["NICE", "RealNVP", "MAF", "Glow", "NSF"])
def test_a_flows_layer_trajectory_starts_at_its_base_draw_and_ends_at_its_sample(name):
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = build_model(name, data.spec, hidden=16)
    perturb(model, 0.05)
    z = torch.randn(64, 2)
    stages = model.layer_trajectory(z)
    assert len(stages) == len(model.layers) + 1 and model.capabilities.layer_trajectory
    torch.testing.assert_close(stages[0], model.preprocess.inverse(z))
    torch.testing.assert_close(stages[-1], model.decode(z).detach(), atol=1e-4, rtol=1e-4)


def test_the_layers_log_dets_add_up_to_the_flows():
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = build_model("RealNVP", data.spec, hidden=16)
    perturb(model, 0.1)
    x = data.test[:256]
    with torch.no_grad():
        _, total = model.forward_flow(model.preprocess(x)[0])
    assert sum(model.layer_log_dets(x)) == pytest.approx(float(total.mean()), abs=1e-4)
