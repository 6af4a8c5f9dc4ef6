"""Energy-based model: p_θ(y) = exp(−E_θ(y)) / Z_θ with E_θ an MLP and Z_θ unknown.

The gradient of the log-likelihood is  ∇_θ log p_θ(y) = −∇_θ E_θ(y) + E_{p_θ}[∇_θ E_θ(y⁻)], so contrastive divergence
lowers the energy of data and raises that of model samples y⁻:
    loss = mean E_θ(y⁺) − mean E_θ(y⁻) + λ (mean E_θ(y⁺)² + mean E_θ(y⁻)²),
the small L2 penalty keeping energies near zero (Du & Mordatch, 2019). The negatives come from short-run Langevin
chains started from noise, y ← y − η ∇_y E_θ(y) + τ z for K steps, with a noise τ smaller than √(2η) as in
Nijkamp et al. (2019): the learned short-run chain is the sampler. Likelihood "none": Z_θ is unknown.
Points are standardised; images are dequantized into [0, 1]^D (chains clamped to it) and rounded back to levels.
On points the energy network reads Fourier features of y (``FourierFeatures``): an MLP of the two raw coordinates
learns wells as narrow as the data's modes only slowly, and 20 s of training left each of 8gaussians' modes drawn a
third too wide (`bench_recognisable`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel, mlp
from dgm_core.models.denoising import dequantize, langevin_step, quantize
from dgm_core.models.preprocess import Standardize


class EnergyBasedModel(GenerativeModel):
    field_name = "−E(x): the log density up to a constant"
    field_range = None
    arrows_name = "−∇E(x), the drift of a Langevin step"

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 2,
        langevin_steps: int = 20,
        step_size: float = 0.05,
        noise_scale: float = 0.05,
        energy_penalty: float = 0.1,
        frequencies: int | None = None,
    ) -> None:
        """``frequencies``: the octaves of Fourier features the energy network reads (None: 2 on 2D points, none on
        images, whose 64 or 784 coordinates need no help to vary sharply)."""
        super().__init__(spec)
        self.discrete = spec.levels is not None
        if frequencies is None:
            frequencies = 0 if self.discrete else 2
        self.energy = mlp([spec.dim] + [hidden] * layers + [1], frequencies=frequencies)
        self.standardize = None if self.discrete else Standardize(spec)
        self.langevin_steps = langevin_steps
        self.step_size = step_size
        self.noise_scale = noise_scale
        self.energy_penalty = energy_penalty
        self.capabilities = Capabilities(likelihood="none", field=not self.discrete, chains=not self.discrete)
        self.sampling_cost = f"{langevin_steps} Langevin steps"

    @property
    def field_note(self) -> str:
        return (
            f"over −E(x); arrows: the drift of a Langevin step y ← y − η∇E(y) + τz (η = {self.step_size}, "
            f"τ = {self.noise_scale}, {self.langevin_steps} steps from uniform noise)"
        )

    def _to_space(self, x: Tensor) -> Tensor:
        return dequantize(x, self.spec.levels) if self.discrete else self.standardize(x)[0]

    def _initial(self, n: int) -> Tensor:
        """Where chains start: uniform on [0, 1]^D for images, on [−3, 3]^D (standardised units) for points."""
        u = torch.rand(n, self.spec.dim, device=self.device)
        return u if self.discrete else 6 * u - 3

    def langevin_chain(self, y: Tensor) -> Tensor:
        """K steps y ← y − η ∇E_θ(y) + τ z (clamped to the unit cube for images); no gradient reaches θ."""
        with torch.enable_grad():
            for _ in range(self.langevin_steps):
                y = y.detach().requires_grad_(True)
                (grad_energy,) = torch.autograd.grad(self.energy(y).sum(), y)
                y = langevin_step(y.detach(), -grad_energy, self.step_size, self.noise_scale)
                if self.discrete:
                    y = y.clamp(0, 1)
        return y.detach()

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        positive = self.energy(self._to_space(x)).squeeze(1)
        negative = self.energy(self.langevin_chain(self._initial(len(x)))).squeeze(1)
        penalty = positive.pow(2).mean() + negative.pow(2).mean()
        return {
            "loss": positive.mean() - negative.mean() + self.energy_penalty * penalty,
            "energy_data": positive.mean(),
            "energy_samples": negative.mean(),
        }

    # --- how it works: the energy landscape and the Langevin drift (2D points) ---------------------------------------
    @torch.no_grad()
    def field(self, x: Tensor) -> Tensor:
        """−E(x) at points x (N, 2) in data units: log p(x) up to the unknown log Z (and the standardisation's
        constant)."""
        return -self.energy(self.standardize(x)[0]).squeeze(1)

    def field_arrows(self, n: int) -> tuple[Tensor, Tensor]:
        """n samples (the model's own short-run chains) and −∇_x E at each, in data units: where the next Langevin
        step would move each one, before its noise."""
        x = self.sample(n).requires_grad_(True)
        (gradient,) = torch.autograd.grad(self.energy(self.standardize(x)[0]).sum(), x)
        return x.detach(), -gradient

    def langevin_trajectory(self, n: int) -> Tensor:
        """(K + 1, n, 2): n short-run chains in data units, from their uniform start (index 0) through each of the K
        Langevin steps to the samples (index K), as ``sample`` runs them."""
        path = [self._initial(n)]
        with torch.enable_grad():
            for _ in range(self.langevin_steps):
                y = path[-1].detach().requires_grad_(True)
                (grad_energy,) = torch.autograd.grad(self.energy(y).sum(), y)
                path.append(langevin_step(y.detach(), -grad_energy, self.step_size, self.noise_scale))
        return torch.stack([self.standardize.inverse(y.detach()) for y in path])

    def sample(self, n: int) -> Tensor:
        y = self.langevin_chain(self._initial(n))
        if self.discrete:
            return quantize(y, self.spec.levels, self.spec.shape)
        return self.standardize.inverse(y)
