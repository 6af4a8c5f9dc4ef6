"""The model registry: every model by family, with a human description and default settings per kind of data.

The UI lists ``MODELS`` and calls ``build_model``; it never needs to know a model's name in advance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dgm_core.data import DataKind, Dataset, DataSpec
from dgm_core.models.autoregressive import MADE
from dgm_core.models.base import GenerativeModel
from dgm_core.models.flows import MAF, NICE, Glow, NeuralSplineFlow, RealNVP
from dgm_core.models.gan import GAN
from dgm_core.models.latent import IWAE, VAE

FAMILIES = {
    "autoregressive": "Autoregressive: p(x) = Π p(x_i | x_<i), exact likelihood, sequential sampling.",
    "flow": "Normalizing flow: an invertible map to a Gaussian, exact likelihood by change of variables.",
    "latent": "Latent variable: p(x) = ∫ p(x|z) p(z) dz, trained on a lower bound (the ELBO).",
    "implicit": "Implicit: a sampler trained against a discriminator; no likelihood at all.",
}


@dataclass(frozen=True)
class TrainingDefaults:
    steps: int
    lr: float
    batch_size: int
    hidden: int


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    description: str
    make: Callable[..., GenerativeModel]  # (spec, hidden=...) -> model
    defaults: dict[DataKind, TrainingDefaults]  # the kinds of data the model works on, with settings for each
    needs_labels: bool = False  # conditional models train on (item, class label) pairs


MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in [
        ModelInfo(
            "MADE",
            "autoregressive",
            "Masked autoencoder (Germain et al., 2015): one network whose masks make output i see only inputs < i. "
            "Mixture-of-Gaussians conditionals for points, categorical conditionals for pixels.",
            MADE,
            {"points2d": TrainingDefaults(3000, 3e-3, 512, 128), "image": TrainingDefaults(2000, 1e-3, 128, 256)},
        ),
        ModelInfo(
            "NICE",
            "flow",
            "NICE (Dinh et al., 2014), the first coupling flow: half the coordinates shift the other half, "
            "alternating, then one diagonal scaling. Shifts preserve volume, so unlike RealNVP's the log-determinant "
            "is one constant: the density gets its shape only from where the map moves points. On mirror-symmetric "
            "sets (rings, circles, 8 Gaussians) it can stall at the single Gaussian: there a shift's gradient is zero.",
            NICE,
            {"points2d": TrainingDefaults(3000, 5e-3, 512, 64), "image": TrainingDefaults(2000, 3e-3, 128, 128)},
        ),
        ModelInfo(
            "RealNVP",
            "flow",
            "Affine coupling flow (Dinh et al., 2017): half the coordinates scale and shift the other half, "
            "alternating. Exact density on points; on pixels a bound through uniform dequantization.",
            RealNVP,
            {"points2d": TrainingDefaults(3000, 5e-3, 512, 64), "image": TrainingDefaults(2000, 1e-3, 128, 128)},
        ),
        ModelInfo(
            "Glow",
            "flow",
            "Glow (Kingma & Dhariwal, 2018): each step is actnorm (initialised from the first batch), a learned "
            "invertible linear map in LU form (cheap log-determinant) and an affine coupling. Where RealNVP fixes "
            "which coordinates condition which, Glow learns how to mix them.",
            Glow,
            {"points2d": TrainingDefaults(3000, 5e-3, 512, 64), "image": TrainingDefaults(2000, 1e-3, 128, 128)},
        ),
        ModelInfo(
            "MAF",
            "flow",
            "Masked autoregressive flow (Papamakarios et al., 2017): stacked MADEs, each shifting and scaling x_i by "
            "functions of x_<i, the order reversed between layers. The density is one pass, but sampling takes D "
            "sequential passes (the inverse autoregressive flow makes the opposite trade). An affine coupling is the "
            "special case with only two blocks in the order.",
            MAF,
            {"points2d": TrainingDefaults(3000, 5e-3, 512, 64), "image": TrainingDefaults(2000, 1e-3, 128, 128)},
        ),
        ModelInfo(
            "NSF",
            "flow",
            "Neural spline flow (Durkan et al., 2019): couplings whose elementwise map is a monotone "
            "rational-quadratic spline (8 bins on [−4, 4], the identity outside), inverted in closed form. Where "
            "affine couplings only scale and shift, a spline can bend, so fewer layers fit a many-moded density.",
            NeuralSplineFlow,
            {"points2d": TrainingDefaults(3000, 5e-3, 512, 64), "image": TrainingDefaults(2000, 1e-3, 128, 128)},
        ),
        ModelInfo(
            "VAE",
            "latent",
            "Variational autoencoder (Kingma & Welling, 2014): Gaussian encoder q(z|x), decoder p(x|z) fitting the "
            "data type; trained on the ELBO, a lower bound on log p(x).",
            VAE,
            {"points2d": TrainingDefaults(3000, 3e-3, 512, 128), "image": TrainingDefaults(3000, 1e-3, 128, 256)},
        ),
        ModelInfo(
            "IWAE",
            "latent",
            "Importance-weighted autoencoder (Burda et al., 2016): the VAE's model trained on the k = 8 sample bound "
            "log (1/k) Σ p(x, z_i)/q(z_i|x), tighter than the ELBO; the posterior may spread wider.",
            IWAE,
            {"points2d": TrainingDefaults(3000, 3e-3, 512, 128), "image": TrainingDefaults(3000, 1e-3, 128, 256)},
        ),
        ModelInfo(
            "GAN",
            "implicit",
            "Generative adversarial network (Goodfellow et al., 2014) with the non-saturating generator loss. "
            "No likelihood: judged by a two-sample test (MMD) against held-out data.",
            GAN,
            {"points2d": TrainingDefaults(3000, 1e-3, 256, 128), "image": TrainingDefaults(3000, 5e-4, 128, 256)},
        ),
    ]
}


def models_by_family() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for info in MODELS.values():
        grouped[info.family].append(info.name)
    return grouped


def supports(name: str, data: Dataset) -> bool:
    """Whether model ``name`` can train on ``data`` (its kind of data, and class labels if it needs them)."""
    info = MODELS[name]
    return data.spec.kind in info.defaults and (not info.needs_labels or "train" in data.labels)


def models_for(data: Dataset) -> list[str]:
    return [name for name in MODELS if supports(name, data)]


def unsupported_reason(name: str, data: Dataset) -> str | None:
    """A sentence saying why ``name`` cannot train on ``data``, or None when it can."""
    info = MODELS[name]
    if data.spec.kind not in info.defaults:
        kinds = " or ".join("2D points" if kind == "points2d" else "images" for kind in info.defaults)
        return f"{name} works on {kinds}, not on {data.spec.name}."
    if info.needs_labels and "train" not in data.labels:
        return f"{name} is conditional: it needs class labels, and {data.spec.name} has none."
    return None


def defaults_for(name: str, spec: DataSpec) -> TrainingDefaults:
    if spec.kind not in MODELS[name].defaults:
        raise ValueError(f"{name} does not work on {spec.name} ({spec.kind}).")
    return MODELS[name].defaults[spec.kind]


def build_model(name: str, spec: DataSpec, hidden: int | None = None, seed: int = 0) -> GenerativeModel:
    """A freshly initialised model for data described by ``spec`` (same seed, same weights)."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    if hidden is not None and not 4 <= hidden <= 4096:
        raise ValueError("The hidden width must be between 4 and 4096.")
    torch.manual_seed(seed)
    return MODELS[name].make(spec, hidden=hidden or defaults_for(name, spec).hidden)
