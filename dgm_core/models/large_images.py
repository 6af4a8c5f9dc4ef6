"""Training defaults for images beyond 16×16 (MNIST's 28×28), where the image defaults do not fit live training.

The per-kind image defaults were tuned on 8×8 digits (D = 64) and 16×16 shapes (D = 256). Most models scale to
D = 784 within the live limits (4 M parameters, 20 GFLOP a step; ``RunSpec.check_cost``) and keep them; these would
not, or learn far less in a minute, and get settings that do:

- NSF: each coupling's conditioner emits 3K − 1 = 47 spline numbers for each of D/2 pixels, so its last layer has
  hidden · 47 · D/2 weights: 10 M at width 128 on 28×28, 2.5 M at width 32.
- IWAE: a step scores k = 8 posterior draws of every item, 21.5 GFLOP at batch 128 on 28×28 with 17 levels;
  batch 64 halves it.
- VAE: a prior, a decoder and a pixel distribution for 28×28. With N(0, I), 17 logits a pixel and an MLP decoder,
  39–44 % of its samples were recognised (``bench/bench_mnist.py``'s reader) after ~2,000 steps in a minute: its
  posteriors are tight (σ ≈ 0.16 against means spread ≈ 2), so prior draws fell between them and decoded to blends.
  Here the prior is a VampPrior of 200 learned pseudo-inputs (it puts its mass where the codes are), each pixel a
  discretized logistic (2 numbers instead of 17: ~2,900 steps a minute, ~3,600 with 100 pseudo-inputs) and the
  decoder paints with transposed convolutions (``upsampling``): 80.0–85.6 % of samples recognised over five seeds,
  decoder means 80.4–84.0 %, a bound of 403–407 nats against 469.5. With 100 pseudo-inputs 79–82 % (three seeds), 400
  no better than 200 and slower; learning rate 1e-3 (3e-3: 75–81 %).
- CVAE: batch 64 at learning rate 3e-3 takes ~2,100 steps in a minute where batch 128 took ~1,300, and ends with more
  recognisable samples (76 → 83 % as asked). Its latent: 4 dimensions instead of 8. The label carries the digit and z
  only the style; with eight, prior draws fall between the encoder's tight posteriors (posterior variances ≈
  0.01–0.05, means spread ≈ 1.2) and decode to blends; with four, 92.6 % of its samples are read as the class asked
  for (8: 83 %), its bound 488 against 495 nats.

- PixelCNN: no dropout. It overfits 1,260 digits of 8×8 in a minute, where dropout 0.1 helps (1.845 → 1.80–1.82
  bits/dim); on 3,500 digits of 28×28 its best weights are its last, and with dropout 0.1 it scored 295.0 and 98.7
  nats against 287.1 and 96.8 without (on MNIST and binarised MNIST; a run that shared the machine, so only a hint).

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
    "VAE": TrainingDefaults(3000, 1e-3, 64, 256),
    "CVAE": TrainingDefaults(2000, 3e-3, 64, 256),
}
LARGE_IMAGE_ARGUMENTS: dict[str, dict[str, int | str]] = {
    "VAE": {"pixels": "logistic", "network": "upsampling", "pseudo_inputs": 200},
    "CVAE": {"latent_dim": 4},
    "PixelCNN": {"dropout": 0.0},
}


def _large(spec: DataSpec) -> bool:
    return spec.kind == "image" and spec.dim > SMALL_IMAGE_DIM


def large_image_defaults(name: str, spec: DataSpec) -> TrainingDefaults | None:
    """The defaults of model ``name`` on images of ``spec``'s size when they differ from its image defaults."""
    return LARGE_IMAGE_DEFAULTS.get(name) if _large(spec) else None


def large_image_arguments(name: str, spec: DataSpec) -> dict[str, int | str]:
    """Constructor arguments of model ``name`` on images of ``spec``'s size that differ from its own defaults."""
    return LARGE_IMAGE_ARGUMENTS.get(name, {}) if _large(spec) else {}
