"""The one protocol every generative model implements, and the capabilities it declares.

A model works on data in its native representation (see ``dgm_core.data.DataSpec``):
2D points are float vectors; images are integer levels ``0..L-1`` stored as floats of shape (N, C, H, W).
``log_prob`` returns nats per item: a density for continuous data, a probability mass for discrete images.
The UI asks a model what it can do through ``capabilities``; it never branches on the model's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec

Likelihood = Literal["exact", "bound", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What the UI and the evaluation code may ask of a model.

    likelihood: "exact" when ``log_prob`` is log p(x); "bound" when it is a lower bound on it
        (named by ``likelihood_name``, e.g. "ELBO"); "none" when the model has no likelihood (GANs).
    latent_dim: size of the latent space, or None when the model has none; ``decode`` maps latents to items.
    encoder: True when ``encode`` maps items to latents (a flow exactly, a VAE by its posterior mean).
    inpainting: True when ``inpaint`` can fill in unobserved parts of an item given the observed ones.
    conditional: True when the model is trained on (item, class label) pairs.
    importance_weighted: True when ``iwae_bound(x, k)`` gives the k-sample importance-weighted bound on log p(x).
    class_likelihood: True when ``conditional_log_prob(x, labels)`` gives log p(x | y) (a bound when ``likelihood``
        is "bound") and ``log_prior()`` the model's log p(y), so that Bayes' rule gives p(y | x).
    marginalises: True when ``conditional_log_prob(x, labels, observed)`` also takes a mask (N, D) of observed image
        pixels and gives log p(x_obs | y), the hidden pixels summed out.
    field: True (2D points) when the model has a field over the plane that explains how it works — a GAN's
        discriminator, an energy-based model's −E(x) — given by ``field(x)`` and named by ``field_name`` (fixed scale
        ``field_range`` or None), with ``field_arrows(n)``: n samples and the way the model moves each one (the
        generator's pull, the Langevin drift), described by ``field_note``.
    layer_trajectory: True (flows on 2D points) when ``layer_trajectory(z)`` gives the points after each layer of the
        sampling pass and ``layer_log_dets(x)`` each layer's mean log |det| on items x.
    denoising: True (diffusion and score models on 2D points) when ``noised(x, t, noise)`` runs the forward process
        to step t of ``steps``, ``denoise_direction(x, t)`` points each noisy point toward the model's guess of its
        origin, ``process_note`` says how, and the sampler may take fewer network passes: ``sampler_choices`` lists
        the numbers it offers (the trained sampler's first), ``sample_with(n, passes)`` draws with one, and
        ``reverse_trajectory(n, passes)`` gives its chains row by row, row i at step ``trajectory_steps(passes)[i]``
        (0 = the samples, up to ``steps``; passes None: the trained sampler).
    players: True (GANs on unconditional data) when ``step_player(x, optimizers, player)`` takes one optimisation
        step of one player alone, "discriminator" or "generator" (GAN Lab's step D / step G), and returns its loss.
    chains: True (energy-based models on 2D points) when ``langevin_trajectory(n)`` gives n sampling chains step by
        step, in data units, as ``sample`` runs them.
    posterior: True (latent-variable models) when ``posterior(x)`` gives the encoder's q(z | x) = N(μ, diag σ²) of
        each item as (μ, σ).
    conditionals: True (autoregressive models) when ``conditional_log_density(x, d, values)`` gives
        log p(x_d = v | x before d), ``draw_conditional(x, d)`` draws x_d so, and ``order`` is the order in which
        dimensions are generated.
    """

    likelihood: Likelihood
    likelihood_name: str = "log-likelihood"
    latent_dim: int | None = None
    encoder: bool = False
    inpainting: bool = False
    conditional: bool = False
    importance_weighted: bool = False
    class_likelihood: bool = False
    marginalises: bool = False
    field: bool = False
    layer_trajectory: bool = False
    conditionals: bool = False
    posterior: bool = False
    denoising: bool = False
    players: bool = False
    chains: bool = False

    @property
    def likelihood_label(self) -> str:
        """What a held-out likelihood of this model is, in the words every table uses: "exact", "bound (ELBO)" (the
        bound's name), or "none (no likelihood)"."""
        if self.likelihood == "bound":
            return f"bound ({self.likelihood_name.removesuffix(' bound')})"
        return "exact" if self.likelihood == "exact" else "none (no likelihood)"


class GenerativeModel(nn.Module):
    """Base class: a training loss, a sampler and, where the family has them, a likelihood and a latent space.

    ``sampling_cost`` says in words how many network passes one batch of samples takes (for display); models whose
    sampler is sequential (autoregressive ones, MAF) override it. ``loss_names`` names terms whose key says too
    little, e.g. a GAN's "loss", which is the discriminator's.
    """

    capabilities: Capabilities
    sampling_cost: str = "one pass"
    loss_names: dict[str, str] = {}  # display names of the terms ``train_step`` reports (others show as they are)

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        self.spec = spec

    # --- training -------------------------------------------------------------------------------------------
    def loss(self, x: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """Scalar ``"loss"`` to minimise for a batch, plus named terms (e.g. ``"kl"``) for display.

        Conditional models (``capabilities.conditional``) also receive the batch's class labels; others never do.
        """
        raise NotImplementedError

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr, foreach=True)]

    def train_step(
        self, x: Tensor, optimizers: list[torch.optim.Optimizer], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One optimisation step (``labels`` only for conditional models). Models with several players (GANs)
        override this."""
        (optimizer,) = optimizers
        terms = self.loss(x) if labels is None else self.loss(x, labels)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        nn.utils.clip_grad_norm_(self.parameters(), max_norm=100.0, foreach=True)
        optimizer.step()
        return {name: value.detach() for name, value in terms.items()}

    # --- what the family offers -------------------------------------------------------------------------------
    def sample(self, n: int) -> Tensor:
        """n new items in the data's native representation (images as integer levels).

        Conditional models take ``sample(n, labels=None)``: no labels cycle through the classes 0, 1, ..., 0, 1, ...
        """
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats per item, or the bound named by ``capabilities.likelihood_name``."""
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")

    def display_log_prob(self, x: Tensor) -> Tensor:
        """``log_prob`` as a deterministic, smooth function of x, for pictures of the density over a grid.

        An exact likelihood is one already. A stochastic bound (a VAE's ELBO draws z, a diffusion bound draws t and
        noise) drawn afresh for every grid point gives speckle; models with one override this to draw their noise
        once for all points (common random numbers), so that neighbouring points get neighbouring values.
        """
        return self.log_prob(x)

    def tracked_bounds(self, x: Tensor) -> dict[str, Tensor]:
        """Other lower bounds on log p(x) per item worth following over training, by display name (a VAE's
        importance-weighted bound beside its ELBO); none by default."""
        return {}

    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents of items (conditional models also read their class ``labels``), when ``capabilities.encoder``."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no decoder")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def mlp(sizes: list[int], activation: type[nn.Module] = nn.SiLU, dropout: float = 0.0) -> nn.Sequential:
    """A plain multilayer perceptron: Linear, activation, ..., Linear (no activation on the output); with
    ``dropout`` > 0, a dropout layer after each activation."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
