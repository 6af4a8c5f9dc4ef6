"""Reading a user's own data set, uploaded as files or drawn, safely: anything else is refused with a DataError.

What is accepted:

* Text (.csv, .tsv, .txt): two numeric columns, x and y, one point per line. The separator is found from the lines:
  ``,`` ``\\t`` ``;`` ``|`` or whitespace (the latter only when no other separator but tabs appears), accepted only when
  exactly one of them splits every line in two. A first line without any number is a header and is skipped; blank
  lines are ignored; a line over MAX_LINE_CHARS is refused. Decimal commas and class labels are not read.
* NumPy (.npy, or .npz holding one array, or ``x`` / ``images`` / ``points`` with optional ``y`` / ``labels``): shape
  (n, 2) is points, (n, h, w) or (n, 1, h, w) images. Image values that are all whole numbers 0..16 are kept as levels;
  any others (uint8 0..255, floats 0..1) are rescaled from their min..max to 0..16. Labels are integers.
* Images (.png, .jpg, .jpeg, any number at once, or one .zip of them): converted to grayscale, resized to
  ``image_size`` × ``image_size`` (8 or 16; bilinear, squashed when not square) and quantised to 17 levels with black
  → 0 and white → 16, as in the built-in digits (light strokes on a dark background). In a .zip, each image's folder
  names its class when there are two or more folders; hidden files and ``__MACOSX/`` are skipped, other files ignored.
* A drawing: an (n, 2) array of points.

Safety: a file is read into memory only when it is under MAX_FILE_BYTES, and nothing is ever written to disk. NumPy
files are parsed from their header, whose dtype, rank and sizes are checked before any data is touched; no pickle is
ever loaded. A zip is checked as a whole before any member is read (member count, paths: one with ``..``, an absolute
or a drive path refuses the whole zip; nested archives, encryption, compression method, declared sizes, their total
and compression ratios), then each member is read with a hard byte cap. An image's declared pixel count is checked
before it is decoded, only the PNG and JPEG decoders are used, and all images of an upload together may not decode to
more than MAX_TOTAL_PIXELS. Every refusal is a DataError whose message is one
sentence a user can act on; text echoed from the user (file names, bad tokens) is cut to 40 characters.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from tokenize import TokenError

import numpy as np
from PIL import Image

from dgm_core.data.archives import image_note, open_zip, read_image_zip, read_images, read_member
from dgm_core.data.digits import LEVELS
from dgm_core.data.upload_rules import (
    IMAGE_SIZES,
    IMAGE_SUFFIXES,
    MAX_ABS_VALUE,
    MAX_CLASSES,
    MAX_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_LINE_CHARS,
    MAX_POINTS,
    PIXEL_CAP,
    SEPARATORS,
    SUFFIXES,
    TEXT_SUFFIXES,
    TWO_FIELDS,
    DataError,
    UserData,
    check_count,
    short,
    too_big,
)


def read_upload(paths: Sequence[Path | str], image_size: int = 8) -> UserData:
    """Reads uploaded files as a data set: one .csv, .tsv, .txt, .npy, .npz or .zip, or any number of images.

    Arguments:
        paths: the uploaded files; the type of each is told by its suffix.
        image_size: the side images are resized to, 8 or 16.
    """
    if image_size not in IMAGE_SIZES:
        raise DataError(f"Images can be resized to 8×8 or 16×16, not {image_size}×{image_size}.")
    files = [Path(path) for path in paths]
    if not files:
        raise DataError("No file was uploaded.")
    for file in files:
        if file.suffix.lower() not in SUFFIXES:
            raise DataError(f"{short(file.name)} is not a supported type; upload {', '.join(SUFFIXES)}.")
    if all(file.suffix.lower() in IMAGE_SUFFIXES for file in files):
        check_count(len(files), "image", "The upload")
        return read_images(((short(file.name), _read_file(file)) for file in files), image_size, "")
    if len(files) > 1:
        raise DataError("Upload one data file (.csv, .tsv, .txt, .npy, .npz or .zip) at a time, or only images.")
    file, suffix = files[0], files[0].suffix.lower()
    where, data = short(file.name), _read_file(file)
    if suffix in TEXT_SUFFIXES:
        return _read_text(data, where)
    if suffix == ".npy":
        return _from_arrays(_read_npy(data, where), None, where, image_size)
    if suffix == ".npz":
        return _read_npz(open_zip(data, where), where, image_size)
    return read_image_zip(open_zip(data, where), where, image_size)


def points_from_drawing(xy: np.ndarray) -> UserData:
    """Reads the points of a drawing canvas as a data set.

    Arguments:
        xy: the drawn points, of shape (n, 2).
    """
    try:
        values = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("The drawing is not a list of (x, y) points.") from None
    if values.ndim != 2 or values.shape[1] != 2:
        raise DataError(f"The drawing has shape {short(str(values.shape))}; it must be (n, 2) points.")
    check_count(len(values), "points2d", "The drawing")
    return _points(values, lambda i: f"The drawing's point {i + 1:,}", f"read {len(values):,} drawn points")


def _read_file(path: Path) -> bytes:
    where = short(path.name)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise too_big(where)
        with path.open("rb") as file:
            data = file.read(size + 1 if size else MAX_FILE_BYTES + 1)  # a device's size says nothing: read to the cap
    except OSError:
        raise DataError(f"{where} could not be read.") from None
    if len(data) > MAX_FILE_BYTES:
        raise too_big(where)
    if not data:
        raise DataError(f"{where} is empty.")
    return data


def _points(values: np.ndarray, at: Callable[[int], str], note: str) -> UserData:
    """Float points (n, 2) as UserData once every value is finite and within ±MAX_ABS_VALUE; ``at(i)`` names item i."""
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataError(f"{at(int(bad.argmax()))} holds NaN or an infinite value; use finite numbers only.")
    large = (np.abs(values) > MAX_ABS_VALUE).any(axis=1)
    if large.any():
        i = int(large.argmax())
        value = values[i][np.abs(values[i]) > MAX_ABS_VALUE][0]
        raise DataError(f"{at(i)} holds {value:.3g}; values must stay within ±{MAX_ABS_VALUE:,.0f}, so rescale them.")
    return UserData("points2d", values.astype(np.float32), None, None, note)


def _split(line: str, sep: str | None) -> list[str]:
    return line.split(sep) if sep else line.split()


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_text(data: bytes, where: str) -> UserData:
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        raise DataError(f"{where} is not a UTF-8 text file; save it as CSV or plain text.") from None
    if text.count("\n") > 2 * MAX_POINTS:  # bounds the memory of the line list below
        raise DataError(f"{where} has {text.count(chr(10)):,} lines; the cap is {MAX_POINTS:,} points.")
    numbered = text.split("\n")
    lines = [line for line in numbered if line.strip()]
    if not lines:
        raise DataError(f"{where} holds only blank lines.")

    def line_of(line: str) -> str:  # the first line with this text is the first one at fault
        return f"{where}, line {numbered.index(line) + 1:,}"

    long = next((line for line in lines if len(line) > MAX_LINE_CHARS), None)
    if long is not None:
        raise DataError(f"{line_of(long)} is {len(long):,} characters long; a line holds two numbers, x and y.")

    sep = _separator(lines[1:] or lines, where, line_of)
    first = _split(lines[0], sep)
    header = not any(_is_number(field) for field in first)
    body = lines[1:] if header else lines
    if not body:
        raise DataError(f"{where} has a header line but no numbers.")
    if not header and len(first) != 2:
        raise DataError(f"{line_of(lines[0])} has {len(first)} fields; {TWO_FIELDS}")
    check_count(len(body), "points2d", where)
    tokens = sep.join(body).split(sep) if sep else " ".join(body).split()  # two per line, as checked
    try:
        values = np.array(list(map(float, tokens)), dtype=np.float64).reshape(-1, 2)
    except ValueError:
        line, token = next((line, t) for line in body for t in _split(line, sep) if not _is_number(t))
        raise DataError(f"{line_of(line)}: '{short(token.strip())}' is not a number.") from None
    style = SEPARATORS[sep][1] if sep else "whitespace-separated"
    note = f"read {len(body):,} points from {where} ({style}{', header skipped' if header else ''})"
    return _points(values, lambda i: line_of(body[i]), note)


def _separator(probe: list[str], where: str, line_of: Callable[[str], str]) -> str | None:
    """The one separator that splits every probed line in two (None: whitespace), or a DataError saying why not."""
    joined = "\n".join(probe)
    present = [sep for sep in SEPARATORS if sep in joined]
    fields: dict[str | None, set[int]] = {sep: {line.count(sep) + 1 for line in probe} for sep in present}
    two = [sep for sep in present if fields[sep] == {2}]
    if len(two) > 1:
        names = " and ".join(SEPARATORS[sep][0] for sep in two)
        raise DataError(f"{where} is ambiguous: {names} each split every line in two; keep only one separator.")
    if two:
        return two[0]
    if set(present) <= {"\t"}:
        fields[None] = {len(line.split()) for line in probe}
        if fields[None] == {2}:
            return None
    sep, counts = next(iter(fields.items()))
    if counts == {1}:
        raise DataError(f"{where} has one column; it needs two numbers per line (x and y).")
    if len(counts) == 1:
        raise DataError(f"{where} has {counts.pop()} columns; it needs exactly two (x and y).")
    line = next(line for line in probe if len(_split(line, sep)) != 2)
    raise DataError(f"{line_of(line)} has {len(_split(line, sep))} fields; {TWO_FIELDS}")


def _read_npy(data: bytes, where: str, labels: bool = False) -> np.ndarray:
    """The array in .npy bytes; its dtype, shape and size are checked from the header before any data is read."""
    stream = io.BytesIO(data)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        shape, fortran, dtype = read_header[np.lib.format.read_magic(stream)](stream)
    except (ValueError, KeyError, TypeError, EOFError, OSError, SyntaxError, RecursionError, TokenError):
        raise DataError(f"{where} is not a valid NumPy .npy file; save it with numpy.save.") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects, which are never loaded (they could run code); save numbers.")
    if dtype.kind not in ("iu" if labels else "iuf"):
        raise DataError(f"{where} holds {short(str(dtype))} values; save {'integers' if labels else 'numbers'}.")
    if labels and (len(shape) != 1 or shape[0] > MAX_POINTS):
        raise DataError(f"{where} has shape {short(str(shape))}; labels need shape (n,).")
    if not labels:
        _check_shape(shape, where)
    count, offset = math.prod(shape), stream.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise DataError(f"{where} is damaged: its header declares {count * dtype.itemsize:,} bytes of data.")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape, order="F" if fortran else "C")


def _check_shape(shape: tuple[int, ...], where: str) -> None:
    if len(shape) == 2 and shape[1] == 2:
        check_count(shape[0], "points2d", where)
        return
    if not (len(shape) == 3 or (len(shape) == 4 and shape[1] == 1)) or min(shape) <= 0:
        raise DataError(f"{where} has shape {short(str(shape))}; use (n, 2) points or (n, h, w) images.")
    check_count(shape[0], "image", where)
    if shape[-1] * shape[-2] > MAX_IMAGE_PIXELS:
        raise DataError(f"{where} holds images of {shape[-1]:,}×{shape[-2]:,} pixels; {PIXEL_CAP}")


def _from_arrays(x: np.ndarray, y: np.ndarray | None, where: str, size: int) -> UserData:
    data = _array_points(x, where) if x.ndim == 2 else _array_images(x, where, size)
    if y is None:
        return data
    if len(y) != len(x):
        raise DataError(f"{where} has {len(y):,} labels for {len(x):,} items; give one label per item.")
    values, index = np.unique(y, return_inverse=True)
    if len(values) > MAX_CLASSES:
        raise DataError(f"{where} has {len(values):,} classes; the cap is {MAX_CLASSES}.")
    names = tuple(str(value) for value in values.tolist())
    return replace(data, labels=index.astype(np.int64), class_names=names, note=f"{data.note}, {len(names)} classes")


def _array_points(x: np.ndarray, where: str) -> UserData:
    return _points(x.astype(np.float64), lambda i: f"{where}, point {i + 1:,}", f"read {len(x):,} points from {where}")


def _array_images(x: np.ndarray, where: str, size: int) -> UserData:
    x = x.reshape(len(x), x.shape[-2], x.shape[-1])
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{where} holds NaN or infinite pixel values.")
    low, high = float(x.min()), float(x.max())
    if (x.dtype.kind in "iu" or np.array_equal(x, np.round(x))) and low >= 0 and high <= LEVELS - 1:
        low, scale, how = 0.0, 1.0, "whole-number levels 0..16 kept"
    elif high == low:
        raise DataError(f"{where}: every pixel has the value {low:g}, so there is nothing to learn.")
    else:
        scale, how = (LEVELS - 1) / (high - low), f"values {low:g}..{high:g} rescaled to levels 0..16"
    items = np.empty((len(x), 1, size, size), np.float32)
    for i, image in enumerate(x):
        levels = (np.ascontiguousarray(image, dtype=np.float32) - low) * scale
        if levels.shape != (size, size):
            levels = np.asarray(Image.fromarray(levels).resize((size, size), Image.Resampling.BILINEAR))
        items[i, 0] = levels
    note = f"{image_note(len(x), {(x.shape[2], x.shape[1])}, size, f' from {where}')}, {how}"
    return UserData("image", np.clip(np.rint(items), 0, LEVELS - 1), None, None, note)


def _read_npz(archive: zipfile.ZipFile, where: str, size: int) -> UserData:
    members = {info.filename.removesuffix(".npy"): info for info in archive.infolist() if not info.is_dir()}
    for info in members.values():
        if not info.filename.endswith(".npy"):
            raise DataError(f"{where} holds '{short(info.filename)}', which is not a NumPy array.")
    y_key = next((key for key in ("y", "labels") if key in members), None) if len(members) > 1 else None
    x_keys = [key for key in members if key != y_key and (len(members) == 1 or key in ("x", "images", "points"))]
    if len(x_keys) != 1 or len(members) > 1 + (y_key is not None):
        names = short(", ".join(members)) or "none"
        raise DataError(f"{where} holds the arrays: {names}; name the data x and its labels y.")
    x = _read_npy(read_member(archive, members[x_keys[0]], where), f"{where}: {short(x_keys[0])}")
    y = None if y_key is None else _read_npy(read_member(archive, members[y_key], where), f"{where}: {y_key}", True)
    return _from_arrays(x, y, where, size)
