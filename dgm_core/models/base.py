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
    latent_dim: size of the latent space, or None when the model has none; ``decode`` maps latents to items, and
        ``draw_latents`` draws them from the latent prior, described in words by ``prior``.
    conditional: True when the model is trained on (item, class label) pairs.

    Every other flag promises an ability: the methods of its protocol in ``abilities.ABILITIES`` (``field`` promises
    ``abilities.Field``, and so on), which ``abilities.ability(model, Field)`` hands out typed.
    """

    likelihood: Likelihood
    likelihood_name: str = "log-likelihood"
    latent_dim: int | None = None
    prior: str = "a N(0, I) prior"
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
        """Latents of items (conditional models also read their class ``labels``), when ``capabilities.encoder``
        (``abilities.Encoder``)."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder")

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no decoder")

    def draw_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n latents from the prior, (n, latent_dim), on the CPU: N(0, I) unless the model's prior is another."""
        return torch.randn(n, self.capabilities.latent_dim, generator=generator)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def mlp(
    sizes: list[int], activation: type[nn.Module] = nn.SiLU, dropout: float = 0.0, frequencies: int = 0
) -> nn.Sequential:
    """A plain multilayer perceptron: Linear, activation, ..., Linear (no activation on the output); with
    ``dropout`` > 0, a dropout layer after each activation; with ``frequencies`` F > 0 it reads ``FourierFeatures``
    of its sizes[0] inputs at F octaves (its first module)."""
    layers: list[nn.Module] = [FourierFeatures(frequencies)] if frequencies else []
    sizes = [sizes[0] * (1 + 2 * frequencies), *sizes[1:]]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class FourierFeatures(nn.Module):
    """Each coordinate with its sines and cosines at F octaves (Tancik et al., 2020, "Fourier features let networks
    learn high frequency functions in low dimensional domains"):

        x ↦ [x, sin(2ʲ x), cos(2ʲ x)],  j = 0 … F − 1,   (N, D) → (N, D (1 + 2F)).

    An MLP reading two coordinates learns a function that changes sharply with them only slowly: its first layer
    must first grow large weights. Sines of several frequencies hand it such changes (a square's edge, a ring's
    radius) from the first step; the raw x keeps the slow trend."""

    def __init__(self, frequencies: int) -> None:
        super().__init__()
        self.register_buffer("octaves", 2.0 ** torch.arange(frequencies, dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        angles = (x[..., None] * self.octaves).flatten(1)  # (N, D F)
        return torch.cat([x, angles.sin(), angles.cos()], -1)
