"""Tools for exploring a latent space: paths between latents, traversals, planes, inversion of a generator, and how
latent dimensions line up with known factors of variation.

Latents are rows of a (N, d) tensor; a single latent may be given as (d,) or (1, d). Everything here is plain tensor
math except ``to_latent``, ``find_latent`` and ``decode_items``, which call a model (in eval mode, on its device) and
return CPU tensors.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from dgm_core.models.base import GenerativeModel

PathKind = Literal["linear", "slerp"]
PARALLEL_EPS = 1e-6  # below this sin(angle) (or norm), slerp falls back to the straight line


# --- paths between two latents ----------------------------------------------------------------------------------------


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation: the direction moves along the great circle, the norm moves linearly.

    With r_i = |z_i|, unit directions u_i = z_i / r_i and the angle Ω = arccos(u_0 · u_1):

        z(t) = ((1 − t) r_0 + t r_1) · (sin((1 − t) Ω) u_0 + sin(t Ω) u_1) / sin Ω,

    so |z(t)| = |z_0| all along when |z_0| = |z_1|. Why it suits Gaussian latents: z ~ N(0, I_d) concentrates on a
    shell of radius √d (|z|² is χ²_d, mean d, spread √(2d)), so two samples are nearly orthogonal and the straight-line
    midpoint has norm ≈ √(d/2): a point the decoder has almost never seen. Slerp stays on the shell.
    Nearly parallel or anti-parallel latents (sin Ω ≈ 0), or a zero latent, fall back to the straight line.
    Returns (len(t), d); t = 0 gives z_0 and t = 1 gives z_1 bit for bit.
    """
    z0, z1, t = z0.reshape(1, -1), z1.reshape(1, -1), t.reshape(-1, 1).to(z0.dtype)
    r0, r1 = z0.norm(), z1.norm()
    straight = (1 - t) * z0 + t * z1
    if min(r0.item(), r1.item()) < PARALLEL_EPS:
        return _pin_endpoints(straight, z0, z1, t)
    u0, u1 = z0 / r0, z1 / r1
    omega = torch.arccos((u0 * u1).sum().clamp(-1.0, 1.0))
    if torch.sin(omega).item() < PARALLEL_EPS:
        return _pin_endpoints(straight, z0, z1, t)
    direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return _pin_endpoints(((1 - t) * r0 + t * r1) * direction, z0, z1, t)


def _pin_endpoints(path: Tensor, z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Replace the rows at t = 0 and t = 1 by the endpoints themselves (no rounding error)."""
    return torch.where(t == 0, z0, torch.where(t == 1, z1, path))


def path_point(z0: Tensor, z1: Tensor, t: float, path: PathKind) -> Tensor:
    """The point at fraction t ∈ [0, 1] of the way from z_0 to z_1, (1, d): z(t) = (1 − t) z_0 + t z_1, or slerp."""
    times = torch.tensor([t], dtype=z0.dtype, device=z0.device)
    if path == "slerp":
        return slerp(z0, z1, times)
    if path != "linear":
        raise ValueError(f"Unknown path {path!r}; use 'linear' or 'slerp'.")
    z0, z1, times = z0.reshape(1, -1), z1.reshape(1, -1), times[:, None]
    return _pin_endpoints((1 - times) * z0 + times * z1, z0, z1, times)


def interpolate(z0: Tensor, z1: Tensor, n: int, path: PathKind) -> Tensor:
    """n evenly spaced points from z_0 (first row) to z_1 (last row) along the path, (n, d)."""
    if n < 2:
        raise ValueError("An interpolation needs at least its two endpoints (n ≥ 2).")
    return torch.cat([path_point(z0, z1, t, path) for t in torch.linspace(0, 1, n).tolist()])


# --- encoding and decoding --------------------------------------------------------------------------------------------


@torch.no_grad()
def to_latent(model: GenerativeModel, x: Tensor, labels: Tensor | None = None) -> Tensor:
    """The model's deterministic latent for each item, (N, d): a flow's exact z = f(x) (images: at the bin centre),
    a VAE's posterior mean μ(x) (a conditional one's μ(x, y), given the items' ``labels``). Models without an
    encoder raise NotImplementedError (see ``find_latent``)."""
    model.eval()
    x = x.to(model.device)
    return (model.encode(x) if labels is None else model.encode(x, labels.to(model.device))).cpu()


@torch.no_grad()
def decode_items(model: GenerativeModel, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """Items for latents z, in the data's shape: points, or images as (expected) levels in [0, L − 1], float.
    A conditional model decodes each z for its class in ``labels``."""
    model.eval()
    return _decode(model, z.to(model.device), labels).float().cpu()


def _decode(model: GenerativeModel, z: Tensor, labels: Tensor | None) -> Tensor:
    return model.decode(z) if labels is None else model.decode(z, labels.to(z.device))


def find_latent(
    model: GenerativeModel,
    x: Tensor,
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    restarts: int = 4,
    prior_weight: float = 1e-5,
    labels: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Invert a decoder without an encoder (a GAN's generator) by optimisation, item by item:

        z* = argmin_z  mean_i ((G(z) − x)_i / s_i)² + λ |z|² / 2,

    with s the data's scale (L − 1 for images, the training std for points) and a small λ that breaks ties between
    latents that fit equally well in favour of the more probable one under the prior. Adam runs from ``restarts``
    seeded draws z ~ N(0, I) per item; the best restart is kept. A conditional generator searches G(z, y) with each
    item's class y in ``labels``.
    This is the closest point the generator can produce, not an inference: there is no posterior p(z | x) behind it,
    and an item the generator cannot make is simply matched badly (the error says how badly).
    Returns (z (N, d), mean squared reconstruction error per item in the data's units).
    """
    model.eval()
    device, spec = model.device, model.spec
    target = x.to(device).flatten(1).float()
    scale = float(spec.levels - 1) if spec.levels is not None else torch.tensor(spec.std, device=device)
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(restarts, len(x), model.capabilities.latent_dim, generator=generator).to(device).requires_grad_()
    optimizer = torch.optim.Adam([z], lr=lr)

    repeated = None if labels is None else labels.to(device).repeat(restarts)

    def objective() -> tuple[Tensor, Tensor]:
        error = (_decode(model, z.flatten(0, 1), repeated).flatten(1) - target.repeat(restarts, 1)) / scale
        return error.pow(2).mean(1).reshape(restarts, len(x)), prior_weight * z.pow(2).sum(-1) / 2

    for _ in range(steps):
        fit, prior = objective()
        (gradient,) = torch.autograd.grad((fit + prior).sum(), z)  # items and restarts are independent under Adam
        optimizer.zero_grad(set_to_none=True)
        z.grad = gradient
        optimizer.step()
    with torch.no_grad():
        fit, prior = objective()
        best = (fit + prior).argmin(0)
        items = torch.arange(len(x), device=device)
        z_best = z[best, items]
        error = (_decode(model, z_best, labels).flatten(1) - target).pow(2).mean(1)
    return z_best.detach().cpu(), error.cpu()


# --- grids, traversals and planes -------------------------------------------------------------------------------------


def traverse(z: Tensor, dims: list[int], values: Tensor) -> Tensor:
    """Copies of z moved along one dimension at a time, (len(dims) · m, d), row-major: row k · m + j is z with
    values[j] added to z[dims[k]] (a traversal around z; the prior's standard deviation is 1 in every dimension)."""
    z, values = z.reshape(-1), values.to(z.dtype)
    rows = z.repeat(len(dims) * len(values), 1)
    for k, dim in enumerate(dims):
        rows[k * len(values) : (k + 1) * len(values), dim] += values
    return rows


def grid_2d(extent: float, n: int) -> Tensor:
    """An n × n grid over [−extent, extent]², (n², 2), laid out like ``log_density_grid``: row-major, the row index
    follows y (ascending) and the column index follows x."""
    ticks = torch.linspace(-extent, extent, n)
    grid_y, grid_x = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([grid_x.flatten(), grid_y.flatten()], 1)


class Plane(NamedTuple):
    latents: Tensor  # (n², d): z(s, t) at each grid node, row-major, rows following t and columns following s
    coords: Tensor  # (n², 2): the (s, t) plane coordinates of each node
    anchors: Tensor  # (3, 2): where z_a, z_b, z_c sit, (0, 0), (1, 0) and (0, 1)


def plane(z_a: Tensor, z_b: Tensor, z_c: Tensor, n: int, margin: float = 0.25) -> Plane:
    """The plane through three latents, z(s, t) = (1 − s − t) z_a + s z_b + t z_c, sampled on an n × n grid.

    z_a, z_b, z_c sit at (s, t) = (0, 0), (1, 0), (0, 1). The grid spans [−m, 1 + m]² with m the margin rounded so
    that 0 and 1 are grid nodes: the three latents themselves are decoded, bit for bit, at three of the nodes.
    """
    if n < 2:
        raise ValueError("A plane grid needs n ≥ 2 points per side.")
    steps, offset = _unit_steps(n, margin)
    ticks = (torch.arange(n, dtype=torch.float64) - offset) / steps  # 0 and 1 exactly at nodes offset, offset + steps
    grid_t, grid_s = torch.meshgrid(ticks, ticks, indexing="ij")
    coords = torch.stack([grid_s.flatten(), grid_t.flatten()], 1).to(z_a.dtype)
    s, t = coords[:, :1], coords[:, 1:]
    latents = (1 - s - t) * z_a.reshape(1, -1) + s * z_b.reshape(1, -1) + t * z_c.reshape(1, -1)
    anchors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=z_a.dtype)
    return Plane(latents, coords, anchors)


def _unit_steps(n: int, margin: float) -> tuple[int, int]:
    """Grid steps k between 0 and 1, and nodes j below 0, with k + 2j = n − 1 and j / k closest to the margin."""
    candidates = [(k, (n - 1 - k) // 2) for k in range(1, n) if (n - 1 - k) % 2 == 0]
    return min(candidates, key=lambda kj: abs(kj[1] / kj[0] - margin))


def project_to_plane(z: Tensor, z_a: Tensor, z_b: Tensor, z_c: Tensor) -> Tensor:
    """Least-squares plane coordinates (s, t) of each latent, (N, 2): argmin |z − z(s, t)|², which inverts ``plane``
    for points on it. Solved with the pseudo-inverse of the basis B = [z_b − z_a, z_c − z_a]."""
    z_a = z_a.reshape(1, -1)
    basis = torch.stack([z_b.reshape(-1), z_c.reshape(-1)], 1) - z_a.T  # (d, 2)
    return (z.reshape(len(z), -1) - z_a) @ torch.linalg.pinv(basis).T


# --- latents against known factors ------------------------------------------------------------------------------------


def factor_correlations(latents: Tensor, factors: dict[str, Tensor], categorical: Collection[str] = ()) -> Tensor:
    """How strongly each latent dimension follows each factor, (d, F) in [0, 1], columns in the order of ``factors``.

    Ordered factors: the absolute Spearman rank correlation |ρ| = |corr(rank z_j, rank f)| (average ranks for ties),
    which sees any monotone relation, not only a linear one. Categorical factors (integer tensors, or names listed in
    ``categorical``), whose order means nothing: the correlation ratio η = √(SS_between / SS_total) of the latent
    grouped by category, the square root of the share of the latent's variance that the category explains (η = 1 when
    the category determines the latent, ≈ 0 when the group means agree). A constant dimension or factor scores 0.
    """
    latents = latents.double()
    ranks = torch.stack([_average_ranks(column) for column in latents.T], 1)  # (N, d)
    centred_ranks, centred = ranks - ranks.mean(0), latents - latents.mean(0)
    columns = []
    for name, values in factors.items():
        if name in categorical or not values.is_floating_point():
            columns.append(_correlation_ratio(centred, values))
        else:
            factor = _average_ranks(values.double())
            factor = factor - factor.mean()
            covariance = (centred_ranks * factor[:, None]).sum(0)
            columns.append((covariance / (centred_ranks.norm(dim=0) * factor.norm())).abs())
    return torch.stack(columns, 1).nan_to_num(0.0).clamp(0.0, 1.0).float()


def _average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..N, tied values sharing the mean of their positions."""
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts - 1) / 2)[inverse]


def _correlation_ratio(centred: Tensor, categories: Tensor) -> Tensor:
    """η per column of centred (N, d): √(Σ_c n_c mean_c² / Σ_i x_i²) over the categories c."""
    _, groups = torch.unique(categories, return_inverse=True)
    n_groups = int(groups.max()) + 1
    sums = centred.new_zeros(n_groups, centred.shape[1]).index_add_(0, groups, centred)
    counts = torch.bincount(groups, minlength=n_groups).double()[:, None]
    between = (sums.pow(2) / counts).sum(0)
    return (between / centred.pow(2).sum(0)).sqrt()
