"""A playground server in a child process, for benchmarks that measure it from outside (memory, kill -9, load)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.bench_browser import ROOT, free_port, wait_until_up


class Server:
    """``python app.py`` on a free port with its own run store (a temporary folder unless ``runs_dir`` is given)."""

    def __init__(self, runs_dir: Path | None = None, workers: int | None = None, port: int | None = None) -> None:
        self.runs_dir = runs_dir or Path(tempfile.mkdtemp(prefix="dgm-runs-"))
        self.workers = workers
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.said: list[str] = []  # what it printed (its start-up steps)
        self.warm = threading.Event()  # set when it printed "ready:": its warm-up behind the page is done

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Server:
        command = [
            sys.executable,
            "app.py",
            "--port",
            str(self.port),
            "--device",
            "cpu",
            "--runs-dir",
            str(self.runs_dir),
        ]
        if self.workers:
            command += ["--workers", str(self.workers)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.warm.clear()
        threading.Thread(target=self._listen, args=(self.process,), daemon=True).start()
        wait_until_up(self.url)
        return self

    def wait_warm(self, timeout: float = 120.0) -> bool:
        """Wait until the server finished its warm-up (a class arrives at a server started a while ago)."""
        return self.warm.wait(timeout)

    def _listen(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.said.append(line.rstrip())
            if "] ready:" in line:
                self.warm.set()

    def rss_mb(self) -> float:
        """The server's resident memory, its training processes' included (Linux /proc)."""
        return sum(_rss_mb(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def kill(self) -> None:
        """kill -9: no chance to save anything."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # it ended meanwhile
        return 0.0
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found
