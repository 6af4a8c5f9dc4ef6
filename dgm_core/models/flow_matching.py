"""Flow matching with the linear (rectified-flow, optimal-transport) path, on 2D points.

A velocity field v_θ(y, τ) on standardised points y carries the base N(0, I) at τ = 0 to the data at τ = 1 along the
ODE dy/dτ = v_θ(y, τ). It is learned by regression, with no simulation of the ODE during training:
    path:     y_τ = (1 − τ) y_0 + τ y_1,   y_0 ~ N(0, I),  y_1 ~ data,  τ ~ U[0, 1]
    target:   u = dy_τ/dτ = y_1 − y_0                         (the velocity of this one straight path)
    loss:     E_{τ, y_0, y_1} ‖v_θ(y_τ, τ) − u‖².
The loss is minimised by v*(y, τ) = E[y_1 − y_0 | y_τ = y], the marginal velocity, whose ODE has the path's marginals
p_τ at every τ (Lipman et al., 2023, Thm. 1-2; Liu et al., 2023): integrating it from a base draw at τ = 0 gives a
data sample at τ = 1. Sampling uses Euler steps, one network pass each, on a grid τ_0 = 0 < … < τ_K = 1.

The likelihood is exact up to the ODE solver's error, by the instantaneous change of variables (Chen et al., 2018):
along a solution, d log p_τ(y_τ)/dτ = −div v(y_τ, τ), so
    log p_1(y_1) = log N(y_0; 0, I) − ∫_0^1 div v_θ(y_τ, τ) dτ,
with y_0 found by integrating the ODE backward from y_1. The divergence Σ_i ∂v_i/∂y_i is exact, one autograd pass
per dimension (two in 2D; FFJORD (Grathwohl et al., 2019) estimates it stochastically where D is large). The state
(y, a) with da/dτ = div v, a(1) = 0 is integrated from τ = 1 to τ = 0 by classical RK4, so that a(0) is the integral
with its minus sign; the standardisation adds its log-det.

References: Lipman et al. 2023, "Flow Matching for Generative Modeling"; Liu et al. 2023, "Flow Straight and Fast:
Learning to Generate and Transfer Data with Rectified Flow"; Chen et al. 2018, "Neural Ordinary Differential
Equations"; Grathwohl et al. 2019, "FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative Models".
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.denoising import NoiseConditionedMLP, sinusoidal_embedding
from dgm_core.models.preprocess import Standardize, gaussian_log_prob


class VelocityMLP(NoiseConditionedMLP):
    """v_θ(y, τ): the diffusion models' MLP on [y, sinusoidal features of τ], with frequencies up to
    ``max_frequency`` rad per unit τ instead of 1000. The ODE solvers sample τ at a few points, so v_θ must be smooth
    in τ: features that oscillate faster than the solver's steps would make its error, and the likelihood's, large."""

    def __init__(self, dim: int, hidden: int, layers: int, max_frequency: float = 30.0) -> None:
        super().__init__(dim, hidden, layers)
        self.max_frequency = max_frequency

    def forward(self, y: Tensor, tau: Tensor) -> Tensor:
        return self.net(torch.cat([y, sinusoidal_embedding(tau, self.embedding_dim, self.max_frequency)], dim=1))


class FlowMatching(GenerativeModel):
    """Conditional flow matching on the straight path, for 2D points. ``steps``: the Euler steps (network passes) of
    the trained sampler, and the steps of the diffusion view; ``likelihood_steps``: the RK4 steps of ``log_prob``."""

    def __init__(
        self, spec: DataSpec, hidden: int = 64, layers: int = 3, steps: int = 100, likelihood_steps: int = 8
    ) -> None:
        super().__init__(spec)
        if spec.levels is not None:
            raise ValueError("Flow matching here works on 2D points, not on images.")
        self.steps = steps
        self.likelihood_steps = likelihood_steps
        self.network = VelocityMLP(spec.dim, hidden, layers)
        self.standardize = Standardize(spec)
        self.capabilities = Capabilities(
            likelihood="exact", likelihood_name=f"log-likelihood (ODE, RK4 {likelihood_steps} steps)", denoising=True
        )
        self.sampling_cost = f"{steps} sequential passes"

    def velocity(self, y: Tensor, tau: float | Tensor) -> Tensor:
        """v_θ(y, τ) for standardised points y (N, D) at path time τ (one for all rows, or one per row)."""
        return self.network(y, torch.as_tensor(tau, dtype=y.dtype, device=y.device).expand(len(y)))

    # --- training -------------------------------------------------------------------------------------------------
    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """E ‖v_θ(y_τ, τ) − (y_1 − y_0)‖², y_τ = (1 − τ) y_0 + τ y_1, τ uniform, y_0 ~ N(0, I)."""
        y1, _ = self.standardize(x)  # (N, D)
        y0 = torch.randn_like(y1)
        tau = torch.rand(len(y1), device=y1.device)  # (N,)
        y_tau = (1 - tau[:, None]) * y0 + tau[:, None] * y1
        return {"loss": (self.velocity(y_tau, tau) - (y1 - y0)).pow(2).sum(1).mean()}

    # --- the likelihood: the instantaneous change of variables, integrated backward by RK4 ----------------------------
    def velocity_and_divergence(self, y: Tensor, tau: float) -> tuple[Tensor, Tensor]:
        """v_θ(y, τ) (N, D) and div v_θ = Σ_i ∂v_i/∂y_i (N,), exactly: row i of the Jacobian from one autograd pass
        of Σ_n v_i(y_n) (items are independent, so its gradient holds each item's own ∂v_i/∂y), its i-th entry kept.
        Works under ``torch.no_grad()``; nothing stays attached to a graph."""
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            v = self.velocity(y, tau)
            divergence = sum(
                torch.autograd.grad(v[:, i].sum(), y, retain_graph=i < y.shape[1] - 1)[0][:, i]
                for i in range(y.shape[1])
            )
        return v.detach(), divergence.detach()

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats by the ODE (see the module docstring), RK4 with K = ``likelihood_steps`` steps of
        h = −1/K from τ = 1 to 0 on the state (y, a), da/dτ = div v_θ; not differentiable in the weights."""
        y, log_det = self.standardize(x)
        a = torch.zeros(len(y), device=y.device)
        h = -1.0 / self.likelihood_steps
        for k in range(self.likelihood_steps):
            tau = 1.0 - k / self.likelihood_steps
            v1, d1 = self.velocity_and_divergence(y, tau)
            v2, d2 = self.velocity_and_divergence(y + h / 2 * v1, tau + h / 2)
            v3, d3 = self.velocity_and_divergence(y + h / 2 * v2, tau + h / 2)
            v4, d4 = self.velocity_and_divergence(y + h * v3, tau + h)
            y = y + h / 6 * (v1 + 2 * v2 + 2 * v3 + v4)
            a = a + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
        return gaussian_log_prob(y) + a + log_det  # a = a(0) = −∫_0^1 div v dτ

    # --- sampling: Euler steps along the learned ODE ------------------------------------------------------------------
    def sample(self, n: int) -> Tensor:
        """n samples from the trained sampler: ``steps`` Euler steps from τ = 0 to 1."""
        return self.sample_with(n, self.steps)

    @property
    def sampler_choices(self) -> tuple[int, ...]:
        """Euler steps ``sample_with`` may take, the trained T = ``steps`` first: T, T/5, T/10, T/20, T/50 (rounded,
        ≥ 1)."""
        return tuple(sorted({min(self.steps, max(1, round(self.steps / d))) for d in (1, 5, 10, 20, 50)}, reverse=True))

    def trajectory_steps(self, passes: int | None = None) -> list[int]:
        """[S_0 = 0, S_1, …, S_K = T]: the view's steps (0 = data, T = ``steps`` = noise) that K = ``passes`` Euler
        steps visit, evenly spaced and rounded; step S sits at path time τ = 1 − S/T."""
        passes = self.steps if passes is None else passes
        if not 1 <= passes <= self.steps:
            raise ValueError(f"The sampler takes 1 to {self.steps} Euler steps, not {passes}.")
        return torch.linspace(0, self.steps, passes + 1, dtype=torch.float64).round().long().tolist()

    @torch.no_grad()
    def sample_with(self, n: int, passes: int) -> Tensor:
        """n samples from K = ``passes`` Euler steps y ← y + (τ_{i+1} − τ_i) v_θ(y, τ_i), τ_i = 1 − S_{K−i}/T: one
        network pass each. Euler's error is O(1/K) and vanishes for a straight path; the learned marginal paths bend
        where they part to reach different modes, so few steps land between the modes (one step lands at E[y_1 | y_0],
        near the data's mean)."""
        return self.standardize.inverse(self._euler_chain(n, passes)[-1])

    @torch.no_grad()
    def reverse_trajectory(self, n: int, passes: int | None = None) -> Tensor:
        """(K + 1, n, 2) in data units: n chains of ``sample_with(n, K)`` (K = ``passes``, T when None), row i at step
        ``trajectory_steps(K)[i]``: row 0 the samples, row K the base draw y_0 ~ N(0, I)."""
        return torch.stack([self.standardize.inverse(y) for y in self._euler_chain(n, passes)[::-1]])

    def _euler_chain(self, n: int, passes: int | None) -> list[Tensor]:
        """The states of n Euler chains from τ = 0 (the base draw) to τ = 1, standardised."""
        taus = [1 - step / self.steps for step in reversed(self.trajectory_steps(passes))]  # 0 = τ_0 < … < τ_K = 1
        y = torch.randn(n, self.spec.dim, device=self.device)
        states = [y]
        for tau, next_tau in zip(taus[:-1], taus[1:]):
            y = y + (next_tau - tau) * self.velocity(y, tau)
            states.append(y)
        return states

    # --- how it works: the path, the velocity's pull, the chains (the diffusion view's convention: t = 0 data) -------
    @property
    def process_note(self) -> str:
        return (
            f"T = {self.steps} steps. Each point moves on a straight line from its data point (t = 0) to a Gaussian "
            "draw (t = T): x_t = (1 − t/T) x₀ + (t/T) ε. The network learns the velocity of these lines at every point "
            "and time, which gives every point a direction back (the arrows); sampling follows it from noise by Euler "
            "steps — fewer steps cut the corners where paths bend."
        )

    @torch.no_grad()
    def noised(self, x: Tensor, t: int, noise: Tensor) -> Tensor:
        """Items x (N, 2) moved to step t (0 = clean) of the path, in data units: path time τ = 1 − t/T, so
        y_τ = (t/T) ε + (1 − t/T) y_1 with ε = ``noise``."""
        y1, _ = self.standardize(x)
        return x if t == 0 else self.standardize.inverse(t / self.steps * noise + (1 - t / self.steps) * y1)

    @torch.no_grad()
    def denoise_direction(self, x: Tensor, t: int) -> Tensor:
        """x̂_1 − x_t in data units: the model's guess of each point's data endpoint minus the point, at step t (the
        smallest step, 1, for t = 0). From y_1 = y_τ + (1 − τ)(y_1 − y_0) and v* = E[y_1 − y_0 | y_τ]:
            x̂_1 = E[y_1 | y_τ] = y_τ + (1 − τ) v_θ(y_τ, τ),   τ = 1 − t/T,
        so the arrow is the velocity scaled by the time left, (t/T) v_θ, mapped to data units."""
        y, _ = self.standardize(x)
        tau = 1 - max(t, 1) / self.steps
        return self.standardize.inverse(y + (1 - tau) * self.velocity(y, tau)) - x
