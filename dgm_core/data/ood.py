"""Out-of-distribution items in the digits' format (1 × 8 × 8, integer levels 0..16), for the likelihood view.

A model trained on digits assigns log p(x) to anything of that shape. These sets ask whether it ranks real digits
above things that are not digits, and show where likelihood fails as a novelty score: simple images (blank, constant
grey) can score higher than the training data itself (Nalisnick et al., 2019).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm_core.data import digits, load_dataset, shapes

DESCRIPTIONS = {
    "shapes (8×8)": "Squares, circles, triangles and crosses rendered at 8×8 with 17 levels: new content, same format.",
    "inverted digits": "Test digits with every level flipped (16 − x): the same strokes, dark on light.",
    "mirrored digits": "Test digits flipped left to right: 0, 1 and 8 stay digits, 2, 3 and 7 become mirror writing.",
    "uniform noise": "Every pixel an independent uniform level 0..16: nothing like any image.",
    "blank": "All pixels 0: the simplest possible image, darker than every digit.",
    "constant grey": "Every pixel one level, drawn per image from 1..16: flat, with no strokes at all.",
}
SHAPE = (1, 8, 8)
MAX_LEVEL = digits.LEVELS - 1


def _test_digits(n: int, generator: torch.Generator) -> Tensor:
    """n digits test images in a random order (cycling through the split when n exceeds it)."""
    test = load_dataset("digits").test
    order = torch.randperm(len(test), generator=generator)
    return test[order[torch.arange(n) % len(test)]]


def ood_sets(n: int, seed: int) -> dict[str, Tensor]:
    """For each name in DESCRIPTIONS, n items of shape (n, 1, 8, 8): float integer levels 0..16."""
    generator = torch.Generator().manual_seed(seed)
    kind, factors = shapes.sample_factors(n, generator)
    test_digits = _test_digits(n, generator)
    grey = torch.randint(1, MAX_LEVEL + 1, (n, 1, 1, 1), generator=generator).float()
    return {
        "shapes (8×8)": shapes.render_batch(kind, *(factors[name] for name in shapes.FACTOR_NAMES), resolution=8),
        "inverted digits": MAX_LEVEL - test_digits,
        "mirrored digits": test_digits.flip(-1),
        "uniform noise": torch.randint(0, MAX_LEVEL + 1, (n, *SHAPE), generator=generator).float(),
        "blank": torch.zeros(n, *SHAPE),
        "constant grey": grey.expand(n, *SHAPE).clone(),
    }
