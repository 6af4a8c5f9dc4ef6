"""Your own data: how fast a good file becomes a trainable data set, and what a hostile one costs.

    python -m bench.bench_user_data

Times the Train tab's own path (read and check the file, name it by its content, split it, register it) for a
100,000-point CSV and for a painted canvas of 2,000 points; then reads each hostile file in a fresh Python process
and prints its message, the seconds it took and the peak resident memory above that process's resident size just
before the read. Targets (issue "your own data"): CSV ≤ 2 s, drawing ≤ 0.5 s, any hostile file ≤ 200 MB above idle.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from dgm_core.data import user
from dgm_core.data.drawing import paint_weights, points_from_paint
from dgm_core.data.upload import points_from_drawing, read_upload

CSV_TARGET_S, DRAWING_TARGET_S, MEMORY_TARGET_MB = 2.0, 0.5, 200

PROBE = """
import json, os, sys, threading, time
from pathlib import Path
from dgm_core.data.upload import DataError, read_upload

def resident_kb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024

before, peak, done = resident_kb(), [0.0], threading.Event()

def sample():  # the resident size every 2 ms while the file is read (ru_maxrss still holds the imports' peak)
    while not done.is_set():
        peak[0] = max(peak[0], resident_kb())
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
started = time.perf_counter()
try:
    read_upload([Path(sys.argv[1])])
    said = "accepted"
except DataError as error:
    said = str(error)
seconds = time.perf_counter() - started
time.sleep(0.01)
done.set()
sampler.join()
print(json.dumps({"said": said, "seconds": seconds, "mb": (max(peak[0], resident_kb()) - before) / 1024}))
"""


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width × height pixels and holds a few bytes (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def hostile_files(folder: Path) -> dict[str, Path]:
    files = {}

    def write(name: str, data: bytes) -> None:
        files[name] = folder / name
        files[name].write_bytes(data)

    write("blank-lines.csv", b"\n" * 19_000_000)
    write("one-long-line.csv", b"1," + b"2" * 19_000_000)
    bombs = io.BytesIO()
    with zipfile.ZipFile(bombs, "w") as archive:
        for i in range(40):
            archive.writestr(f"bomb-{i}.png", _png_header(40_000, 40_000))
    write("png-bombs-40000x40000.zip", bombs.getvalue())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.png", b"\0" * 300_000_000)  # a 300 MB member in a ~300 kB zip
    write("zip-bomb.zip", buffer.getvalue())
    write(
        "huge-header.npy",
        b"\x93NUMPY\x01\x00" + _npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 2), }"),
    )
    write("object-array.npy", _npy(np.array([{"a": 1}] * 60, dtype=object)))
    images = io.BytesIO()
    with zipfile.ZipFile(images, "w") as archive:
        archive.writestr("../escape.png", _png(np.zeros((8, 8), np.uint8)))
    write("path-escape.zip", images.getvalue())
    return files


def _npy_header(text: str) -> bytes:
    padded = text + " " * (63 - (len(text) + 10) % 64) + "\n"
    return struct.pack("<H", len(padded)) + padded.encode()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)  # what an attacker would send: the reader must never unpickle it
    return buffer.getvalue()


def _png(levels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(levels).save(buffer, format="PNG")
    return buffer.getvalue()


def good_paths(folder: Path) -> None:
    rng = np.random.default_rng(0)
    csv = folder / "many-points.csv"
    points = rng.standard_normal((100_000, 2)) * 2
    csv.write_text("x,y\n" + "\n".join(f"{x:.5f},{y:.5f}" for x, y in points))
    started = time.perf_counter()
    data = read_upload([csv])
    user.register(data, user.name_for(data, csv.name))
    csv_s = time.perf_counter() - started
    canvas = np.full((400, 400, 4), 255, np.uint8)
    canvas[100:300, 180:220, :3] = 0
    started = time.perf_counter()
    drawn = points_from_drawing(points_from_paint(paint_weights(canvas), 2000))
    user.register(drawn, user.name_for(drawn, "drawing"))
    drawing_s = time.perf_counter() - started
    for name, seconds, target in (
        ("100,000-point CSV", csv_s, CSV_TARGET_S),
        ("2,000 drawn points", drawing_s, DRAWING_TARGET_S),
    ):
        print(f"  {name:<28}{seconds:6.2f} s  [{'met' if seconds <= target else 'MISSED'}] ≤ {target} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("A good file to a trainable data set (read, check, name, split, register):")
        good_paths(folder)
        print(f"\nHostile files, each read in a fresh process (target ≤ {MEMORY_TARGET_MB} MB above idle):")
        worst = 0.0
        for name, path in hostile_files(folder).items():
            out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            worst = max(worst, result["mb"])
            print(f"  {name:<28}{result['seconds']:6.2f} s {result['mb']:7.1f} MB  {result['said'][:90]}")
        verdict = "met" if worst <= MEMORY_TARGET_MB else "MISSED"
        print(f"worst peak {worst:.0f} MB  [{verdict}] ≤ {MEMORY_TARGET_MB} MB")


if __name__ == "__main__":
    main()
