"""Noise-conditional score network (Song & Ermon, 2019): learn ∇ log p_σ(y) of the data blurred by N(0, σ²I) at L
noise levels σ_1 > … > σ_L (geometric), then sample by annealed Langevin dynamics from coarse to fine.

Denoising score matching: for ỹ = y + σ z, the score of the blurred data is E[−z/σ | ỹ], so
    s_θ(ỹ, σ) = f_θ(ỹ, σ) / σ  minimises  E_{σ, y, z} |σ s_θ(ỹ, σ) + z|² = E |f_θ(ỹ, σ) + z|²
(the σ²-weighted objective of the paper, written with the output scaled by 1/σ as in Song & Ermon, 2020).
Sampling: at each level i, n steps y ← y + (α_i/2) s_θ(y, σ_i) + √α_i z with α_i = c σ_i² (the paper's ε σ_i²/σ_L²,
c = ε/σ_L²), and finally
one denoising step y + σ_L² s_θ(y, σ_L) (Tweedie's formula). There is no likelihood: compare samples by MMD.
Points are standardised; images are dequantized into [0, 1]^D and samples are rounded back to levels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.denoising import NoiseConditionedMLP, dequantize, langevin_step, quantize
from dgm_core.models.preprocess import Standardize


class NCSN(GenerativeModel):
    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 3,
        noise_levels: int = 10,
        sigma_max: float | None = None,
        sigma_min: float | None = None,
        steps_per_level: int = 10,
        step_scale: float = 0.3,
    ) -> None:
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.network = NoiseConditionedMLP(spec.dim, hidden, layers)
        self.standardize = None if self.discrete else Standardize(spec)
        sigma_max = sigma_max or (2.0 if self.discrete else 3.0)
        sigma_min = sigma_min or (0.01 if self.discrete else 0.03)
        sigmas = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), noise_levels))
        self.register_buffer("sigmas", sigmas, persistent=False)
        self.steps_per_level = steps_per_level
        self.step_scale = step_scale  # c in α_i = c σ_i²
        self.capabilities = Capabilities(likelihood="none", denoising=not self.discrete)
        steps = noise_levels * steps_per_level
        self.sampling_cost = f"{steps} Langevin steps ({noise_levels} noise levels × {steps_per_level})"

    def _to_space(self, x: Tensor) -> Tensor:
        return dequantize(x, self.spec.levels) if self.discrete else self.standardize(x)[0]

    def score(self, y: Tensor, level: Tensor | int) -> Tensor:
        """s_θ(y, σ_level) for noise-level indices ``level`` (0 = σ_max); one per row, or one for all rows."""
        level = torch.as_tensor(level, device=y.device).expand(len(y))
        fraction = level.float() / max(len(self.sigmas) - 1, 1)
        return self.network(y, fraction) / self.sigmas[level, None]

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Denoising score matching, summed over the L levels' σ² weights by drawing one level per item."""
        y = self._to_space(x)
        level = torch.randint(len(self.sigmas), (len(y),), device=y.device)
        z = torch.randn_like(y)
        noisy = y + self.sigmas[level, None] * z
        return {"loss": (self.sigmas[level, None] * self.score(noisy, level) + z).pow(2).mean()}

    def sample(self, n: int) -> Tensor:
        """Annealed Langevin dynamics from N(0, σ_1² I), then Tweedie's denoising step at σ_L."""
        return self.sample_with(n, len(self.sigmas) * self.steps_per_level)

    @property
    def sampler_choices(self) -> tuple[int, ...]:
        """Langevin steps ``sample_with`` may take, the trained L × s first (s = ``steps_per_level``): L × k for k = s,
        s/2, s/5 and s/10 steps per level (rounded, ≥ 1). Tweedie's final step adds one network pass to each."""
        per_level = {max(1, round(self.steps_per_level / d)) for d in (1, 2, 5, 10)}
        return tuple(len(self.sigmas) * k for k in sorted(per_level, reverse=True))

    @torch.no_grad()
    def sample_with(self, n: int, passes: int) -> Tensor:
        """n samples from ``passes`` = L × k Langevin steps: the same L levels and step sizes α_i = c σ_i², k steps at
        each. Fewer steps leave each level's chain further from p_σ before σ shrinks: worse samples."""
        y = self._annealed(n, self._per_level(passes))[-1]
        if self.discrete:
            return quantize(y, self.spec.levels, self.spec.shape)
        return self.standardize.inverse(y)

    def _per_level(self, passes: int | None) -> int:
        """Langevin steps per noise level for ``passes`` in all (the trained number for None)."""
        if passes is None:
            return self.steps_per_level
        if passes < 1 or passes % len(self.sigmas):
            raise ValueError(f"Langevin steps come in whole multiples of the {len(self.sigmas)} levels, not {passes}.")
        return passes // len(self.sigmas)

    def _annealed(self, n: int, per_level: int) -> list[Tensor]:
        """The chains' states: the start, after each noise level's ``per_level`` steps, and after the final denoising
        step (L + 2)."""
        y = self.sigmas[0] * torch.randn(n, self.spec.dim, device=self.device)
        states = [y]
        for level, sigma in enumerate(self.sigmas):
            alpha = self.step_scale * sigma.item() ** 2
            for _ in range(per_level):
                y = langevin_step(y, self.score(y, level), step_size=alpha / 2)
            states.append(y)
        states.append(y + self.sigmas[-1] ** 2 * self.score(y, len(self.sigmas) - 1))
        return states

    # --- how it works: the noise levels, the score's pull, the annealed chains (2D points) ---------------------------
    # Step t runs over the noise levels, 0 = the data and t = L the largest σ: level index L − t for t ≥ 1.
    @property
    def steps(self) -> int:
        return len(self.sigmas)

    @property
    def process_note(self) -> str:
        return (
            f"{self.steps} noise levels σ from {self.sigmas[-1]:.2f} to {self.sigmas[0]:.2f} (standardised units): the "
            "network learns the score ∇ log p_σ of the blurred data at each, which points every noisy point back (the "
            f"arrows, σ² s: Tweedie's step); sampling anneals Langevin dynamics from the largest σ down, "
            f"{self.steps_per_level} steps per level."
        )

    @torch.no_grad()
    def noised(self, x: Tensor, t: int, noise: Tensor) -> Tensor:
        """Items x (N, 2) blurred with N(0, σ²) at step t (0 = clean), in data units."""
        if t == 0:
            return x
        return self.standardize.inverse(self._to_space(x) + self.sigmas[self.steps - t] * noise)

    @torch.no_grad()
    def denoise_direction(self, x: Tensor, t: int) -> Tensor:
        """σ² s_θ(x, σ) in data units at step t (the smallest σ for t = 0): Tweedie's step toward E[x_0 | x]."""
        level = self.steps - max(t, 1)
        y = self._to_space(x)
        return self.standardize.inverse(y + self.sigmas[level] ** 2 * self.score(y, level)) - x

    def trajectory_steps(self, passes: int | None = None) -> list[int]:
        """0, 1, …, L: ``reverse_trajectory`` has one row per noise level, whatever the steps taken at each."""
        self._per_level(passes)  # or ValueError
        return list(range(self.steps + 1))

    @torch.no_grad()
    def reverse_trajectory(self, n: int, passes: int | None = None) -> Tensor:
        """(L + 1, n, 2) in data units: index L the chains' start, index t (1 … L − 1) the state once levels
        0 … L − 1 − t are done, index 0 the samples (after the last level and Tweedie's step), as
        ``sample_with(n, passes)`` draws (``sample`` for None)."""
        states = self._annealed(n, self._per_level(passes))  # start, after each of the L levels, after Tweedie's
        path = [states[-1], *states[-3:0:-1], states[0]]
        return torch.stack([self.standardize.inverse(state) for state in path])
