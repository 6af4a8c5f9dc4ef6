"""Procedural shapes: the pixels agree with the factors that drew them; the out-of-distribution sets look like digits.

Conventions checked here: lengths are fractions of the image width, pixel j covers [j/R, (j+1)/R), so the pixel centres
are (j + ½)/R; an image's centre of mass is Σ value · centre / Σ value along each axis.
"""

from __future__ import annotations

import math

import pytest
import torch

from dgm_core.data import built_in_dataset, load_dataset, shapes
from dgm_core.data.ood import DESCRIPTIONS, has_ood_sets, ood_sets

torch.set_num_threads(1)

SPLITS = ("train", "val", "test")
fresh = built_in_dataset.__wrapped__  # bypass the cache: build the splits again from the seed


@pytest.fixture(scope="module")
def data():
    return load_dataset("shapes")


def _mass_and_centre(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Total level and the (x, y) centre of mass of (N, 1, R, R) images, in image widths."""
    resolution = images.shape[-1]
    centres = (torch.arange(resolution) + 0.5) / resolution
    pixels = images[:, 0].double()
    mass = pixels.sum((1, 2))
    x = (pixels.sum(1) * centres).sum(1) / mass
    y = (pixels.sum(2) * centres).sum(1) / mass
    return mass, x, y


def test_same_seed_same_tensors_other_seed_other_tensors():
    a, b, c = fresh("shapes", 0), fresh("shapes", 0), fresh("shapes", 1)
    for split in SPLITS:
        assert torch.equal(getattr(a, split), getattr(b, split))
        assert not torch.equal(getattr(a, split), getattr(c, split))
        assert torch.equal(a.labels[split], b.labels[split])
        assert all(torch.equal(a.factors[split][f], b.factors[split][f]) for f in a.factor_names)
    assert a.spec == b.spec


def test_splits_shapes_levels_labels_and_factors(data):
    assert (data.spec.kind, data.spec.shape, data.spec.dim, data.spec.levels) == ("image", (1, 16, 16), 256, 17)
    assert data.factor_names == list(shapes.FACTOR_NAMES)
    for split, n in shapes.SPLIT_SIZES.items():
        x = getattr(data, split)
        assert x.shape == (n, 1, 16, 16) and x.dtype == torch.float32
        assert torch.equal(x, x.round()) and x.min() == 0 and x.max() <= 16
        assert data.labels[split].dtype == torch.long and data.labels[split].shape == (n,)
        assert set(data.labels[split].tolist()) == set(range(len(shapes.KINDS)))
        for name in data.factor_names:
            assert data.factors[split][name].shape == (n,) and data.factors[split][name].is_floating_point()
    assert torch.equal(torch.unique(data.train), torch.arange(17.0))  # anti-aliased edges reach every level


def test_other_data_sets_have_no_factors():
    assert load_dataset("digits").factors == {} and load_dataset("digits").factor_names == []


def test_no_image_occurs_twice_so_no_test_image_was_seen_in_training(data):
    images = torch.cat([getattr(data, split).flatten(1) for split in SPLITS])
    assert len(torch.unique(images, dim=0)) == len(images)


def test_first_occurrences_drops_later_repeats():
    images = torch.tensor([[1.0], [2.0], [1.0], [3.0], [2.0]])
    assert shapes.first_occurrences(images).tolist() == [0, 1, 3]


def test_centre_of_mass_is_the_position_factor_within_a_pixel(data):
    mass, x, y = _mass_and_centre(data.train)
    factors = data.factors["train"]
    assert (x - factors["x"]).abs().max() * 16 < 0.5
    assert (y - factors["y"]).abs().max() * 16 < 0.5


def test_brightest_pixel_is_the_intensity_factor(data):
    assert torch.equal(data.train.amax((1, 2, 3)), data.factors["train"]["intensity"])
    assert set(data.factors["train"]["intensity"].tolist()) == set(map(float, range(8, 17)))


def test_every_shape_lies_wholly_inside_the_image(data):
    """The bounding box, s wide and s tall, spans [x − s/2, x + s/2] and from y − a·s to y + (1 − a)·s, where a is the
    centroid's depth below the top: ½, but ⅔ for the apex-up triangle."""
    factors, kind = data.factors["train"], data.labels["train"]
    size, x, y = factors["size"], factors["x"], factors["y"]
    depth = torch.where(kind == shapes.KINDS.index("triangle"), 2 / 3, 1 / 2)
    assert size.min() >= shapes.SIZE_RANGE[0] and size.max() <= shapes.SIZE_RANGE[1]
    assert (x - size / 2).min() >= 0 and (x + size / 2).max() <= 1
    assert (y - depth * size).min() >= 0 and (y + (1 - depth) * size).max() <= 1 + 1e-6


@pytest.mark.parametrize("kind", shapes.KINDS)
def test_mass_is_intensity_times_area(kind, data):
    """Σ pixels ≈ b · fill · (s·R)²: the kinds differ measurably in how much of their bounding box they fill."""
    chosen = data.labels["train"] == shapes.KINDS.index(kind)
    mass, _, _ = _mass_and_centre(data.train[chosen])
    factors = {name: values[chosen].double() for name, values in data.factors["train"].items()}
    fill = mass / (factors["intensity"] * (factors["size"] * 16) ** 2)
    assert fill.mean().item() == pytest.approx(shapes.FILL_RATIO[kind], abs=0.01)
    assert (fill - shapes.FILL_RATIO[kind]).abs().max() < 0.07


def test_fill_ratios_tell_the_kinds_apart():
    ratios = sorted(shapes.FILL_RATIO.values())
    assert ratios == pytest.approx([0.5, 5 / 9, math.pi / 4, 1.0])
    assert min(b - a for a, b in zip(ratios, ratios[1:])) > 0.05


@pytest.mark.parametrize("kind", shapes.KINDS)
def test_mass_grows_with_size(kind):
    masses = [shapes.render(kind, size, 0.5, 0.55, 16).sum().item() for size in (0.3, 0.4, 0.5, 0.6, 0.7)]
    assert all(small < large for small, large in zip(masses, masses[1:]))


def test_pixels_move_smoothly_with_position():
    """A sub-pixel shift moves the centre of mass by about as much: the supersampling anti-aliases the edges."""
    shifts = torch.linspace(0.4, 0.6, 9)
    images = torch.stack([shapes.render("circle", 0.5, float(x), 0.5, 16) for x in shifts])
    _, x, _ = _mass_and_centre(images)
    assert (x - shifts.double()).abs().max() < 0.01
    assert (x.diff() > 0).all()


def test_render_works_at_any_resolution():
    for resolution in (8, 16, 32):
        image = shapes.render("square", 0.5, 0.5, 0.5, 12, resolution=resolution)
        assert image.shape == (1, resolution, resolution) and image.max() == 12
        assert image.sum().item() == pytest.approx(12 * (resolution / 2) ** 2, rel=0.02)
    small = shapes.render("square", 0.6, 0.5, 0.5, 30, resolution=8, levels=5)
    assert small.max() == 4 and torch.equal(small, small.round())  # intensity is clamped to the top level


def test_render_batch_of_no_items_is_empty():
    empty = torch.zeros(0)
    assert shapes.render_batch(empty.long(), empty, empty, empty, empty).shape == (0, 1, 16, 16)


# --- out-of-distribution sets -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "mnist", "mnist-binary", "shapes"])
def test_ood_sets_have_the_format_of_the_data_they_are_scored_beside(name):
    data = load_dataset(name)
    assert has_ood_sets(data.spec)
    sets = ood_sets(data, 50, seed=0)
    expected = [key for key in DESCRIPTIONS if not (name == "shapes" and key == "shapes")]  # not its own data
    assert list(sets) == expected and all(DESCRIPTIONS.values())
    top = data.spec.levels - 1
    for key, x in sets.items():
        assert x.shape == (50, *data.spec.shape) and x.dtype == data.train.dtype, key
        assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= top, key


def test_only_square_grey_level_images_get_ood_sets():
    assert not has_ood_sets(load_dataset("moons").spec)


def test_ood_sets_are_seeded():
    digits = load_dataset("digits")
    a, b, c = ood_sets(digits, 20, seed=0), ood_sets(digits, 20, seed=0), ood_sets(digits, 20, seed=1)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not torch.equal(a["uniform noise"], c["uniform noise"])
    assert not torch.equal(a["shapes"], c["shapes"])


@pytest.mark.parametrize("name", ["digits", "mnist-binary"])
def test_ood_sets_are_what_they_say(name):
    data = load_dataset(name)
    top = data.spec.levels - 1
    sets = ood_sets(data, 400, seed=0)
    test_items = {tuple(row) for row in data.test.flatten(1).tolist()}
    inverted = top - sets["inverted test items"]
    assert all(tuple(row) in test_items for row in inverted.flatten(1).tolist())
    assert all(tuple(row) in test_items for row in sets["mirrored test items"].flip(-1).flatten(1).tolist())
    assert sets["blank"].eq(0).all()
    grey = sets["constant grey"].flatten(1)
    assert grey.eq(grey[:, :1]).all() and grey.min() >= 1
    noise = sets["uniform noise"]
    assert torch.equal(torch.unique(noise), torch.arange(top + 1.0))
    assert noise.mean().item() == pytest.approx(top / 2, abs=0.01 * top + 0.02)
    assert (sets["shapes"].amax((1, 2, 3)) >= top / 2).all()  # every item holds a lit shape
