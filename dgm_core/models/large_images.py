"""Training defaults for images beyond 16×16 (MNIST's 28×28), where the image defaults do not fit live training.

The per-kind image defaults were tuned on 8×8 digits (D = 64) and 16×16 shapes (D = 256). Most models scale to
D = 784 within the live limits (4 M parameters, 20 GFLOP a step; ``RunSpec.check_cost``) and keep them; these would
not, and get settings that do:

- NSF: each coupling's conditioner emits 3K − 1 = 47 spline numbers for each of D/2 pixels, so its last layer has
  hidden · 47 · D/2 weights: 10 M at width 128 on 28×28, 2.5 M at width 32.
- IWAE: a step scores k = 8 posterior draws of every item, 21.5 GFLOP at batch 128 on 28×28 with 17 levels;
  batch 64 halves it.

Two image models exceed the limits on 28×28 at any setting, and the cost check refuses them: FVSBN (a softmax over
the levels of each pixel from all earlier pixels, D² · L weights: 10.5 M with 17 levels; 1.2 M on binarised images,
where it trains) and Glow (its D × D mixing matrix is formed from its LU factors at every step, D³ per layer).
"""

from __future__ import annotations

from dgm_core.data import DataSpec
from dgm_core.models.entries import TrainingDefaults

SMALL_IMAGE_DIM = 256  # pixels of a 16×16 image: the largest the image defaults were tuned on
LARGE_IMAGE_DEFAULTS: dict[str, TrainingDefaults] = {
    "NSF": TrainingDefaults(800, 1e-3, 128, 32),
    "IWAE": TrainingDefaults(800, 1e-3, 64, 256),
}


def large_image_defaults(name: str, spec: DataSpec) -> TrainingDefaults | None:
    """The defaults of model ``name`` on images of ``spec``'s size when they differ from its image defaults."""
    if spec.kind == "image" and spec.dim > SMALL_IMAGE_DIM:
        return LARGE_IMAGE_DEFAULTS.get(name)
    return None
