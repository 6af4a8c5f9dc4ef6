"""Fixed invertible maps between the data's native representation and the unconstrained space models work in.

Each map returns the log |det| of its Jacobian, so densities stay honest in the data's own units:
log p_x(x) = log p_y(f(x)) + log |det ∂f/∂x|.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec


class Standardize(nn.Module):
    """y = (x − μ) / σ with the training split's statistics; log |det| = −Σ log σ."""

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(spec.mean))
        self.register_buffer("std", torch.tensor(spec.std).clamp_min(1e-6))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = (x.flatten(1) - self.mean) / self.std
        return y, -self.std.log().sum().expand(len(x))

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.std + self.mean


class DequantizeLogit(nn.Module):
    """Discrete levels 0..L−1 → continuous logits, through uniform dequantization.

    v = (x + u) / L with u ~ U[0,1)^D, then y = logit(α + (1 − 2α) v). Because P(x) = ∫ p(x + u) du,
    Jensen gives log P(x) ≥ E_u[log p_y(y) + log |det ∂y/∂x|]: a flow on y is a *bound* on the discrete likelihood.
    """

    def __init__(self, spec: DataSpec, alpha: float = 0.05) -> None:
        super().__init__()
        assert spec.levels is not None
        self.levels = spec.levels
        self.alpha = alpha

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        v = (x.flatten(1) + torch.rand_like(x.flatten(1))) / self.levels
        p = self.alpha + (1 - 2 * self.alpha) * v
        y = torch.log(p) - torch.log1p(-p)
        # d y / d x = (1 − 2α) / (L · p (1 − p))
        log_det = math.log(1 - 2 * self.alpha) - math.log(self.levels) - torch.log(p) - torch.log1p(-p)
        return y, log_det.sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        v = (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        return torch.floor(v * self.levels).clamp(0, self.levels - 1)


def gaussian_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
