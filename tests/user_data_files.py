"""Files a user might upload, built in the tests (no binaries are shipped): good ones and hostile ones."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgm_core.data.upload import DataError, read_upload

RNG = np.random.default_rng(0)
POINTS = RNG.normal(size=(60, 2)).round(4)


def write_points(path: Path, points: np.ndarray = POINTS, sep: str = ",", header: str | None = None) -> Path:
    lines = ([header] if header is not None else []) + [f"{x}{sep}{y}" for x, y in points]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_lines(path: Path, *lines: str, points: int = 60) -> Path:
    """The given lines, then enough good points to make the file long enough to be read."""
    path.write_text("\n".join([*lines, *(f"{x},{y}" for x, y in POINTS[:points])]) + "\n")
    return path


def png(levels: np.ndarray, mode: str = "L", format: str = "PNG") -> bytes:
    """An image whose grey values are levels 0..16 scaled to 0..255."""
    image = Image.fromarray(np.round(np.asarray(levels) * 255 / 16).astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def random_levels(n: int, size: int = 8) -> np.ndarray:
    return RNG.integers(0, 17, size=(n, size, size))


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def patch_directory(path: Path, member: int = 0, **fields: int) -> None:
    """Overwrite fields of a member's central directory record: what a hostile zip may claim."""
    data = bytearray(path.read_bytes())
    offset = -1
    for _ in range(member + 1):
        offset = data.index(b"PK\x01\x02", offset + 1)
    for name, value in fields.items():
        at, fmt = {"version": (6, "<H"), "flags": (8, "<H"), "compress_size": (20, "<I"), "file_size": (24, "<I")}[name]
        struct.pack_into(fmt, data, offset + at, value)
    path.write_bytes(bytes(data))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width × height pixels but holds no image data: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def npy_header(path: Path, shape: tuple[int, ...], descr: str = "<f8") -> Path:
    """A .npy file that declares an array but holds no data."""
    with path.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": descr, "fortran_order": False, "shape": shape})
    return path


def refused(*paths: Path, image_size: int = 8) -> str:
    with pytest.raises(DataError) as error:
        read_upload(paths, image_size=image_size)
    return str(error.value)


class MakesDirectoryWhenUnpickled:
    """A pickle payload: loading it runs ``os.mkdir(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def payload(marker: Path, n: int = 60) -> np.ndarray:
    array = np.empty((n, 2), dtype=object)
    array[:] = MakesDirectoryWhenUnpickled(marker)
    return array
