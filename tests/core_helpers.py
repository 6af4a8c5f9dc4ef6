"""Small shared pieces for the core tests: tiny data specs whose whole space can be enumerated, weight noise, and the
data set each model is tested on."""

from __future__ import annotations

import itertools

import torch

from dgm_core.data import DataSpec, load_dataset
from dgm_core.models.registry import supports


def tiny_spec(levels: int, shape: tuple[int, ...] = (1, 2, 2)) -> DataSpec:
    """An image spec small enough that all levels**dim images can be listed."""
    dim = 1
    for s in shape:
        dim *= s
    mid = (levels - 1) / 2
    return DataSpec(f"tiny-{levels}", "image", shape, levels, (mid,) * dim, (1.0,) * dim)


def all_images(spec: DataSpec) -> torch.Tensor:
    """Every image of the spec, (levels**dim, *shape), as float levels."""
    grid = list(itertools.product(range(spec.levels), repeat=spec.dim))
    return torch.tensor(grid, dtype=torch.float32).reshape(len(grid), *spec.shape)


@torch.no_grad()
def perturb(module: torch.nn.Module, scale: float, seed: int = 0) -> None:
    """Add N(0, scale²) noise to every parameter, e.g. to move a flow away from its identity initialisation."""
    generator = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=generator))


def home_dataset(name: str) -> str:
    """The first of moons and digits that model ``name`` works on."""
    return next(dataset for dataset in ("moons", "digits") if supports(name, load_dataset(dataset)))
