"""A page left open across a server restart: it says the server is gone while it is, then comes back by itself with
its browser's runs — the one that was training shows "Interrupted" and Continue goes on from where it was saved."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.page.reconnect import LOST
from tests.conftest import _free_port
from tests.test_browser import open_app, set_number, step, wait_for_step

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


def serve(port: int, runs: str) -> subprocess.Popen:
    """``python app.py`` on ``port`` with the run store ``runs``, once its page answers. One training process: the
    test needs no more, and a second loading torch beside the first takes the page's cores (54 s against 33)."""
    command = [sys.executable, "app.py", "--port", str(port), "--device", "cpu", "--runs-dir", runs, "--workers", "1"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while "serving" not in (line := server.stdout.readline()):
        assert line, "the server ended before serving"
    return server


def test_a_page_open_across_a_restart_says_so_then_comes_back_with_its_runs(page: Page) -> None:
    port, runs = _free_port(), tempfile.mkdtemp()
    server = serve(port, runs)
    try:
        open_app(page, f"http://127.0.0.1:{port}/")
        set_number(page, "#steps", "100000")
        page.locator("#train-btn").click()
        wait_for_step(page, 1)
        server.terminate()  # which saves the run with its training state
        server.wait(timeout=30)
        expect(page.locator("#server-banner")).to_have_text(LOST, timeout=10_000)
        server = serve(port, runs)
        expect(page.locator("#status")).to_contain_text("Welcome back", timeout=60_000)  # reloaded by itself
        expect(page.locator("#status")).to_contain_text("Interrupted")
        expect(page.locator("#server-banner")).to_be_hidden()
        restored = step(page)
        page.locator("#continue-btn").click()
        wait_for_step(page, restored + 1, timeout_ms=30_000)
    finally:
        server.terminate()
        server.wait(timeout=30)
