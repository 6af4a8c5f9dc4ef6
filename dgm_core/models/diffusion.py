"""Denoising diffusion probabilistic model (Ho et al., 2020).

Forward (fixed):  q(y_t | y_{t−1}) = N(√α_t y_{t−1}, β_t I), t = 1..T, so that in closed form
    q(y_t | y_0) = N(√ᾱ_t y_0, (1 − ᾱ_t) I),  ᾱ_t = Π_{s≤t} α_s,  α_t = 1 − β_t,  and ᾱ_T ≈ 0: y_T ≈ N(0, I).
Reverse (learned): p(y_{t−1} | y_t) = N(μ_θ(y_t, t), σ_t² I) with μ_θ = (y_t − β_t / √(1 − ᾱ_t) · ε_θ(y_t, t)) / √α_t,
where ε_θ predicts the noise in y_t = √ᾱ_t y_0 + √(1 − ᾱ_t) ε. Training minimises the simple loss E |ε − ε_θ|².
The variational bound, in nats:
    log p(x) ≥ log p(x | y_1) − Σ_{t=2..T} KL(q(y_{t−1} | y_t, y_0) ‖ p(y_{t−1} | y_t)) − KL(q(y_T | y_0) ‖ N(0, I))
             =: −(L_0 + Σ L_{t−1} + L_T),
with the Gaussian posterior q(y_{t−1} | y_t, y_0) = N(μ̃_t, β̃_t I), β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
Points are standardised (L_0 a Gaussian density, plus the log-determinant of the scaling). Images live in [−1, 1]
(level k at 2k/(L−1) − 1) and L_0 is a discretised Gaussian: the mass of each level's bin, the outer bins reaching ±∞,
so the bound is on the probability of the discrete image.
Fewer passes than T: respaced ancestral sampling over a subsequence of the trained steps (``sample_with``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.denoising import NoiseConditionedMLP
from dgm_core.models.preprocess import Standardize, gaussian_log_prob

Schedule = Literal["linear", "cosine"]
ReverseVariance = Literal["beta", "posterior"]


def beta_schedule(steps: int, schedule: Schedule) -> Tensor:
    """β_1..β_T (float64). "linear": Ho et al.'s 10⁻⁴ → 0.02 over 1000 steps, rescaled by 1000/T so ᾱ_T stays ≈ 0;
    "cosine" (Nichol & Dhariwal, 2021): ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2) / (same at t = 0), β_t ≤ 0.999."""
    if schedule == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), steps, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        alpha_bar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"Unknown schedule {schedule!r}: use 'linear' or 'cosine'.")


def discretized_gaussian_log_prob(y: Tensor, mean: Tensor, std: Tensor, half_bin: float) -> Tensor:
    """log ∫_bin N(u; mean, std²) du for the bin [y − h, y + h] of each value, the bins at ±1 open to ±∞; summed over
    the last dimension. Evaluated as log(Φ(b) − Φ(a)), mirrored to the lower tail where Φ is accurate."""
    a = torch.where(y <= -1 + half_bin / 2, -torch.inf, (y - half_bin - mean) / std)
    b = torch.where(y >= 1 - half_bin / 2, torch.inf, (y + half_bin - mean) / std)
    upper = (a + b) > 0  # both ends in the upper tail: use Φ(b) − Φ(a) = Φ(−a) − Φ(−b)
    low, high = torch.where(upper, -b, a), torch.where(upper, -a, b)
    log_high, log_low = torch.special.log_ndtr(high), torch.special.log_ndtr(low)
    return (log_high + _log1mexp(log_low - log_high)).sum(-1)


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 − eˣ) for x ≤ 0, accurate at both ends (Mächler, 2012)."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def gaussian_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    """KL(N(mean_q, var_q I) ‖ N(mean_p, var_p I)) summed over the last dimension (variances broadcast)."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p).pow(2)) / var_p - 1).sum(-1)


class DDPM(GenerativeModel):
    """ε-prediction DDPM with an MLP denoiser. ``reverse_variance``: σ_t² = β_t or β̃_t for t ≥ 2 (Ho et al. found
    both similar; β_t makes the bound exact when the data are Gaussian); σ_1² = β_1 in either case (β̃_1 = 0).
    ``kl_draws``: how many of the T − 1 KL terms ``log_prob`` evaluates per item (see there)."""

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 3,
        steps: int = 100,
        schedule: Schedule = "linear",
        reverse_variance: ReverseVariance = "beta",
        kl_draws: int | None = 20,
    ) -> None:
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.steps = steps
        self.reverse_variance = reverse_variance
        self.kl_draws = kl_draws
        self.network = NoiseConditionedMLP(spec.dim, hidden, layers)
        self.standardize = None if self.discrete else Standardize(spec)
        betas = beta_schedule(steps, schedule)
        alpha_bar = torch.cumprod(1 - betas, 0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        posterior_var = betas * (1 - alpha_bar_prev) / (1 - alpha_bar)
        reverse_var = betas if reverse_variance == "beta" else torch.cat([betas[:1], posterior_var[1:]])
        for name, value in [
            ("betas", betas),
            ("alpha_bar", alpha_bar),
            ("alpha_bar_prev", alpha_bar_prev),
            ("posterior_var", posterior_var),
            ("reverse_var", reverse_var),
        ]:
            self.register_buffer(name, value.float(), persistent=False)  # index t − 1 holds step t
        self.capabilities = Capabilities(
            likelihood="bound", likelihood_name=f"diffusion ELBO (T={steps})", denoising=not self.discrete
        )
        self.sampling_cost = f"{steps} sequential passes"

    # --- the data's space ---------------------------------------------------------------------------------------
    def _to_space(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """y_0 and log |det ∂y/∂x| (zero for images: their bound is on a probability mass, not a density)."""
        if self.discrete:
            return 2 * x.flatten(1) / (self.spec.levels - 1) - 1, torch.zeros(len(x), device=x.device)
        return self.standardize(x)

    def _from_space(self, y: Tensor) -> Tensor:
        if self.discrete:
            levels = torch.round((y + 1) / 2 * (self.spec.levels - 1)).clamp(0, self.spec.levels - 1)
            return levels.reshape(len(y), *self.spec.shape)
        return self.standardize.inverse(y)

    # --- forward process and denoiser -----------------------------------------------------------------------------
    def q_sample(self, y0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """y_t = √ᾱ_t y_0 + √(1 − ᾱ_t) ε for integer steps t ∈ 1..T (one per row)."""
        alpha_bar = self.alpha_bar[t - 1, None]
        return alpha_bar.sqrt() * y0 + (1 - alpha_bar).sqrt() * noise

    def predict_noise(self, y_t: Tensor, t: Tensor) -> Tensor:
        return self.network(y_t, t.float() / self.steps)

    def reverse_mean(self, y_t: Tensor, t: Tensor) -> Tensor:
        """μ_θ(y_t, t) = (y_t − β_t / √(1 − ᾱ_t) · ε_θ(y_t, t)) / √α_t."""
        beta, alpha_bar = self.betas[t - 1, None], self.alpha_bar[t - 1, None]
        return (y_t - beta / (1 - alpha_bar).sqrt() * self.predict_noise(y_t, t)) / (1 - beta).sqrt()

    def posterior_mean(self, y0: Tensor, y_t: Tensor, t: Tensor) -> Tensor:
        """μ̃_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · y_0 + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · y_t."""
        beta, alpha_bar, alpha_bar_prev = (b[t - 1, None] for b in (self.betas, self.alpha_bar, self.alpha_bar_prev))
        return (alpha_bar_prev.sqrt() * beta * y0 + (1 - beta).sqrt() * (1 - alpha_bar_prev) * y_t) / (1 - alpha_bar)

    # --- training -------------------------------------------------------------------------------------------------
    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """The simple loss: E_{t, ε} |ε − ε_θ(√ᾱ_t y_0 + √(1 − ᾱ_t) ε, t)|² per dimension, t uniform on 1..T."""
        y0, _ = self._to_space(x)
        t = torch.randint(1, self.steps + 1, (len(y0),), device=y0.device)
        noise = torch.randn_like(y0)
        return {"loss": (self.predict_noise(self.q_sample(y0, t, noise), t) - noise).pow(2).mean()}

    # --- the bound ------------------------------------------------------------------------------------------------
    def kl_term(self, y0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """L_{t−1} = KL(q(y_{t−1} | y_t, y_0) ‖ p(y_{t−1} | y_t)) per row, steps t ≥ 2, one draw y_t ~ q(y_t | y_0)
        (from ``noise`` when given)."""
        y_t = self.q_sample(y0, t, torch.randn_like(y0) if noise is None else noise)
        return gaussian_kl(
            self.posterior_mean(y0, y_t, t),
            self.posterior_var[t - 1, None],
            self.reverse_mean(y_t, t),
            self.reverse_var[t - 1, None],
        )

    def decoder_log_prob(self, y0: Tensor, noise: Tensor | None = None) -> Tensor:
        """−L_0 = log p(y_0 | y_1), y_1 ~ q(y_1 | y_0) (from ``noise`` when given): a Gaussian density for points,
        the bin's mass for levels."""
        t = torch.ones(len(y0), dtype=torch.long, device=y0.device)
        mean = self.reverse_mean(self.q_sample(y0, t, torch.randn_like(y0) if noise is None else noise), t)
        std = self.reverse_var[0].sqrt()
        if self.discrete:
            return discretized_gaussian_log_prob(y0, mean, std, half_bin=1 / (self.spec.levels - 1))
        return gaussian_log_prob((y0 - mean) / std) - y0.shape[1] * std.log()

    def prior_kl(self, y0: Tensor) -> Tensor:
        """L_T = KL(q(y_T | y_0) ‖ N(0, I)), in closed form."""
        alpha_bar = self.alpha_bar[-1]
        return gaussian_kl(alpha_bar.sqrt() * y0, 1 - alpha_bar, torch.zeros_like(y0), torch.ones(()))

    def bound_terms(self, x: Tensor, max_rows: int = 65_536) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Every term, per item: −L_0, the T − 1 KLs L_1..L_{T−1} as (N, T − 1), L_T and log |det ∂y/∂x|;
        up to ``max_rows`` network rows at once."""
        y0, log_det = self._to_space(x)
        n = len(y0)
        kls = []
        for t in torch.arange(2, self.steps + 1, device=y0.device).split(max(1, max_rows // n)):
            kls.append(self.kl_term(y0.repeat(len(t), 1), t.repeat_interleave(n)).reshape(len(t), n).T)
        return self.decoder_log_prob(y0), torch.cat(kls, dim=1), self.prior_kl(y0), log_det

    def log_prob(self, x: Tensor) -> Tensor:
        """The variational bound −(L_0 + Σ L_{t−1} + L_T) (+ log-det for points) in nats.

        With ``kl_draws`` = k, Σ_{t=2..T} L_{t−1} is estimated from k steps per item, one drawn uniformly from each of
        k equal strata of 2..T, weighted by the stratum's size: an unbiased estimate of the same sum (as is the
        single draw of y_t inside each term) for k instead of T − 1 network passes. None sums every term."""
        if self.kl_draws is None:
            log_decoder, kls, prior_kl, log_det = self.bound_terms(x)
            return log_decoder - kls.sum(1) - prior_kl + log_det
        return self._stratified_bound(x)

    def display_log_prob(self, x: Tensor, strata: int = 10) -> Tensor:
        """The stratified bound of ``log_prob`` over ``strata`` strata, with one step t per stratum and one noise
        vector, shared by every item (common random numbers): a smooth picture of the bound."""
        return self._stratified_bound(x, strata, common=torch.Generator().manual_seed(0))

    def _stratified_bound(self, x: Tensor, strata: int | None = None, common: torch.Generator | None = None) -> Tensor:
        y0, log_det = self._to_space(x)
        n, dim = y0.shape
        edges = torch.linspace(2, self.steps + 1, (strata or self.kl_draws or self.steps - 1) + 1)

        def shared_noise() -> Tensor | None:
            return None if common is None else torch.randn(1, dim, generator=common).to(y0).expand(n, dim)

        kl_sum = torch.zeros(n, device=y0.device)
        for low, high in zip(edges[:-1].ceil().long(), edges[1:].ceil().long()):
            if high > low:
                if common is None:
                    t = torch.randint(int(low), int(high), (n,), device=y0.device)
                else:
                    t = torch.randint(int(low), int(high), (1,), generator=common).to(y0.device).expand(n)
                kl_sum = kl_sum + (high - low) * self.kl_term(y0, t, shared_noise())
        return self.decoder_log_prob(y0, shared_noise()) - kl_sum - self.prior_kl(y0) + log_det

    # --- how it works: noising, the denoiser's direction, reverse paths (2D points) ---------------------------------
    @property
    def process_note(self) -> str:
        return (
            f"T = {self.steps} steps. Forward, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε destroys the data; the network learns ε "
            "from x_t, which gives every noisy point a direction back (the arrows); sampling runs that backwards."
        )

    @torch.no_grad()
    def noised(self, x: Tensor, t: int, noise: Tensor) -> Tensor:
        """Items x (N, 2) noised to step t (0 = clean) by the forward process, in data units."""
        y0, _ = self._to_space(x)
        return x if t == 0 else self._from_space(self.q_sample(y0, torch.full((len(x),), t, device=x.device), noise))

    @torch.no_grad()
    def denoise_direction(self, x: Tensor, t: int) -> Tensor:
        """x̂_0(x_t) − x_t in data units: where the denoiser thinks each noisy point x_t (N, 2) at step t came from,
        x̂_0 = (y_t − √(1 − ᾱ_t) ε_θ(y_t, t)) / √ᾱ_t; proportional to the learned score at that noise level."""
        y, _ = self._to_space(x)
        steps = torch.full((len(x),), max(t, 1), device=x.device)
        alpha_bar = self.alpha_bar[steps - 1, None]
        y0 = (y - (1 - alpha_bar).sqrt() * self.predict_noise(y, steps)) / alpha_bar.sqrt()
        return self._from_space(y0) - x

    @torch.no_grad()
    def reverse_trajectory(self, n: int, passes: int | None = None) -> Tensor:
        """(K + 1, n, 2): n chains of ``sample_with(n, K)`` (K = ``passes``, T when None) in data units, one row per
        step it visits, from the samples (row 0) up to y_T ~ N(0, I) (row K); row i sits at step
        ``trajectory_steps(K)[i]`` (with K = T, row t at step t)."""
        return torch.stack([self._from_space(y) for y in self._respaced_chain(n, passes)[::-1]])

    # --- sampling -------------------------------------------------------------------------------------------------
    def sample(self, n: int) -> Tensor:
        """Ancestral sampling: y_T ~ N(0, I), y_{t−1} = μ_θ(y_t, t) + σ_t z, and the noiseless mean at t = 1."""
        y = torch.randn(n, self.spec.dim, device=self.device)
        for step in range(self.steps, 0, -1):
            t = torch.full((n,), step, device=self.device)
            y = self.reverse_mean(y, t)
            if step > 1:
                y = y + self.reverse_var[step - 1].sqrt() * torch.randn_like(y)
        return self._from_space(y)

    # --- sampling with fewer passes: respaced ancestral sampling (Nichol & Dhariwal, 2021, §4) ----------------------
    @property
    def sampler_choices(self) -> tuple[int, ...]:
        """Network passes ``sample_with`` may take, the trained T first: T, T/2, T/5, T/10, T/20 (rounded, ≥ 2)."""
        return tuple(sorted({min(self.steps, max(2, round(self.steps / d))) for d in (1, 2, 5, 10, 20)}, reverse=True))

    def trajectory_steps(self, passes: int | None = None) -> list[int]:
        """[0, S_1, …, S_K]: the K = ``passes`` trained steps S_1 < … < S_K = T that a K-pass sampler visits, evenly
        spaced from 1 to T (T alone for K = 1; every step for K = T or None), after 0, where the samples are."""
        passes = self.steps if passes is None else passes
        if not 1 <= passes <= self.steps:
            raise ValueError(f"A sampler takes 1 to {self.steps} passes, not {passes}.")
        return [0, *torch.linspace(self.steps, 1, passes, dtype=torch.float64).round().long().flip(0).tolist()]

    @torch.no_grad()
    def sample_with(self, n: int, passes: int) -> Tensor:
        """n samples from K = ``passes`` network passes instead of T.

        Any steps S_0 = 0 < S_1 < … < S_K = T of the trained chain define a shorter forward process with the same
        marginals q(y_{S_i} | y_0) = N(√ᾱ'_i y_0, (1 − ᾱ'_i) I), ᾱ'_i = ᾱ_{S_i}, so the network trained at step S_i
        still predicts the noise in y_{S_i}. Its one-step noise, from ᾱ'_i = ᾱ'_{i−1} α'_i:
            α'_i = ᾱ_{S_i} / ᾱ_{S_{i−1}} = Π_{S_{i−1} < s ≤ S_i} α_s,   β'_i = 1 − α'_i,
        and the reverse step is the trained one with β' in place of β, at the original step S_i:
            y_{S_{i−1}} = μ'_θ + σ'_i z,   μ'_θ = (y_{S_i} − β'_i / √(1 − ᾱ'_i) · ε_θ(y_{S_i}, S_i)) / √α'_i,
        σ'_i² = β'_i, or the posterior's β̃'_i = β'_i (1 − ᾱ'_{i−1}) / (1 − ᾱ'_i), as the model was built; the noiseless
        mean at i = 1. With K = T, S_i = i and β' = β: exactly ``sample``. Fewer, larger steps make the Gaussian
        reverse step a cruder fit to the true reverse q(y_{S_{i−1}} | y_{S_i}), so the samples get worse."""
        return self._from_space(self._respaced_chain(n, passes)[-1])

    def _respaced_chain(self, n: int, passes: int | None) -> list[Tensor]:
        """The states y_{S_K}, …, y_{S_1}, y_0 of n chains of ``sample_with``, in the model's space; a pass over one
        trained step (S_{i−1} = S_i − 1) takes it as ``sample`` does."""
        steps = self.trajectory_steps(passes)
        y = torch.randn(n, self.spec.dim, device=self.device)
        states = [y]
        for previous, step in reversed(list(zip(steps[:-1], steps[1:]))):
            t = torch.full((n,), step, device=self.device)
            if step == previous + 1:
                y, var = self.reverse_mean(y, t), self.reverse_var[step - 1]
            else:
                scale, noise_scale, var = self._merged_step(previous, step)
                y = scale * (y - noise_scale * self.predict_noise(y, t))
            if previous > 0:  # the last pass, to y_0, gives the noiseless mean
                y = y + var.sqrt() * torch.randn_like(y)
            states.append(y)
        return states

    def _merged_step(self, previous: int, step: int) -> tuple[Tensor, Tensor, Tensor]:
        """1 / √α'_i, β'_i / √(1 − ᾱ'_i) and σ'_i² of the pass from S_i = ``step`` to S_{i−1} = ``previous``, worked
        out in float64 on the CPU: α'_i = ᾱ_{S_i} / ᾱ_{S_{i−1}} can lie below float32's resolution of 1 − β'_i."""
        alpha = 1 - self.betas[:step].cpu().double()  # α_1 … α_{S_i}
        merged, alpha_bar, alpha_bar_prev = alpha[previous:].prod(), alpha.prod(), alpha[:previous].prod()
        beta = 1 - merged
        var = beta if self.reverse_variance == "beta" else beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
        return tuple(c.float().to(self.device) for c in (merged.rsqrt(), beta / (1 - alpha_bar).sqrt(), var))
