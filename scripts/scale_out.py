"""Two app processes sharing one run store: a user's runs survive being moved from one to the other.

    python scripts/scale_out.py

What a sticky-session load balancer in front of several ``python app.py --runs-dir SHARED`` processes does when a
process goes away: it sends that user to another one. The user's browser keeps its token (same origin, same
localStorage), and the other process finds the user's runs in the shared store. Here: process A trains a run for a
browser; A stops; the same browser (its token carried over, as the balancer's single origin would) opens process B,
whose Runs tab lists the run with its scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from bench.bench_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from bench.bench_live import open_page  # noqa: E402
from bench.server import Server  # noqa: E402

TOKEN_KEY = "dgm-playground-token"


def main() -> None:
    first = Server().start()
    second = Server(first.runs_dir).start()
    print(f"process A on :{first.port}, process B on :{second.port}, one run store: {first.runs_dir}")
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            open_page(page, first.url)
            page.locator("#steps input").fill("300")
            page.locator("#steps input").press("Tab")
            page.locator("#train-btn").click()
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('Done')")
            token = page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')")
            print(f"A trained a run for browser {token[:8]}…: {page.locator('#status').inner_text().splitlines()[0]}")
            first.stop()
            print("A stopped; the balancer now sends this browser to B")
            moved = chromium.new_context(viewport={"width": 1400, "height": 1000})
            moved.add_init_script(f"localStorage.setItem('{TOKEN_KEY}', '{token}')")
            page = moved.new_page()
            page.goto(second.url)
            page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('Welcome back')")
            page.get_by_role("tab", name="Runs").click()
            page.wait_for_function("() => document.querySelector('#runs-table').innerText.includes('RealNVP')")
            table = " ".join(page.locator("#runs-table").inner_text().split())
            print(f"B lists the run: {table[table.index('val MMD²') + len('val MMD²') :].strip()}")
            chromium.close()
    finally:
        first.stop()
        second.stop()


if __name__ == "__main__":
    main()
