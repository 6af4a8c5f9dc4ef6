"""Drawing the Train tab's run while the scheduler trains it.

Nothing here trains: the shared ``Scheduler`` does, in slices between every active run. Two kinds of streams draw:

- **the status line**: the Train and Continue clicks stream it (one output) until the run ends;
- **the figures**: one watcher per figure, started when the page loads and living as long as it, draws the figure
  of whatever run the Train tab shows (``Session.current``) whenever that figure's data changed, at most a few
  times per second. A run opened from the Runs tab, or brought back by a reload, simply shows up.

Why one output per stream: Gradio 6.31 rebuilds a component (constructor, config, JSON schema: ~1–3 ms of the
interpreter's time) for every output an update leaves unchanged (``gr.skip()``). A stream of five outputs that
changes one of them five times a second, from twenty pages, kept the server busy with nothing but that.
Figures are drawn in a worker thread; with many pages open each sends its figures proportionally less often, so
that drawing never crowds out training.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

from app.page import views
from app.page.session import RunView, Session
from dgm_core.serve.scheduler import Scheduler

TICK_S = 0.2  # between two looks at the run (and two status lines, with few streams)
POLL_S = 0.05  # between two looks at a status line's run: its first step shows up at once
EVERY_S = {"loss": 2.0, "nll": 2.0, "samples": 1.0}  # the least time between two updates of one figure
PAGES_AT_FULL_RATE = 2  # beyond this many pages, each sends its figures proportionally less often
STATUS_LINES_AT_FULL_RATE = 4  # the same for status lines
HEARTBEAT_S = 20.0  # a figure watcher that had nothing to draw for this long yields an empty update
STREAMS = 256  # status streams (Train, Continue, Compare) that may run at once, all pages together: above the
# scheduler's 64 active runs, so that a run waiting in the scheduler's line can say where it stands
# Every event that streams a run joins one concurrency group, each naming the same limit: Gradio gives a group the
# LOWEST limit of its events, set when an event of each first arrives, and an event that names none counts as 1 (so
# one Compare click once held every Train stream on the server to one at a time). tests/test_concurrency.py checks it.
STREAMING: dict[str, Any] = {"concurrency_id": "streams", "concurrency_limit": STREAMS, "show_progress": "hidden"}


@dataclass(frozen=True)
class TrainForm:
    """The settings a Train click reads, in the order it sends them (iterating gives them in that order)."""

    dataset: Any
    model: Any
    steps: Any
    lr: Any
    batch_size: Any
    hidden: Any
    seed: Any
    option: Any  # the model's first declared option (a β-VAE's β), hidden for models without one
    keep: Any  # which evaluated weights to keep
    schedule: Any  # the learning rate's

    def __iter__(self) -> Iterator[Any]:
        return (getattr(self, field.name) for field in fields(self))


@dataclass(frozen=True)
class TrainOutputs:
    """The components that draw a run on the Train tab, and its form; handlers answer with dicts keyed by them."""

    status: gr.Markdown
    loss: Any
    nll: Any
    samples: Any  # points over a density, or a grid of images: one LivePlot either way
    form: TrainForm
    data_info: Any = None  # what the data set is
    model_info: Any = None  # what the model is

    def all(self) -> list:
        return [self.status, self.loss, self.nll, self.samples]


class _Streams:
    """How many streams of one kind run right now: each one's pace slows as they grow in number, so that together
    they cost about what ``at_full_rate`` of them would."""

    def __init__(self, at_full_rate: int) -> None:
        self.count, self.at_full_rate = 0, at_full_rate
        self._lock = threading.Lock()

    def __enter__(self) -> _Streams:
        with self._lock:
            self.count += 1
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self.count -= 1

    def slowdown(self) -> float:
        return max(1.0, self.count / self.at_full_rate)


PAGES = _Streams(PAGES_AT_FULL_RATE)  # pages watching figures
STATUS_LINES = _Streams(STATUS_LINES_AT_FULL_RATE)  # status lines streaming


def skip_missing_matplotlib() -> None:
    """Gradio 6.31 tries ``import matplotlib`` twice around every call of a handler and every message of a stream
    (to switch its plotting backend). Without matplotlib installed each try searches the whole import path again:
    with 30 pages following one run, those failed imports were ~8 % of the server's busy time (py-spy,
    ``bench/bench_follow.py --profile``). A missing module marked as such in ``sys.modules`` fails at once."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]  # `import matplotlib` raises ImportError


# --- the status line ------------------------------------------------------------------------------------------------


def status(view: RunView, scheduler: Scheduler) -> Iterator[str]:
    """The status line of ``view``'s run whenever it changed, until the run is no longer active, then its last word.

    Until the first step shows, and while a stop finishes, the line waits for the run to change
    (``Run.wait_for_change``: it is sent the moment it does); otherwise it looks every ``TICK_S``, slower as more
    status lines stream (each wake-up takes the interpreter lock for a moment)."""
    run = view.run
    with STATUS_LINES:
        line = views.status_markdown(view, scheduler.position(run))
        yield line
        seen = run.version
        while run.active:
            if run.step > 0 and run.phase != "stopping":  # paced: each wake-up takes the interpreter lock
                time.sleep(TICK_S * min(STATUS_LINES.slowdown(), 5.0))
            else:  # its first step, or the end of a stop: shown the moment it happens
                seen = run.wait_for_change(seen, timeout_s=TICK_S * 5)
            fresh = views.status_markdown(view, scheduler.position(run))
            if fresh != line:
                line = fresh
                yield line
    if run.phase in ("diverged", "failed"):
        gr.Warning(run.message)
    yield views.status_markdown(view)


# --- the figures ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """How to watch one figure: what says it changed, and how to draw it (None: nothing to draw for this run)."""

    name: str
    changed: Callable[[RunView], Hashable]
    draw: Callable[[RunView], Any]


FIGURES = {
    "loss": Figure("loss", lambda v: (v.id, v.run.phase, len(v.run.losses.steps), v.step), views.loss_figure),
    "nll": Figure("nll", lambda v: (v.id, v.run.phase, len(v.run.history)), views.nll_figure),
    "samples": Figure("samples", lambda v: (v.id, v.run.phase, id(v.run.samples)), views.samples_figure),
}


async def watch(session: Session, figure: Figure) -> AsyncIterator[Any]:
    """Draw ``figure`` for the Train tab's current run whenever its data changed (and its pace allows), for as long
    as the page is open (a stream of a closed page would hold one of Gradio's queue slots for good). A run that
    changes its phase (ends, stops) or is replaced is drawn at once."""
    last_key: Hashable = None
    last_view: RunView | None = None
    sent = heard = -math.inf
    session.watchers += 1  # a page with watchers is open in a browser (``app.page.pages``); all run in one event loop
    try:
        with PAGES if figure.name == "loss" else nullcontext():  # one watcher per page counts the page
            while session.open:
                view = session.current
                if view is not None:
                    key = figure.changed(view)
                    fresh = view is not last_view or last_key is None or key[1] != last_key[1]  # [1]: the phase
                    due = time.monotonic() - sent >= EVERY_S[figure.name] * PAGES.slowdown()
                    if key != last_key and (fresh or due):
                        yield await asyncio.to_thread(_draw, view, figure)
                        last_key, last_view, sent = key, view, time.monotonic()
                        heard = sent
                if time.monotonic() - heard >= HEARTBEAT_S:  # Gradio ends a stream whose browser is gone only when
                    yield gr.skip()  # it yields: a quiet page's watchers say nothing now and then
                    heard = time.monotonic()
                await asyncio.sleep(TICK_S)
    finally:
        session.watchers -= 1


def _draw(view: RunView, figure: Figure) -> Any:
    with view.run.lock:
        return figure.draw(view)


def current_figures(session: Session, outputs: TrainOutputs) -> dict:
    """Every figure of the Train tab's current run, drawn now (an API client's way to see them)."""
    view = session.current
    if view is None:
        return {}
    return {getattr(outputs, name): _draw(view, figure) for name, figure in FIGURES.items()}
