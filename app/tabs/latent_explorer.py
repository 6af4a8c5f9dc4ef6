"""The latent explorer's state and computations, without Gradio: endpoints, a path between them, traversals and maps.

The math is ``dgm_core.inspect.latent_tools``'s; this module picks what to compute for a run (from its capabilities,
never its name) and turns the results into pictures and plain arrays for the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from app.draw import figures
from app.page.session import RunView
from dgm_core.inspect import latent_tools
from dgm_core.models.registry import FAMILIES, MODELS

Path = Literal["linear", "slerp"]
Source = Literal["random latents", "two test items"]
SCALE = {8: 12, 16: 7}  # image pixels → screen pixels, by image side
MAP_SIDE = 11  # decoded items per side of a map
OVERLAY_ITEMS = 1000  # encoded test items drawn over a map

SLERP_NOTE = (
    "**Why slerp?** Under a Gaussian prior in d dimensions, latents concentrate on a shell of radius ≈ √d. A straight "
    "line between two of them cuts inside the shell (the midpoint's norm is ≈ √(d/2)), through codes the model "
    "rarely saw; the spherical path stays on the shell."
)


@dataclass
class Endpoints:
    """Two latents to travel between, from a run, with what they came from."""

    run_id: int
    start: Tensor  # (d,)
    end: Tensor  # (d,)
    note: str
    items: Tensor | None = None  # the two test items they encode, when they came from data
    label: int | None = None  # a conditional model's class, held fixed along the path (None: unconditional)
    cache: dict = field(default_factory=dict)  # decoded paths by (steps, path kind, class), reused as the slider moves


@dataclass
class LatentState:
    """The Latent explorer's state on one page: the path it walks (None until a run is picked)."""

    endpoints: Endpoints | None = None


def explains(run: RunView) -> str:
    """One or two sentences: what latent space this run has, and how items get into it."""
    caps, family = run.capabilities, MODELS[run.spec.model].family
    if caps.latent_dim is None:
        return (
            f"**{run.spec.model} has no latent space.** {FAMILIES[family]} It builds each item piece by piece, so "
            "there is no code z to move along: try a flow, a VAE or a GAN."
        )
    how = (
        "Real items map into it by the model's encoder"
        if caps.encoder
        else "It has no encoder: a real item gets the latent that the generator maps closest to it (latent "
        "optimisation, a search, not an inference)"
    )
    if caps.conditional:
        how += (
            ", reading the item's class label too. It is conditional: every item is decoded for one class, held "
            "fixed along the path (pick it below)"
        )
    return f"**{run.spec.model}: a {caps.latent_dim}-dimensional latent space** with {caps.prior}. {how}."


def has_latent(run: RunView | None) -> bool:
    return run is not None and run.capabilities.latent_dim is not None


def to_latents(run: RunView, index: list[int] | slice) -> tuple[Tensor, str]:
    """Latents of the test items at ``index`` (with their class labels, for a conditional model), and a note saying
    how they were found."""
    model = run.model
    items = run.data.test[index].to(run.device)
    labels = run.data.labels["test"][index] if run.capabilities.conditional else None
    if run.capabilities.encoder:
        return latent_tools.to_latent(model, items, labels), "encoded by the model"
    latents, error = latent_tools.find_latent(model, items, labels=labels)
    errors = ", ".join(f"{e:.3g}" for e in error.tolist())
    return latents, f"found by latent optimisation (squared reconstruction error per item: {errors})"


def choose_endpoints(run: RunView, source: Source, first: int, second: int, seed: int) -> Endpoints:
    """Two random prior draws, or the latents of two test items (indices into the test split)."""
    label = 0 if run.capabilities.conditional else None
    if source == "random latents":
        generator = torch.Generator().manual_seed(seed)
        start, end = run.model.draw_latents(2, generator)
        return Endpoints(run.id, start, end, f"two draws from the prior (seed {seed})", label=label)
    test = run.data.test
    for index in (first, second):
        if not 0 <= index < len(test):
            raise ValueError(f"Test items are numbered 0 to {len(test) - 1}.")
    latents, how = to_latents(run, [first, second])
    if label is not None:
        label = int(run.data.labels["test"][first])  # the class of item A, until another is picked
    note = f"test items {first} and {second}, {how}"
    return Endpoints(run.id, latents[0].cpu(), latents[1].cpu(), note, test[[first, second]], label)


def path_latents(ends: Endpoints, n: int, path: Path) -> Tensor:
    return latent_tools.interpolate(ends.start, ends.end, n, path)


def decoded_path(run: RunView, ends: Endpoints, n: int, path: Path) -> np.ndarray:
    """The ``n`` evenly spaced items of a path, decoded once per endpoints (the weights do not change meanwhile
    unless the run trains on, which the slider accepts as a stale path until the endpoints are set again)."""
    key = (n, path, ends.label)
    if key not in ends.cache:
        ends.cache[key] = decode(run, path_latents(ends, n, path), ends.label)
    return ends.cache[key]


def decode(run: RunView, latents: Tensor, label: int | None = None) -> np.ndarray:
    """Decoded items as a float array in the data's shape (images: expected levels); a conditional model decodes
    every latent for the one class ``label`` (class 0 if none is given)."""
    labels = torch.full((len(latents),), label or 0, dtype=torch.long) if run.capabilities.conditional else None
    return latent_tools.decode_items(run.model, latents.to(run.device), labels).cpu().numpy()


def class_choices(run: RunView | None) -> list[tuple[str, int]]:
    """The classes a conditional run decodes for, as (name, label); empty for other runs."""
    if run is None or not run.capabilities.conditional:
        return []
    names = run.data_spec.class_names or tuple(f"class {k}" for k in range(run.data_spec.n_classes or 0))
    return [(name, k) for k, name in enumerate(names)]


def picture(run: RunView, items: np.ndarray, columns: int, scale: int | None = None) -> np.ndarray:
    """Decoded images as one picture, ``columns`` per row; ``scale`` screen pixels across one item if given."""
    side = run.data_spec.shape[-1]
    factor = max(1, scale // side) if scale else SCALE.get(side, max(2, 96 // side))
    return figures.image_grid(items, run.data_spec.levels or 256, columns=columns, scale=factor)


def traversal(run: RunView, ends: Endpoints, values: int, spread: float) -> tuple[Tensor, list[int]]:
    """Latents varying each dimension (at most 16) around the path's start, ``values`` steps in ±spread."""
    dims = list(range(min(run.capabilities.latent_dim, 16)))
    offsets = torch.linspace(-spread, spread, values)
    return latent_tools.traverse(ends.start, dims, offsets), dims


@dataclass
class LatentMap:
    """A grid of latents to decode, and the coordinates in which to draw the encoded test set over it."""

    latents: Tensor  # (side², d), row-major, rows following the second coordinate upwards
    extent: tuple[float, float, float, float]  # u_min, u_max, v_min, v_max of the grid
    overlay: np.ndarray | None  # (N, 2) encoded test items in grid coordinates
    labels: np.ndarray | None
    label_name: str
    axes: tuple[str, str]


def encoded_test(run: RunView) -> Tensor | None:
    """Latents of the first OVERLAY_ITEMS test items, when the model has an encoder (no search for 1,000 items)."""
    if not run.capabilities.encoder:
        return None
    return to_latents(run, slice(0, OVERLAY_ITEMS))[0].cpu()


def prior_extent(run: RunView) -> float:
    """Half the side of the square around 0 that holds 99 % of 4,000 seeded draws from the model's prior, rounded up
    to a half unit and at least 3: N(0, I)'s ±3, or wider for a mixture prior whose Gaussians sit farther out."""
    draws = run.model.draw_latents(4000, torch.Generator().manual_seed(0))
    return max(3.0, math.ceil(2 * draws.abs().amax(1).quantile(0.99).item()) / 2)


def latent_map(run: RunView, corners: tuple[int, int, int], label: str | None, encoded: Tensor | None) -> LatentMap:
    """The decoded manifold: a grid over a 2-dim latent, else the plane through the latents of three test items;
    ``encoded`` (from ``encoded_test``) is drawn over it."""
    dim = run.capabilities.latent_dim
    labels, label_name = _labels(run, label, min(OVERLAY_ITEMS, len(run.data.test)))
    if dim == 2:
        extent = prior_extent(run)
        latents = latent_tools.grid_2d(extent, MAP_SIDE)
        overlay = None if encoded is None else encoded.numpy()
        return LatentMap(latents, (-extent, extent, -extent, extent), overlay, labels, label_name, ("z₁", "z₂"))
    anchors, _ = to_latents(run, list(corners))
    latents, coords, _ = latent_tools.plane(*anchors.cpu(), MAP_SIDE)
    low, high = coords.min(0).values.tolist(), coords.max(0).values.tolist()
    overlay = None if encoded is None else latent_tools.project_to_plane(encoded, *anchors.cpu()).numpy()
    axes = (f"towards item {corners[1]}", f"towards item {corners[2]}")
    return LatentMap(latents, (low[0], high[0], low[1], high[1]), overlay, labels, label_name, axes)


CLASS = "class label"


def _colouring(run: RunView, n: int) -> dict[str, Tensor]:
    """Per-item values to colour the test set by: each known generative factor, then the class label."""
    values = {name: factor[:n] for name, factor in run.data.factors.get("test", {}).items()}
    if "test" in run.data.labels:
        values[CLASS] = run.data.labels["test"][:n]
    return values


def _labels(run: RunView, name: str | None, n: int) -> tuple[np.ndarray | None, str]:
    values = _colouring(run, n)
    if not values:
        return None, ""
    name = name if name in values else next(iter(values))
    return values[name].numpy(), name


def label_options(run: RunView) -> list[str]:
    return list(_colouring(run, 1))


def factor_table(run: RunView, encoded: Tensor | None) -> tuple[np.ndarray, list[str]] | None:
    """|correlation| of each latent dimension with each known generative factor on the encoded test items, if the
    data has factors and the model an encoder."""
    if not run.data.factors or encoded is None:
        return None
    factors = _colouring(run, len(encoded))
    table = latent_tools.factor_correlations(encoded, factors, categorical=[CLASS])
    return table.numpy(), list(factors)
