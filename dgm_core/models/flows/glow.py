"""Glow (Kingma & Dhariwal, 2018): each step is actnorm → an invertible linear mixing → an affine coupling.

Where RealNVP fixes which coordinates condition which (alternating masks), Glow learns how to mix them: a full D×D
matrix W between couplings. Its log-determinant would cost O(D³), so W is kept in LU form,

    W = P · L · (U + diag(σ ⊙ exp(s))),    log |det W| = Σ s,

with P a fixed permutation, L unit lower-triangular, U strictly upper-triangular and σ fixed signs: cheap to evaluate,
cheap to invert (two triangular solves) and invertible for every value of the parameters. On 8×8 digits with one
channel, W is the 64×64 matrix that a 1×1 convolution over a fully squeezed image would be.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.flows.base import Bijection, FlowModel
from dgm_core.models.flows.couplings import AffineCoupling, activation_for, alternating_masks


class ActNorm(Bijection):
    """y = (x − b) ⊙ exp(−s), log |det| = −Σ s: a per-coordinate affine map (batch norm without batch statistics).

    Data-dependent initialisation: on the first training batch (training mode, gradients on), b and exp(s) are set to
    that batch's mean and standard deviation, so every step starts with zero-mean, unit-variance outputs; afterwards b
    and s are ordinary parameters. Evaluating a fresh model (e.g. drawing its density under no_grad) leaves them alone.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        self.shift.copy_(x.mean(0))
        self.log_scale.copy_(x.std(0).clamp_min(1e-3).log())
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and torch.is_grad_enabled() and len(x) > 1 and not self.initialized:
            self.initialize(x)
        return (x - self.shift) * torch.exp(-self.log_scale), -self.log_scale.sum().expand(len(x))

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(self.log_scale) + self.shift


class InvertibleLinear(Bijection):
    """y = W x with W in LU form (see the module docstring); initialised to a random rotation, as in Glow."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(dim, dim))[0]
        permutation, lower, upper = torch.linalg.lu(rotation)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign", upper.diagonal().sign())
        self.register_buffer("lower_index", torch.tril_indices(dim, dim, -1))
        self.register_buffer("upper_index", torch.triu_indices(dim, dim, 1))
        self.lower = nn.Parameter(lower[tuple(self.lower_index)])  # only the free entries are parameters
        self.upper = nn.Parameter(upper[tuple(self.upper_index)])
        self.log_scale = nn.Parameter(upper.diagonal().abs().log())

    def factors(self) -> tuple[Tensor, Tensor]:
        """L (unit lower-triangular) and U + diag(σ ⊙ exp(s)) (upper-triangular, non-zero diagonal)."""
        eye = torch.eye(len(self.sign), dtype=self.sign.dtype, device=self.sign.device)
        lower = eye.index_put(tuple(self.lower_index), self.lower)
        upper = torch.diag(self.sign * self.log_scale.exp()).index_put(tuple(self.upper_index), self.upper)
        return lower, upper

    def weight(self) -> Tensor:
        lower, upper = self.factors()
        return self.permutation @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self.weight().T, self.log_scale.sum().expand(len(x))

    def inverse(self, y: Tensor) -> Tensor:
        """x = U⁻¹ L⁻¹ Pᵀ y by two triangular solves (no matrix inverse)."""
        lower, upper = self.factors()
        a = torch.linalg.solve_triangular(lower, self.permutation.T @ y.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, a, upper=True).T


class Glow(FlowModel):
    """Steps of actnorm → invertible linear (LU) → affine coupling."""

    def __init__(self, spec: DataSpec, hidden: int = 128, layers: int = 2, steps: int = 6) -> None:
        blocks: list[Bijection] = []
        for mask in alternating_masks(spec.dim, steps):
            blocks += [
                ActNorm(spec.dim),
                InvertibleLinear(spec.dim),
                AffineCoupling(mask, hidden, layers, activation_for(spec)),
            ]
        super().__init__(spec, blocks)
