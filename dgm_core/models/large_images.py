"""Training defaults for images beyond 16×16 (MNIST's 28×28), where the image defaults do not fit live training.

The per-kind image defaults were tuned on 8×8 digits (D = 64) and 16×16 shapes (D = 256). Most models scale to
D = 784 within the live limits (4 M parameters, 20 GFLOP a step; ``RunSpec.check_cost``) and keep them; these would
not, and get settings that do:

- NSF: each coupling's conditioner emits 3K − 1 = 47 spline numbers for each of D/2 pixels, so its last layer has
  hidden · 47 · D/2 weights: 10 M at width 128 on 28×28, 2.5 M at width 32.
- IWAE: a step scores k = 8 posterior draws of every item, 21.5 GFLOP at batch 128 on 28×28 with 17 levels;
  batch 64 halves it.
- VAE and CVAE: at batch 128 their 17-level decoders (hidden · L · D = 3.4 M weights in the last layer) take ~1,300
  steps in a minute on one core; batch 64 at learning rate 3e-3 takes ~2,100 in the same minute and ends with more
  recognisable samples (``bench/bench_mnist.py``'s reader: VAE 38 → 45 %, CVAE 76 → 83 % as asked).
- CVAE's latent: 4 dimensions instead of 8. The label carries the digit and z only the style; with eight, prior draws
  fall between the encoder's tight posteriors (posterior variances ≈ 0.01–0.05, means spread ≈ 1.2) and decode to
  blends; with four, 92.6 % of its samples are read as the class asked for (8: 83 %), its bound 488 against 495 nats.

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
    "VAE": TrainingDefaults(2000, 3e-3, 64, 256),
    "CVAE": TrainingDefaults(2000, 3e-3, 64, 256),
}
LARGE_IMAGE_LATENT_DIMS = {"CVAE": 4}


def _large(spec: DataSpec) -> bool:
    return spec.kind == "image" and spec.dim > SMALL_IMAGE_DIM


def large_image_defaults(name: str, spec: DataSpec) -> TrainingDefaults | None:
    """The defaults of model ``name`` on images of ``spec``'s size when they differ from its image defaults."""
    return LARGE_IMAGE_DEFAULTS.get(name) if _large(spec) else None


def large_image_latent_dim(name: str, spec: DataSpec) -> int | None:
    """Model ``name``'s latent dimensions on images of ``spec``'s size when they differ from its own default."""
    return LARGE_IMAGE_LATENT_DIMS.get(name) if _large(spec) else None
