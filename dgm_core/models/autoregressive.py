"""Autoregressive models: p(x) = Π_k p(x_σ(k) | x_σ(<k)) for an order σ, an exact likelihood computed in one pass.

``AutoregressiveModel`` holds what every such model shares: categorical conditionals over the L levels of a pixel
(mixtures of K Gaussians for real coordinates), the exact log-likelihood, and the sequential sampler that also
inpaints. A model only says how it computes the parameters of every conditional from the earlier dimensions.

MADE (Germain et al., 2015) gets all D conditionals from one MLP whose weight masks let output i see only inputs
earlier in its order: each unit gets a degree m; a hidden unit may see inputs with degree ≤ m, an output of degree d
only units with m < d. Sampling needs D sequential passes, one per dimension.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.preprocess import Standardize


class AutoregressiveModel(GenerativeModel):
    """Base class: subclasses implement ``_params(u)``, the parameters (N, P, D) of every conditional, where column d
    may depend only on the dimensions before d in ``order`` (a permutation of 0..D−1, a buffer).

    u is the data as a sequence (N, D): pixel levels 0..L−1 (as floats) for images, standardised coordinates for
    points. P = L logits per pixel, or 3K (mixture logits, means, log-scales) per coordinate.
    """

    def __init__(self, spec: DataSpec, components: int = 10, order: Tensor | None = None) -> None:
        super().__init__(spec)
        self.discrete = spec.levels is not None
        self.params_per_dim = spec.levels if self.discrete else 3 * components
        self.standardize = None if self.discrete else Standardize(spec)
        self.register_buffer("order", torch.arange(spec.dim) if order is None else order)
        self.capabilities = Capabilities(likelihood="exact", inpainting=True, conditionals=True)
        self.sampling_cost = f"{spec.dim} sequential passes, one per {'pixel' if self.discrete else 'coordinate'}"

    # --- what subclasses provide ------------------------------------------------------------------------------
    def _params(self, u: Tensor) -> Tensor:
        """(N, P, D): the parameters of every conditional p(u_d | u before d)."""
        raise NotImplementedError

    def _params_of(self, u: Tensor, d: int) -> Tensor:
        """(N, P): the parameters of conditional d alone; models may compute less than all D to get them."""
        return self._params(u)[:, :, d]

    def _scaled(self, u: Tensor) -> Tensor:
        """Network input: pixel levels scaled to [0, 1]; standardised coordinates as they are."""
        return u / (self.spec.levels - 1) if self.discrete else u

    # --- the sequence view of the data ------------------------------------------------------------------------
    def _to_sequence(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(u, log |det ∂u/∂x|): levels are kept as they are (det 1), points are standardised."""
        if self.discrete:
            return x.flatten(1), torch.zeros(len(x), device=x.device)
        return self.standardize(x)

    def _from_sequence(self, u: Tensor) -> Tensor:
        return u.reshape(len(u), *self.spec.shape) if self.discrete else self.standardize.inverse(u)

    # --- likelihood -------------------------------------------------------------------------------------------
    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = Σ_d log p(x_d | x before d): nats of probability mass for pixels; for points a density, with
        the standardisation's log-determinant."""
        u, log_det = self._to_sequence(x)
        return self._sequence_log_prob(u, log_det, self._params(u))

    def _sequence_log_prob(self, u: Tensor, log_det: Tensor, params: Tensor) -> Tensor:
        """Σ_d log p(u_d | ·) from every conditional's parameters (N, P, D), plus the sequence view's log-det."""
        if self.discrete:
            return params.log_softmax(1).gather(1, u.long()[:, None, :]).sum((1, 2))
        return _mixture_log_prob(params, u).sum(1) + log_det

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        return {"loss": -self.log_prob(x).mean() / self.spec.dim}

    # --- sampling and inpainting ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Ancestral sampling, one dimension per pass in the model's order: x_d ~ p(x_d | x before d)."""
        u = torch.zeros(n, self.spec.dim, device=self.device)
        return self._from_sequence(self._fill(u, torch.ones_like(u, dtype=torch.bool)))

    @torch.no_grad()
    def inpaint(self, x: Tensor, observed: Tensor) -> Tensor:
        """x with its unobserved entries (``observed`` False, a bool tensor of x's shape) drawn from the model.

        Dimensions are drawn in the model's order, each from p(x_d | everything before d, observed or drawn).
        Observed values later in the order are kept but not conditioned on, so the fill is an exact draw from
        p(unobserved | observed) when the observed part is a prefix of the order (e.g. the top rows in raster
        order), and an approximation otherwise.
        """
        u, _ = self._to_sequence(x)
        filled = self._from_sequence(self._fill(u, ~observed.reshape(len(x), -1)))
        return torch.where(observed, x, filled)

    def _fill(self, u: Tensor, free: Tensor) -> Tensor:
        """Draw the entries of u where ``free`` (N, D) is True, one dimension at a time in order."""
        u = u.masked_fill(free, 0.0)  # unknown values must not reach the network, even through zero weights
        for d, params in self._conditionals(u, free):
            u[:, d] = torch.where(free[:, d], self._draw(params), u[:, d])
        return u

    def _conditionals(self, u: Tensor, free: Tensor) -> Iterator[tuple[int, Tensor]]:
        """(d, parameters (N, P) of conditional d) for the dimensions to draw, in order. The caller writes u[:, d]
        before asking for the next, so a model may keep state between them (a transformer's key-value cache)."""
        for d in self.order.tolist():
            if free[:, d].any():
                yield d, self._params_of(u, d)

    # --- how it works: one conditional at a time ------------------------------------------------------------------
    @torch.no_grad()
    def conditional_log_density(self, x: Tensor, d: int, values: Tensor) -> Tensor:
        """log p(x_d = v | the dimensions before d in the order, read from the item x (D,)) for each v of ``values``
        (M,), in data units: a density for points (with the standardisation's Jacobian), log-probabilities of the
        levels for pixels. Dimensions of x at or after d in the order are not read."""
        params = self._params_given(x, d)
        if self.discrete:
            return params.log_softmax(-1)[0, values.long()]
        mean, std = self.standardize.mean[d], self.standardize.std[d]
        y = ((values - mean) / std)[:, None]  # (M, 1) standardised values of dimension d
        return _mixture_log_prob(params[:, :, None].expand(len(values), -1, -1), y)[:, 0] - std.log()

    @torch.no_grad()
    def draw_conditional(self, x: Tensor, d: int) -> float:
        """One draw of x_d ~ p(x_d | the dimensions before d in the order, read from x (D,)), in data units."""
        value = self._draw(self._params_given(x, d))[0]
        return float(value if self.discrete else value * self.standardize.std[d] + self.standardize.mean[d])

    @torch.no_grad()
    def sample_step_by_step(self) -> tuple[Tensor, Tensor]:
        """One image drawn pixel by pixel exactly as ``sample(1)`` draws it, with the conditional each pixel came from:
        the levels (D,) and p(x_d = v | x before d) for every pixel d and level v (D, L). Images only."""
        if not self.discrete:
            raise ValueError("sample_step_by_step draws images; for points use draw_conditional")
        u = torch.zeros(1, self.spec.dim, device=self.device)
        probs = torch.zeros(self.spec.dim, self.spec.levels, device=self.device)
        for d, params in self._conditionals(u, torch.ones_like(u, dtype=torch.bool)):
            probs[d] = params.softmax(-1)[0]
            u[:, d] = self._draw(params)
        return u[0], probs

    def _params_given(self, x: Tensor, d: int) -> Tensor:
        """(1, P): the parameters of conditional d for item x (D,), with what comes at or after d hidden."""
        u, _ = self._to_sequence(x[None])
        before = torch.zeros_like(u, dtype=torch.bool)
        before[:, self.order[: int((self.order == d).nonzero())]] = True
        return self._params_of(u.masked_fill(~before, 0.0), d)

    def _draw(self, params: Tensor) -> Tensor:
        """One value per row from the conditional with parameters (N, P)."""
        if self.discrete:
            return torch.multinomial(params.softmax(-1), 1).squeeze(1).float()
        return _mixture_sample(params)


def order_permutation(dim: int, order: str, seed: int = 0) -> Tensor:
    """The dimensions in the order they are generated: "natural" 0..D−1, "reversed", or "random" (seeded)."""
    if order == "natural":
        return torch.arange(dim)
    if order == "reversed":
        return torch.arange(dim).flip(0)
    if order == "random":
        return torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"Unknown order {order!r}; choose natural, reversed or random.")


class MaskedLinear(nn.Linear):
    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(
    dim: int, hidden: int, layers: int, outputs_per_dim: int, input_degrees: Tensor | None = None
) -> list[Tensor]:
    """Masks (out × in) for inputs of degrees 1..D (by default in index order; ``input_degrees[i]`` is input i's
    position in the order, from 1), hidden units cycling through 1..D−1, and outputs of degree d repeated
    ``outputs_per_dim`` times (output index p·D + i belongs to input i and has input i's degree)."""
    input_degrees = torch.arange(1, dim + 1) if input_degrees is None else input_degrees
    degrees = [input_degrees] + [torch.arange(hidden) % max(dim - 1, 1) + 1 for _ in range(layers)]
    masks = [later[:, None] >= earlier[None, :] for earlier, later in zip(degrees[:-1], degrees[1:])]
    output_degrees = input_degrees.repeat(outputs_per_dim)
    masks.append(output_degrees[:, None] > degrees[-1][None, :])
    return masks


def masked_mlp(masks: list[Tensor], activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """MaskedLinear layers with ``activation`` between them (none after the last): the network of a MADE."""
    modules: list[nn.Module] = []
    for mask in masks:
        modules += [MaskedLinear(mask), activation()]
    return nn.Sequential(*modules[:-1])


class MADE(AutoregressiveModel):
    """Categorical conditionals over the L levels of each pixel, or a K-component Gaussian mixture for real values.

    ``order`` ("natural", "reversed" or "random", seeded by ``seed``) is the order the dimensions are generated in;
    the masks follow it, so any order gives an exact likelihood, though not an equally easy one to learn.
    ``context`` > 0 adds that many inputs after the D dimensions, seen by every hidden unit and predicted by no
    output (degree 0): a condition, as in a class-conditional MADE.
    """

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 2,
        components: int = 10,
        order: str = "natural",
        seed: int = 0,
        context: int = 0,
    ) -> None:
        permutation = order_permutation(spec.dim, order, seed)
        super().__init__(spec, components, permutation)
        degrees = torch.empty_like(permutation)
        degrees[permutation] = torch.arange(1, spec.dim + 1)
        masks = made_masks(spec.dim, hidden, layers, self.params_per_dim, degrees)
        masks[0] = torch.cat([masks[0], torch.ones(hidden, context, dtype=torch.bool)], 1)
        self.net = masked_mlp(masks)

    def _params(self, u: Tensor) -> Tensor:
        return self.net(self._scaled(u)).reshape(len(u), self.params_per_dim, self.spec.dim)


def _split_mixture(params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    logits, means, log_scales = params.chunk(3, dim=1)
    return logits.log_softmax(1), means, log_scales.clamp(-7.0, 5.0)


def _mixture_log_prob(params: Tensor, y: Tensor) -> Tensor:
    """log Σ_k π_k N(y; μ_k, σ_k²) per dimension, for params (N, 3K, D) and y (N, D)."""
    log_weights, means, log_scales = _split_mixture(params)
    z = (y[:, None, :] - means) * torch.exp(-log_scales)
    log_normal = -0.5 * z.pow(2) - log_scales - 0.5 * torch.log(torch.tensor(2 * torch.pi))
    return torch.logsumexp(log_weights + log_normal, dim=1)


def _mixture_sample(params: Tensor) -> Tensor:
    """One draw per row from the mixture with params (N, 3K)."""
    log_weights, means, log_scales = _split_mixture(params[:, :, None])
    k = torch.multinomial(log_weights.squeeze(-1).exp(), 1)
    mean, log_scale = means.squeeze(-1).gather(1, k), log_scales.squeeze(-1).gather(1, k)
    return (mean + torch.randn_like(mean) * log_scale.exp()).squeeze(1)
