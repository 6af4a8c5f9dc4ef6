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
from gradio_client import Client

from bench.server import _children
from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent


def start_server() -> tuple[subprocess.Popen, int]:
    """``python app.py`` on a free port with a fresh run store and one training process (the test runs beside the
    others: a second loading torch would only slow them), its output readable line by line."""
    port = _free_port()
    runs = tempfile.mkdtemp()
    command = [sys.executable, "app.py", "--port", str(port), "--device", "cpu", "--runs-dir", runs, "--workers", "1"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), port


@pytest.mark.slow
def test_the_page_is_served_before_the_warm_up_and_sigterm_saves_at_once_with_a_page_watching() -> None:
    """Every step is said, in order, the page answering from "serving" on; then SIGTERM, while a page streams a
    training run, goes to saving at once (uvicorn would wait for the stream to end, and Gradio up to 5 s for
    uvicorn), cuts the stream quietly and ends the training processes."""
    server, port = start_server()
    said: list[str] = []
    try:
        while not any("ready" in line for line in said):
            line = server.stdout.readline()
            assert line, said
            said.append(line)
            if "serving" in line:  # at that moment the page answers, before any warm-up is done
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    assert response.status == 200
                assert not any("warm" in earlier for earlier in said[:-1]), said
        steps = [next((i for i, line in enumerate(said) if word in line), None) for word in ORDER]
        assert None not in steps and steps == sorted(steps), said
        children = _children(server.pid)
        assert children, "the training processes run"
        watching = Client(f"http://127.0.0.1:{port}/", verbose=False)
        stream = watching.submit(*TRAIN_FOREVER, api_name="/train")
        deadline = time.monotonic() + 60
        while not any("step" in str(update) for update in stream.outputs()):
            assert time.monotonic() < deadline, "the watched run never showed a step"
            time.sleep(0.1)
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        while "stopping" not in (line := server.stdout.readline()):
            assert line, said
            said.append(line)
        saving_after_s = time.monotonic() - signalled
        said += server.communicate(timeout=60)[0].splitlines()
    finally:
        server.kill()
    assert saving_after_s < 3, f"SIGTERM → saving: {saving_after_s:.1f} s"
    assert server.returncode == 0, said
    assert any("stopped:" in line for line in said) and not any("Traceback" in line for line in said), said
    assert not any(running(child) for child in children)


ORDER = ("loading", "serving", "warm:", "ready")
# the Train tab's inputs through its API: moons, MADE, steps enough to train until stopped
TRAIN_FOREVER = ("moons", "MADE", 1_000_000, 1e-3, 256, 64, 0, 1.0, "best", "constant", 0)


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (one that ended but whose parent has not collected it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
