"""Pictures of 2D data drawn on the server: a log-density heatmap with point clouds over it, as one PNG.

A streamed scatter of ~1,400 SVG points cost the browser ~200 ms per update and a 100×100 plotly heatmap ~120 ms;
the same picture as one image inside a plotly figure (which still draws the axes, title, legend and colour bar)
costs ~40 ms (``bench/bench_live.py``). Pure functions of arrays: no model math.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

Bounds = tuple[float, float, float, float]  # x_min, x_max, y_min, y_max

# ColorBrewer "Blues", light (low log density) to dark (high); the colour bar uses the same stops.
BLUES = [
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
]
BLUES_SCALE = [[i / (len(BLUES) - 1), f"rgb{color}"] for i, color in enumerate(BLUES)]


@dataclass(frozen=True)
class Cloud:
    """Points to draw: (N, 2) in data coordinates, an RGB colour, an opacity and a radius in pixels; ``outline``, a
    colour for a ring one pixel wide around each dot, tells a cloud from another by shape as well as hue (grey data
    and orange samples have about the same lightness: to a colour-blind eye, only the ring sets them apart)."""

    points: np.ndarray
    color: tuple[int, int, int]
    opacity: float
    radius: float = 1.6
    outline: tuple[int, int, int] | None = None


def density_rgb(log_density: np.ndarray, low: float, high: float, size: int) -> np.ndarray:
    """A (rows follow y upwards, columns follow x) grid of log p as a (size, size, 3) float image, top row = y_max."""
    levels = np.clip((np.nan_to_num(log_density, nan=low, neginf=low) - low) / max(high - low, 1e-9), 0, 1)
    stops = np.linspace(0, 1, len(BLUES))
    table = np.asarray(BLUES, dtype=np.float32)
    rgb = np.stack([np.interp(levels, stops, table[:, c]) for c in range(3)], -1).astype(np.uint8)
    picture = Image.fromarray(rgb[::-1]).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.float32)


def coverage(cloud: Cloud, bounds: Bounds, height: int, width: int) -> np.ndarray:
    """How much of each pixel the cloud's round dots cover, (H, W) in [0, 1]: each dot adds an anti-aliased disc
    (a pixel under several dots is simply covered), every dot and disc offset accumulated in one ``bincount``."""
    x_min, x_max, y_min, y_max = bounds
    points = np.asarray(cloud.points, dtype=np.float32).reshape(-1, 2)
    col = np.floor((points[:, 0] - x_min) / (x_max - x_min) * width).astype(np.int64)
    row = np.floor((y_max - points[:, 1]) / (y_max - y_min) * height).astype(np.int64)
    reach = int(np.ceil(cloud.radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1].reshape(2, -1)
    weight = np.clip(cloud.radius + 0.5 - np.hypot(dx, dy), 0, 1)  # an anti-aliased disc edge
    dy, dx, weight = dy[weight > 0], dx[weight > 0], weight[weight > 0]
    r, c = (row[None, :] + dy[:, None]).ravel(), (col[None, :] + dx[:, None]).ravel()
    inside = (c >= 0) & (c < width) & (r >= 0) & (r < height)
    weights = np.repeat(weight, len(row))[inside]
    covered = np.bincount(r[inside] * width + c[inside], weights=weights, minlength=height * width)
    return np.minimum(covered, 1.0).astype(np.float32).reshape(height, width)


def splat(canvas: np.ndarray, cloud: Cloud, bounds: Bounds) -> None:
    """Alpha-blend the cloud's dots onto ``canvas`` (H, W, 3 float) in place; points outside the window are skipped.
    An outlined cloud is drawn twice: a larger dot in the outline's colour, then the dot over it."""
    if cloud.outline is not None:
        splat(canvas, Cloud(cloud.points, cloud.outline, cloud.opacity, cloud.radius + 1.0), bounds)
    alpha = (cloud.opacity * coverage(cloud, bounds, *canvas.shape[:2]))[..., None]
    canvas *= 1 - alpha
    canvas += alpha * np.asarray(cloud.color, dtype=np.float32)


def points_picture(
    bounds: Bounds,
    clouds: Sequence[Cloud],
    log_density: np.ndarray | None = None,
    density_range: tuple[float, float] | None = None,
    size: int = 400,
) -> np.ndarray:
    """The square window ``bounds`` as a (size, size, 3) uint8 picture: the density (white where absent), then each
    cloud in order."""
    if log_density is not None and density_range is not None:
        canvas = density_rgb(log_density, *density_range, size)
    else:
        canvas = np.full((size, size, 3), 255.0, dtype=np.float32)
    for cloud in clouds:
        splat(canvas, cloud, bounds)
    return canvas.round().clip(0, 255).astype(np.uint8)


def png_data_uri(picture: np.ndarray) -> str:
    """A uint8 picture as a ``data:image/png;base64,…`` URI (for a plotly layout image)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
