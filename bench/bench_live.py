"""Minutes of live training in a real Chromium: does the page stay light, and does Stop answer at once?

    python -m bench.bench_live [--minutes 10] [--scenarios RealNVP/moons GAN/8gaussians VAE/digits compare/moons]
    python -m bench.bench_live --minutes 3 --scenarios VAE/mnist PixelCNN/mnist     # 28×28 MNIST

Starts ``python app.py`` and Chromium on this machine (they share its cores, as on a laptop), then for each scenario
trains live for ``--minutes`` and, once a minute, prints through the Chrome DevTools Protocol: DOM nodes and event
listeners after a forced garbage collection, the JS heap, the main thread's busy share over that minute, and the time
from a Stop click to "Stopped" on the page (training then continues: Continue, or a new comparison). For the Train
tab it also compares the step rate with the browser attached against the same run streamed to an API client that
draws nothing. Targets (issue "live for a whole lecture"): nodes ≤ 1.5× the idle page, listeners flat, heap ≤ 100 MB,
busy ≤ 30 %, Stop ≤ 1 s, step rate ≥ 85 % of the run without a browser.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from gradio_client import Client
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.bench_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, choose, free_port, wait_until_up
from bench.page_metrics import HEADER, PageMeter, Sample, stop_latency
from dgm_core.data import load_dataset
from dgm_core.models.registry import defaults_for

STEP = re.compile(r"step \**(\d+)\**")
BIG = "1000000"
TRAIN = {
    "RealNVP/moons": ("moons", "RealNVP"),
    "GAN/8gaussians": ("8gaussians", "GAN"),
    "VAE/digits": ("digits", "VAE"),
    "VAE/mnist": ("mnist", "VAE"),  # 28×28: the largest images, each sample grid 64 × 784 pixels
    "PixelCNN/mnist": ("mnist", "PixelCNN"),
}
COMPARE = {"compare/moons": "moons"}


@dataclass
class Minute:
    sample: Sample
    stop_s: float
    steps_per_s: float | None


@dataclass
class Result:
    name: str
    idle: Sample
    minutes: list[Minute] = field(default_factory=list)
    headless_steps_per_s: float | None = None


def step_of(page: Page, status: str = "#status") -> int:
    found = STEP.search(page.locator(status).inner_text())
    return int(found[1]) if found else 0


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#train-btn")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)
    page.wait_for_timeout(2000)


def pick_model(page: Page, dataset: str, model: str) -> None:
    choose(page, "#dataset", dataset)
    page.wait_for_function("(d) => document.querySelector('#dataset input').value === d", arg=dataset)
    page.wait_for_timeout(1000)  # the model list follows the data set
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(model)} \(")).click()
    page.wait_for_function(
        "(m) => document.querySelector('#model-info').innerText.startsWith(m)", arg=model, timeout=60_000
    )
    page.locator("#steps input").fill(BIG)
    page.locator("#steps input").press("Tab")
    page.wait_for_timeout(500)


def live_train(page: Page, url: str, dataset: str, model: str, minutes: int) -> Result:
    open_page(page, url)
    pick_model(page, dataset, model)
    meter = PageMeter(page)
    result = Result(f"{model}/{dataset}", meter.sample())
    page.locator("#train-btn").click()
    for _ in range(minutes):
        page.wait_for_function("() => /Training/.test(document.querySelector('#status').innerText)")
        start_step, start = step_of(page), time.perf_counter()
        page.wait_for_timeout(60_000 - 1000 * (time.perf_counter() - start))
        rate = (step_of(page) - start_step) / (time.perf_counter() - start)
        sample = meter.sample()
        stop_s = stop_latency(page)
        result.minutes.append(Minute(sample, stop_s, rate))
        print(f"  {len(result.minutes):>3} {sample.row()} {stop_s:>8.2f} {rate:>8.1f}", flush=True)
        page.locator("#continue-btn").click()
    stop_latency(page)
    return result


def live_compare(page: Page, url: str, dataset: str, minutes: int) -> Result:
    open_page(page, url)
    page.get_by_role("tab", name="Compare").click()
    choose(page, "#compare-data", dataset)
    page.locator("#compare-amount input").fill(str(60 * minutes))  # every model could train the whole time
    page.locator("#compare-amount input").press("Tab")
    meter = PageMeter(page)
    result = Result(f"compare/{dataset}", meter.sample())
    for _ in range(minutes):
        start_comparison(page)
        page.wait_for_timeout(59_000)
        sample = meter.sample()
        stop_s = stop_latency(page, "#compare-stop", "#compare-status")
        result.minutes.append(Minute(sample, stop_s, None))
        print(f"  {len(result.minutes):>3} {sample.row()} {stop_s:>8.2f} {'—':>8}", flush=True)
    return result


def start_comparison(page: Page, tries: int = 3) -> None:
    """Click Compare until the comparison trains: a click in the last moments of the previous comparison's event
    (after its status says "Stopped", before the page hears that the event ended) is ignored by the page."""
    for attempt in range(tries):
        page.locator("#compare-btn").click()
        try:
            page.wait_for_function(TRAINING_JS, timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


TRAINING_JS = "() => /Training/.test(document.querySelector('#compare-status').innerText)"


def headless_rate(url: str, dataset: str, model: str, seconds: float = 45.0) -> float:
    """Steps/s of the same run streamed to an API client that draws nothing (the server's work is the same)."""
    client = Client(url, verbose=False)
    d = defaults_for(model, load_dataset(dataset).spec)
    job = client.submit(
        dataset, model, int(BIG), d.lr, d.batch_size, d.hidden, 0, 1.0, "best", "constant", 0, api_name="/train"
    )
    first = None
    for output in job:
        found = STEP.search(output)
        if not found:
            continue
        now, step = time.perf_counter(), int(found[1])
        first = first or (now, step)
        if now - first[0] >= seconds:
            break
    client.submit(api_name="/stop").result()
    job.result(timeout=30)
    return (step - first[1]) / (now - first[0])


def report(result: Result) -> list[str]:
    """Each target, met or not, for one scenario."""
    minutes, idle = result.minutes, result.idle
    last = minutes[-1].sample
    checks = [
        (f"DOM nodes after GC ≤ 1.5× idle ({idle.nodes:,})", max(m.sample.nodes for m in minutes) <= 1.5 * idle.nodes),
        ("listeners flat (last ≤ first minute + 2 %)", last.listeners <= 1.02 * minutes[0].sample.listeners),
        ("JS heap ≤ 100 MB", max(m.sample.heap_mb for m in minutes) <= 100),
        ("main-thread busy ≤ 30 %", max(m.sample.busy for m in minutes) <= 0.30),
        ("Stop answered ≤ 1 s at every sample", max(m.stop_s for m in minutes) <= 1.0),
    ]
    lines = [f"  [{'met' if ok else 'MISSED'}] {text}" for text, ok in checks]
    if result.headless_steps_per_s:
        rates = [m.steps_per_s for m in minutes if m.steps_per_s]
        ratio = sum(rates) / len(rates) / result.headless_steps_per_s
        verdict = "met" if ratio >= 0.85 else "MISSED"
        lines.append(
            f"  [{verdict}] step rate with the browser ≥ 85 % of without: {ratio:.0%} "
            f"({sum(rates) / len(rates):.1f} vs {result.headless_steps_per_s:.1f} steps/s)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--scenarios", nargs="+", default=[*TRAIN, *COMPARE], choices=[*TRAIN, *COMPARE])
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--device", "cpu"], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    results = []
    try:
        wait_until_up(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name in args.scenarios:
                print(f"\n{name}: {args.minutes} min of live training")
                print(f"  min {HEADER} {'Stop s':>8} {'steps/s':>8}")
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                if name in TRAIN:
                    dataset, model = TRAIN[name]
                    result = live_train(page, url, dataset, model, args.minutes)
                    result.headless_steps_per_s = headless_rate(url, dataset, model)
                else:
                    result = live_compare(page, url, COMPARE[name], args.minutes)
                print(f"  idle page: {result.idle.row()}")
                print("\n".join(report(result)), flush=True)
                results.append(result)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()
    print("\nSummary")
    for result in results:
        print(result.name)
        print("\n".join(report(result)))


if __name__ == "__main__":
    main()
