"""Variational diffusion model in continuous time (Kingma et al., 2021) on images of discrete grey levels.

Forward (fixed), variance preserving, indexed by the log signal-to-noise ratio λ = log(α²/σ²) instead of a step:
    z_λ = α_λ y + σ_λ ε,   α_λ² = sigmoid(λ),  σ_λ² = sigmoid(−λ),   ε ~ N(0, I),
with y ∈ [−1, 1]^D the image (level k at 2k/(L−1) − 1), from λ_max (almost clean) down to λ_min (almost pure noise).
With T → ∞ steps the diffusion part of the variational bound becomes an integral over the SNR (VDM, eq. 17):
    L_∞(y) = ½ ∫_{SNR_min}^{SNR_max} E_ε ‖y − ŷ_θ(z_λ, λ)‖² dSNR = ½ ∫_{λ_min}^{λ_max} e^λ E_ε ‖y − ŷ_θ(z_λ, λ)‖² dλ,
and the whole bound, in nats, adds a prior term and a decoder term at the two ends:
    −log p(x) ≤ KL(q(z_{λ_min} | y) ‖ N(0, I)) + E[−log p(x | z_{λ_max})] + L_∞(y).
L_∞ depends on the schedule only through its end points (VDM, §5.1): the integral is estimated by Monte Carlo over λ
uniform on [λ_min, λ_max], weighted by e^λ (λ_max − λ_min), with stratified draws across a batch.

The denoiser ŷ_θ is where this model differs from DDPM's MLP. For discrete levels the optimal denoiser is a posterior
mean over the L levels, so ŷ is parametrised as one: per pixel i,
    p_θ(y_i = v_k | z, λ) = softmax_k( log N(z_i; α v_k, σ²) + f_θ(z, λ)_{ik} ),   ŷ_i = Σ_k p_θ(v_k | z, λ) v_k,
the Gaussian term being what pixel i's own noisy value says about its level and f_θ (an MLP over all pixels) what
the rest of the image says (Dieleman et al., 2022, "score interpolation"). With f = 0 the denoiser is exact for
uniformly random levels; with f = each pixel's log frequency it is the best denoiser that sees one pixel, whose bound
is the independent-pixel baseline; what f learns from the other pixels is what brings the bound below it. The same
categorical is the decoder p(x | z_{λ_max}), and the last step of the sampler draws the levels from it.

Sampling is ancestral over ``steps`` values of λ evenly spaced from λ_min to λ_max: from z_s to the less noisy z_t,
    q(z_t | z_s, y) = N(μ, σ̃² I),  α_{s|t} = α_s / α_t,  σ²_{s|t} = σ_s² − α²_{s|t} σ_t²,
    μ = α_{s|t} σ_t² / σ_s² · z_s + α_t σ²_{s|t} / σ_s² · y,   σ̃² = σ²_{s|t} σ_t² / σ_s²,
with ŷ_θ(z_s, λ_s) in place of y, and σ²_{s|t} / σ_s² = 1 − e^{λ_s − λ_t} computed as −expm1 (accurate where λ_s ≈ λ_t).

References: Kingma, Salimans, Poole & Ho 2021, "Variational Diffusion Models"; Dieleman et al. 2022, "Continuous
diffusion for categorical data"; Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.denoising import NoiseConditionedMLP


class VDM(GenerativeModel):
    """Continuous-time variational diffusion with a categorical denoiser, for images. ``log_snr``: (λ_min, λ_max);
    ``steps``: the sampler's network passes; ``strata``: the λ draws per item of ``log_prob``'s estimate of L_∞."""

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 256,
        layers: int = 3,
        dropout: float = 0.3,
        log_snr: tuple[float, float] = (-10.0, 10.0),
        steps: int = 100,
        strata: int = 16,
    ) -> None:
        super().__init__(spec)
        if spec.levels is None:
            raise ValueError("This variational diffusion model works on images of grey levels, not on points.")
        self.log_snr_min, self.log_snr_max = log_snr
        self.steps, self.strata = steps, strata
        # f_θ(z, λ): an MLP with dropout on [z, sinusoidal features of λ's place in [λ_min, λ_max]], its D × L
        # outputs starting at zero: training starts from the one-pixel denoiser with uniform levels
        self.network = NoiseConditionedMLP(spec.dim, hidden, layers, out_dim=spec.dim * spec.levels, dropout=dropout)
        nn.init.zeros_(self.network.net[-1].weight)
        nn.init.zeros_(self.network.net[-1].bias)
        self.register_buffer("values", torch.linspace(-1, 1, spec.levels), persistent=False)  # v_k, (L,)
        self.capabilities = Capabilities(likelihood="bound", likelihood_name="continuous-time diffusion bound")
        self.sampling_cost = f"{steps} sequential passes"
        self.loss_names = {"diffusion": "diffusion L_∞", "decoder": "decoder −log p(x|z)", "prior": "prior KL"}

    # --- the forward process ----------------------------------------------------------------------------------------
    def _to_space(self, x: Tensor) -> Tensor:
        """Levels (N, C, H, W) → y (N, D) in [−1, 1]."""
        return 2 * x.flatten(1) / (self.spec.levels - 1) - 1

    @staticmethod
    def _scales(log_snr: Tensor) -> tuple[Tensor, Tensor]:
        """α_λ and σ_λ as (N, 1) columns."""
        return torch.sigmoid(log_snr).sqrt()[:, None], torch.sigmoid(-log_snr).sqrt()[:, None]

    def noised(self, y: Tensor, log_snr: Tensor, noise: Tensor) -> Tensor:
        alpha, sigma = self._scales(log_snr)
        return alpha * y + sigma * noise

    # --- the denoiser -------------------------------------------------------------------------------------------------
    def level_logits(self, z: Tensor, log_snr: Tensor) -> Tensor:
        """(N, D, L): log N(z_i; α v_k, σ²) up to a constant in k, plus f_θ(z, λ)."""
        alpha, sigma = self._scales(log_snr)
        alpha, variance = alpha[..., None], sigma[..., None] ** 2
        own_pixel = (z[..., None] * alpha * self.values - 0.5 * alpha**2 * self.values**2) / variance
        place = (log_snr - self.log_snr_min) / (self.log_snr_max - self.log_snr_min)
        return own_pixel + self.network(z, place).view(len(z), self.spec.dim, self.spec.levels)

    def denoise(self, z: Tensor, log_snr: Tensor) -> Tensor:
        """ŷ_θ(z, λ) = Σ_k p_θ(v_k | z, λ) v_k, (N, D)."""
        return self.level_logits(z, log_snr).softmax(-1) @ self.values

    # --- the bound ----------------------------------------------------------------------------------------------------
    def diffusion_term(self, y: Tensor, log_snr: Tensor) -> Tensor:
        """One-draw estimate of L_∞ per row at the given λ (one per row): ½ (λ_max − λ_min) e^λ ‖y − ŷ_θ(z_λ, λ)‖²."""
        z = self.noised(y, log_snr, torch.randn_like(y))
        error = (y - self.denoise(z, log_snr)).pow(2).sum(1)
        return 0.5 * (self.log_snr_max - self.log_snr_min) * log_snr.exp() * error

    def prior_kl(self, y: Tensor) -> Tensor:
        """KL(N(α y, σ² I) ‖ N(0, I)) at λ_min, per row."""
        alpha_sq = torch.sigmoid(torch.tensor(self.log_snr_min, device=y.device))
        sigma_sq = 1 - alpha_sq
        return 0.5 * (alpha_sq * y**2 + sigma_sq - 1 - sigma_sq.log()).sum(1)

    def decoder_nll(self, x: Tensor, y: Tensor) -> Tensor:
        """−log p(x | z_{λ_max}), one draw of z per row: the categorical of ``level_logits`` at λ_max."""
        log_snr = torch.full((len(y),), self.log_snr_max, device=y.device)
        logits = self.level_logits(self.noised(y, log_snr, torch.randn_like(y)), log_snr)
        levels = x.flatten(1).long()[..., None]
        return -logits.log_softmax(-1).gather(-1, levels).squeeze(-1).sum(1)

    def _stratified_log_snr(self, n: int, device: torch.device) -> Tensor:
        """n values of λ, one in each of n equal strata of [λ_min, λ_max], in a random order of strata (rows of a
        batch share the strata: a lower-variance estimate of the same integral)."""
        u = (torch.rand((), device=device) + torch.randperm(n, device=device) / n) % 1
        return self.log_snr_min + (self.log_snr_max - self.log_snr_min) * u

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """The bound itself, in nats per dimension, with λ stratified across the batch."""
        y = self._to_space(x)
        diffusion = self.diffusion_term(y, self._stratified_log_snr(len(y), y.device))
        decoder, prior = self.decoder_nll(x, y), self.prior_kl(y)
        per_dim = 1 / self.spec.dim
        return {
            "loss": (diffusion + decoder + prior).mean() * per_dim,
            "diffusion": diffusion.mean().detach() * per_dim,
            "decoder": decoder.mean().detach() * per_dim,
            "prior": prior.mean().detach() * per_dim,
        }

    def log_prob(self, x: Tensor) -> Tensor:
        """The bound −(prior KL + decoder NLL + L_∞) in nats per item; L_∞ from ``strata`` draws of λ per item, one
        uniform in each of ``strata`` equal parts of [λ_min, λ_max] (an unbiased estimate of the same bound)."""
        y = self._to_space(x)
        n = len(y)
        diffusion = torch.zeros(n, device=y.device)
        width = (self.log_snr_max - self.log_snr_min) / self.strata
        for k in range(self.strata):
            log_snr = self.log_snr_min + width * (k + torch.rand(n, device=y.device))
            diffusion = diffusion + self.diffusion_term(y, log_snr) / self.strata
        return -(diffusion + self.decoder_nll(x, y) + self.prior_kl(y))

    # --- sampling -----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Ancestral sampling from z ~ N(0, I) at λ_min through ``steps`` values of λ, then levels drawn from
        p_θ(x | z_{λ_max})."""
        z = torch.randn(n, self.spec.dim, device=self.device)
        grid = torch.linspace(self.log_snr_min, self.log_snr_max, self.steps, device=self.device)
        for noisy, clean in zip(grid[:-1], grid[1:]):
            s, t = noisy.expand(n), clean.expand(n)
            (alpha_s, sigma_s), (alpha_t, sigma_t) = self._scales(s), self._scales(t)
            kept = -torch.expm1(noisy - clean)  # σ²_{s|t} / σ_s² = 1 − SNR_s / SNR_t
            mean = alpha_s / alpha_t * sigma_t**2 / sigma_s**2 * z + alpha_t * kept * self.denoise(z, s)
            z = mean + (kept.sqrt() * sigma_t) * torch.randn_like(z)
        last = grid[-1].expand(n)
        levels = torch.distributions.Categorical(logits=self.level_logits(z, last)).sample()
        return levels.float().reshape(n, *self.spec.shape)
