"""The eight 2D toy densities of the flow literature, matching FFJORD's generators in name and parameters.

Each generator draws from a fixed distribution; ``ENTROPY_NATS`` holds its differential entropy
(Monte Carlo and grid integration agree within 0.002 nats), the floor under every honest test NLL.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# A generator's data is free, so the 2D splits are large. With 20,000 training points a spline flow overfits within a
# minute (circles after 60 s: train 3.250 < entropy 3.268 < test 3.295 nats); with 200,000 train and test stay within
# 0.003. 50,000 test points put the test mean's sampling error (std of log p / √n) near 0.003 nats.
SPLIT_SIZES = {"train": 200_000, "val": 10_000, "test": 50_000}

DESCRIPTIONS = {
    "moons": "Two interleaved half circles with Gaussian noise (σ=0.1), scaled ×2.",
    "8gaussians": "Eight Gaussians (σ=0.5) on a circle of radius 4, divided by √2.",
    "checkerboard": "Uniform on 8 squares of a 4×4 checkerboard: entropy exactly log 32.",
    "pinwheel": "Five curved arms: radial and tangential Gaussian noise, bent by an exponential angle.",
    "2spirals": "Two interleaved spirals with uniform and Gaussian jitter.",
    "rings": "Four concentric rings (radii 3, 2.25, 1.5, 0.75) with Gaussian noise (σ=0.08).",
    "circles": "Two concentric circles (factor 0.5, noise 0.08), scaled ×3.",
    "swissroll": "A swiss roll seen from above: scikit-learn's, noise 1.0, divided by 5.",
}

ENTROPY_NATS = {
    "checkerboard": 3.466,
    "8gaussians": 2.832,
    "rings": 2.623,
    "moons": 2.394,
    "circles": 3.268,
    "swissroll": 2.670,
    "pinwheel": 2.317,
    "2spirals": 2.644,
}


def sample(name: str, n: int, rng: np.random.RandomState) -> np.ndarray:
    """n points of the named density, float32 of shape (n, 2)."""
    from sklearn.datasets import make_circles, make_moons, make_swiss_roll  # ~1 s to import: when first needed

    if name == "moons":
        x = make_moons(n_samples=n, noise=0.1, random_state=rng)[0]
        return x * 2 + np.array([-1, -0.2])
    if name == "circles":
        return make_circles(n_samples=n, factor=0.5, noise=0.08, random_state=rng)[0] * 3
    if name == "swissroll":
        return make_swiss_roll(n_samples=n, noise=1.0, random_state=rng)[0][:, [0, 2]] / 5
    if name == "8gaussians":
        centers, std = mixture_modes(name)
        return centers[rng.randint(8, size=n)] + std * rng.randn(n, 2)
    if name == "rings":
        per_ring = [n - 3 * (n // 4)] + [n // 4] * 3
        rings = []
        for radius, count in zip([0.25, 0.5, 0.75, 1.0], per_ring):
            t = np.linspace(0, 2 * np.pi, count, endpoint=False)
            rings.append(radius * np.stack([np.cos(t), np.sin(t)], 1))
        x = rng.permutation(np.concatenate(rings)) * 3.0
        return x + rng.normal(scale=0.08, size=x.shape)
    if name == "pinwheel":
        return _pinwheel(n, rng)
    if name == "2spirals":
        half = n // 2
        t = np.sqrt(rng.rand(half, 1)) * 540 * (2 * np.pi) / 360
        arm = np.hstack([-np.cos(t) * t + rng.rand(half, 1) * 0.5, np.sin(t) * t + rng.rand(half, 1) * 0.5])
        x = np.vstack([arm, -arm]) / 3
        return x + rng.randn(*x.shape) * 0.1
    if name == "checkerboard":
        x1 = rng.rand(n) * 4 - 2
        x2 = rng.rand(n) - rng.randint(0, 2, n) * 2 + np.floor(x1) % 2
        return np.stack([x1, x2], 1) * 2
    raise ValueError(f"Unknown 2D data set {name!r}")


def _pinwheel(n: int, rng: np.random.RandomState) -> np.ndarray:
    radial_std, tangential_std, arms, rate = 0.3, 0.1, 5, 0.25
    per_arm = n // arms
    features = rng.randn(arms * per_arm, 2) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    labels = np.repeat(np.arange(arms), per_arm)
    angles = np.linspace(0, 2 * np.pi, arms, endpoint=False)[labels] + rate * np.exp(features[:, 0])
    rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)]).T.reshape(-1, 2, 2)
    return 2 * rng.permutation(np.einsum("ti,tij->tj", features, rotations))


def make_splits(name: str, seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
    """Train / validation / test drawn independently from one seeded generator."""
    rng = np.random.RandomState(seed)
    splits = {split: torch.as_tensor(sample(name, n, rng), dtype=torch.float32) for split, n in SPLIT_SIZES.items()}
    return splits, {}, {"entropy_nats": ENTROPY_NATS[name]}


def mixture_modes(name: str) -> tuple[np.ndarray, float] | None:
    """The component means (K, 2) and common std of a set drawn from well-separated Gaussians (8gaussians: eight on a
    circle of radius 4, σ = 0.5, all divided by 1.414), or None for the others."""
    if name != "8gaussians":
        return None
    angles = np.arange(8) * np.pi / 4
    return 4 * np.stack([np.cos(angles), np.sin(angles)], 1) / 1.414, 0.5 / 1.414
