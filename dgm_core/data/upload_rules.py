"""What a user's upload may be and what reading it gives: the caps, the error every refusal raises, and
``UserData``. Shared by ``dgm_core.data.upload`` (text, NumPy, the entry point) and ``dgm_core.data.archives`` (zips
and images)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

MAX_FILE_BYTES = 20_000_000  # one uploaded file, or one zip member once unpacked
MIN_POINTS, MAX_POINTS = 50, 200_000  # 50 points give 35 / 5 / 10 for training, validation and test
MIN_IMAGES, MAX_IMAGES = 30, 5_000  # 30 images give 21 / 3 / 6
MAX_LINE_CHARS = 1_000  # bounds what splitting one line can allocate
MAX_ABS_VALUE = 1e6  # coordinates beyond ±1e6 are refused: rescale them
MAX_IMAGE_PIXELS = 4096 * 4096  # declared width × height of one image, checked before decoding
MAX_TOTAL_PIXELS = 100_000_000  # decoded pixels of all images of one upload (JPEGs decode at a reduced scale)
MAX_CLASSES = 100
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_TOTAL_BYTES = 100_000_000  # declared unpacked size of all members together
MAX_COMPRESSION_RATIO = 100  # a member over RATIO_FREE_BYTES that unpacks to more than 100× its size is a bomb
RATIO_FREE_BYTES = 1_000_000
IMAGE_SIZES = (8, 16)
PIXEL_CAP = f"the cap is {MAX_IMAGE_PIXELS:,} pixels per image."
TWO_FIELDS = "every line needs exactly two numbers (x and y)."

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUFFIXES = (*TEXT_SUFFIXES, ".npy", ".npz", ".zip", *IMAGE_SUFFIXES)
ARCHIVE_SUFFIXES = (".zip", ".npz", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar")
SEPARATORS = {
    ",": ("commas", "comma-separated"),
    "\t": ("tabs", "tab-separated"),
    ";": ("semicolons", "semicolon-separated"),
    "|": ("pipes", "pipe-separated"),
}


class DataError(ValueError):
    """A file that cannot become a data set; ``str(error)`` is one sentence a user can act on."""


@dataclass(frozen=True, eq=False)
class UserData:
    """A user's data as read, before it is split into a data set.

    Arguments:
        kind: ``"points2d"`` or ``"image"``.
        items: float32 points of shape (n, 2), or float32 images of shape (n, 1, size, size) holding levels 0..16.
        labels: int64 class labels 0..k-1 of shape (n,), or None.
        class_names: what each label stands for, or None.
        note: what was done, in words ("read 1,000 points from a.csv (comma-separated, header skipped)").
    """

    kind: Literal["points2d", "image"]
    items: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    note: str

    def content_hash(self) -> str:
        """The first 16 hex digits of a SHA-256 of the kind, items and labels: the same data gives the same hash."""
        digest = hashlib.sha256(f"{self.kind}{self.items.shape}".encode())
        digest.update(np.ascontiguousarray(self.items, dtype=np.float32).tobytes())
        if self.labels is not None:
            digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]


def short(text: str) -> str:
    """User text fit for a message: printable and at most 40 characters."""
    text = "".join(c if c.isprintable() else "?" for c in text[:41])
    return text if len(text) <= 40 else text[:39] + "…"


def too_big(where: str) -> DataError:
    return DataError(f"{where} is over the {MAX_FILE_BYTES // 1_000_000} MB cap per file.")


def check_count(n: int, kind: Literal["points2d", "image"], where: str) -> None:
    low, high, noun = (MIN_POINTS, MAX_POINTS, "points") if kind == "points2d" else (MIN_IMAGES, MAX_IMAGES, "images")
    if n < low:
        raise DataError(f"{where} has {n:,} {noun}; at least {low} are needed for training, validation and test.")
    if n > high:
        raise DataError(f"{where} has {n:,} {noun}; the cap is {high:,}.")
