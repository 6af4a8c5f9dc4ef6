"""The data sets: fixed seeded splits of the right shape, and 2D generators that match their published densities.

Each 2D generator draws from a known distribution, so ``ENTROPY_NATS`` (the floor under every honest test NLL) can be
checked here by Monte Carlo:  H = −E_x[log p(x)], with p written down from the generator's own parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgm_core.data import SOURCES, built_in_dataset, dataset_names, load_dataset, toy2d
from dgm_core.learn.evaluation import baseline_nll

torch.set_num_threads(1)

TOY = list(toy2d.DESCRIPTIONS)
SPLITS = ("train", "val", "test")
fresh = built_in_dataset.__wrapped__  # bypass the cache: build the splits again from the seed


def test_every_source_is_listed():
    assert dataset_names() == list(SOURCES)
    assert set(TOY) | {"digits", "digits-binary", "shapes", "mnist", "mnist-binary"} == set(dataset_names())


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="Unknown data set"):
        load_dataset("cifar10")


@pytest.mark.parametrize("name", ["moons", "pinwheel", "digits"])
def test_same_seed_same_tensors_other_seed_other_tensors(name):
    a, b, c = fresh(name, 0), fresh(name, 0), fresh(name, 1)
    for split in SPLITS:
        assert torch.equal(getattr(a, split), getattr(b, split))
        assert not torch.equal(getattr(a, split), getattr(c, split))
    assert a.spec == b.spec


@pytest.mark.parametrize("name", TOY)
def test_toy_splits_shapes_and_spec(name):
    data = load_dataset(name)
    for split, n in toy2d.SPLIT_SIZES.items():
        x = getattr(data, split)
        assert x.shape == (n, 2) and x.dtype == torch.float32
        assert torch.isfinite(x).all()
    spec = data.spec
    assert (spec.kind, spec.shape, spec.dim, spec.levels) == ("points2d", (2,), 2, None)
    assert spec.entropy_nats == toy2d.ENTROPY_NATS[name]
    assert spec.mean == pytest.approx(data.train.mean(0).tolist(), abs=1e-5)
    assert spec.std == pytest.approx(data.train.std(0).tolist(), abs=1e-5)
    assert data.train.abs().max() < 6  # all eight live in roughly [−4, 4]²


@pytest.mark.parametrize("name", TOY)
def test_gaussian_baseline_lies_above_the_entropy(name):
    """Cross-entropy ≥ entropy: no model, the best single Gaussian included, scores below H on fresh data."""
    data = load_dataset(name)
    label, nll = baseline_nll(data)
    assert label == "single Gaussian"
    assert nll > data.spec.entropy_nats + 0.1


# --- the 2D densities, parameter by parameter -------------------------------------------------------------------------


def _curve_mixture_log_prob(x: torch.Tensor, centers: torch.Tensor, sigma: float) -> torch.Tensor:
    """log p(x) for p = (1/K) Σ_k N(x; c_k, σ² I): a curve (densely sampled by its K centers) blurred by noise σ."""
    d2 = torch.cdist(x.double(), centers.double()).pow(2)
    return torch.logsumexp(-d2 / (2 * sigma**2), 1) - math.log(len(centers)) - math.log(2 * math.pi * sigma**2)


def _circle(radius: float, k: int = 600) -> torch.Tensor:
    t = torch.arange(k, dtype=torch.float64) / k * 2 * math.pi
    return radius * torch.stack([t.cos(), t.sin()], 1)


def _moons(k: int = 600) -> torch.Tensor:
    t = torch.linspace(0, math.pi, k, dtype=torch.float64)
    upper = torch.stack([t.cos(), t.sin()], 1)
    lower = torch.stack([1 - t.cos(), 1 - t.sin() - 0.5], 1)
    return torch.cat([upper, lower]) * 2 + torch.tensor([-1.0, -0.2], dtype=torch.float64)


def _eight_centers() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    return 4 * torch.stack([angles.cos(), angles.sin()], 1) / 1.414


KNOWN_DENSITIES = {  # name -> (curve centers, noise σ in data units)
    "moons": (_moons(), 0.1 * 2),
    "circles": (torch.cat([_circle(3.0), _circle(1.5)]), 0.08 * 3),
    "rings": (torch.cat([_circle(r) for r in (0.75, 1.5, 2.25, 3.0)]), 0.08),
    "8gaussians": (_eight_centers(), 0.5 / 1.414),
}


@pytest.mark.parametrize("name", list(KNOWN_DENSITIES))
def test_entropy_matches_monte_carlo_of_the_generator_density(name):
    """H = −E log p(x) over 5,000 test points (s.e. ≈ 0.012 nats) agrees with ENTROPY_NATS."""
    centers, sigma = KNOWN_DENSITIES[name]
    x = load_dataset(name).test[:5000]
    log_p = _curve_mixture_log_prob(x, centers, sigma)
    assert -log_p.mean().item() == pytest.approx(toy2d.ENTROPY_NATS[name], abs=0.05)


def test_checkerboard_is_uniform_on_eight_black_squares():
    """Squares of side 2 on [−4, 4]²; black ⇔ ⌊x₁/2⌋ + ⌊x₂/2⌋ even; 8 squares of area 4 ⇒ H = log 32."""
    x = load_dataset("checkerboard").train
    assert (x.abs() <= 4).all()
    cells = torch.floor(x / 2).long()
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()
    _, counts = torch.unique(cells, dim=0, return_counts=True)
    assert len(counts) == 8
    assert (counts / len(x)).tolist() == pytest.approx([1 / 8] * 8, abs=0.01)
    assert toy2d.ENTROPY_NATS["checkerboard"] == pytest.approx(math.log(32), abs=1e-3)


def test_eight_gaussians_share_the_mass_equally():
    x = load_dataset("8gaussians").train.double()
    nearest = torch.cdist(x, _eight_centers()).argmin(1)
    assert (torch.bincount(nearest, minlength=8) / len(x)).tolist() == pytest.approx([1 / 8] * 8, abs=0.01)


def test_rings_have_four_equal_radii():
    radius = load_dataset("rings").train.norm(dim=1)
    ring = torch.round(radius / 0.75).long()  # radii 0.75, 1.5, 2.25, 3 → 1..4, noise σ = 0.08 ≪ 0.375
    assert (torch.bincount(ring, minlength=5)[1:] / len(radius)).tolist() == pytest.approx([0.25] * 4, abs=0.01)
    assert (radius - 0.75 * ring).abs().max() < 0.375


def test_moons_mean_and_symmetric_sets_centred():
    """Moons: sklearn's mean (½, ¼), ×2, shifted by (−1, −0.2) → (0, 0.3). Rotation-symmetric sets: mean ≈ 0."""
    assert load_dataset("moons").train.mean(0).tolist() == pytest.approx([0.0, 0.3], abs=0.03)
    for name in ["8gaussians", "rings", "circles", "pinwheel", "2spirals", "checkerboard"]:
        assert load_dataset(name).train.mean(0).abs().max() < 0.1, name


# --- digits -----------------------------------------------------------------------------------------------------------


def test_digits_shapes_levels_and_labels():
    data = load_dataset("digits")
    sizes = {split: len(getattr(data, split)) for split in SPLITS}
    assert sizes == {"train": 1259, "val": 179, "test": 359}
    for split in SPLITS:
        x = getattr(data, split)
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32
        assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 16
        assert data.labels[split].shape == (len(x),) and set(data.labels[split].tolist()) <= set(range(10))
    assert torch.equal(torch.unique(data.train), torch.arange(17.0))  # every level 0..16 occurs
    assert (data.spec.kind, data.spec.shape, data.spec.dim, data.spec.levels) == ("image", (1, 8, 8), 64, 17)
    assert data.spec.entropy_nats is None


def test_digits_splits_partition_the_bundled_images():
    """Train, validation and test together are exactly scikit-learn's 1,797 (image, label) pairs, each once."""
    from sklearn.datasets import load_digits

    data = load_dataset("digits")
    ours = np.concatenate(
        [np.concatenate([getattr(data, s).reshape(-1, 64).numpy(), data.labels[s][:, None].numpy()], 1) for s in SPLITS]
    )
    bunch = load_digits()
    theirs = np.concatenate([bunch.images.reshape(-1, 64), bunch.target[:, None]], 1).astype(np.float32)
    assert ours.shape == theirs.shape
    (ours_rows, ours_counts), (their_rows, their_counts) = (
        np.unique(a, axis=0, return_counts=True) for a in (ours, theirs)
    )
    assert np.array_equal(ours_rows, their_rows) and np.array_equal(ours_counts, their_counts)


def test_binary_digits_threshold_the_same_split_at_half_intensity():
    grey, binary = load_dataset("digits"), load_dataset("digits-binary")
    assert binary.spec.levels == 2 and binary.spec.shape == (1, 8, 8)
    for split in SPLITS:
        assert torch.equal(getattr(binary, split), (getattr(grey, split) >= 8).float())
        assert torch.equal(binary.labels[split], grey.labels[split])
