"""Does playing the "how it works" animations grow the page? Each view's Play, again and again, in a real Chromium.

    python -m bench.bench_view_pages [--rounds 6]

Starts ``python app.py`` and Chromium on this machine, opens each view's gallery card, shows the view, then presses
Play ``--rounds`` times (each a whole animation of 20–32 frames into the same persistent plot) and prints, through
the Chrome DevTools Protocol, DOM nodes and event listeners after a forced garbage collection and the JS heap, before
the first Play and after the last. Target (issue "live for a whole lecture", which the views must stay within): no
growth — nodes and listeners flat, the heap within a few MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import NamedTuple

from playwright.sync_api import sync_playwright

from bench.bench_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, wait_until_up
from bench.page_metrics import HEADER, PageMeter


class View(NamedTuple):
    preset: str
    accordion: str  # the accordion's element id and a phrase of its label
    label: str
    show: str
    play: str
    play_s: float  # how long one Play takes, with a margin


VIEWS = (
    View("flows-on-rings", "#how-it-works", "a flow, layer by layer", "#how-show", "#how-play", 5),
    View("sampling-digits", "#how-pixels", "pixel by pixel", "#pixels-start", "#pixels-play", 7),
    View("diffusion", "#how-diffusion", "diffusion, forward and reverse", "#diff-show", "#diff-play", 9),
    View("energy-based", "#how-energy", "chains", "#energy-show", "#energy-play", 9),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    presets = [view.preset for view in VIEWS]
    parser.add_argument("--views", nargs="+", default=presets, choices=presets)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--device", "cpu"], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            print(f"{'view':<34} {'when':<16}{HEADER}")
            for view in (view for view in VIEWS if view.preset in args.views):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}?preset={view.preset}")
                page.get_by_role("tab", name="Train").click()
                page.locator(view.accordion).get_by_text(view.label).click()
                page.locator(view.show).click()
                page.wait_for_timeout(3000)
                meter = PageMeter(page)
                before = meter.sample()
                for _ in range(args.rounds):
                    page.locator(view.play).click()
                    page.wait_for_timeout(1000 * view.play_s)
                after = meter.sample()
                print(f"{view.label:<34} {'shown':<16}{before.row()}")
                print(f"{'':<34} {f'after {args.rounds} plays':<16}{after.row()}", flush=True)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
