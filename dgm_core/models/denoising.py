"""Shared pieces of the models that denoise or follow a gradient field (diffusion, score-based, energy-based).

- ``NoiseConditionedMLP``: f(x, s) for a noise level or time s ∈ [0, 1], fed to the network as sinusoidal features.
- ``langevin_step``: one step of (unadjusted) Langevin dynamics, x ← x + η ∇ log p(x) + τ z with z ~ N(0, I);
  τ = √(2η) samples p exactly as η → 0, a smaller τ samples a colder p^(2η/τ²).
- ``dequantize`` / ``quantize``: integer levels 0..L−1 ↔ the unit cube, v = (x + u) / L with u ~ U[0, 1)^D.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dgm_core.models.base import mlp


def sinusoidal_embedding(level: Tensor, dim: int, max_frequency: float = 1000.0) -> Tensor:
    """(N,) levels in [0, 1] → (N, dim) features [sin(ω_k s), cos(ω_k s)], ω_k geometric from 1 to max_frequency."""
    frequencies = max_frequency ** torch.linspace(0, 1, dim // 2, device=level.device)
    angles = level[:, None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class NoiseConditionedMLP(nn.Module):
    """An MLP on [x, embedding(s)]: one network for every noise level (diffusion time or score scale)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        layers: int = 3,
        embedding_dim: int = 32,
        out_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.net = mlp([dim + embedding_dim] + [hidden] * layers + [out_dim or dim], dropout=dropout)

    def forward(self, x: Tensor, level: Tensor) -> Tensor:
        return self.net(torch.cat([x, sinusoidal_embedding(level, self.embedding_dim)], dim=1))


def langevin_step(x: Tensor, grad_log_p: Tensor, step_size: float, noise_scale: float | None = None) -> Tensor:
    """x + η ∇ log p(x) + τ z; τ defaults to √(2η), the Langevin diffusion whose stationary law is p."""
    tau = math.sqrt(2 * step_size) if noise_scale is None else noise_scale
    return x + step_size * grad_log_p + tau * torch.randn_like(x)


def dequantize(x: Tensor, levels: int) -> Tensor:
    """Integer levels (N, ...) → (N, D) in [0, 1): each level spread uniformly over its bin [x/L, (x+1)/L)."""
    flat = x.flatten(1)
    return (flat + torch.rand_like(flat)) / levels


def quantize(v: Tensor, levels: int, shape: tuple[int, ...]) -> Tensor:
    """(N, D) values in the unit cube → the level whose bin holds each value, as floats of shape (N, *shape)."""
    return torch.floor(v * levels).clamp(0, levels - 1).reshape(len(v), *shape)
