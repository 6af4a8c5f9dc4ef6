"""The journey of ``bench/page_journey.py`` without a browser: the events a page sends, through Gradio's queue.

Each click is timed from its event's send to the output that answers it (for most, the event's end; for Train and
Continue, the first status line, then the first one showing a step; for Stop, the Train stream's "Stopped").
"""

from __future__ import annotations

import asyncio
import time

from bench.page_journey import STEP, Journey
from bench.queue_client import QueuePage


def _status(event) -> str:
    text = event.outputs[0]
    return text if isinstance(text, str) else ""


def _step(text: str) -> int:
    found = STEP.search(text)
    return int(found[1]) if found else -1


class ApiJourney(Journey):
    """The same journey through Gradio's queue, as the page's front end sends it (``QueuePage``)."""

    source = "api"

    def __init__(self, http, config, *args) -> None:
        super().__init__(*args)
        self.client = QueuePage(http, self.url, config)
        self.client.on_send = lambda fn: self.rec.sent[self.source, self.step].add(fn)

    async def run(self, until: float) -> None:
        try:
            await super().run(until)
        finally:
            await self.client.close()

    async def answered(self, kind: str, events: list, timeout: float = 30.0) -> None:
        """The latency of the first event a click sent: until it ended (for these, the output is the answer)."""
        for event in events[:1]:
            taken = await event.finished(timeout)
            ok = taken is not None and event.error is None
            self.rec.click(self.source, kind, taken if ok else None, self.name, event.error or "no answer")

    async def open(self) -> None:
        await self.opened("open")

    async def opened(self, kind: str) -> None:
        restore = await self.client.open()
        ok = restore.done and restore.error is None
        self.rec.click(self.source, kind, restore.ended if ok else None, self.name, restore.error or "no answer")
        self.token = self.client.token

    async def gallery(self) -> None:
        await self.pause(0.5, 2)
        await self.answered("open card", self.client.click(f"open-{self.card()}"))

    async def train_and_stop(self, dataset: str) -> None:
        await self.answered("data set", self.client.set("dataset", dataset))
        self.client.set("steps", 1_000_000)
        await self.pause(0.5, 2)
        await self.until_step("train", self.client.click("train-btn"), 0)

    async def until_step(self, kind: str, events: list, past: int) -> None:
        """A training click: its first status line, its first step after ``past``, a pause, Stop and "Stopped"."""
        (train,) = events
        said = await train.until(lambda e: _status(e) != "", 30)
        self.rec.click(self.source, kind, said, self.name, f"{train.error or ''} {_status(train)}")
        first = await train.until(lambda e: _step(_status(e)) > past, 30)
        self.rec.click(self.source, "first step", first, self.name, f"{train.error or ''} {_status(train)}")
        await self.pause(1, 4)
        (stop,) = self.client.click("stop-btn")
        ended = ("Stopped", "Done")  # a run that reached its steps before the Stop arrived answers "Done"
        stopped = await train.until(lambda e: any(w in _status(e) for w in ended) or e.done, 30, since=stop.sent)
        showed = f"{train.error or ''} {_status(train)}"
        answered = any(word in _status(train) for word in ended)
        self.rec.click(self.source, "stop", stopped if answered else None, self.name, showed)

    async def train(self) -> None:
        await self.train_and_stop("digits")
        await self.pause(0.5, 2)
        await self.train_and_stop("moons")

    async def compare(self) -> None:
        await self.answered("tab compare", self.client.select_tab("tab-compare"))
        self.client.set("compare-budget", "steps")
        self.client.set("compare-amount", 50)
        await self.pause(0.5, 2)
        (compare,) = self.client.click("compare-btn")
        said = lambda e: e.outputs[1] if isinstance(e.outputs[1], str) else ""  # noqa: E731
        training = await compare.until(lambda e: "Training" in said(e), 30)
        self.rec.click(self.source, "compare", training, self.name, f"{compare.error or ''} {said(compare)}")
        done = await compare.until(lambda e: e.done and "Done" in said(e), 180)
        self.rec.click(self.source, "compare done", done, self.name, f"{compare.error or ''} {said(compare)}")

    async def likelihood(self) -> None:
        await self.answered("tab likelihood", self.client.select_tab("tab-likelihood"))
        await asyncio.sleep(0.5)
        ids = [i for i in self.client.value("lik-runs") or [] if i != getattr(self, "scored", None)]
        if not ids:
            return
        self.scored = self.rng.choice(ids)
        self.client.set("lik-run", self.scored)
        await self.pause(0.5, 2)
        await self.answered("score items", self.client.click("lik-score"))

    async def upload(self) -> None:
        started = time.perf_counter()
        await self.client.upload("data-files", self.csv())
        self.rec.click(self.source, "upload a file", time.perf_counter() - started)
        await self.pause(0.5, 2)
        await self.answered("use the file", self.client.click("data-use-files"))

    async def reload_and_continue(self) -> None:
        await self.opened("reload")
        await self.pause(1, 3)
        status = self.client.value("status") or ""
        if "Welcome back" not in status:  # nothing of this browser's came back: nothing to continue
            return
        step = _step(status)
        await self.until_step("continue", self.client.click("continue-btn"), step)

    async def list_runs(self) -> list[int]:
        (refresh,) = self.client.select_tab("tab-runs")
        await refresh.finished(30)
        table = refresh.outputs[0]
        rows = table.get("data", []) if isinstance(table, dict) else table or []
        return sorted(int(row[0]) for row in rows)

    async def reconnect(self) -> None:
        await self.opened("reload after restart")
