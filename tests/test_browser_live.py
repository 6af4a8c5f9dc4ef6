"""The page stays light while training streams, Stop is answered, and the lecture view fits a projector's screen.

Sixteen seconds of live training in Chromium, read through the Chrome DevTools Protocol (``bench/page_metrics.py``):
after a forced garbage collection the page holds about as many DOM nodes and listeners as at the start. ``gr.Plot``
once grew it to 188 k nodes in 60 s (see ``bench/bench_live.py`` for ten-minute runs of every family).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from bench.page_metrics import PageMeter, Sample, stop_latency
from tests.test_browser import open_app, set_number, wait_for_step

pytestmark = pytest.mark.browser


def test_sixteen_seconds_of_live_training_do_not_grow_the_page(page: Page, app_url: str, output_dir: Path) -> None:
    open_app(page, app_url)
    set_number(page, "#steps", "1000000")
    meter = PageMeter(page)
    idle = meter.sample()
    page.locator("#train-btn").click()
    wait_for_step(page, 50)
    page.wait_for_timeout(4_000)
    early = _at_rest(page, meter)
    page.wait_for_timeout(12_000)
    late = _at_rest(page, meter)
    stop_s = stop_latency(page)
    expect(page.locator("#status")).to_contain_text("Kept the weights of step")
    report = (
        f"idle:        {idle.row()}\nafter ~4 s:  {early.row()}\nafter ~16 s: {late.row()}\n"
        f"Stop -> Stopped: {stop_s:.2f} s\n"
    )
    (output_dir / "live_sixteen_seconds.txt").write_text(report)
    print(report, end="")
    assert late.nodes <= 1.5 * idle.nodes, report
    assert late.nodes <= 1.05 * early.nodes and late.listeners <= early.listeners + 10, report
    assert late.heap_mb <= 100, report


def _at_rest(page: Page, meter: PageMeter) -> Sample:
    """The meter's sample with the page scrolled to its top and the mouse off every figure: a hovered plot shows its
    toolbar (~140 nodes, ~60 listeners) for a while, and a page that scrolled under a parked mouse hovers one."""
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    page.wait_for_timeout(1_000)
    return meter.sample()


def test_the_lecture_view_shows_train_stop_and_the_samples_at_1280_by_720(
    page: Page, app_url: str, output_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, app_url + "?lecture=1")
    expect(page.locator("body")).to_have_class("lecture")
    expect(page.locator("#lecture-toggle input")).to_be_checked()
    page.locator("#train-btn").click()
    wait_for_step(page, 30)
    page.wait_for_timeout(1500)
    for selector in ("#train-btn", "#stop-btn", "#samples-plot .main-svg"):
        box = page.locator(selector).first.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 720, (selector, box)
    sizes = page.locator("#samples-plot text").evaluate_all("nodes => nodes.map(n => parseFloat(n.style.fontSize))")
    assert sizes and min(size for size in sizes if size) >= 16, sizes
    page.screenshot(path=output_dir / "lecture_view_1280x720.png")
    stop_latency(page)
    page.locator("#lecture-toggle input").uncheck()
    expect(page.locator("body")).not_to_have_class("lecture")
