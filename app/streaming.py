"""Turning a training run into a paced stream of page updates.

Training advances in slices of ~0.2 s, each followed by a yield, so Stop takes effect within a slice. Stop does not
cancel the stream (a cancelled stream's last update can land after Stop's answer and show "Training" again): it asks
the trainer to stop, and the stream ends by drawing the stopped state once the weights stopped at are scored. The
status line goes out at every yield; figures go out by wall clock, a few per second, and only when they changed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from app import views
from app.session import Session, TrainingRun
from dgm_core.training import TrainEvent

SLICE_S = 0.2  # training between two yields
FIRST_SLICE_S = 0.05  # a short first slice: the first step and samples show up sooner
EVERY_S = {"loss": 1.0, "nll": 1.0, "samples": 0.5}  # the least time between two updates of one figure

Update = tuple[Any, Any, Any, Any, Any]  # status, loss plot, NLL plot, samples plot, samples image


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
        if self.dirty[name] and now - self.sent[name] >= EVERY_S[name]:
            self.dirty[name], self.sent[name] = False, now
            return True
        return False


def full_update(run: TrainingRun, first: bool = False) -> Update:
    """Every output, drawn from the run as it is."""
    return (views.status_markdown(run), views.loss_figure(run), views.nll_figure(run), *samples_update(run, first))


def samples_update(run: TrainingRun, first: bool = False) -> tuple[Any, Any]:
    """(samples plot, samples image): the one that fits the data, the other left alone. On a run's ``first`` update
    the (costly) plot waits for the first samples, and the image's label turns from the data's to the model's."""
    if run.bounds is not None:
        return gr.skip() if first else views.samples_figure(run), gr.skip()
    picture = views.samples_picture(run)
    if first:
        return gr.skip(), gr.Image(picture, label=views.samples_label(run.spec))
    return gr.skip(), gr.skip() if picture is None else picture


def message_update(text: str) -> Update:
    """Only the status line changes (used for settings that cannot train)."""
    return (text, gr.skip(), gr.skip(), gr.skip(), gr.skip())


def stream(session: Session, run: TrainingRun, token: int, events: Iterator[TrainEvent]) -> Iterator[Update]:
    """Advance the run slice by slice until it ends (or is stopped), or a newer run replaces it. If the page goes
    away meanwhile (Gradio closes this generator), the run keeps its evaluated weights and counts as stopped."""
    try:
        yield from _slices(session, run, token, events)
    finally:
        with session.lock:
            if session.token == token:
                run.abandon()


def _slices(session: Session, run: TrainingRun, token: int, events: Iterator[TrainEvent]) -> Iterator[Update]:
    yield full_update(run, first=True)
    pacer, budget_s = Pacer(), FIRST_SLICE_S
    while True:
        try:
            tick = session.advance(events, token, budget_s)
        except (RuntimeError, ValueError) as error:  # e.g. out of memory on a GPU: say so, keep the page alive
            run.phase, run.message = "failed", f"Training failed: {error}"
            gr.Warning(run.message)
            yield message_update(views.status_markdown(run))
            return
        if tick is None:  # replaced by a newer run
            return
        if tick.done:
            if run.phase == "diverged":
                gr.Warning(run.message)
            yield full_update(run)
            return
        budget_s = SLICE_S
        pacer.mark(loss=True, nll=tick.metrics, samples=tick.samples)
        yield (
            views.status_markdown(run),
            views.loss_figure(run) if pacer.due("loss") else gr.skip(),
            views.nll_figure(run) if pacer.due("nll") else gr.skip(),
            *(samples_update(run) if pacer.due("samples") else (gr.skip(), gr.skip())),
        )
