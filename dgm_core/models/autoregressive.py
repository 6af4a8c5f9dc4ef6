"""Autoregressive models: p(x) = Π_i p(x_i | x_<i), an exact likelihood computed in one pass.

MADE (Germain et al., 2015) gets all D conditionals from one MLP whose weight masks let output i see only inputs < i:
each unit gets a degree m; a hidden unit may see inputs with degree ≤ m, an output of degree d only units with m < d.
Sampling needs D sequential passes, one per dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.preprocess import Standardize


class MaskedLinear(nn.Linear):
    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(dim: int, hidden: int, layers: int, outputs_per_dim: int) -> list[Tensor]:
    """Masks (out × in) for inputs of degrees 1..D, hidden units cycling through 1..D−1, and outputs of degree d
    repeated ``outputs_per_dim`` times (output index p·D + d belongs to dimension d)."""
    input_degrees = torch.arange(1, dim + 1)
    degrees = [input_degrees] + [torch.arange(hidden) % max(dim - 1, 1) + 1 for _ in range(layers)]
    masks = [later[:, None] >= earlier[None, :] for earlier, later in zip(degrees[:-1], degrees[1:])]
    output_degrees = input_degrees.repeat(outputs_per_dim)
    masks.append(output_degrees[:, None] > degrees[-1][None, :])
    return masks


def masked_mlp(masks: list[Tensor]) -> nn.Sequential:
    """MaskedLinear layers with SiLU between them (none after the last): the network of a MADE."""
    modules: list[nn.Module] = []
    for mask in masks:
        modules += [MaskedLinear(mask), nn.SiLU()]
    return nn.Sequential(*modules[:-1])


class MADE(GenerativeModel):
    """Categorical conditionals over the L levels of each pixel, or a K-component Gaussian mixture for real values."""

    sampling_cost = "D sequential passes"

    def __init__(self, spec: DataSpec, hidden: int = 128, layers: int = 2, components: int = 10) -> None:
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.params_per_dim = spec.levels if self.discrete else 3 * components
        self.net = masked_mlp(made_masks(spec.dim, hidden, layers, self.params_per_dim))
        self.standardize = None if self.discrete else Standardize(spec)
        self.capabilities = Capabilities(likelihood="exact")

    def _network_input(self, x: Tensor) -> Tensor:
        return x.flatten(1) / (self.spec.levels - 1) if self.discrete else x

    def _params(self, u: Tensor) -> Tensor:
        """(N, P, D): the parameters of every conditional p(x_d | x_<d)."""
        return self.net(u).reshape(len(u), self.params_per_dim, self.spec.dim)

    def log_prob(self, x: Tensor) -> Tensor:
        if self.discrete:
            logits = self._params(self._network_input(x))
            picked = logits.log_softmax(1).gather(1, x.flatten(1).long()[:, None, :])
            return picked.sum((1, 2))
        y, log_det = self.standardize(x)
        return _mixture_log_prob(self._params(y), y).sum(1) + log_det

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        return {"loss": -self.log_prob(x).mean() / self.spec.dim}

    def sample(self, n: int) -> Tensor:
        """Ancestral sampling, one dimension per pass: x_d ~ p(x_d | x_<d)."""
        u = torch.zeros(n, self.spec.dim, device=self.device)
        for d in range(self.spec.dim):
            params = self._params(u)[:, :, d]
            if self.discrete:
                level = torch.multinomial(params.softmax(-1), 1).squeeze(1)
                u[:, d] = level / (self.spec.levels - 1)
            else:
                u[:, d] = _mixture_sample(params)
        if self.discrete:
            return (u * (self.spec.levels - 1)).round().reshape(n, *self.spec.shape)
        return self.standardize.inverse(u)


def _split_mixture(params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    logits, means, log_scales = params.chunk(3, dim=1)
    return logits.log_softmax(1), means, log_scales.clamp(-7.0, 5.0)


def _mixture_log_prob(params: Tensor, y: Tensor) -> Tensor:
    """log Σ_k π_k N(y; μ_k, σ_k²) per dimension, for params (N, 3K, D) and y (N, D)."""
    log_weights, means, log_scales = _split_mixture(params)
    z = (y[:, None, :] - means) * torch.exp(-log_scales)
    log_normal = -0.5 * z.pow(2) - log_scales - 0.5 * torch.log(torch.tensor(2 * torch.pi))
    return torch.logsumexp(log_weights + log_normal, dim=1)


def _mixture_sample(params: Tensor) -> Tensor:
    """One draw per row from the mixture with params (N, 3K)."""
    log_weights, means, log_scales = _split_mixture(params[:, :, None])
    k = torch.multinomial(log_weights.squeeze(-1).exp(), 1)
    mean, log_scale = means.squeeze(-1).gather(1, k), log_scales.squeeze(-1).gather(1, k)
    return (mean + torch.randn_like(mean) * log_scale.exp()).squeeze(1)
