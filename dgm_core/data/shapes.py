"""Procedural shapes with known generative factors: "inference as inverse graphics" on small grey images.

Each image holds one shape on a black background, drawn from five factors: its kind (square, circle, triangle,
cross), its size s, the position (x, y) of its centre of mass and its brightness level b. Lengths are fractions of the
image width and y runs down the image, so one set of factors renders at any resolution R:

    square   |u| ≤ ½, |v| ≤ ½                         bounding-box fill 1
    circle   u² + v² ≤ ¼                              bounding-box fill π/4
    triangle −⅔ ≤ v ≤ ⅓, |u| ≤ (v + ⅔)/2  (apex up)   bounding-box fill ½
    cross    (|u| ≤ ⅙, |v| ≤ ½) or (|u| ≤ ½, |v| ≤ ⅙) bounding-box fill 5/9

in the shape's own coordinates (u, v) = (X − x, Y − y) / s; each shape's centroid is its origin. A pixel's value is
b · (the fraction of its 4 × 4 sub-pixel centres inside the shape), rounded to an integer level: anti-aliased, so
the pixels move smoothly with x, y and s. Nothing is downloaded; the same seed gives the same images.
"""

from __future__ import annotations

import torch
from torch import Tensor

DESCRIPTION = (
    "Procedural 16×16 shapes (square, circle, triangle, cross), 17 grey levels, 8,000 for training: each image is "
    "rendered from known factors (kind, size, position, brightness), so an encoder's latents can be compared with "
    "the true causes of the pixels (inference as inverse graphics)."
)
KINDS = ("square", "circle", "triangle", "cross")
FACTOR_NAMES = ("size", "x", "y", "intensity")  # the continuous factors; the kind is the class label
FILL_RATIO = {"square": 1.0, "circle": torch.pi / 4, "triangle": 0.5, "cross": 5 / 9}  # area / bounding-box area
RESOLUTION = 16
LEVELS = 17
SUPERSAMPLING = 4
SIZE_RANGE = (0.4, 0.75)  # side (or diameter) as a fraction of the image width
INTENSITY_RANGE = (8, 16)  # brightest level, inclusive
SPLIT_SIZES = {"train": 8000, "val": 1000, "test": 2000}
_CHUNK = 2048  # items rendered at once: bounds the memory of the supersampled grid


def _inside(kind: int, u: Tensor, v: Tensor) -> Tensor:
    """Whether the points (u, v), in shape units, lie inside a shape of the given kind index."""
    name = KINDS[kind]
    if name == "square":
        return (u.abs() <= 0.5) & (v.abs() <= 0.5)
    if name == "circle":
        return u.pow(2) + v.pow(2) <= 0.25
    if name == "triangle":
        return (v <= 1 / 3) & (u.abs() <= (v + 2 / 3) / 2)
    bar = 1 / 6
    return ((u.abs() <= bar) & (v.abs() <= 0.5)) | ((u.abs() <= 0.5) & (v.abs() <= bar))


def render_batch(
    kind: Tensor,
    size: Tensor,
    x: Tensor,
    y: Tensor,
    intensity: Tensor,
    resolution: int = RESOLUTION,
    levels: int = LEVELS,
) -> Tensor:
    """(N, 1, R, R) float images of integer levels 0..levels−1 from N items' factors (kind: long indices into KINDS)."""
    fine = resolution * SUPERSAMPLING
    centres = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine  # sub-pixel centres in [0, 1]
    images = []
    for rows in torch.arange(len(kind)).split(_CHUNK):
        k, s = kind[rows], size[rows, None, None].float()
        u = (centres[None, None, :] - x[rows, None, None].float()) / s
        v = (centres[None, :, None] - y[rows, None, None].float()) / s
        coverage = torch.zeros(len(rows), fine, fine)
        for index in k.unique().tolist():
            same = k == index
            coverage[same] = _inside(index, u[same], v[same]).float()
        coverage = coverage.reshape(len(rows), resolution, SUPERSAMPLING, resolution, SUPERSAMPLING).mean((2, 4))
        brightness = intensity[rows, None, None].float().clamp(0, levels - 1)
        images.append(torch.round(coverage * brightness)[:, None])
    return torch.cat(images) if images else torch.zeros(0, 1, resolution, resolution)


def render(
    kind: str, size: float, x: float, y: float, intensity: float, resolution: int = RESOLUTION, levels: int = LEVELS
) -> Tensor:
    """One (1, R, R) image: a ``kind`` shape of width ``size`` with its centre of mass at (x, y), in image widths."""
    factors = [torch.tensor([value]) for value in (KINDS.index(kind), size, x, y, intensity)]
    return render_batch(*factors, resolution=resolution, levels=levels)[0]


def sample_factors(n: int, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """n random items: kind indices (long) and the FACTOR_NAMES (float), every shape wholly inside the image.

    Kind and brightness are uniform over their values, size uniform in SIZE_RANGE, and the bounding box uniform over
    the positions where it fits.
    """
    kind = torch.randint(len(KINDS), (n,), generator=generator)
    low, high = SIZE_RANGE
    size = low + (high - low) * torch.rand(n, generator=generator)
    above = torch.where(kind == KINDS.index("triangle"), 2 / 3, 1 / 2)  # centroid to the box's top, in sizes
    free = 1 - size  # room left for the (size × size) bounding box along each axis
    x = size / 2 + free * torch.rand(n, generator=generator)
    y = above * size + free * torch.rand(n, generator=generator)
    intensity = torch.randint(INTENSITY_RANGE[0], INTENSITY_RANGE[1] + 1, (n,), generator=generator).float()
    return kind, {"size": size, "x": x, "y": y, "intensity": intensity}


def first_occurrences(images: Tensor) -> Tensor:
    """Sorted indices of the images not equal to any earlier one."""
    _, group = torch.unique(images.flatten(1), dim=0, return_inverse=True)
    order = torch.arange(len(images))
    first = torch.full((int(group.max()) + 1,), len(images)).scatter_reduce(0, group, order, "amin")
    return first.sort().values


def make_splits(seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
    """Train / val / test images, kind labels, and extras holding the levels and each split's factors.

    Rounding to 17 levels blurs sub-pixel moves, so about 1 draw in 400 repeats an earlier image; repeats are
    dropped (from spare draws), so that no image occurs twice and no test image was seen in training.
    """
    generator = torch.Generator().manual_seed(seed)
    total = sum(SPLIT_SIZES.values())
    kind, factors = sample_factors(total + total // 20, generator)
    images = render_batch(kind, *(factors[name] for name in FACTOR_NAMES))
    keep = first_occurrences(images)[:total]
    assert len(keep) == total, "too many repeated images: draw more spares"
    images, kind, factors = images[keep], kind[keep], {name: values[keep] for name, values in factors.items()}
    splits, labels, split_factors, start = {}, {}, {}, 0
    for split, n in SPLIT_SIZES.items():
        rows = slice(start, start + n)
        splits[split], labels[split] = images[rows], kind[rows]
        split_factors[split] = {name: values[rows] for name, values in factors.items()}
        start += n
    return splits, labels, {"levels": LEVELS, "factors": split_factors, "class_names": KINDS}
