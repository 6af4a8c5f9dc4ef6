"""Mode coverage: on data made of well-separated Gaussian modes (8gaussians), how many modes a sampler's points reach
— mode collapse as a number, not only a picture.

A sample belongs to mode k when it lies within 3σ of the mode's centre (a 2D Gaussian keeps 98.9 % of its mass
there); mode k is covered when it holds at least ``min_share`` of all samples, by default a quarter of the fair share
1/K. Samples of the data itself cover every mode; a collapsed GAN covers one or a few.

    coverage = mode_coverage(samples, "8gaussians")    # None for data without such modes
    f"{coverage.covered} of {coverage.modes} modes"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from dgm_core.data.toy2d import mixture_modes

RADIUS_STDS = 3.0


@dataclass(frozen=True)
class ModeCoverage:
    shares: tuple[float, ...]  # share of all samples within 3σ of each mode
    min_share: float  # what a mode must hold to count as covered

    @property
    def modes(self) -> int:
        return len(self.shares)

    @property
    def covered(self) -> int:
        return sum(share >= self.min_share for share in self.shares)


def mode_coverage(samples: Tensor | np.ndarray, dataset: str, min_share: float | None = None) -> ModeCoverage | None:
    """Which of the data set's modes the samples (N, 2) reach, or None when the data set has no such modes."""
    modes = mixture_modes(dataset)
    if modes is None:
        return None
    centres, std = modes
    points = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=-1)  # (N, K)
    near = distances <= RADIUS_STDS * std
    shares = tuple(float(share) for share in near.mean(0)) if len(points) else (0.0,) * len(centres)
    return ModeCoverage(shares, 0.25 / len(centres) if min_share is None else min_share)
