"""Latent-variable models: p(x) = ∫ p(x | z) p(z) dz with z ~ N(0, I), trained on the evidence lower bound

    log p(x) ≥ ELBO(x) = E_q(z|x)[log p(x | z)] − KL(q(z|x) ‖ p(z)),

with a Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)) and the reparameterisation z = μ + σ ⊙ ε (Kingma & Welling, 2014).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel, mlp
from dgm_core.models.preprocess import Standardize


class VAE(GenerativeModel):
    """Decoder: categorical over the L levels of each pixel for images; a diagonal Gaussian for real values."""

    def __init__(self, spec: DataSpec, hidden: int = 256, layers: int = 2, latent_dim: int | None = None) -> None:
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.latent_dim = latent_dim or (8 if self.discrete else 2)
        self.outputs_per_dim = spec.levels if self.discrete else 2
        self.encoder = mlp([spec.dim] + [hidden] * layers + [2 * self.latent_dim])
        self.decoder = mlp([self.latent_dim] + [hidden] * layers + [spec.dim * self.outputs_per_dim])
        self.standardize = None if self.discrete else Standardize(spec)
        self.capabilities = Capabilities(
            likelihood="bound", likelihood_name="ELBO", latent_dim=self.latent_dim, encoder=True
        )

    def _posterior(self, u: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.encoder(u).chunk(2, dim=-1)
        return mean, log_var.clamp(-12.0, 8.0)

    def _decoder_params(self, z: Tensor) -> Tensor:
        """(N, P, D): per-pixel logits (P = L), or per-coordinate mean and log-std (P = 2)."""
        return self.decoder(z).reshape(len(z), self.outputs_per_dim, self.spec.dim)

    def _log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x | z) summed over dimensions, in the data's own units."""
        if self.discrete:
            return params.log_softmax(1).gather(1, x.flatten(1).long()[:, None, :]).sum((1, 2))
        y, log_det = self.standardize(x)
        mean, log_std = params[:, 0], params[:, 1].clamp(-7.0, 5.0)
        log_normal = -0.5 * ((y - mean) * torch.exp(-log_std)).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        return log_normal.sum(1) + log_det

    def _network_input(self, x: Tensor) -> Tensor:
        return x.flatten(1) / (self.spec.levels - 1) if self.discrete else self.standardize(x)[0]

    def elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """One-sample reconstruction log-likelihood and the analytic KL(q(z|x) ‖ N(0, I)), per item."""
        mean, log_var = self._posterior(self._network_input(x))
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        return self._log_likelihood(self._decoder_params(z), x), kl

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        reconstruction, kl = self.elbo_terms(x)
        dim = self.spec.dim
        return {
            "loss": (kl - reconstruction).mean() / dim,
            "recon": -reconstruction.mean() / dim,
            "kl": kl.mean() / dim,
        }

    def log_prob(self, x: Tensor, n_samples: int = 4) -> Tensor:
        """The ELBO (a lower bound on log p(x)), averaged over ``n_samples`` draws of z to reduce its noise."""
        total = torch.zeros(len(x), device=x.device)
        for _ in range(n_samples):
            reconstruction, kl = self.elbo_terms(x)
            total = total + reconstruction - kl
        return total / n_samples

    def iwae_bound(self, x: Tensor, k: int) -> Tensor:
        """The importance-weighted bound (Burda et al., 2016), per item:

            IWAE_k(x) = E[log (1/k) Σ_i p(x, z_i) / q(z_i | x)],  z_i ~ q(z | x),

        with ELBO = IWAE_1 ≤ IWAE_k ≤ IWAE_{k+1} → log p(x) as k → ∞.
        """
        mean, log_var = self._posterior(self._network_input(x))
        std = torch.exp(0.5 * log_var)
        eps = torch.randn(k, *mean.shape, device=x.device)
        z = mean + std * eps  # (k, N, latent)
        log_q = (-0.5 * eps.pow(2) - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prior = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
        params = self._decoder_params(z.flatten(0, 1))
        log_likelihood = self._log_likelihood(params, x.repeat(k, *([1] * (x.dim() - 1)))).reshape(k, len(x))
        return torch.logsumexp(log_likelihood + log_prior - log_q, dim=0) - math.log(k)

    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean μ(x)."""
        return self._posterior(self._network_input(x))[0]

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean E[x | z] (images: the expected level of each pixel)."""
        params = self._decoder_params(z)
        if self.discrete:
            levels = torch.arange(self.spec.levels, device=z.device, dtype=z.dtype)
            mean = (params.softmax(1) * levels[None, :, None]).sum(1)
            return mean.reshape(len(z), *self.spec.shape)
        return self.standardize.inverse(params[:, 0])

    def sample(self, n: int) -> Tensor:
        """z ~ N(0, I), then x ~ p(x | z): honest draws from the model the ELBO scores, pixel noise included."""
        params = self._decoder_params(torch.randn(n, self.latent_dim, device=self.device))
        if self.discrete:
            levels = torch.distributions.Categorical(logits=params.transpose(1, 2)).sample()
            return levels.float().reshape(n, *self.spec.shape)
        mean, log_std = params[:, 0], params[:, 1].clamp(-7.0, 5.0)
        return self.standardize.inverse(mean + torch.randn_like(mean) * log_std.exp())


class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al., 2016): the same model as the VAE, trained on the tighter
    k-sample bound IWAE_k instead of the ELBO, and scored on it."""

    def __init__(
        self, spec: DataSpec, hidden: int = 256, layers: int = 2, latent_dim: int | None = None, k: int = 8
    ) -> None:
        super().__init__(spec, hidden, layers, latent_dim)
        self.k = k
        self.capabilities = replace(self.capabilities, likelihood_name=f"IWAE bound (k={k})")

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        return {"loss": -self.iwae_bound(x, self.k).mean() / self.spec.dim}

    def log_prob(self, x: Tensor) -> Tensor:
        return self.iwae_bound(x, self.k)
