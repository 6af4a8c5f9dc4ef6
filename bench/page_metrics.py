"""What a live page costs the browser, read through the Chrome DevTools Protocol (Playwright's CDP session).

    meter = PageMeter(page)          # after the page has loaded
    idle = meter.sample()            # DOM nodes and listeners after a forced GC, JS heap, main-thread busy fraction
    ...                              # let it stream
    later = meter.sample()
    seconds = stop_latency(page)     # click Stop, wait until the status says "Stopped"

Used by ``bench/bench_live.py`` (minutes of live training) and ``tests/test_browser_live.py`` (a shorter check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from playwright.sync_api import Page

STOPPED_JS = "(id) => document.querySelector(id).innerText.includes('Stopped')"


@dataclass(frozen=True)
class Sample:
    """One reading: counts after a forced garbage collection, and the main thread's busy share since the last one."""

    nodes: int
    listeners: int
    heap_mb: float
    busy: float  # fraction of wall time the renderer's main thread ran tasks, since the previous sample

    def row(self) -> str:
        return f"{self.nodes:>9,} {self.listeners:>9,} {self.heap_mb:>8.1f} {100 * self.busy:>7.0f}%"


class PageMeter:
    def __init__(self, page: Page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")
        self._task, self._at = self._metrics()["TaskDuration"], time.perf_counter()

    def _metrics(self) -> dict[str, float]:
        return {item["name"]: item["value"] for item in self.cdp.send("Performance.getMetrics")["metrics"]}

    def sample(self) -> Sample:
        """Busy share since the last sample (measured before the GC, which is itself a task), then counts after a
        forced garbage collection, so that only what the page still holds is counted."""
        before, now = self._metrics(), time.perf_counter()
        busy = (before["TaskDuration"] - self._task) / max(now - self._at, 1e-9)
        self.cdp.send("HeapProfiler.collectGarbage")
        after = self._metrics()
        self._task, self._at = after["TaskDuration"], time.perf_counter()
        return Sample(int(after["Nodes"]), int(after["JSEventListeners"]), after["JSHeapUsedSize"] / 1e6, busy)


def stop_latency(page: Page, button: str = "#stop-btn", status: str = "#status", timeout_s: float = 30.0) -> float:
    """Seconds from a click on ``button`` until ``status`` says "Stopped" (as the page shows it)."""
    started = time.perf_counter()
    page.locator(button).click()
    page.wait_for_function(STOPPED_JS, arg=status, timeout=timeout_s * 1000, polling=50)
    return time.perf_counter() - started


HEADER = f"{'DOM nodes':>9} {'listeners':>9} {'heap MB':>8} {'busy':>8}"
