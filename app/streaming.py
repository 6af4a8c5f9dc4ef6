"""Drawing a run while the scheduler trains it: a paced stream of page updates.

The stream never trains: the shared ``Scheduler`` does, in slices between every active run. Every ~0.2 s the stream
reads the run and sends the status line; figures go out by wall clock, a few per second, and only when they changed
(the browser redraws a whole figure per update). With many pages streaming at once, each sends its figures less
often, so that drawing never crowds out training. Stop asks the run to stop; the stream ends by drawing the stopped
state once the weights stopped at are scored. A page that goes away ends its stream; the run trains on.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import views
from app.session import RunView
from dgm_core.scheduler import Scheduler

TICK_S = 0.2  # between two status updates
FIRST_TICK_S = 0.05  # a short first wait: the first step and samples show up sooner
EVERY_S = {"loss": 1.0, "nll": 1.0, "samples": 0.5}  # the least time between two updates of one figure
STREAMS_AT_FULL_RATE = 4  # beyond this many pages streaming, each sends its figures proportionally less often


@dataclass(frozen=True)
class TrainOutputs:
    """The components that draw a run on the Train tab."""

    status: gr.Markdown
    loss: Any
    nll: Any
    samples_plot: Any
    samples_image: gr.Image

    def all(self) -> list:
        return [self.status, self.loss, self.nll, self.samples_plot, self.samples_image]


class _Streams:
    """How many pages stream right now (to share the drawing budget)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> _Streams:
        with self._lock:
            self.count += 1
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self.count -= 1


STREAMS = _Streams()


class Pacer:
    """Remembers which figures changed and when each was last sent."""

    def __init__(self) -> None:
        self.dirty = {name: False for name in EVERY_S}
        now = time.perf_counter()  # the first samples go out at once; curves, just drawn empty, wait their turn
        self.sent = {name: -math.inf if name == "samples" else now for name in EVERY_S}

    def mark(self, **changed: bool) -> None:
        for name, flag in changed.items():
            self.dirty[name] |= flag

    def due(self, name: str) -> bool:
        now = time.perf_counter()
        slower = max(1.0, STREAMS.count / STREAMS_AT_FULL_RATE)
        if self.dirty[name] and now - self.sent[name] >= EVERY_S[name] * slower:
            self.dirty[name], self.sent[name] = False, now
            return True
        return False


def full_update(view: RunView, outputs: TrainOutputs, first: bool = False) -> dict:
    """Every output, drawn from the run as it is."""
    return {
        outputs.status: views.status_markdown(view),
        outputs.loss: views.loss_figure(view),
        outputs.nll: views.nll_figure(view),
        **samples_update(view, outputs, first),
    }


def samples_update(view: RunView, outputs: TrainOutputs, first: bool = False) -> dict:
    """The samples plot or the samples image, whichever fits the data. On a run's ``first`` update the (costly) plot
    waits for the first samples, and the image's label turns from the data's to the model's."""
    if view.bounds is not None:
        if first:
            return {}
        view.refresh_density()
        return {outputs.samples_plot: views.samples_figure(view)}
    picture = views.samples_picture(view)
    if first:
        return {outputs.samples_image: gr.Image(picture, label=views.samples_label(view.data_spec))}
    return {} if picture is None else {outputs.samples_image: picture}


def stream(view: RunView, outputs: TrainOutputs, scheduler: Scheduler) -> Iterator[dict]:
    """Draw ``view``'s run until it is no longer active (done, stopped, diverged or failed)."""
    with STREAMS:
        yield full_update(view, outputs, first=True)
        run, pacer, wait = view.run, Pacer(), FIRST_TICK_S
        seen = (run.step, len(run.history), id(run.samples))
        while run.active:
            time.sleep(wait)
            wait = TICK_S
            now = (run.step, len(run.history), id(run.samples))
            pacer.mark(loss=now[0] != seen[0], nll=now[1] != seen[1], samples=now[2] != seen[2])
            seen = now
            update = {outputs.status: views.status_markdown(view, scheduler.position(run))}
            if pacer.due("loss"):
                update[outputs.loss] = views.loss_figure(view)
            if pacer.due("nll"):
                update[outputs.nll] = views.nll_figure(view)
            if pacer.due("samples"):
                update |= samples_update(view, outputs)
            yield update
        if run.phase == "diverged" or run.phase == "failed":
            gr.Warning(run.message)
        view.refresh_density(force=True)
        yield full_update(view, outputs)
