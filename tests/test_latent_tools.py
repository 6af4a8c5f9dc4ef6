"""Latent-space tools: paths between latents, encoders and decoders, traversals, planes, generator inversion, and how
latent dimensions follow known factors."""

from __future__ import annotations

import math

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.inspect.latent_tools import (
    decode_items,
    factor_correlations,
    find_latent,
    grid_2d,
    interpolate,
    path_point,
    plane,
    project_to_plane,
    slerp,
    to_latent,
    traverse,
)
from dgm_core.learn.evaluation import log_density_grid
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.registry import MODELS, build_model
from tests.core_helpers import perturb

torch.set_num_threads(1)

FLOWS = [name for name, info in MODELS.items() if info.family == "flow"]


def _pair(d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g), torch.randn(d, generator=g)


# --- paths ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["linear", "slerp"])
def test_interpolation_starts_and_ends_exactly_at_the_endpoints(path):
    z0, z1 = _pair()
    line = interpolate(z0, z1, 7, path)
    assert line.shape == (7, 16)
    assert torch.equal(line[0], z0) and torch.equal(line[-1], z1)
    assert torch.equal(path_point(z0, z1, 0.0, path), z0[None]) and torch.equal(path_point(z0, z1, 1.0, path), z1[None])
    torch.testing.assert_close(path_point(z0[None], z1[None], 0.5, path), line[3:4])


def test_linear_path_is_evenly_spaced_on_the_segment():
    z0, z1 = _pair()
    line = interpolate(z0, z1, 5, "linear")
    torch.testing.assert_close(line[2], (z0 + z1) / 2)
    steps = (line[1:] - line[:-1]).norm(dim=1)
    torch.testing.assert_close(steps, torch.full((4,), (z1 - z0).norm().item() / 4))


def test_slerp_keeps_equal_norms_and_moves_at_constant_angular_speed():
    z0, z1 = _pair()
    z1 = z1 * z0.norm() / z1.norm()
    arc = slerp(z0, z1, torch.linspace(0, 1, 9))
    torch.testing.assert_close(arc.norm(dim=1), torch.full((9,), z0.norm().item()))
    cosines = torch.nn.functional.cosine_similarity(arc[1:], arc[:-1])
    torch.testing.assert_close(cosines, cosines[:1].expand(8))


def test_slerp_interpolates_unequal_norms_linearly():
    z0, z1 = _pair()
    z1 = 3 * z1 / z1.norm() * z0.norm()
    t = torch.linspace(0, 1, 6)
    torch.testing.assert_close(slerp(z0, z1, t).norm(dim=1), (1 - t) * z0.norm() + t * z1.norm())


def test_slerp_stays_on_the_gaussian_shell_where_the_straight_line_cuts_inside():
    """Two draws of N(0, I_d) have norms ≈ √d and are nearly orthogonal; the chord's midpoint has norm ≈ √(d/2)."""
    d = 512
    z0, z1 = _pair(d, seed=3)
    linear_mid, slerp_mid = path_point(z0, z1, 0.5, "linear").norm(), path_point(z0, z1, 0.5, "slerp").norm()
    assert linear_mid.item() == pytest.approx(math.sqrt(d / 2), rel=0.1)
    assert slerp_mid.item() == pytest.approx(math.sqrt(d), rel=0.1)


@pytest.mark.parametrize("scale", [2.0, -1.0, 0.0])
def test_slerp_falls_back_to_the_line_for_parallel_or_zero_latents(scale):
    z0 = _pair()[0]
    z1 = scale * z0
    t = torch.linspace(0, 1, 5)
    arc = slerp(z0, z1, t)
    assert torch.isfinite(arc).all()
    torch.testing.assert_close(arc, interpolate(z0, z1, 5, "linear"))


def test_unknown_path_and_too_few_points_are_refused():
    z0, z1 = _pair()
    with pytest.raises(ValueError, match="Unknown path"):
        path_point(z0, z1, 0.5, "geodesic")
    with pytest.raises(ValueError, match="n ≥ 2"):
        interpolate(z0, z1, 1, "linear")


# --- encoders and decoders --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FLOWS)
def test_flow_latents_are_exact_and_invert_on_points(name):
    data = load_dataset("moons")
    model = build_model(name, data.spec, hidden=16)
    perturb(model.layers, 0.1)  # away from the identity
    x = data.test[:64]
    z = to_latent(model, x)
    assert z.shape == (64, 2)
    assert torch.equal(z, to_latent(model, x))
    assert (z - model.preprocess(x)[0]).abs().max() > 1e-2  # the layers did something
    torch.testing.assert_close(decode_items(model, z), x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", FLOWS)
def test_flow_latents_of_images_are_deterministic_and_decode_to_the_same_levels(name):
    data = load_dataset("digits")
    model = build_model(name, data.spec, hidden=16)
    perturb(model.layers, 0.02)
    x = data.test[:32]
    z = to_latent(model, x)
    assert z.shape == (32, 64) and torch.equal(z, to_latent(model, x))
    assert torch.equal(decode_items(model, z), x)


@pytest.mark.parametrize("dataset, latent_dim", [("moons", 2), ("digits", 8)])
def test_vae_latent_is_the_deterministic_posterior_mean(dataset, latent_dim):
    data = load_dataset(dataset)
    model = build_model("VAE", data.spec, hidden=32)
    x = data.test[:16]
    z = to_latent(model, x)
    assert z.shape == (16, latent_dim) and torch.equal(z, to_latent(model, x))
    assert torch.equal(z, model._posterior(model._network_input(x))[0].detach())
    items = decode_items(model, z)
    assert items.shape == (16, *data.spec.shape) and torch.equal(items, decode_items(model, z))
    if data.spec.levels is not None:
        assert items.min() >= 0 and items.max() <= data.spec.levels - 1
        assert not torch.equal(items, items.round())  # expected levels, not samples


def test_models_without_an_encoder_say_so():
    with pytest.raises(NotImplementedError):
        to_latent(build_model("GAN", load_dataset("moons").spec), load_dataset("moons").test[:4])


# --- inverting a generator --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["moons", "digits"])
def test_find_latent_reproduces_the_generators_own_output(dataset):
    """For x = G(z*), the search finds a latent whose image matches x far better than a random latent's does."""
    model = build_model("GAN", load_dataset(dataset).spec)
    perturb(model.generator, 0.1)  # a fresh generator is nearly constant; this one spreads its outputs
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        x = model.decode(torch.randn(3, model.latent_dim, generator=g))
        random_error = (model.decode(torch.randn(3, model.latent_dim, generator=g)) - x).pow(2).flatten(1).mean(1)
    z, error = find_latent(model, x)
    assert z.shape == (3, model.latent_dim) and error.shape == (3,)
    with torch.no_grad():
        torch.testing.assert_close(error, (model.decode(z) - x).pow(2).flatten(1).mean(1))
    assert (error < random_error / 100).all(), (error, random_error)
    assert torch.equal(find_latent(model, x)[0], z)  # seeded


def test_find_latent_leaves_the_models_gradients_alone():
    model = build_model("GAN", load_dataset("moons").spec, hidden=16)
    find_latent(model, load_dataset("moons").test[:2], steps=3)
    assert all(p.grad is None for p in model.parameters())


# --- traversals, grids and planes -------------------------------------------------------------------------------------


def test_traverse_moves_one_dimension_per_block_of_rows_around_z():
    z = torch.arange(5.0)
    offsets = torch.tensor([-2.0, 0.5, 9.0])
    rows = traverse(z, [1, 3], offsets)
    assert rows.shape == (6, 5)
    for k, dim in enumerate([1, 3]):
        for j, offset in enumerate(offsets):
            expected = z.clone()
            expected[dim] += offset
            assert torch.equal(rows[k * 3 + j], expected)
    assert torch.equal(z, torch.arange(5.0))


def test_grid_2d_has_the_layout_of_the_density_grid():
    """Row-major with rows following y: the same order as ``log_density_grid``, so one reshape serves both."""

    class _Plane(GenerativeModel):  # log p(x) = x₁ + 100 x₂
        def __init__(self):
            super().__init__(load_dataset("moons").spec)
            self.anchor = torch.nn.Parameter(torch.zeros(1))
            self.capabilities = Capabilities(likelihood="exact")

        def log_prob(self, x):
            return x[:, 0] + 100 * x[:, 1]

    points = grid_2d(2.0, 5)
    assert points.shape == (25, 2)
    assert torch.equal(points[0], torch.tensor([-2.0, -2.0])) and torch.equal(points[-1], torch.tensor([2.0, 2.0]))
    assert torch.equal(points[1], torch.tensor([-1.0, -2.0]))
    model = _Plane()
    torch.testing.assert_close(model.log_prob(points).reshape(5, 5), log_density_grid(model, (-2, 2, -2, 2), n=5))


@pytest.mark.parametrize(
    "n, margin, kept_margin", [(13, 0.25, 0.25), (9, 0.25, 1 / 6), (16, 0.25, 2 / 11), (3, 0.25, 0.0), (2, 0.5, 0.0)]
)
def test_plane_puts_the_three_latents_exactly_on_grid_nodes(n, margin, kept_margin):
    """The grid spans [−m, 1 + m]² with m the margin nearest the one asked for that puts 0 and 1 on grid nodes."""
    z_a, z_b = _pair(6)
    z_c = _pair(6, seed=1)[0]
    latents, coords, anchors = plane(z_a, z_b, z_c, n, margin)
    assert latents.shape == (n * n, 6) and coords.shape == (n * n, 2)
    assert torch.equal(anchors, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    for z, (s, t) in zip((z_a, z_b, z_c), anchors):
        (index,) = torch.nonzero((coords[:, 0] == s) & (coords[:, 1] == t))[:, 0].tolist()
        assert torch.equal(latents[index], z)
    ticks = coords[:n, 0]
    assert torch.equal(coords[:, 0], ticks.repeat(n)) and torch.equal(coords[:, 1], ticks.repeat_interleave(n))
    assert ticks[0].item() == pytest.approx(-kept_margin) and ticks[-1].item() == pytest.approx(1 + kept_margin)


def test_project_to_plane_inverts_plane_and_drops_the_orthogonal_part():
    z_a, z_b = _pair(6)
    z_c = _pair(6, seed=1)[0]
    latents, coords, _ = plane(z_a, z_b, z_c, 7)
    torch.testing.assert_close(project_to_plane(latents, z_a, z_b, z_c), coords, rtol=1e-5, atol=1e-5)
    basis = torch.stack([z_b - z_a, z_c - z_a], 1)
    normal = _pair(6, seed=2)[0]
    normal = normal - basis @ torch.linalg.lstsq(basis, normal).solution  # orthogonal to the plane
    torch.testing.assert_close(project_to_plane(latents + normal, z_a, z_b, z_c), coords, rtol=1e-5, atol=1e-5)


# --- latents against factors ------------------------------------------------------------------------------------------


def test_factor_correlations_find_the_dimension_that_follows_each_factor():
    g = torch.Generator().manual_seed(0)
    n = 2000
    size, position = torch.rand(n, generator=g), torch.rand(n, generator=g)
    kind = torch.randint(3, (n,), generator=g)
    latents = torch.randn(n, 4, generator=g)
    latents[:, 0] = size.exp()  # monotone, not linear: Spearman sees it fully
    latents[:, 2] = -position
    latents[:, 3] = kind.float() * 2 - (kind == 2).float() * 5 + 0.01 * latents[:, 3]  # categories, no order
    scores = factor_correlations(latents, {"size": size, "position": position, "kind": kind})
    assert scores.shape == (4, 3) and scores.min() >= 0 and scores.max() <= 1
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-6) and scores[2, 1] == pytest.approx(1.0, abs=1e-6)
    assert scores[3, 2] > 0.95
    related = torch.zeros(4, 3, dtype=torch.bool)
    related[0, 0] = related[2, 1] = related[3, 2] = True
    assert (scores[~related] < 0.1).all(), scores


def test_factor_correlations_treat_named_float_factors_as_categories_and_constants_as_zero():
    g = torch.Generator().manual_seed(1)
    kind = torch.randint(3, (600,), generator=g).float()
    latent = torch.stack([(kind - 1).abs(), torch.ones(600)], 1)  # not monotone in the kind index
    ordered = factor_correlations(latent, {"kind": kind})
    categorical = factor_correlations(latent, {"kind": kind}, categorical={"kind"})
    assert ordered[0, 0] < 0.2 and categorical[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert ordered[1, 0] == 0 and categorical[1, 0] == 0
