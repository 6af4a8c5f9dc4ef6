"""Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).

By Kantorovich–Rubinstein duality the earth mover's distance between data P and model Q is

    W(P, Q) = max over 1-Lipschitz D of  E_P[D(x)] − E_Q[D(x)],

so the critic D (no sigmoid: a score, not a probability) maximises that gap and the generator minimises
−E_z[D(G(z))]. Instead of clipping weights, the Lipschitz constraint is softened into a penalty on the critic's
gradient norm at random interpolates x̂ = ε x + (1 − ε) G(z), ε ~ U[0, 1]:

    critic loss = E_Q[D(x)] − E_P[D(x)] + λ E_x̂[(‖∇D(x̂)‖₂ − 1)²],   λ = 10.

The critic takes n_critic = 5 steps per generator step, each on a fifth of the batch (see ``GAN._adversarial_step``),
with Adam(β₁ = 0.5, β₂ = 0.9). The paper's β₁ = 0 (at its lr = 1e-4) oscillated here at the lr that learns moons in
400 steps (1e-3); a little momentum steadies it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.gan import GAN


def interpolates(real: Tensor, fake: Tensor) -> Tensor:
    """x̂ = ε real + (1 − ε) fake, one ε ~ U[0, 1] per pair of (N, D) rows: points on the lines between the two."""
    eps = torch.rand(len(real), 1, device=real.device)
    return eps * real + (1 - eps) * fake


def gradient_penalty(scores: Tensor, points: Tensor) -> Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] from the critic's scores D(x̂) at ``points`` x̂ (which must require gradients).

    Zero for any critic whose gradient has unit norm everywhere (e.g. D(x) = wᵀx + b with ‖w‖ = 1).
    """
    (gradient,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return (gradient.norm(dim=1) - 1).pow(2).mean()


class WGANGP(GAN):
    loss_names = {"loss": "critic"}
    field_range = None
    field_name = "critic D(x): higher = judged more like the data"
    betas = (0.5, 0.9)

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 2,
        latent_dim: int | None = None,
        critic_steps: int = 5,
        penalty: float = 10.0,
    ) -> None:
        super().__init__(spec, hidden, layers, latent_dim)
        self.critic_steps = critic_steps
        self.penalty = penalty

    def _discriminator_terms(self, real: Tensor, fake: Tensor, condition: Tensor | None = None) -> dict[str, Tensor]:
        """The critic's loss, its estimate of W(P, Q) = E_P[D] − E_Q[D], and the gradient penalty."""
        mixed = interpolates(real, fake).requires_grad_(True)
        real_score, fake_score, mixed_score = self._critic(torch.cat([real, fake, mixed])).split(
            [len(real), len(fake), len(mixed)]
        )  # one pass of the critic over all three
        wasserstein = real_score.mean() - fake_score.mean()
        penalty = gradient_penalty(mixed_score, mixed)
        return {"loss": -wasserstein + self.penalty * penalty, "wasserstein": wasserstein, "penalty": penalty}

    def _generator_loss(self, fake: Tensor, condition: Tensor | None = None) -> Tensor:
        return -self._critic(fake).mean()

    @torch.no_grad()
    def field(self, x: Tensor) -> Tensor:
        """The critic's value D(x): not a probability, only its differences mean something."""
        return self._critic(self._real(x))
