"""kill -9 in the middle of training, then a restart: do every browser's runs come back, and how much is lost?

    python -m bench.bench_restart [--browsers 3] [--seconds 25]

Starts ``python app.py`` with a fresh run store; ``--browsers`` Chromium contexts (separate browsers, each with its
own token) open the page and train RealNVP on moons; after ``--seconds`` the server is killed with SIGKILL (it saves
nothing on the way out) and started again on the same port and store. Each page reloads and reads what came back:
its run, marked interrupted, at the last weights it kept. Lost training = the step shown before the kill minus the
step restored, in seconds at the rate shown before the kill. Targets (issue "a run owns its life"): 100 % of runs
back; ≤ 30 s of training lost each.
"""

from __future__ import annotations

import argparse
import re

from playwright.sync_api import Page, sync_playwright

from bench.bench_browser import CHROMIUM, CHROMIUM_ARGS
from bench.bench_live import open_page, pick_model
from bench.server import Server

STEP = re.compile(r"step \**(\d+)\**")
RATE = re.compile(r"([\d.]+) steps/s")


def reading(page: Page) -> tuple[int, float]:
    text = page.locator("#status").inner_text()
    return int(STEP.search(text)[1]), float(RATE.search(text)[1]) if RATE.search(text) else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--browsers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=25.0)
    args = parser.parse_args()
    server = Server().start()
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = [
                chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(args.browsers)
            ]
            for page in pages:
                open_page(page, server.url)
                pick_model(page, "moons", "RealNVP")
                page.locator("#train-btn").click()
            pages[0].wait_for_timeout(args.seconds * 1000)
            before = [reading(page) for page in pages]
            server.kill()
            print(f"killed (SIGKILL) after {args.seconds:.0f} s; steps shown: {[step for step, _ in before]}")
            server = Server(server.runs_dir, port=server.port).start()
            lost, back = [], 0
            for page, (step, rate) in zip(pages, before):
                page.reload()
                page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('Welcome back')")
                status = page.locator("#status").inner_text()
                restored, _ = reading(page)
                back += "Interrupted" in status and restored > 0
                lost.append((step - restored) / rate if rate else float("inf"))
                print(
                    f"  browser {len(lost)}: step {step} before the kill, {restored} restored "
                    f"({lost[-1]:.1f} s of training lost); {status.splitlines()[0]}"
                )
            chromium.close()
    finally:
        server.stop()
    print(f"[{'met' if back == args.browsers else 'MISSED'}] runs back: {back} of {args.browsers}")
    print(f"[{'met' if max(lost) <= 30 else 'MISSED'}] training lost ≤ 30 s each: worst {max(lost):.1f} s")


if __name__ == "__main__":
    main()
