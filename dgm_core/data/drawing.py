"""A painted canvas as 2D points: the paint is a density, and points are drawn from it.

Each pixel's weight is how much paint covers it (its darkness times its opacity); n pixels are drawn in proportion to
their weights and each point is placed uniformly inside its pixel, so a broad brush gives a broad density and a thin
stroke a thin one. The canvas spans [−EXTENT, EXTENT]² with y upwards, the scale of the built-in 2D sets.
"""

from __future__ import annotations

import numpy as np

from dgm_core.data.upload import DataError

EXTENT = 4.0
MAX_CANVAS_PIXELS = 4096 * 4096


def paint_weights(picture: np.ndarray) -> np.ndarray:
    """(H, W) weights in [0, 1] from an RGB or RGBA picture (H, W, 3|4) of uint8: dark, opaque paint weighs most;
    white paper and transparent pixels weigh nothing."""
    picture = np.asarray(picture)
    if picture.ndim != 3 or picture.shape[2] not in (3, 4) or picture.shape[0] * picture.shape[1] > MAX_CANVAS_PIXELS:
        raise DataError("The drawing is not a picture of a usable size.")
    rgb = picture[..., :3].astype(np.float32) / 255.0
    darkness = 1.0 - rgb.mean(axis=2)
    alpha = picture[..., 3].astype(np.float32) / 255.0 if picture.shape[2] == 4 else 1.0
    return darkness * alpha


def points_from_paint(weights: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n points (n, 2) drawn from the paint density ``weights`` (H, W); DataError when nothing is painted.

    Arguments:
        weights: paint per pixel, ≥ 0, row 0 at the top.
        n: how many points to draw.
        seed: seeds the draw, so the same drawing gives the same points.
    """
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        raise DataError("Nothing is drawn yet: paint a shape on the canvas first.")
    rng = np.random.default_rng(seed)
    height, width = weights.shape
    pixel = rng.choice(weights.size, size=n, p=(weights / total).ravel())
    row, col = np.divmod(pixel, width)
    x = (col + rng.random(n)) / width  # within the pixel, in [0, 1)
    y = (row + rng.random(n)) / height
    return np.stack([(2 * x - 1) * EXTENT, (1 - 2 * y) * EXTENT], axis=1).astype(np.float32)
