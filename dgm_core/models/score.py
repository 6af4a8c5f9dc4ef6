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
        self.capabilities = Capabilities(likelihood="none")
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
        y = self.sigmas[0] * torch.randn(n, self.spec.dim, device=self.device)
        sigma_min = self.sigmas[-1]
        for level, sigma in enumerate(self.sigmas):
            alpha = self.step_scale * sigma.item() ** 2
            for _ in range(self.steps_per_level):
                y = langevin_step(y, self.score(y, level), step_size=alpha / 2)
        y = y + sigma_min**2 * self.score(y, len(self.sigmas) - 1)
        if self.discrete:
            return quantize(y, self.spec.levels, self.spec.shape)
        return self.standardize.inverse(y)
