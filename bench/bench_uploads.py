"""Hostile uploads against a running server: each is refused with its message, within the time and memory budget,
and without delaying other users.

    python -m bench.bench_uploads

Starts ``python app.py``; builds each hostile file in a temporary folder; uploads it through the Runs tab's API
endpoint while another session keeps calling a quick endpoint. Prints, per file: the answer, the server time of the
upload call, the peak of the server's resident memory above its idle level (sampled every 10 ms), and the slowest
answer the other session got meanwhile. Targets (issue "a run owns its life"): every upload ≤ 300 MB above idle,
≤ 2 s of server time, no other user's request delayed > 1 s.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from gradio_client import Client, handle_file

from bench.server import Server

MB = 2**20


def _zip(path: Path, config: bytes, weights: bytes, compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("config.json", config)
        archive.writestr("weights.safetensors", weights)
    return path


def hostile_files(folder: Path) -> dict[str, Path]:
    """Each kind of bad file the issue names, built here (no binaries are shipped)."""
    config = json.dumps({"format": "dgm-playground-checkpoint", "format_version": 2}).encode()
    many = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(1_500_000)})
    header = many.encode()
    files = {
        "1.5 M empty tensors declared": _zip(folder / "many.dgm.zip", config, struct.pack("<Q", len(header)) + header),
        "199 MB config of {} (deflated)": _zip(
            folder / "bigconfig.dgm.zip", b"{" + b" " * (199 * MB) + b"}", b"", zipfile.ZIP_DEFLATED
        ),
        "deeply nested config": _zip(folder / "deep.dgm.zip", b"[" * 500_000 + b"]" * 500_000, b""),
        "1 MB model name": _zip(
            folder / "name.dgm.zip",
            json.dumps(
                {"format": "dgm-playground-checkpoint", "format_version": 2, "spec": {"model": "M" * MB}}
            ).encode(),
            b"",
        ),
        "pickle (torch.save style)": folder / "pickle.dgm.zip",
        "99 MB of random bytes": folder / "random.dgm.zip",
        "150 MB file (over the upload cap)": folder / "huge.dgm.zip",
    }
    files["pickle (torch.save style)"].write_bytes(pickle.dumps({"weights": list(range(1000))}))
    files["99 MB of random bytes"].write_bytes(os.urandom(99 * MB))
    with files["150 MB file (over the upload cap)"].open("wb") as file:
        file.truncate(150 * MB)
    liar = _zip(folder / "liar.dgm.zip", b" " * (50 * MB), b"", zipfile.ZIP_DEFLATED)
    data = bytearray(liar.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        data[start + offset : start + offset + 4] = struct.pack("<I", 100)
    liar.write_bytes(bytes(data))
    files["1 MB zip claiming a false size"] = liar
    files.update(_valid_but_hostile(folder))
    return files


def _valid_but_hostile(folder: Path) -> dict[str, Path]:
    """A real checkpoint padded with an unused 98 MB tensor, and one whose weights member is a pickle."""
    import safetensors.torch
    import torch

    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    saved = Run(RunSpec.defaults("RealNVP", "moons", steps=3)).save(folder / "valid")
    with zipfile.ZipFile(saved) as archive:
        config, weights = archive.read("config.json"), archive.read("weights.safetensors")
    padded = {**safetensors.torch.load(weights), "padding": torch.zeros(98 * MB // 4)}
    pickled = pickle.dumps({"weights": list(range(1000))})
    return {
        "valid run + an unused 98 MB tensor": _zip(folder / "padded.dgm.zip", config, safetensors.torch.save(padded)),
        "valid config + a pickle as its weights": _zip(folder / "pickled-weights.dgm.zip", config, pickled),
    }


class Sampler:
    """The server's resident memory every 10 ms while running, and the slowest answer another session gets."""

    def __init__(self, server: Server, url: str) -> None:
        self.server, self.client = server, Client(url, verbose=False)
        self.peak_mb, self.slowest_s, self._on = 0.0, 0.0, False

    def __enter__(self) -> Sampler:
        self._on, self.peak_mb, self.slowest_s = True, self.server.rss_mb(), 0.0
        self._threads = [threading.Thread(target=self._memory), threading.Thread(target=self._other_user)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._on = False
        for thread in self._threads:
            thread.join()

    def _memory(self) -> None:
        while self._on:
            self.peak_mb = max(self.peak_mb, self.server.rss_mb())
            time.sleep(0.01)

    def _other_user(self) -> None:
        while self._on:
            started = time.perf_counter()
            self.client.predict(api_name="/stop")  # a quick answer when nothing trains
            self.slowest_s = max(self.slowest_s, time.perf_counter() - started)
            time.sleep(0.05)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, Server() as server:
        files = hostile_files(Path(folder))
        uploader = Client(server.url, verbose=False)
        uploader.predict(api_name="/stop")
        time.sleep(2)
        idle = server.rss_mb()
        print(f"server idle: {idle:.0f} MB resident\n")
        print(f"{'file':36} {'server s':>9} {'+MB':>6} {'other s':>8}  answer")
        worst = {"seconds": 0.0, "memory": 0.0, "other": 0.0}
        for name, path in files.items():
            with Sampler(server, server.url) as sampler:
                started = time.perf_counter()
                try:
                    *_, said, _ = uploader.predict(handle_file(str(path)), None, api_name="/upload_checkpoint")
                except Exception as error:  # Gradio refuses files over max_file_size before the handler
                    said = f"refused by the server: {str(error)[:80]}"
                seconds = time.perf_counter() - started
            above = sampler.peak_mb - idle
            worst = {
                "seconds": max(worst["seconds"], seconds),
                "memory": max(worst["memory"], above),
                "other": max(worst["other"], sampler.slowest_s),
            }
            print(f"{name:36} {seconds:9.2f} {above:6.0f} {sampler.slowest_s:8.2f}  {said[:110]}")
        leftovers = sum(1 for _ in Path(tempfile.gettempdir(), "gradio").rglob("*.dgm.zip"))
    print()
    print(f"[{'met' if worst['memory'] <= 300 else 'MISSED'}] ≤ 300 MB above idle: worst {worst['memory']:.0f} MB")
    print(
        f"[{'met' if worst['seconds'] <= 2 else 'MISSED'}] ≤ 2 s per upload call: worst {worst['seconds']:.2f} s "
        "(includes sending the file over loopback)"
    )
    print(f"[{'met' if worst['other'] <= 1 else 'MISSED'}] other users delayed ≤ 1 s: worst {worst['other']:.2f} s")
    print(f"uploaded files left in Gradio's cache: {leftovers}")


if __name__ == "__main__":
    main()
