"""Latent-variable models: p(x) = ∫ p(x | z) p(z) dz, trained on the evidence lower bound

    log p(x) ≥ ELBO(x) = E_q(z|x)[log p(x | z)] − KL(q(z|x) ‖ p(z)),

with a Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)) and the reparameterisation z = μ + σ ⊙ ε (Kingma & Welling, 2014).
The prior p(z) is N(0, I), or a mixture of K Gaussians: learned ones,

    p(z) = (1/K) Σ_k N(z; m_k, diag s_k²)   (m_k, s_k trained with the networks),

or the VampPrior, the encoder's posteriors of K learned pseudo-inputs u_k, p(z) = (1/K) Σ_k q(z | u_k) (Tomczak &
Welling, 2018). A mixture puts the prior's mass where the encoder puts real items' codes, in separate clusters when
the data has separate modes, so that prior draws decode to items rather than to blends between them: one Gaussian
cannot be cut into separate blobs by a continuous decoder. The β-VAE reweighs the KL term; conditional variants
(``conditional.CVAE``) feed a condition c to both networks.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel, mlp
from dgm_core.models.discretized_logistic import level_log_probs
from dgm_core.models.labels import join
from dgm_core.models.preprocess import Standardize
from dgm_core.models.upsampling import upsampling_decoder


class VAE(GenerativeModel):
    """Decoder: for images, a categorical over the L levels of each pixel, or (``pixels="logistic"``) a discretized
    logistic (two numbers per pixel instead of L: ``discretized_logistic``); a diagonal Gaussian for real values.
    Its network is an MLP, or for images (``network="upsampling"``) transposed convolutions (``upsampling``).

    ``prior_components`` K > 0 gives a prior mixing K learned Gaussians in place of N(0, I), ``pseudo_inputs`` K > 0
    the VampPrior with K pseudo-inputs; either's KL term is the one-draw estimate log q(z|x) − log p(z) (no closed
    form for a mixture).
    ``condition_dim`` > 0 makes both networks also read a condition vector c (q(z|x, c) and p(x|z, c)); the methods
    taking ``condition`` then need it, (N, condition_dim). The plain VAE has none.

    ``free_nats`` λ > 0 trains with free bits (Kingma et al., 2016, "Improved variational inference with inverse
    autoregressive flow"): each latent dimension's KL, averaged over the batch, counts as at least λ nats,

        loss = (Σ_d max(λ, E_batch KL_d) − E_batch log p(x|z)) / D,

    so no gradient presses a dimension onto the prior while it carries less than λ: the encoder can learn to use it
    before it collapses. Once every dimension carries more, the loss is −ELBO / D again; the score is the ELBO always.
    A mixture prior's KL has no per-dimension terms: there the whole KL counts as at least λ · latent_dim nats.
    """

    # the ELBO's two parts, per dimension, as the training-loss figure names them (a β-VAE also reports its β)
    loss_names = {"recon": "reconstruction −log p(x|z)", "kl": "KL(q(z|x) ‖ p(z))", "beta": "β"}

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 256,
        layers: int = 2,
        latent_dim: int | None = None,
        condition_dim: int = 0,
        pixels: Literal["categorical", "logistic"] = "categorical",
        network: Literal["mlp", "upsampling"] = "mlp",
        prior_components: int = 0,
        pseudo_inputs: int = 0,
        free_nats: float = 0.0,
    ) -> None:
        super().__init__(spec)
        if (pseudo_inputs or prior_components) and condition_dim:
            raise ValueError("The mixture priors here are for unconditional VAEs.")
        if pseudo_inputs and prior_components:
            raise ValueError("Choose one prior: a mixture of learned Gaussians or the VampPrior.")
        self.free_nats = free_nats
        self.discrete = spec.levels is not None
        self.logistic = self.discrete and pixels == "logistic"
        self.latent_dim = latent_dim or (8 if self.discrete else 2)
        self.outputs_per_dim = spec.levels if self.discrete and not self.logistic else 2
        self.encoder = mlp([spec.dim + condition_dim] + [hidden] * layers + [2 * self.latent_dim])
        decoder_in = self.latent_dim + condition_dim
        if network == "upsampling":
            self.decoder = upsampling_decoder(decoder_in, hidden, spec.shape, self.outputs_per_dim)
        else:
            self.decoder = mlp([decoder_in] + [hidden] * layers + [spec.dim * self.outputs_per_dim])
        self.standardize = None if self.discrete else Standardize(spec)
        # u_k in the encoder's input space: grey levels scaled to [0, 1], or standardised coordinates
        start = torch.rand if self.discrete else torch.randn
        self.pseudo_inputs = nn.Parameter(start(pseudo_inputs, spec.dim)) if pseudo_inputs else None
        # m_k, log s_k² of a learned mixture: spread like N(0, I) draws at the start, unit variances
        self.prior_means = nn.Parameter(torch.randn(prior_components, self.latent_dim)) if prior_components else None
        self.prior_log_vars = nn.Parameter(torch.zeros(prior_components, self.latent_dim)) if prior_components else None
        self.capabilities = Capabilities(
            likelihood="bound",
            likelihood_name="ELBO",
            latent_dim=self.latent_dim,
            encoder=True,
            importance_weighted=condition_dim == 0,  # iwae_bound(x, k) needs no condition
            posterior=condition_dim == 0,
            prior=f"a VampPrior (a mixture of the posteriors of {pseudo_inputs} learned pseudo-inputs)"
            if pseudo_inputs
            else f"a prior mixing {prior_components} learned Gaussians"
            if prior_components
            else "a N(0, I) prior",
        )

    def _posterior(self, u: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.encoder(u).chunk(2, dim=-1)
        return mean, log_var.clamp(-12.0, 8.0)

    def _decoder_params(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        """(N, P, D): per-pixel logits (P = L), a discretized logistic's mean and log-scale per pixel, or
        per-coordinate mean and log-std (P = 2)."""
        return self.decoder(join(z, condition)).reshape(len(z), self.outputs_per_dim, self.spec.dim)

    def _level_logits(self, params: Tensor) -> Tensor:
        """(N, L, D): each pixel's unnormalised log-probabilities over its levels."""
        return level_log_probs(params[:, 0], params[:, 1], self.spec.levels) if self.logistic else params

    def _log_likelihood(self, params: Tensor, x: Tensor, observed: Tensor | None = None) -> Tensor:
        """log p(x | z) summed over dimensions, in the data's own units; with ``observed`` (N, D) bool, over the
        observed pixels only: the decoder factorises given z, so p(x_obs | z) = Π_{d observed} p(x_d | z)."""
        if self.discrete:
            levels = x.flatten(1)
            if self.logistic:  # the observed level's bin alone: L times less work than the whole table
                per_pixel = level_log_probs(params[:, 0], params[:, 1], self.spec.levels, levels)  # (N, D)
            else:
                per_pixel = params.log_softmax(1).gather(1, levels.long()[:, None, :])[:, 0]  # (N, D)
            return per_pixel.sum(1) if observed is None else (per_pixel * observed).sum(1)
        y, log_det = self.standardize(x)
        mean, log_std = params[:, 0], params[:, 1].clamp(-7.0, 5.0)
        log_normal = -0.5 * ((y - mean) * torch.exp(-log_std)).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        return log_normal.sum(1) + log_det

    def _network_input(self, x: Tensor) -> Tensor:
        return x.flatten(1) / (self.spec.levels - 1) if self.discrete else self.standardize(x)[0]

    def elbo_terms(self, x: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One-sample reconstruction log-likelihood and KL(q(z|x) ‖ p(z)) per item: analytic for N(0, I), the
        same draw's log q(z|x) − log p(z) for the VampPrior."""
        reconstruction, kl = self._elbo_parts(x, condition)
        return reconstruction, kl.sum(1)

    def _elbo_parts(self, x: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The reconstruction log-likelihood (N,) and the KL per latent dimension (N, latent) for N(0, I), or a
        mixture prior's one-draw estimate as one column (N, 1)."""
        mean, log_var = self._posterior(join(self._network_input(x), condition))
        eps = torch.randn_like(mean)
        z = mean + eps * torch.exp(0.5 * log_var)
        if self._standard_prior:
            kl = _standard_normal_kl(mean, log_var)
        else:
            kl = (_normal_log_pdf(eps, log_var) - self.prior_log_prob(z))[:, None]
        return self._log_likelihood(self._decoder_params(z, condition), x), kl

    def _elbo_loss(self, reconstruction: Tensor, kl: Tensor, beta: float | Tensor = 1.0) -> dict[str, Tensor]:
        """(β·KL − reconstruction) per dimension, averaged over the batch: −ELBO / D when β = 1."""
        dim = self.spec.dim
        return {
            "loss": (beta * kl - reconstruction).mean() / dim,
            "recon": -reconstruction.mean() / dim,
            "kl": kl.mean() / dim,
        }

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        reconstruction, kl = self._elbo_parts(x)
        terms = self._elbo_loss(reconstruction, kl.sum(1))
        if self.free_nats:  # free bits: a dimension's KL below λ nats (a mixture's whole KL below λ · d) is not pressed
            held = kl.mean(0).clamp(min=self.free_nats * self.latent_dim / kl.shape[1]).sum()
            terms["loss"] = (held - reconstruction.mean()) / self.spec.dim
        return terms

    def log_prob(self, x: Tensor, n_samples: int = 4) -> Tensor:
        """The ELBO (a lower bound on log p(x)), averaged over ``n_samples`` draws of z to reduce its noise."""
        total = torch.zeros(len(x), device=x.device)
        for _ in range(n_samples):
            reconstruction, kl = self.elbo_terms(x)
            total = total + reconstruction - kl
        return total / n_samples

    tracked_k = 64  # importance samples of the IWAE bound followed over training beside the ELBO

    def tracked_bounds(self, x: Tensor) -> dict[str, Tensor]:
        """IWAE_k with k = ``tracked_k``: the gap to the ELBO shows how loose the ELBO is as training goes."""
        if not self.capabilities.importance_weighted:
            return {}
        return {f"IWAE (k={self.tracked_k})": self.iwae_bound(x, self.tracked_k)}

    def display_log_prob(self, x: Tensor, k: int = 8) -> Tensor:
        """IWAE_k with the same k draws ε for every item (common random numbers): a smooth picture of a bound."""
        eps = torch.randn(k, 1, self.latent_dim, generator=torch.Generator().manual_seed(0)).to(x.device)
        return self.iwae_bound(x, k, eps=eps)

    def iwae_bound(
        self,
        x: Tensor,
        k: int,
        condition: Tensor | None = None,
        eps: Tensor | None = None,
    ) -> Tensor:
        """The importance-weighted bound (Burda et al., 2016), per item:

            IWAE_k(x) = E[log (1/k) Σ_i p(x, z_i) / q(z_i | x)],  z_i ~ q(z | x),

        with ELBO = IWAE_1 ≤ IWAE_k ≤ IWAE_{k+1} → log p(x) as k → ∞. ``eps`` (k, N or 1, latent) gives the
        standard normal draws behind z_i = μ + σ ε_i instead of fresh ones.
        """
        mean, log_var = self._posterior(join(self._network_input(x), condition))
        std = torch.exp(0.5 * log_var)
        eps = torch.randn(k, *mean.shape, device=x.device) if eps is None else eps.expand(k, *mean.shape)
        z = mean + std * eps  # (k, N, latent)
        log_q = _normal_log_pdf(eps, log_var)
        log_prior = self.prior_log_prob(z)
        params = self._decoder_params(z.flatten(0, 1), None if condition is None else condition.repeat(k, 1))
        repeated = x.repeat(k, *([1] * (x.dim() - 1)))
        log_likelihood = self._log_likelihood(params, repeated).reshape(k, len(x))
        return torch.logsumexp(log_likelihood + log_prior - log_q, dim=0) - math.log(k)

    @property
    def _standard_prior(self) -> bool:
        """True for N(0, I), whose KL has a closed form (a cheap test: no mixture's components computed)."""
        return self.pseudo_inputs is None and self.prior_means is None

    def prior_components(self) -> tuple[Tensor, Tensor] | None:
        """The means and log-variances (K, latent) of a mixture prior's Gaussians (the learned ones, or the VampPrior's
        posteriors of its pseudo-inputs); None for N(0, I)."""
        if self.pseudo_inputs is not None:
            return self._posterior(self.pseudo_inputs)
        if self.prior_means is not None:
            return self.prior_means, self.prior_log_vars.clamp(-12.0, 8.0)
        return None

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log p(z) of latents (..., latent): N(0, I), or a mixture's log (1/K) Σ_k N(z; m_k, diag s_k²)."""
        components = self.prior_components()
        if components is None:
            return standard_normal_log_pdf(z)
        mean, log_var = components  # (K, latent) each
        precision = torch.exp(-log_var)
        # Σ_d (z_d − μ_kd)² / σ²_kd multiplied out: (..., K) by matrix products, never a (..., K, latent) tensor (an
        # IWAE bound with k = 1,000 draws of 100 items would need 160 M numbers for 200 pseudo-inputs)
        square = z.pow(2) @ precision.T - 2 * z @ (mean * precision).T + (mean.pow(2) * precision).sum(-1)
        per_component = -0.5 * (square + log_var.sum(-1) + self.latent_dim * math.log(2 * math.pi))  # (..., K)
        return torch.logsumexp(per_component, -1) - math.log(len(mean))

    @torch.no_grad()
    def draw_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ p(z), (n, latent): N(0, I), or a mixture's component k picked uniformly and z ~ N(m_k, diag s_k²)."""
        components = self.prior_components()
        if components is None:
            return super().draw_latents(n, generator)
        mean, log_var = components
        pick = torch.randint(len(mean), (n,), generator=generator).to(mean.device)
        eps = torch.randn(n, self.latent_dim, generator=generator).to(mean.device)
        return (mean[pick] + eps * torch.exp(0.5 * log_var[pick])).cpu()

    @torch.no_grad()
    def posterior_kl(self, x: Tensor, draws: int = 256) -> Tensor:
        """KL(q(z|x) ‖ p(z)) of each item in nats: exact for N(0, I); for a mixture prior the mean of
        log q(z|x) − log p(z) over ``draws`` seeded draws z ~ q(z|x)."""
        mean, log_var = self._posterior(self._network_input(x))
        if self._standard_prior:
            return _standard_normal_kl(mean, log_var).sum(1)
        eps = torch.randn(draws, *mean.shape, generator=torch.Generator().manual_seed(0)).to(mean.device)
        return (_normal_log_pdf(eps, log_var) - self.prior_log_prob(mean + eps * torch.exp(0.5 * log_var))).mean(0)

    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean μ(x)."""
        return self._posterior(self._network_input(x))[0]

    @torch.no_grad()
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | x) = N(μ(x), diag σ²(x)) of each item: (μ, σ), each (N, latent)."""
        mean, log_var = self._posterior(self._network_input(x))
        return mean, torch.exp(0.5 * log_var)

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean E[x | z] (images: the expected level of each pixel)."""
        return self._decoder_mean(self._decoder_params(z))

    def sample(self, n: int) -> Tensor:
        """z ~ p(z), then x ~ p(x | z): honest draws from the model the ELBO scores, pixel noise included."""
        return self._draw(self._decoder_params(self.draw_latents(n).to(self.device)))

    def _decoder_mean(self, params: Tensor) -> Tensor:
        """E[x | z] from the decoder's parameters, in data units."""
        if self.discrete:
            levels = torch.arange(self.spec.levels, device=params.device, dtype=params.dtype)
            mean = (self._level_logits(params).softmax(1) * levels[None, :, None]).sum(1)
            return mean.reshape(len(params), *self.spec.shape)
        return self.standardize.inverse(params[:, 0])

    def _draw(self, params: Tensor) -> Tensor:
        """x ~ p(x | z) from the decoder's parameters, in the data's native representation."""
        if self.discrete:
            levels = torch.distributions.Categorical(logits=self._level_logits(params).transpose(1, 2)).sample()
            return levels.float().reshape(len(params), *self.spec.shape)
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


class BetaVAE(VAE):
    """β-VAE (Higgins et al., 2017): the VAE's model trained on

        loss_t = −E_q(z|x)[log p(x | z)] + β_t · KL(q(z|x) ‖ p(z)),   β_t = β · min(1, t / T_warmup),

    with t the training steps taken so far (a buffer, saved with the weights). β > 1 presses the posterior toward
    the factorised prior, which favours disentangled latents at the cost of blurrier reconstructions. Starting at
    β_t = 0 (the KL warm-up) lets the decoder learn to use z before the KL term can pull q(z|x) onto the prior and
    collapse it there. ``log_prob`` stays the honest ELBO (β = 1): β only changes the training objective.
    Another β: ``BetaVAE(spec, hidden, beta=8.0)``.
    """

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 256,
        layers: int = 2,
        latent_dim: int | None = None,
        beta: float = 4.0,
        warmup_steps: int = 400,
    ) -> None:
        super().__init__(spec, hidden, layers, latent_dim)
        if beta < 0 or warmup_steps < 0:
            raise ValueError("β and the warm-up length must be non-negative.")
        self.beta = beta
        self.warmup_steps = warmup_steps
        self.register_buffer("steps_taken", torch.zeros((), dtype=torch.long))
        self.capabilities = replace(self.capabilities, likelihood_name="ELBO (β = 1)")

    def current_beta(self) -> Tensor:
        """β_t = β · min(1, t / T_warmup); β itself when there is no warm-up."""
        if self.warmup_steps == 0:
            return torch.tensor(self.beta, device=self.steps_taken.device)
        return self.beta * (self.steps_taken / self.warmup_steps).clamp(max=1.0)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        beta = self.current_beta()
        return {**self._elbo_loss(*self.elbo_terms(x), beta=beta), "beta": beta}

    def train_step(self, x: Tensor, optimizers: list[torch.optim.Optimizer]) -> dict[str, Tensor]:
        terms = super().train_step(x, optimizers)
        self.steps_taken += 1
        return terms


def standard_normal_log_pdf(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)


def _standard_normal_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per dimension, in closed form: ½ (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var)


def _normal_log_pdf(eps: Tensor, log_var: Tensor) -> Tensor:
    """log N(μ + σ ε; μ, diag σ²) from the standardised ε and log σ², summed over the last dimension."""
    return (-0.5 * eps.pow(2) - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)
