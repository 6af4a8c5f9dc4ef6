"""What a capability flag promises, as types: one protocol per flag of ``Capabilities``.

A model that declares a flag (``capabilities.field``, say) implements every method and attribute of that flag's
protocol (``Field``); ``tests/test_models.py`` checks this for every model in the registry, on every kind of data it
supports. Code that uses an ability asks for it by type, ``ability(model, Field)``, and gets the model typed as that
protocol, or a clear error when the model does not declare it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, cast, runtime_checkable

import torch
from torch import Tensor

if TYPE_CHECKING:
    from dgm_core.models.base import GenerativeModel


@runtime_checkable
class Encoder(Protocol):
    """``encode`` maps items to latents: a flow exactly, a VAE by its posterior mean (conditional models also read
    the items' class labels)."""

    def encode(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Inpainter(Protocol):
    """``inpaint`` fills in the entries of x not ``observed`` (a bool tensor of x's shape) from the model."""

    def inpaint(self, x: Tensor, observed: Tensor) -> Tensor: ...


@runtime_checkable
class ImportanceWeighted(Protocol):
    """``iwae_bound(x, k)``: the k-sample importance-weighted bound on log p(x) per item."""

    def iwae_bound(self, x: Tensor, k: int) -> Tensor: ...


@runtime_checkable
class ClassLikelihood(Protocol):
    """log p(x | y) per item (a bound when the model's likelihood is one) and the model's log p(y), so that Bayes'
    rule gives p(y | x)."""

    def conditional_log_prob(self, x: Tensor, labels: Tensor) -> Tensor: ...

    def log_prior(self) -> Tensor: ...


@runtime_checkable
class Marginalising(Protocol):
    """``conditional_log_prob(x, labels, observed)`` also takes a mask (N, D) of observed image pixels and gives
    log p(x_obs | y), the hidden pixels summed out."""

    def conditional_log_prob(self, x: Tensor, labels: Tensor, observed: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Field(Protocol):
    """A field over the plane that explains how the model works (a GAN's discriminator, an EBM's −E(x)), named by
    ``field_name`` on a fixed scale ``field_range`` (or None), and ``field_arrows(n)``: n samples and the way the
    model moves each one (the generator's pull, the Langevin drift), described by ``field_note``."""

    field_name: str
    field_note: str
    field_range: tuple[float, float] | None

    def field(self, x: Tensor) -> Tensor: ...

    def field_arrows(self, n: int) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class LayerTrajectory(Protocol):
    """A flow on 2D points: the points after each layer of the sampling pass, and each layer's mean log |det|."""

    def layer_trajectory(self, z: Tensor) -> list[Tensor]: ...

    def layer_log_dets(self, x: Tensor) -> list[float]: ...


@runtime_checkable
class Conditionals(Protocol):
    """An autoregressive model: log p(x_d = v | x before d), a draw of x_d so, and the ``order`` (a permutation of
    0..D−1) in which dimensions are generated."""

    order: Tensor

    def conditional_log_density(self, x: Tensor, d: int, values: Tensor) -> Tensor: ...

    def draw_conditional(self, x: Tensor, d: int) -> float: ...


@runtime_checkable
class Posterior(Protocol):
    """The encoder's q(z | x) = N(μ, diag σ²) of each item, as (μ, σ); each item's KL(q(z|x) ‖ p(z)) in nats; the
    prior's Gaussians as means and log-variances (K, latent), or None for N(0, I)."""

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]: ...

    def posterior_kl(self, x: Tensor) -> Tensor: ...

    def prior_components(self) -> tuple[Tensor, Tensor] | None: ...


@runtime_checkable
class Denoising(Protocol):
    """Diffusion and score models on 2D points: the forward process to step t of ``steps``, a direction from each
    noisy point toward the model's guess of its origin (``process_note`` says how), and a sampler that may take fewer
    network passes: ``sampler_choices`` (the trained sampler's first), ``sample_with(n, passes)``, and
    ``reverse_trajectory(n, passes)`` whose row i is at step ``trajectory_steps(passes)[i]`` (0 = the samples)."""

    steps: int
    process_note: str
    sampler_choices: tuple[int, ...]

    def noised(self, x: Tensor, t: int, noise: Tensor) -> Tensor: ...

    def denoise_direction(self, x: Tensor, t: int) -> Tensor: ...

    def sample_with(self, n: int, passes: int) -> Tensor: ...

    def reverse_trajectory(self, n: int, passes: int | None = None) -> Tensor: ...

    def trajectory_steps(self, passes: int | None = None) -> list[int]: ...


@runtime_checkable
class Players(Protocol):
    """A GAN on unconditional data: one optimisation step of one player alone, "discriminator" or "generator"
    (GAN Lab's step D / step G), returning its loss; ``for_arena`` copies both players, with samples drawn from the
    generator being stepped."""

    def step_player(self, x: Tensor, optimizers: list[torch.optim.Optimizer], player: str) -> float: ...

    def for_arena(self) -> GenerativeModel: ...


@runtime_checkable
class Chains(Protocol):
    """An energy-based model on 2D points: n sampling chains step by step, in data units, as ``sample`` runs them."""

    def langevin_trajectory(self, n: int) -> Tensor: ...


ABILITIES: dict[str, type] = {
    "encoder": Encoder,
    "inpainting": Inpainter,
    "importance_weighted": ImportanceWeighted,
    "class_likelihood": ClassLikelihood,
    "marginalises": Marginalising,
    "field": Field,
    "layer_trajectory": LayerTrajectory,
    "conditionals": Conditionals,
    "posterior": Posterior,
    "denoising": Denoising,
    "players": Players,
    "chains": Chains,
}  # each flag of ``Capabilities`` that promises methods, and the protocol it promises

A = TypeVar("A")


def ability(model: GenerativeModel, protocol: type[A]) -> A:
    """The model typed as ``protocol``, one of ``ABILITIES``; a ValueError saying which when the model does not
    declare it."""
    (flag,) = (name for name, promised in ABILITIES.items() if promised is protocol)
    if not getattr(model.capabilities, flag):
        raise ValueError(f"{type(model).__name__} on this data has no {protocol.__name__.lower()} ability ({flag})")
    return cast(A, model)
