"""Masked autoregressive flow (Papamakarios et al., 2017): a MADE network as an invertible layer.

Each layer reads data x and writes noise u one coordinate at a time, with a shift μ_i and a log-scale α_i that may
depend only on the coordinates before i:

    u_i = (x_i − μ_i(x_<i)) · exp(−α_i(x_<i)),    log |det ∂u/∂x| = −Σ_i α_i,

because ∂u/∂x is triangular. All μ_i, α_i come from one masked network pass, so the density costs one pass per layer;
the inverse x_i = u_i · exp(α_i) + μ_i needs x_<i first, so sampling costs D sequential passes per layer. (The inverse
autoregressive flow, IAF, makes the opposite trade.) Stacked layers alternate the order, so no coordinate is always
first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.autoregressive import made_masks, masked_mlp
from dgm_core.models.flows.base import Bijection, FlowModel, Reverse
from dgm_core.models.flows.couplings import Activation, activation_for


class MaskedAffineAutoregressive(Bijection):
    """u = (x − μ(x)) ⊙ exp(−α(x)) where μ_i, α_i see only x_<i; α = a · tanh(raw) is soft-clamped as in RealNVP."""

    def __init__(self, dim: int, hidden: int, layers: int, activation: Activation = nn.SiLU) -> None:
        super().__init__()
        self.dim = dim
        self.net = masked_mlp(made_masks(dim, hidden, layers, outputs_per_dim=2), activation)
        nn.init.zeros_(self.net[-1].weight)  # μ = α = 0: start as the identity map
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(dim))

    def shift_log_scale(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """μ(x), α(x), each (N, D); coordinate i is a function of x_<i only."""
        shift, raw = self.net(x).reshape(len(x), 2, self.dim).unbind(1)
        return shift, self.scale * torch.tanh(raw)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self.shift_log_scale(x)
        return (x - shift) * torch.exp(-log_scale), -log_scale.sum(-1)

    def inverse(self, u: Tensor) -> Tensor:
        """D passes of x ← u ⊙ exp(α(x)) + μ(x): pass i fixes coordinate i, since it depends on x_<i alone."""
        x = torch.zeros_like(u)
        for _ in range(self.dim):
            shift, log_scale = self.shift_log_scale(x)
            x = u * torch.exp(log_scale) + shift
        return x


class MAF(FlowModel):
    """Masked autoregressive transforms, the coordinate order reversed between consecutive ones."""

    sampling_cost = "D sequential passes"

    def __init__(self, spec: DataSpec, hidden: int = 128, layers: int = 2, transforms: int = 5) -> None:
        steps: list[Bijection] = []
        for i in range(transforms):
            steps += [Reverse()] if i > 0 else []
            steps.append(MaskedAffineAutoregressive(spec.dim, hidden, layers, activation_for(spec)))
        super().__init__(spec, steps)
