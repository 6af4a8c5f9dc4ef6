"""scikit-learn's bundled 8×8 handwritten digits: 1,797 images with 17 intensity levels (0..16), no download.

Split once, from a seed, into train (70%), validation (10%) and test (20%); a binarised variant thresholds at 8.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

DESCRIPTION = "scikit-learn's 8×8 digits: 1,797 images, 17 grey levels, ~1,260 for training."
DESCRIPTION_BINARY = "The 8×8 digits thresholded at half intensity: 64 binary pixels per image."
LEVELS = 17
FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}


def make_splits(seed: int, binary: bool) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)  # (1797, 8, 8), integers 0..16
    if binary:
        images = (images >= LEVELS // 2).astype(np.float32)
    order = np.random.RandomState(seed).permutation(len(images))
    n_test = int(FRACTIONS["test"] * len(images))
    n_val = int(FRACTIONS["val"] * len(images))
    index = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    splits = {split: torch.from_numpy(images[i][:, None]) for split, i in index.items()}
    labels = {split: torch.from_numpy(bunch.target[i]).long() for split, i in index.items()}
    return splits, labels, {"levels": 2 if binary else LEVELS, "class_names": tuple(str(k) for k in range(10))}
