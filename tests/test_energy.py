"""The energy-based model: its Langevin sampler on a known energy, and contrastive divergence on data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from dgm_core.data import load_dataset
from dgm_core.models.base import FourierFeatures
from dgm_core.models.energy import EnergyBasedModel

torch.set_num_threads(1)


class GaussianEnergy(nn.Module):
    """E(y) = |y − μ|² / (2 s²): p ∝ exp(−E) is N(μ, s² I)."""

    def __init__(self, mean: list[float], std: float) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.tensor(mean))
        self.std = std

    def forward(self, y: Tensor) -> Tensor:
        return ((y - self.mean).pow(2).sum(1, keepdim=True)) / (2 * self.std**2)


@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_langevin_chain_samples_a_known_gaussian_energy(temperature):
    """With noise τ = √(2ηT) the chain samples exp(−E/T): for E Gaussian, mean μ and variance T s²."""
    step = 0.01
    model = EnergyBasedModel(
        load_dataset("moons").spec, langevin_steps=1500, step_size=step, noise_scale=math.sqrt(2 * step * temperature)
    )
    model.energy = GaussianEnergy([1.0, -0.5], std=1.2)
    torch.manual_seed(0)
    y = model.langevin_chain(torch.zeros(5000, 2))
    assert y.mean(0).tolist() == pytest.approx([1.0, -0.5], abs=0.05)
    assert y.var(0).tolist() == pytest.approx([temperature * 1.44] * 2, rel=0.06)


def test_contrastive_divergence_lowers_the_energy_of_data():
    """After 150 steps on moons, held-out points have lower energy than points spread uniformly over the chains'
    starting box; the loss reports both energies."""
    torch.manual_seed(0)
    data = load_dataset("moons")
    model = EnergyBasedModel(data.spec, hidden=64)
    optimizers = model.configure_optimizers(2e-3)
    for _ in range(150):
        terms = model.train_step(data.train[torch.randint(len(data.train), (128,))], optimizers)
    assert {"energy_data", "energy_samples"} <= set(terms)
    with torch.no_grad():
        data_energy = model.energy(model.standardize(data.test[:2000])[0]).mean()
        box_energy = model.energy(model._initial(2000)).mean()
    assert data_energy < box_energy - 0.5


def test_on_points_the_energy_reads_fourier_features_and_on_images_the_pixels():
    points = EnergyBasedModel(load_dataset("moons").spec, hidden=16)
    images = EnergyBasedModel(load_dataset("digits").spec, hidden=16)
    y = torch.tensor([[0.3, -1.2]])
    torch.testing.assert_close(points.energy(y), points.energy[1:](FourierFeatures(2)(y)))
    assert points.energy[1].in_features == 2 * (1 + 2 * 2)  # x₁, x₂ and their sines and cosines at octaves 1, 2
    assert images.energy[0].in_features == 64


def test_image_chains_stay_in_the_unit_cube_and_samples_are_levels():
    spec = load_dataset("digits").spec
    model = EnergyBasedModel(spec, hidden=16, step_size=1.0, noise_scale=1.0)  # big steps would leave the cube
    torch.manual_seed(0)
    y = model.langevin_chain(model._initial(64))
    assert y.min() >= 0 and y.max() <= 1
    x = model.sample(8)
    assert x.shape == (8, *spec.shape) and torch.equal(x, x.round()) and x.max() <= spec.levels - 1
    assert model.sampling_cost == "20 Langevin steps"


def test_the_field_is_minus_the_energy_and_each_arrow_lowers_it() -> None:
    spec = load_dataset("moons").spec
    torch.manual_seed(0)
    model = EnergyBasedModel(spec, hidden=16, langevin_steps=3)
    points = torch.randn(40, 2)
    expected = -model.energy(model.standardize(points)[0]).squeeze(1).detach()
    torch.testing.assert_close(model.field(points), expected)
    samples, drift = model.field_arrows(30)
    step = 1e-3 / drift.norm(dim=1, keepdim=True).clamp_min(1e-12)
    assert (model.field(samples + step * drift) > model.field(samples)).all()  # uphill in −E: downhill in energy
    assert model.capabilities.field and "η = " in model.field_note
    assert not EnergyBasedModel(load_dataset("digits").spec, hidden=8).capabilities.field


def test_the_langevin_trajectory_starts_in_the_box_and_ends_at_what_sample_draws():
    data = load_dataset("moons")
    torch.manual_seed(0)
    model = EnergyBasedModel(data.spec, hidden=16, langevin_steps=7)
    torch.manual_seed(5)
    path = model.langevin_trajectory(30)
    torch.manual_seed(5)
    expected = model.sample(30)
    assert path.shape == (8, 30, 2) and model.capabilities.chains
    torch.testing.assert_close(path[-1], expected)
    start = model.standardize(path[0])[0]
    assert start.min() >= -3 and start.max() <= 3  # chains start uniform on [−3, 3]² in standardised units
