"""What every normalizing flow shares: an invertible map f from data x to a Gaussian z, and the change of variables

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.

f is a fixed preprocessing map (standardisation for points, dequantization + logit for pixels) followed by a stack of
learned bijections f = f_K ∘ … ∘ f_1. The log-determinant of a composition is the sum of the layers' log-determinants,
so each layer only has to report its own. The families below differ only in the layers they stack.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.preprocess import DequantizeLogit, Standardize, gaussian_log_prob


class Bijection(nn.Module):
    """An invertible layer on (N, D) tensors: ``forward(x) -> (y, log |det ∂y/∂x|)`` per item, ``inverse(y) -> x``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError


class Reverse(Bijection):
    """y = (x_D, …, x_1): a permutation, so |det| = 1. Lets the next layer condition in the opposite order."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flip(-1), x.new_zeros(len(x))

    def inverse(self, y: Tensor) -> Tensor:
        return y.flip(-1)


class FlowModel(GenerativeModel):
    """A flow: ``preprocess`` then ``layers``; exact log p(x) on points, a dequantization bound on pixels.

    Sampling runs the layers backwards from z ~ N(0, I); the latent space is the data's own dimension.
    """

    def __init__(self, spec: DataSpec, layers: Iterable[Bijection]) -> None:
        super().__init__(spec)
        discrete = spec.levels is not None
        self.preprocess: nn.Module = DequantizeLogit(spec) if discrete else Standardize(spec)
        self.layers = nn.ModuleList(layers)
        self.capabilities = Capabilities(
            likelihood="bound" if discrete else "exact",
            likelihood_name="dequantization bound" if discrete else "log-likelihood",
            latent_dim=spec.dim,
            encoder=True,
            layer_trajectory=not discrete,
        )

    def forward_flow(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(y) and log |det ∂z/∂y| for preprocessed inputs y."""
        log_det = torch.zeros(len(y), dtype=y.dtype, device=y.device)
        for layer in self.layers:
            y, layer_log_det = layer(y)
            log_det = log_det + layer_log_det
        return y, log_det

    def inverse_flow(self, z: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    # --- how it works: the layers one at a time (points) ----------------------------------------------------------
    @torch.no_grad()
    def layer_trajectory(self, z: Tensor) -> list[Tensor]:
        """The sampling pass stage by stage, K + 1 tensors (N, 2) in data units: the base draws z, then the points
        after undoing f_K, f_{K−1}, …, f_1 — the last are the samples x. (Each stage is shown through the fixed
        standardisation's inverse, so the first is the Gaussian as it sits in the data's window.)"""
        stages = [self.preprocess.inverse(z)]
        for layer in reversed(self.layers):
            z = layer.inverse(z)
            stages.append(self.preprocess.inverse(z))
        return stages

    @torch.no_grad()
    def layer_log_dets(self, x: Tensor) -> list[float]:
        """Each learned layer's mean log |det ∂f_k/∂(its input)| over items x, in the data-to-Gaussian order f_1 … f_K:
        where the flow stretches space (positive) and where it squeezes it."""
        y, _ = self.preprocess(x)
        means = []
        for layer in self.layers:
            y, log_det = layer(y)
            means.append(float(log_det.mean()))
        return means

    def log_prob(self, x: Tensor) -> Tensor:
        y, log_det_pre = self.preprocess(x)
        z, log_det = self.forward_flow(y)
        return gaussian_log_prob(z) + log_det + log_det_pre

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        return {"loss": -self.log_prob(x).mean() / self.spec.dim}

    def sample(self, n: int) -> Tensor:
        weight = next(self.parameters())
        return self.decode(torch.randn(n, self.spec.dim, dtype=weight.dtype, device=weight.device))

    def encode(self, x: Tensor) -> Tensor:
        """The exact latent z = f(x). Images are encoded at the centre x + ½ of their dequantization bin rather than
        at a random point of it, so the latent is deterministic and decode(encode(x)) = x."""
        if self.spec.levels is None:
            return self.forward_flow(self.preprocess(x)[0])[0]
        alpha = self.preprocess.alpha
        return self.forward_flow(torch.logit(alpha + (1 - 2 * alpha) * (x.flatten(1) + 0.5) / self.spec.levels))[0]

    def decode(self, z: Tensor) -> Tensor:
        return self.preprocess.inverse(self.inverse_flow(z)).reshape(len(z), *self.spec.shape)
