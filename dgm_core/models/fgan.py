"""f-GAN (Nowozin et al., 2016): a GAN for any f-divergence D_f(P‖Q) = ∫ q(x) f(p(x)/q(x)) dx, f convex, f(1) = 0.

Fenchel duality f(u) = sup_t [t u − f*(t)] gives the variational lower bound the discriminator T maximises,

    D_f(P‖Q) ≥ F(T) = E_P[T(x)] − E_Q[f*(T(x))],   with equality at T*(x) = f′(p(x)/q(x)),

P the data and Q the generator's distribution. T = g_f(V(x)) is the network's raw output V passed through an output
activation g_f that keeps it inside the domain of f*. The table of the paper (g_f, f*, and the optimal V*):

    KL(P‖Q)     f(u) = u log u                       g_f(v) = v                  f*(t) = exp(t − 1)     V* = 1 + log p/q
    reverse KL  f(u) = −log u                        g_f(v) = −exp(−v)           f*(t) = −1 − log(−t)   V* = log p/q
    JS          f(u) = u log u − (u+1) log((u+1)/2)  g_f(v) = log 2 − log(1+e⁻ᵛ)  f*(t) = −log(2 − eᵗ)   V* = log p/q
    GAN         f(u) = u log u − (u+1) log(u+1)      g_f(v) = −log(1 + e⁻ᵛ)      f*(t) = −log(1 − eᵗ)   V* = log p/q

The JS row's D_f is 2·JS(P‖Q) ∈ [0, log 4]; the GAN row's is 2·JS(P‖Q) − log 4 (Goodfellow's original objective).
The generator maximises E_Q[g_f(V(G(z)))] instead of minimising F, the paper's non-saturating choice: strong
gradients while the discriminator wins. KL(P‖Q) covers every mode of the data; reverse KL is content with one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.gan import GAN

LOG_2 = math.log(2)


@dataclass(frozen=True)
class Divergence:
    """One row of the table: the output activation g_f, the conjugate f*, and f*(g_f(v)) written to stay finite."""

    activation: Callable[[Tensor], Tensor]
    conjugate: Callable[[Tensor], Tensor]
    conjugate_of_activation: Callable[[Tensor], Tensor]


DIVERGENCES = {
    "KL": Divergence(lambda v: v, lambda t: torch.exp(t - 1), lambda v: torch.exp(v - 1)),
    "reverse KL": Divergence(lambda v: -torch.exp(-v), lambda t: -1 - torch.log(-t), lambda v: v - 1),
    "JS": Divergence(
        lambda v: LOG_2 - F.softplus(-v), lambda t: -torch.log(2 - torch.exp(t)), lambda v: F.softplus(v) - LOG_2
    ),
    "GAN": Divergence(lambda v: -F.softplus(-v), lambda t: -torch.log1p(-torch.exp(t)), F.softplus),
}


class FGAN(GAN):
    field_range = None
    field_name = "T(x) = g_f(V(x)): the divergence's witness, higher = judged more like the data"

    def __init__(
        self, spec: DataSpec, hidden: int = 128, layers: int = 2, latent_dim: int | None = None, divergence: str = "JS"
    ) -> None:
        if divergence not in DIVERGENCES:
            raise ValueError(f"Unknown divergence {divergence!r}; choose one of: {', '.join(DIVERGENCES)}")
        super().__init__(spec, hidden, layers, latent_dim)
        self.divergence = divergence
        self.f = DIVERGENCES[divergence]

    def variational_bound(self, real: Tensor, fake: Tensor) -> Tensor:
        """F(T) = E_P[g_f(V(x))] − E_Q[f*(g_f(V(x)))] from data and generated items: a lower bound on D_f(P‖Q)."""
        return self.f.activation(self._critic(real)).mean() - self.f.conjugate_of_activation(self._critic(fake)).mean()

    def _discriminator_terms(self, real: Tensor, fake: Tensor, condition: Tensor | None = None) -> dict[str, Tensor]:
        bound = self.variational_bound(real, fake)
        return {"loss": -bound, "divergence": bound}

    def _generator_loss(self, fake: Tensor, condition: Tensor | None = None) -> Tensor:
        """−E_Q[g_f(V(G(z)))]."""
        return -self.f.activation(self._critic(fake)).mean()

    @torch.no_grad()
    def field(self, x: Tensor) -> Tensor:
        """T(x) = g_f(V(x)), the variational function whose mean gap between data and samples bounds D_f."""
        return self.f.activation(self._critic(self._real(x)))
