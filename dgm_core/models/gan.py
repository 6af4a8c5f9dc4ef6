"""Generative adversarial networks (Goodfellow et al., 2014): a generator G(z) trained against a discriminator D(x).

    D maximises  E_data[log σ(D(x))] + E_z[log(1 − σ(D(G(z))))]
    G maximises  E_z[log σ(D(G(z)))]          (the non-saturating loss: strong gradients early on)

There is no likelihood: the model is compared with others by a two-sample test (MMD) on held-out data.
Images are modelled in [0, 1]; real pixels get uniform dequantization noise so D cannot win on discreteness alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel, mlp
from dgm_core.models.preprocess import Standardize


class GAN(GenerativeModel):
    def __init__(self, spec: DataSpec, hidden: int = 128, layers: int = 2, latent_dim: int | None = None) -> None:
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.latent_dim = latent_dim or (16 if self.discrete else 2)
        self.generator = mlp([self.latent_dim] + [hidden] * layers + [spec.dim])
        self.discriminator = mlp([spec.dim] + [hidden] * layers + [1], activation=nn.LeakyReLU)
        self.standardize = None if self.discrete else Standardize(spec)
        self.capabilities = Capabilities(likelihood="none", latent_dim=self.latent_dim)

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        betas = (0.5, 0.999)  # the usual GAN setting: less momentum keeps the two players from overshooting
        return [
            torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
            torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
        ]

    def _generate(self, z: Tensor) -> Tensor:
        """Generator output in the space D sees: [0, 1] for images, standardised coordinates for points."""
        out = self.generator(z)
        return torch.sigmoid(out) if self.discrete else out

    def _real(self, x: Tensor) -> Tensor:
        if self.discrete:
            return (x.flatten(1) + torch.rand_like(x.flatten(1))) / self.spec.levels
        return self.standardize(x)[0]

    def _discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """−log σ(D(x)) − log(1 − σ(D(G(z)))), written with softplus for stability."""
        return F.softplus(-self.discriminator(real)).mean() + F.softplus(self.discriminator(fake.detach())).mean()

    def _generator_loss(self, fake: Tensor) -> Tensor:
        """The non-saturating −log σ(D(G(z)))."""
        return F.softplus(-self.discriminator(fake)).mean()

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """The discriminator's loss ("loss") and the generator's, for the current players (no update)."""
        fake = self._generate(torch.randn(len(x), self.latent_dim, device=x.device))
        return {"loss": self._discriminator_loss(self._real(x), fake), "generator": self._generator_loss(fake)}

    def train_step(self, x: Tensor, optimizers: list[torch.optim.Optimizer]) -> dict[str, Tensor]:
        """One discriminator step, then one generator step on the same fake batch."""
        d_optimizer, g_optimizer = optimizers
        fake = self._generate(torch.randn(len(x), self.latent_dim, device=x.device))
        d_loss = self._discriminator_loss(self._real(x), fake)
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        g_loss = self._generator_loss(fake)
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()
        return {"loss": d_loss.detach(), "generator": g_loss.detach()}

    def decode(self, z: Tensor) -> Tensor:
        """G(z) in data units (images: continuous levels in [0, L − 1])."""
        out = self._generate(z)
        if self.discrete:
            return (out * self.spec.levels - 0.5).clamp(0, self.spec.levels - 1).reshape(len(z), *self.spec.shape)
        return self.standardize.inverse(out)

    def sample(self, n: int) -> Tensor:
        out = self._generate(torch.randn(n, self.latent_dim, device=self.device))
        if self.discrete:
            levels = torch.floor(out * self.spec.levels).clamp(0, self.spec.levels - 1)
            return levels.reshape(n, *self.spec.shape)
        return self.standardize.inverse(out)
