"""Pictures served whole to every page at once.

Gradio 6.31 writes each image output to its cache as ``<hash of its bytes>/image.webp``, truncating and rewriting that
file on every update, while another page may be downloading the same picture (Lecture 1's shared views, a data
preview every page shows): that download ends short, a broken image and ``ERR_CONTENT_LENGTH_MISMATCH`` in the
console (measured by ``bench/bench_class.py``). The file is named by its content, so one already there is right:
``install`` makes Gradio write only new files, under a temporary name renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils
from PIL import Image


def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """``gradio.processing_utils.save_pil_to_cache``, but never rewriting a file that a page may be reading."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if path.exists():
        try:
            os.utime(path)  # Gradio's delete_cache ages files by their time: one handed out again is fresh
        except OSError:
            pass
    else:
        handle, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    return str(path)


def install() -> None:
    """Make every image output of this process use ``save_pil_to_cache`` (Gradio looks it up at each call)."""
    processing_utils.save_pil_to_cache = save_pil_to_cache
