"""Out-of-distribution items in an image data set's own format (1 × H × W, integer levels 0..L−1), for the likelihood
view: 8×8 digits, 28×28 MNIST (17 levels or binarised), 16×16 shapes, images you uploaded.

A model trained on such images assigns log p(x) to anything of that shape. These sets ask whether it ranks real test
items above things that are not from its data, and show where likelihood fails as a novelty score: simple images
(blank, constant grey) can score higher than the training data itself (Nalisnick et al., 2019).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm_core.data import Dataset, DataSpec, shapes

DESCRIPTIONS = {
    "shapes": "Squares, circles, triangles and crosses drawn at the data's size and levels: new content, same format.",
    "inverted test items": "Test items with every level flipped (brightest − x): the same strokes, dark on light.",
    "mirrored test items": "Test items flipped left to right: a 0, 1 or 8 stays a digit, a 2, 3 or 7 becomes mirror "
    "writing.",
    "uniform noise": "Every pixel an independent uniform level: nothing like any image.",
    "blank": "All pixels 0: the simplest possible image, darker than every test item.",
    "constant grey": "Every pixel one level, drawn per image from the lit ones: flat, with no strokes at all.",
}


def has_ood_sets(spec: DataSpec) -> bool:
    """Whether ``ood_sets`` can make items in this data's format: square one-channel images of integer levels."""
    return (
        spec.kind == "image"
        and spec.levels is not None
        and len(spec.shape) == 3
        and spec.shape[0] == 1
        and spec.shape[1] == spec.shape[2]
    )


def ood_sets(data: Dataset, n: int, seed: int) -> dict[str, Tensor]:
    """For each name in DESCRIPTIONS (but shapes for the shapes data set itself), n items in ``data``'s format:
    float integer levels 0..L−1, of shape (n, 1, H, W)."""
    spec = data.spec
    top, side = spec.levels - 1, spec.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    kind, factors = shapes.sample_factors(n, generator)
    test = data.test[torch.randperm(len(data.test), generator=generator)[torch.arange(n) % len(data.test)]]
    grey = torch.randint(1, top + 1, (n, 1, 1, 1), generator=generator).float()
    drawn = shapes.render_batch(kind, *(factors[name] for name in shapes.FACTOR_NAMES), resolution=side)
    sets = {
        "shapes": torch.ceil(drawn * top / (shapes.LEVELS - 1)),  # 17 levels to the data's (binarised: any lit pixel)
        "inverted test items": top - test,
        "mirrored test items": test.flip(-1),
        "uniform noise": torch.randint(0, top + 1, (n, *spec.shape), generator=generator).float(),
        "blank": torch.zeros(n, *spec.shape),
        "constant grey": grey.expand(n, *spec.shape).clone(),
    }
    if spec.name == "shapes":
        del sets["shapes"]  # its own data
    return sets
