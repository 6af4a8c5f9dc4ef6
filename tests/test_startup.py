"""``python app.py`` serves its page first and says what it does meanwhile: the slow one-time work (training
processes, the first run's costs, Lecture 1's shared runs) comes after the page answers. SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from bench.server import _children
from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent


def start_server() -> tuple[subprocess.Popen, int]:
    """``python app.py`` on a free port with a fresh run store, its output readable line by line."""
    port = _free_port()
    command = [sys.executable, "app.py", "--port", str(port), "--device", "cpu", "--runs-dir", tempfile.mkdtemp()]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), port


@pytest.mark.slow
def test_the_page_is_served_before_the_warm_up_and_every_step_is_said() -> None:
    server, port = start_server()
    said: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("ready" in line for line in said):
            line = server.stdout.readline()
            if not line:
                break
            said.append(line)
            if "serving" in line:  # at that moment the page answers, before any warm-up is done
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    assert response.status == 200
                assert not any("warm" in earlier for earlier in said[:-1]), said
    finally:
        server.terminate()
        server.wait(timeout=30)
    steps = [
        next((i for i, line in enumerate(said) if word in line), None)
        for word in ("loading", "serving", "warm:", "ready")
    ]
    assert None not in steps and steps == sorted(steps), said


@pytest.mark.slow
def test_sigterm_stops_the_server_cleanly_and_ends_its_training_processes() -> None:
    server, _ = start_server()
    said: list[str] = []
    try:
        while not any("warm:" in line for line in said):  # its training processes have started by then
            line = server.stdout.readline()
            assert line, said
            said.append(line)
        children = _children(server.pid)
        assert children, "the training processes run"
        server.send_signal(signal.SIGTERM)
        said += server.communicate(timeout=60)[0].splitlines()
    finally:
        server.kill()
    assert server.returncode == 0, said
    assert any("stopped: 0 runs saved" in line for line in said), said
    assert not any(running(child) for child in children)


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (one that ended but whose parent has not collected it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
