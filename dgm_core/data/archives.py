"""Zips and images from a user's upload, read safely: a zip is checked whole before any member is read (count,
unsafe paths, nesting, encryption, compression method, declared sizes, their total and ratios), members are read into
memory with a hard cap (nothing is unpacked to disk), and an image's declared pixel count is checked before it is
decoded, by the PNG and JPEG decoders only. See ``dgm_core.data.upload`` for what is accepted."""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from dgm_core.data.digits import LEVELS
from dgm_core.data.upload_rules import (
    ARCHIVE_SUFFIXES,
    IMAGE_SUFFIXES,
    MAX_CLASSES,
    MAX_COMPRESSION_RATIO,
    MAX_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_TOTAL_PIXELS,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_TOTAL_BYTES,
    PIXEL_CAP,
    RATIO_FREE_BYTES,
    DataError,
    UserData,
    check_count,
    short,
    too_big,
)


def open_zip(data: bytes, where: str) -> zipfile.ZipFile:
    """A zip whose members all passed the checks of the module docstring; none of them has been read yet."""
    if data.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:  # every directory entry starts so: a bound before parsing them
        raise DataError(f"{where} holds more than {MAX_ZIP_MEMBERS:,} files, the cap.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise DataError(f"{where} is not a valid zip file.") from None
    total = 0
    for info in archive.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith(("/", "\\")) or ".." in parts or PureWindowsPath(name).drive:
            raise DataError(f"{where} contains the unsafe path '{short(name)}', so none of it was read.")
        member = f"{where}: {short(name)}"
        if PurePosixPath(name).suffix.lower() in ARCHIVE_SUFFIXES:
            raise DataError(f"{member} is an archive inside the archive; put the images in one zip.")
        if info.flag_bits & 0x1:
            raise DataError(f"{member} is password-protected; zip the files without a password.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DataError(f"{member} uses an unsupported compression method; zip it with the standard one.")
        if info.file_size > MAX_FILE_BYTES:
            raise too_big(member)
        if info.file_size > max(RATIO_FREE_BYTES, MAX_COMPRESSION_RATIO * info.compress_size):
            ratio = info.file_size / max(info.compress_size, 1)
            raise DataError(f"{member} unpacks to {ratio:,.0f}× its size (the cap is {MAX_COMPRESSION_RATIO}×).")
        total += info.file_size
        if total > MAX_ZIP_TOTAL_BYTES:
            raise DataError(f"{where} unpacks to over {MAX_ZIP_TOTAL_BYTES // 1_000_000} MB, the cap.")
    return archive


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    try:
        with archive.open(info) as member:
            return member.read(MAX_FILE_BYTES)  # a hard cap; zipfile also stops at the declared size, checked above
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError):
        raise DataError(f"{where}: {short(info.filename)} is damaged and cannot be unpacked.") from None


def read_image_zip(archive: zipfile.ZipFile, where: str, size: int) -> UserData:
    files = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and info.filename.split("/")[0] != "__MACOSX"
        and not PurePosixPath(info.filename).name.startswith(".")
    ]
    images = [info for info in files if PurePosixPath(info.filename).suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise DataError(f"{where} holds no .png or .jpg images.")
    check_count(len(images), "image", where)
    folders = [PurePosixPath(info.filename).parent.name for info in images]
    names = sorted(set(folders))
    if len(names) > MAX_CLASSES:
        raise DataError(f"{where} has {len(names):,} folders (classes); the cap is {MAX_CLASSES}.")
    blobs = ((f"{where}: {short(info.filename)}", read_member(archive, info, where)) for info in images)
    data = read_images(blobs, size, f" from {where}")
    if len(files) > len(images):
        data = replace(data, note=f"{data.note}, {len(files) - len(images):,} other files ignored")
    if len(names) < 2:
        return data
    labels = np.array([names.index(folder) for folder in folders], dtype=np.int64)
    class_names = tuple(name or "(top level)" for name in names)
    return replace(data, labels=labels, class_names=class_names, note=f"{data.note}, {len(names)} classes from folders")


def read_images(blobs: Iterator[tuple[str, bytes]], size: int, source: str) -> UserData:
    """Image files, given one at a time as (name, bytes), as UserData of levels 0..16 at size × size."""
    items, sizes, pixels = [], set(), 0
    for where, blob in blobs:
        levels, original, decoded = _decode(blob, where, size)
        pixels += decoded
        if pixels > MAX_TOTAL_PIXELS:
            raise DataError(f"The images hold over {MAX_TOTAL_PIXELS:,} pixels together; upload smaller images.")
        items.append(levels)
        sizes.add(original)
    return UserData("image", np.stack(items)[:, None], None, None, image_note(len(items), sizes, size, source))


def _decode(blob: bytes, where: str, size: int) -> tuple[np.ndarray, tuple[int, int], int]:
    """One PNG or JPEG as levels (size, size), with its original (width, height) and the pixels decoded."""
    try:
        with Image.open(io.BytesIO(blob), formats=("PNG", "JPEG")) as image:
            original = image.size
            if original[0] * original[1] > MAX_IMAGE_PIXELS:
                raise DataError(f"{where} declares {original[0]:,}×{original[1]:,} pixels; {PIXEL_CAP}")
            image.draft("L", (size, size))  # JPEG only: decode at the smallest scale still at least size × size
            decoded = image.size[0] * image.size[1]
            gray = image.convert("L").resize((size, size), Image.Resampling.BILINEAR)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{where} declares too many pixels; {PIXEL_CAP}") from None
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError):
        raise DataError(f"{where} is not a readable PNG or JPEG image.") from None
    return np.rint(np.asarray(gray, dtype=np.float32) * ((LEVELS - 1) / 255)), original, decoded


def image_note(n: int, sizes: set[tuple[int, int]], size: int, source: str) -> str:
    if sizes == {(size, size)}:
        return f"read {n:,} images of {size}×{size}{source}"
    if len(sizes) == 1:
        (width, height), *_ = sizes
        return f"resized {n:,} images of {width}×{height}{source} to {size}×{size}"
    small, large = (f(sizes, key=lambda s: (s[0] * s[1], s)) for f in (min, max))
    mixed = f"mixed sizes ({small[0]}×{small[1]} to {large[0]}×{large[1]})"
    return f"resized {n:,} images of {mixed}{source} to {size}×{size}"
