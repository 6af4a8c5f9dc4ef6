"""Generative adversarial networks (Goodfellow et al., 2014): a generator G(z) trained against a discriminator D(x).

    D maximises  E_data[log σ(D(x))] + E_z[log(1 − σ(D(G(z))))]
    G maximises  E_z[log σ(D(G(z)))]          (the non-saturating loss: strong gradients early on)

There is no likelihood: the model is compared with others by a two-sample test (MMD) on held-out data.
Images are modelled in [0, 1]; real pixels get uniform dequantization noise so D cannot win on discreteness alone.

On 2D points the registry's GAN draws z from 8 dimensions, its generator reads Fourier features of z
(``FourierFeatures``), and its samples come from an exponential moving average of the generator's weights
(Yazıcı et al., 2019, "The unusual effectiveness of averaging in GAN training"), θ̄ ← ρ θ̄ + (1 − ρ) θ after each
generator step: the players' oscillation around the equilibrium averages out of the samples, and the generator can
cut its latent space more sharply, so fewer samples fall between the data's modes (`bench_recognisable`, 20 s on
moons: indistinguishable from the data in 0 of 5 seeds before, 9 of 15 after).

``GAN`` also holds what its variants share: the generator and discriminator networks (both may read a condition
vector c, for the conditional GAN), the data transforms, sampling and the alternating step. A variant changes the two
losses (f-GAN, WGAN-GP), the optimiser's momentum or the number of discriminator steps per generator step.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel, mlp
from dgm_core.models.labels import join
from dgm_core.models.preprocess import Standardize


class GAN(GenerativeModel):
    loss_names = {"loss": "discriminator"}
    field_name = "D(x): probability that x is real"
    field_note = "over the discriminator's field; arrows: the generator's pull"
    arrows_name = "the generator's pull on a sample"
    field_range: tuple[float, float] | None = (0.0, 1.0)  # the field's fixed range, or None when only its shape counts
    betas = (0.5, 0.999)  # Adam's momentum: the usual GAN setting, less momentum keeps the players from overshooting
    critic_steps = 1  # discriminator steps per generator step

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 2,
        latent_dim: int | None = None,
        condition_dim: int = 0,
        dropout: float = 0.0,
        frequencies: int = 0,
        average: float = 0.0,
    ) -> None:
        """``dropout``: the chance of dropping each hidden unit of the discriminator while training, which keeps it
        from winning outright (a conditional discriminator on digits otherwise does, and the generator stalls).
        ``frequencies`` F > 0: the generator reads ``FourierFeatures`` of its input at F octaves. ``average`` ρ > 0:
        samples come from the running average of the generator's weights, θ̄ ← ρ θ̄ + (1 − ρ) θ per generator step."""
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.latent_dim = latent_dim or (16 if self.discrete else 2)
        generator_sizes = [self.latent_dim + condition_dim] + [hidden] * layers + [spec.dim]
        self.generator = mlp(generator_sizes, frequencies=frequencies)
        self.average = average
        self.generator_average = copy.deepcopy(self.generator).requires_grad_(False) if average else None
        if average:
            self.sampling_cost = f"one pass of the generator's running average (ρ = {average:g})"
        discriminator_sizes = [spec.dim + condition_dim] + [hidden] * layers + [1]
        self.discriminator = mlp(discriminator_sizes, activation=nn.LeakyReLU, dropout=dropout)
        self.standardize = None if self.discrete else Standardize(spec)
        self.capabilities = Capabilities(
            likelihood="none",
            latent_dim=self.latent_dim,
            field=not self.discrete and not condition_dim,
            players=not condition_dim,
        )

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [
            torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=self.betas, foreach=True),
            torch.optim.Adam(self.generator.parameters(), lr=lr, betas=self.betas, foreach=True),
        ]

    # --- the two players, in the space D sees: [0, 1] for images, standardised coordinates for points ----------------
    def _generate(self, z: Tensor, condition: Tensor | None = None, averaged: bool = False) -> Tensor:
        """G(z) from the generator being trained, or (``averaged``) from its running average when it keeps one."""
        generator = self.generator_average if averaged and self.generator_average is not None else self.generator
        out = generator(join(z, condition))
        return torch.sigmoid(out) if self.discrete else out

    def _fake(self, n: int, condition: Tensor | None = None, averaged: bool = False) -> Tensor:
        return self._generate(torch.randn(n, self.latent_dim, device=self.device), condition, averaged)

    def _critic(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The discriminator's raw output V(x), one number per item."""
        return self.discriminator(join(x, condition)).squeeze(-1)

    def _real(self, x: Tensor) -> Tensor:
        if self.discrete:
            return (x.flatten(1) + torch.rand_like(x.flatten(1))) / self.spec.levels
        return self.standardize(x)[0]

    # --- the losses (variants override these two) ---------------------------------------------------------------
    def _discriminator_terms(self, real: Tensor, fake: Tensor, condition: Tensor | None = None) -> dict[str, Tensor]:
        """The discriminator's "loss" −log σ(D(x)) − log(1 − σ(D(G(z)))) (softplus for stability), and any other
        terms worth showing."""
        loss = F.softplus(-self._critic(real, condition)).mean() + F.softplus(self._critic(fake, condition)).mean()
        return {"loss": loss}

    def _generator_loss(self, fake: Tensor, condition: Tensor | None = None) -> Tensor:
        """The non-saturating −log σ(D(G(z)))."""
        return F.softplus(-self._critic(fake, condition)).mean()

    # --- training -----------------------------------------------------------------------------------------------
    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """The discriminator's loss ("loss") and the generator's, for the current players (no update)."""
        return self._losses(x, None)

    def _losses(self, x: Tensor, condition: Tensor | None) -> dict[str, Tensor]:
        fake = self._fake(len(x), condition)
        terms = self._discriminator_terms(self._real(x), fake.detach(), condition)
        return {**terms, "generator": self._generator_loss(fake, condition)}

    def train_step(self, x: Tensor, optimizers: list[torch.optim.Optimizer]) -> dict[str, Tensor]:
        return self._adversarial_step(x, optimizers, None)

    def _adversarial_step(
        self, x: Tensor, optimizers: list[torch.optim.Optimizer], condition: Tensor | None
    ) -> dict[str, Tensor]:
        """``critic_steps`` discriminator steps, then one generator step.

        The batch is split into ``critic_steps`` parts: each discriminator step compares one part with as many fresh
        fakes, so a training step reads one batch of data whatever the number of discriminator steps (each item is
        seen once). The generator step then draws a fresh full batch of fakes.
        """
        d_optimizer, g_optimizer = optimizers
        real = self._real(x)
        for part in torch.arange(len(x), device=x.device).chunk(self.critic_steps):
            terms = self._discriminator_step(real[part], d_optimizer, None if condition is None else condition[part])
        g_loss = self._generator_step(len(x), g_optimizer, condition)
        return {**terms, "generator": g_loss}

    def step_player(self, x: Tensor, optimizers: list[torch.optim.Optimizer], player: str) -> float:
        """One step of one player alone on the batch x: the discriminator against as many fresh fakes, or the
        generator on a fresh batch of its own. Returns that player's loss before the step."""
        d_optimizer, g_optimizer = optimizers
        if player == "discriminator":
            return float(self._discriminator_step(self._real(x), d_optimizer, None)["loss"])
        if player == "generator":
            return float(self._generator_step(len(x), g_optimizer, None))
        raise ValueError(f"A GAN's players are the discriminator and the generator, not {player!r}.")

    def _discriminator_step(
        self, real: Tensor, optimizer: torch.optim.Optimizer, condition: Tensor | None
    ) -> dict[str, Tensor]:
        with torch.no_grad():
            fake = self._fake(len(real), condition)
        terms = self._discriminator_terms(real, fake, condition)
        descend(optimizer, terms["loss"])
        return {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, n: int, optimizer: torch.optim.Optimizer, condition: Tensor | None) -> Tensor:
        loss = self._generator_loss(self._fake(n, condition), condition)
        descend(optimizer, loss)
        if self.generator_average is not None:
            with torch.no_grad():
                torch._foreach_lerp_(
                    list(self.generator_average.parameters()), list(self.generator.parameters()), 1 - self.average
                )
        return loss.detach()

    def for_arena(self) -> GAN:
        """A copy of both players whose samples come from the generator being stepped: a running average would
        hide what one generator step does."""
        arena = copy.deepcopy(self)
        arena.average, arena.generator_average = 0.0, None
        return arena

    # --- how it works: the discriminator's field and the generator's pull (2D points) ------------------------------
    @torch.no_grad()
    def field(self, x: Tensor) -> Tensor:
        """The discriminator's judgement of points ``x`` (N, 2) in data units, (N,): σ(D(x)), the probability it
        gives x of being real (variants whose critic is not a probability show its raw value)."""
        return torch.sigmoid(self._critic(self._real(x)))

    def field_arrows(self, n: int) -> tuple[Tensor, Tensor]:
        """n samples x = G(z) in data units and −∂ℓ/∂x at each, ℓ the generator's loss for that one sample: the way
        (in data units) in which the next generator step moves each sample, through the discriminator's gradient."""
        self.eval()
        with torch.no_grad():
            x = self.standardize.inverse(self._fake(n))
        x.requires_grad_(True)
        per_sample_sum = self._generator_loss(self._real(x)) * n  # each sample's loss depends on it alone
        (gradient,) = torch.autograd.grad(per_sample_sum, x)
        return x.detach(), -gradient

    # --- what the family offers ---------------------------------------------------------------------------------
    def decode(self, z: Tensor) -> Tensor:
        """G(z) in data units (images: continuous levels in [0, L − 1]), from the running average when kept."""
        return self._to_data(self._generate(z, averaged=True), quantize=False)

    def sample(self, n: int) -> Tensor:
        return self._to_data(self._fake(n, averaged=True), quantize=True)

    def _to_data(self, out: Tensor, quantize: bool) -> Tensor:
        """Generator output → data units; images as integer levels when ``quantize``."""
        if not self.discrete:
            return self.standardize.inverse(out)
        levels = torch.floor(out * self.spec.levels) if quantize else out * self.spec.levels - 0.5
        return levels.clamp(0, self.spec.levels - 1).reshape(len(out), *self.spec.shape)


def descend(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One gradient step of ``optimizer`` on ``loss`` (gradients reset first)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
