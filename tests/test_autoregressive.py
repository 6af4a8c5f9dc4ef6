"""MADE: one masked network gives every conditional of p(x) = Π_d p(x_d | x_<d).

The masks must make the parameters of dimension d a function of x_<d alone (checked by autograd), and the product of
the conditionals must then be a normalised distribution (checked by summing over every image of a tiny space).
"""

from __future__ import annotations

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import log_density_grid
from dgm_core.models.autoregressive import MADE, AutoregressiveModel, made_masks
from dgm_core.models.nade import FVSBN, NADE
from dgm_core.models.pixelcnn import PixelCNN
from dgm_core.models.registry import build_model
from dgm_core.models.transformer import Transformer
from dgm_core.runs.spec import RunSpec
from tests.core_helpers import all_images, home_dataset, perturb, tiny_spec

torch.set_num_threads(1)


def _made(spec, seed: int = 0, **kwargs) -> MADE:
    torch.manual_seed(seed)
    return MADE(spec, **kwargs)


def _dependency(model: AutoregressiveModel, u: torch.Tensor) -> torch.Tensor:
    """dep[d, j] = Σ |∂ params(x)[:, :, d] / ∂ u_j| over a batch: which inputs each dimension's parameters see."""
    jac = torch.autograd.functional.jacobian(lambda v: model._params(v).sum(0), u)  # (P, D, N, D)
    return jac.abs().sum((0, 2))


@pytest.mark.parametrize(
    "kind, kwargs",
    [("points", {}), ("image-3x3", {"hidden": 32}), ("image-3x3", {"hidden": 32, "layers": 3})],
    ids=["points", "image-3x3", "image-3x3-deep"],
)
def test_conditional_d_depends_exactly_on_inputs_before_d(kind, kwargs):
    """∂θ_d/∂x_j = 0 for j ≥ d (no peeking), and ≠ 0 for some items when j < d (the masks don't cut everything)."""
    spec = load_dataset("moons").spec if kind == "points" else tiny_spec(levels=4, shape=(1, 3, 3))
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


# --- every autoregressive model: order, normalisation, the sampler and inpainting ------------------------------------

IMAGE = tiny_spec(levels=3, shape=(1, 4, 5))  # not square, so rows and columns cannot be confused
MAKERS = {
    "MADE": lambda spec: MADE(spec, hidden=32),
    "MADE-reversed": lambda spec: MADE(spec, hidden=32, order="reversed"),
    "MADE-random": lambda spec: MADE(spec, hidden=32, order="random", seed=3),
    "FVSBN": FVSBN,
    "NADE": lambda spec: NADE(spec, hidden=16),
    "PixelCNN": lambda spec: PixelCNN(spec, hidden=8),
    "Transformer": lambda spec: Transformer(spec, hidden=16),
}
POINT_MAKERS = ["MADE", "MADE-reversed", "FVSBN", "NADE"]


def _build(name: str, spec, seed: int = 0) -> AutoregressiveModel:
    """The model as it scores and samples: in evaluation mode (a PixelCNN drops features only in training)."""
    torch.manual_seed(seed)
    return MAKERS[name](spec).eval()


def _earlier(model: AutoregressiveModel) -> torch.Tensor:
    """earlier[d, j] ⇔ dimension j comes before dimension d in the model's order."""
    rank = torch.empty_like(model.order)
    rank[model.order] = torch.arange(len(model.order))
    return rank[None, :] < rank[:, None]


def test_a_pixelcnn_drops_features_in_training_on_small_images_only():
    """Dropout 0.1 on 8×8 digits (it overfits 1,260 of them in a minute), none on 28×28 (still learning at the end of
    the minute); none when scoring."""
    x = load_dataset("digits").train[:16]
    small = build_model("PixelCNN", load_dataset("digits").spec)
    assert not torch.equal(small.log_prob(x), small.log_prob(x))  # two passes, two random masks
    small.eval()
    assert torch.equal(small.log_prob(x), small.log_prob(x))
    large = build_model("PixelCNN", load_dataset("mnist").spec)
    assert {layer.dropout for layer in small.layers} == {0.1} and {layer.dropout for layer in large.layers} == {0.0}


@pytest.mark.parametrize("name", MAKERS)
def test_order_is_a_permutation(name):
    order = _build(name, IMAGE).order
    assert sorted(order.tolist()) == list(range(IMAGE.dim))


def test_made_orders():
    """natural 0..D−1, reversed D−1..0, random a seeded shuffle; anything else is refused."""
    assert _build("MADE", IMAGE).order.tolist() == list(range(20))
    assert _build("MADE-reversed", IMAGE).order.tolist() == list(range(19, -1, -1))
    shuffled = _build("MADE-random", IMAGE).order
    assert torch.equal(shuffled, MADE(IMAGE, order="random", seed=3).order)
    assert not torch.equal(shuffled, MADE(IMAGE, order="random", seed=4).order)
    assert shuffled.tolist() != list(range(20))
    with pytest.raises(ValueError, match="order"):
        MADE(IMAGE, order="spiral")


def test_the_registered_made_offers_its_order_as_an_option():
    """The UI's order slider: 0 is the natural order, k the k-th seeded random order; fractions are refused."""
    assert build_model("MADE", IMAGE, hidden=16).order.tolist() == list(range(20))
    assert torch.equal(build_model("MADE", IMAGE, hidden=16, order=3).order, MADE(IMAGE, order="random", seed=3).order)
    with pytest.raises(ValueError, match="whole number"):
        build_model("MADE", IMAGE, hidden=16, order=1.5)
    with pytest.raises(ValueError, match="between 0 and 9"):  # the slider's range: checked once, with the run's spec
        RunSpec.defaults("MADE", "digits", options={"order": 12.0}).check()


@pytest.mark.parametrize(
    "name, kind", [(n, "image") for n in MAKERS if n != "Transformer"] + [(n, "points") for n in POINT_MAKERS]
)
def test_conditional_depends_exactly_on_the_dimensions_before_it(name, kind):
    """∂θ_d/∂x_j = 0 unless j precedes d in the model's order, and ≠ 0 when it does: no peeking, and for PixelCNN no
    blind spot (the vertical and horizontal stacks reach every earlier pixel of a 4×5 image)."""
    spec = IMAGE if kind == "image" else load_dataset("moons").spec
    model = _build(name, spec)
    u = 2 * torch.rand(8, spec.dim) if kind == "image" else torch.randn(8, spec.dim)
    dep = _dependency(model, u)
    earlier = _earlier(model)
    assert (dep[~earlier] == 0).all()
    assert (dep[earlier] > 0).all()


def test_transformer_attends_only_to_earlier_positions():
    """By gradients through the blocks: the logits at position d depend on the inputs at positions ≤ d only, and on
    all of them; the input at position d carries the token of pixel d − 1, so pixel d sees exactly pixels < d."""
    model = _build("Transformer", IMAGE)
    inputs = torch.randn(4, IMAGE.dim, 16)
    jac = torch.autograd.functional.jacobian(lambda e: model.network(e).sum(0), inputs)  # (D, L, N, D, width)
    dep = jac.abs().sum((1, 2, 4))
    at_or_before = torch.ones(IMAGE.dim, IMAGE.dim).tril().bool()
    assert (dep[~at_or_before] == 0).all() and (dep[at_or_before] > 0).all()
    u = torch.randint(0, 3, (2, IMAGE.dim)).float()
    changed = u.clone()
    changed[:, 7] = 2 - changed[:, 7]
    moved = (model.embed(changed) - model.embed(u)).abs().sum((0, 2)) > 0
    assert moved.nonzero().flatten().tolist() == [8]


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("levels, shape", [(2, (1, 3, 3)), (3, (1, 2, 2))])
def test_probabilities_over_every_image_sum_to_one(name, levels, shape):
    spec = tiny_spec(levels, shape)
    model = _build(name, spec)
    perturb(model, 0.3)
    with torch.no_grad():
        p = model.log_prob(all_images(spec)).double().exp()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert p.max() / p.min() > 1.05  # not merely uniform


@pytest.mark.parametrize("name", MAKERS)
def test_the_samplers_conditionals_are_those_of_the_likelihood(name):
    """The sampler may compute conditional d its own way (NADE one hidden layer, PixelCNN a row, the transformer one
    position with a key-value cache); given the same earlier pixels it must get the parameters log_prob uses."""
    model = _build(name, IMAGE)
    u = torch.randint(0, 3, (6, IMAGE.dim)).float()
    with torch.no_grad():
        expected = model._params(u)
        got = dict(model._conditionals(u.clone(), torch.ones_like(u, dtype=torch.bool)))
    assert sorted(got) == list(range(IMAGE.dim))
    for d, params in got.items():
        torch.testing.assert_close(params, expected[:, :, d], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MAKERS)
def test_samples_follow_the_model_probabilities(name):
    """Samples reproduce exp log p(x): total variation over the 27 images of 3 pixels × 3 levels < 0.03."""
    spec = tiny_spec(levels=3, shape=(1, 1, 3))
    model = _build(name, spec)
    perturb(model, 1.0)  # a sharp distribution, so a wrong sampler shows
    with torch.no_grad():
        p = model.log_prob(all_images(spec)).exp()
        torch.manual_seed(1)
        samples = model.sample(20_000)
    freq = torch.bincount(_code(samples), minlength=27).float() / len(samples)
    assert 0.5 * (freq - p).abs().sum().item() < 0.03
    assert p.max() > 0.1


@pytest.mark.parametrize("name", MAKERS)
def test_inpainting_keeps_what_is_observed_and_fills_the_rest_with_levels(name):
    spec = tiny_spec(levels=3, shape=(1, 4, 5))
    model = _build(name, spec)
    x = torch.randint(0, 3, (64, *spec.shape)).float()
    observed = torch.rand(x.shape) < 0.5
    torch.manual_seed(2)
    filled = model.inpaint(x, observed)
    assert filled.shape == x.shape and torch.equal(filled[observed], x[observed])
    fill = filled[~observed]
    assert torch.equal(fill, fill.round()) and fill.min() >= 0 and fill.max() <= 2
    assert len(fill.unique()) == 3  # drawn, not a constant
    assert model.capabilities.inpainting and str(spec.dim) in model.sampling_cost


@pytest.mark.parametrize("name", MAKERS)
def test_inpainting_a_prefix_draws_from_the_conditional(name):
    """With the first pixel of the order observed (at its likeliest level v), the rest follow
    p(rest | first = v) = p(x) / Σ_rest p(x): total variation < 0.03 over the 9 completions."""
    spec = tiny_spec(levels=3, shape=(1, 1, 3))
    model = _build(name, spec)
    perturb(model, 1.0)
    first, images = model.order[0].item(), all_images(spec)
    with torch.no_grad():
        p = model.log_prob(images).exp()
        value = max(range(3), key=lambda v: p[images.flatten(1)[:, first] == v].sum())
        conditional = p * (images.flatten(1)[:, first] == value)
        x = torch.zeros(20_000, spec.dim)
        x[:, first] = value
        observed = torch.zeros_like(x, dtype=torch.bool)
        observed[:, first] = True
        torch.manual_seed(3)
        filled = model.inpaint(x.reshape(-1, *spec.shape), observed.reshape(-1, *spec.shape))
    freq = torch.bincount(_code(filled), minlength=27).float() / len(filled)
    assert 0.5 * (freq - conditional / conditional.sum()).abs().sum().item() < 0.03


def test_inpainting_points_keeps_the_observed_coordinate():
    model = _build("NADE", load_dataset("moons").spec)
    x = load_dataset("moons").test[:500]
    observed = torch.zeros_like(x, dtype=torch.bool)
    observed[:, 0] = True
    filled = model.inpaint(x, observed)
    assert torch.equal(filled[:, 0], x[:, 0]) and torch.isfinite(filled).all()
    assert not torch.equal(filled[:, 1], x[:, 1])


def test_fvsbn_on_points_is_a_full_covariance_gaussian():
    """Linear-Gaussian conditionals: y₁ ~ N(a, s²), y₂ | y₁ ~ N(b + w y₁, t²) is the joint Gaussian with mean
    (a, b + w a) and covariance [[s², w s²], [w s², w² s² + t²]] (in standardised units), which is why FVSBN is no
    better than the single-Gaussian baseline on points and is registered for images only."""
    spec = load_dataset("moons").spec
    model = _build("FVSBN", spec)
    perturb(model, 0.5)
    with torch.no_grad():
        weight = model.linear.weight * model.linear.mask  # rows: (logit, mean, log-scale) × (y₁, y₂)
        bias = model.linear.bias
        a, b, w = bias[2], bias[3], weight[3, 0]
        s, t = bias[4].exp(), bias[5].exp()
        mean = torch.stack([a, b + w * a])
        cov = torch.stack([torch.stack([s**2, w * s**2]), torch.stack([w * s**2, w**2 * s**2 + t**2])])
        y, log_det = model.standardize(load_dataset("moons").test[:100])
        expected = torch.distributions.MultivariateNormal(mean, cov).log_prob(y) + log_det
        torch.testing.assert_close(model.log_prob(load_dataset("moons").test[:100]), expected)


def _code(images: torch.Tensor) -> torch.Tensor:
    """Base-3 index of 3-pixel images, the first pixel most significant (the order of all_images)."""
    return (images.flatten(1).long() * torch.tensor([9, 3, 1])).sum(1)


# --- how it works: one conditional at a time --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MADE", "NADE", "PixelCNN", "Transformer", "FVSBN"])
def test_the_conditionals_multiply_to_the_likelihood_and_each_is_a_distribution(name):
    data = load_dataset(home_dataset(name))
    torch.manual_seed(0)
    model = build_model(name, data.spec, hidden=16)
    perturb(model, 0.05)
    model.eval()
    x = data.test[0]
    flat = x.flatten()
    dims = model.order.tolist()
    chain = sum(float(model.conditional_log_density(x, d, flat[d : d + 1])) for d in dims)
    assert chain == pytest.approx(float(model.log_prob(x[None]).detach()), abs=1e-3)
    d = dims[-1]
    if model.spec.levels is not None:  # the levels' probabilities sum to 1
        levels = torch.arange(model.spec.levels, dtype=torch.float32)
        assert model.conditional_log_density(x, d, levels).exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    else:  # the density integrates to 1 along the line
        grid = torch.linspace(-12, 12, 4001)
        density = model.conditional_log_density(x, d, grid).exp()
        assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", ["MADE", "NADE"])
def test_drawing_one_dimension_at_a_time_draws_what_sample_draws(name):
    data = load_dataset(home_dataset(name))
    torch.manual_seed(0)
    model = build_model(name, data.spec, hidden=16).eval()
    torch.manual_seed(7)
    expected = model.sample(1)[0].flatten()
    torch.manual_seed(7)
    x = torch.zeros(data.spec.dim)
    for d in model.order.tolist():
        x[d] = model.draw_conditional(x.reshape(data.spec.shape), d)
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["MADE", "PixelCNN", "Transformer"])
def test_an_image_drawn_step_by_step_is_what_sample_draws_and_each_conditional_is_a_distribution(name):
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model(name, data.spec, hidden=16)
    perturb(model, 0.05)
    model.eval()
    torch.manual_seed(3)
    expected = model.sample(1)[0].flatten()
    torch.manual_seed(3)
    image, probs = model.sample_step_by_step()
    torch.testing.assert_close(image, expected)
    assert probs.shape == (64, 17)
    torch.testing.assert_close(probs.sum(1), torch.ones(64))
    first = model.order[0]
    empty = torch.zeros(data.spec.shape)
    torch.testing.assert_close(probs[first].log(), model.conditional_log_density(empty, int(first), torch.arange(17.0)))
