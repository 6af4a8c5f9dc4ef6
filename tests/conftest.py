"""Shared fixtures for the app tests: the app served once per test session, and a system Chromium for Playwright."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

OUTPUT = Path(__file__).parent / "output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """A Chromium binary: $CHROMIUM_PATH, else Debian's (Playwright cannot download its own here)."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # the slow tests first: pytest-xdist hands tests out in this order, so its workers end together on short ones
    # instead of one waiting while the other finishes a 30-s test
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if chromium_path() is not None:
        return
    reason = "no Chromium binary found (install Debian's 'chromium' or set CHROMIUM_PATH)"
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments, pointed at the system Chromium."""
    path = chromium_path()
    if path is None:
        return browser_type_launch_args
    return {**browser_type_launch_args, "executable_path": path, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory):
    """What the served app shares: the device, a scheduler, and a run store in a fresh temporary folder."""
    from app.page.session import Backend
    from dgm_core.learn.device import pick_device
    from dgm_core.runs.store import RunStore
    from dgm_core.serve.scheduler import Scheduler

    device = pick_device(os.environ.get("DGM_DEVICE", "cpu"))
    return Backend(device, Scheduler(2, processes=True), RunStore(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="session")
def served(backend) -> Iterator:
    """The app, built and served in this process on a free port (once for the whole test session): its Blocks."""
    from app.layout import build, launch_options

    demo = build(backend)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        _wait_until_up(demo.local_url)
        yield demo
    finally:
        demo.close()


@pytest.fixture(scope="session")
def app_url(served) -> str:
    """The served app's address."""
    return served.local_url


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """tests/output/ (git-ignored): screenshots and timings."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
