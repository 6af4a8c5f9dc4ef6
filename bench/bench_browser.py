"""The playground as a user meets it: start `python app.py`, open it in Chromium, click Train, and measure

- the time from the click to the first visible update (a step in the status line; the samples plot drawn), and
- the held-out test NLL (or bound) the status line shows after 10 s of training, and after Stop,

with the browser and the server sharing this machine's cores, as on a laptop.

    python -m bench.bench_browser [--data moons] [--model RealNVP] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
TEST_NLL = re.compile(r"test NLL\s*\**([\d.]+)\**\s*nats")

FIRST_UPDATE_JS = """() => new Promise(resolve => {
  const start = performance.now(); const marks = {};
  const check = () => {
    const status = document.querySelector('#status')?.innerText || '';
    const drawn = (document.querySelector('#samples-plot')?.textContent || '').includes('model samples')
               || /Samples (at step|from the kept).*images/.test(
                    document.querySelector('#samples-plot')?.textContent || '');
    if (marks.status === undefined && /step [1-9]\\d* \\//.test(status)) marks.status = performance.now() - start;
    if (marks.samples === undefined && drawn) marks.samples = performance.now() - start;
    if (marks.status !== undefined && marks.samples !== undefined) { observer.disconnect(); resolve(marks); }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  document.querySelector('#train-btn').click();
})"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout_s:.0f} s")


def choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="moons")
    parser.add_argument("--model", default="RealNVP")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--device", "cpu"], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#train-btn")
            choose(page, "#dataset", args.data)
            page.locator("#model input").click()
            page.get_by_role("option", name=re.compile(rf"^{re.escape(args.model)} \(")).click()
            page.wait_for_timeout(500)
            marks = page.evaluate(FIRST_UPDATE_JS)
            clicked = time.perf_counter() - marks["status"] / 1000
            page.wait_for_timeout(max(0.0, args.seconds - (time.perf_counter() - clicked)) * 1000)
            status = page.locator("#status").inner_text()
            page.locator("#stop-btn").click()
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('Stopped')")
            stopped = page.locator("#status").inner_text()
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print(f"{args.model} on {args.data}, server and Chromium on this machine")
    print(f"click Train -> first step in the status line: {marks['status'] / 1000:.2f} s")
    print(f"click Train -> samples plot drawn:            {marks['samples'] / 1000:.2f} s")
    print(f"after {args.seconds:.0f} s: {status.splitlines()[0]}")
    found = TEST_NLL.search(status)
    print(f"latest test NLL shown at {args.seconds:.0f} s: {found[1] if found else '—'} nats")
    print(f"after Stop: {' '.join(stopped.split())}")


if __name__ == "__main__":
    main()
