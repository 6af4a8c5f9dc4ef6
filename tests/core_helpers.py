"""Small shared pieces for the core tests: tiny data specs whose whole space can be enumerated, weight noise, the
data set each model is tested on, and which model trains on which built-in set with which likelihood — known without
building data or models, so that parametrising tests costs nothing at collection (``tests/test_models.py`` checks
these tables against the registry)."""

from __future__ import annotations

import itertools

import torch

from dgm_core.data import SOURCES, DataSpec
from dgm_core.models.registry import MODELS


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


LABELLED = {"digits", "digits-binary", "shapes", "mnist", "mnist-binary"}  # the built-in sets with class labels

LIKELIHOOD = {  # (on points, on images); None where the model does not work on that kind
    "MADE": ("exact", "exact"),
    "cMADE": (None, "exact"),
    "FVSBN": (None, "exact"),
    "NADE": ("exact", "exact"),
    "PixelCNN": (None, "exact"),
    "Transformer": (None, "exact"),
    "NICE": ("exact", "bound"),
    "RealNVP": ("exact", "bound"),
    "Glow": ("exact", "bound"),
    "MAF": ("exact", "bound"),
    "NSF": ("exact", "bound"),
    "VAE": ("bound", "bound"),
    "IWAE": ("bound", "bound"),
    "β-VAE": ("bound", "bound"),
    "CVAE": (None, "bound"),
    "GAN": ("none", "none"),
    "cGAN": (None, "none"),
    "WGAN-GP": ("none", "none"),
    "f-GAN (KL)": ("none", "none"),
    "f-GAN (reverse KL)": ("none", "none"),
    "f-GAN (JS)": ("none", "none"),
    "DDPM": ("bound", "bound"),
    "VDM": (None, "bound"),
    "NCSN": ("none", "none"),
    "Flow matching": ("exact", None),
    "EBM": ("none", "none"),
}


def trains_on(name: str, dataset: str) -> bool:
    """Whether model ``name`` trains on built-in set ``dataset`` (``registry.supports``, without loading the set)."""
    return SOURCES[dataset].kind in MODELS[name].defaults and (not MODELS[name].needs_labels or dataset in LABELLED)


def likelihood_of(name: str, dataset: str) -> str | None:
    """What ``name``'s ``capabilities.likelihood`` is on ``dataset``, or None where it does not train on it."""
    return LIKELIHOOD[name][SOURCES[dataset].kind == "image"] if trains_on(name, dataset) else None


def home_dataset(name: str) -> str:
    """The first of moons and digits that model ``name`` works on."""
    return next(dataset for dataset in ("moons", "digits") if trains_on(name, dataset))
