"""Normalizing flows: an invertible map f from data x to a Gaussian z, with the exact change of variables

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.

RealNVP (Dinh et al., 2017) builds f from affine couplings: half of the coordinates pass unchanged and set a scale
and shift for the other half, so the Jacobian is triangular and its log-determinant is the sum of the log-scales.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel, mlp
from dgm_core.models.preprocess import DequantizeLogit, Standardize, gaussian_log_prob


class AffineCoupling(nn.Module):
    """y = m ⊙ x + (1 − m) ⊙ (x ⊙ exp(s(m ⊙ x)) + t(m ⊙ x)),  log |det| = Σ (1 − m) ⊙ s."""

    def __init__(self, mask: Tensor, hidden: int, layers: int) -> None:
        super().__init__()
        dim = len(mask)
        self.register_buffer("mask", mask)
        self.net = mlp([dim] + [hidden] * layers + [2 * dim])
        nn.init.zeros_(self.net[-1].weight)  # start as the identity map
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(dim))

    def _scale_shift(self, x_fixed: Tensor) -> tuple[Tensor, Tensor]:
        raw_scale, shift = self.net(x_fixed).chunk(2, dim=-1)
        free = 1 - self.mask
        return self.scale * torch.tanh(raw_scale) * free, shift * free

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._scale_shift(x * self.mask)
        return x * torch.exp(s) + t, s.sum(-1)

    def inverse(self, y: Tensor) -> Tensor:
        s, t = self._scale_shift(y * self.mask)  # the fixed half is unchanged, so s and t can be recomputed
        return (y - t) * torch.exp(-s)


def alternating_masks(dim: int, count: int) -> list[Tensor]:
    """Masks that alternate between even and odd coordinates (for 2D: x₁ then x₂; for images a checkerboard)."""
    base = (torch.arange(dim) % 2).float()
    if dim == 64:  # 8×8 images: a true checkerboard, so each half sees its spatial neighbours
        rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
        base = ((rows + cols) % 2).flatten().float()
    return [base if i % 2 == 0 else 1 - base for i in range(count)]


class RealNVP(GenerativeModel):
    def __init__(self, spec: DataSpec, hidden: int = 128, layers: int = 2, couplings: int = 8) -> None:
        super().__init__(spec)
        discrete = spec.levels is not None
        self.preprocess: nn.Module = DequantizeLogit(spec) if discrete else Standardize(spec)
        self.couplings = nn.ModuleList(
            AffineCoupling(mask, hidden, layers) for mask in alternating_masks(spec.dim, couplings)
        )
        self.capabilities = Capabilities(
            likelihood="bound" if discrete else "exact",
            likelihood_name="dequantization bound" if discrete else "log-likelihood",
            latent_dim=spec.dim,
        )

    def forward_flow(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(y) and log |det ∂z/∂y| for preprocessed inputs y."""
        log_det = torch.zeros(len(y), device=y.device)
        for coupling in self.couplings:
            y, ld = coupling(y)
            log_det = log_det + ld
        return y, log_det

    def inverse_flow(self, z: Tensor) -> Tensor:
        for coupling in reversed(self.couplings):
            z = coupling.inverse(z)
        return z

    def log_prob(self, x: Tensor) -> Tensor:
        y, log_det_pre = self.preprocess(x)
        z, log_det = self.forward_flow(y)
        return gaussian_log_prob(z) + log_det + log_det_pre

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        return {"loss": -self.log_prob(x).mean() / self.spec.dim}

    def sample(self, n: int) -> Tensor:
        return self.decode(torch.randn(n, self.spec.dim, device=self.device))

    def encode(self, x: Tensor) -> Tensor:
        """The exact latent z = f(x) (for images: of one dequantized copy of x)."""
        return self.forward_flow(self.preprocess(x)[0])[0]

    def decode(self, z: Tensor) -> Tensor:
        return self.preprocess.inverse(self.inverse_flow(z)).reshape(len(z), *self.spec.shape)
