"""Gradio's queue as the built app applies it: no event is held below its own limit by another, every page's streams
and quick events run at once, and a comparison does not change that for anyone who trains afterwards.

Gradio gives a concurrency group the lowest limit of its events, set lazily as each event first arrives, and counts an
event that names no limit as ``default_concurrency_limit``. So the limits are read here by making every event's queue
exactly as Gradio's queue does when that event arrives (``create_event_queue_for_fn``), all of them: the state of a
server on which every event, the rare ones included, has fired once.
"""

from __future__ import annotations

import inspect
import re
import threading
import time

import pytest
import torch
from gradio_client import Client

from app.layout import build
from app.page.session import Backend
from app.page.streaming import STREAMS
from dgm_core.serve.scheduler import Scheduler

STEP = re.compile(r"step \**(\d+)\**")


@pytest.fixture(scope="module")
def demo():
    return build(Backend(torch.device("cpu"), Scheduler(1), None))


def own_limit(demo, fn) -> int | None:
    return demo._queue.default_concurrency_limit if fn.concurrency_limit == "default" else fn.concurrency_limit


def applied_limits(demo) -> dict[int, int | None]:
    """Every backend event's limit once every event has arrived at least once (None: no limit)."""
    queue = demo._queue
    events = {index: fn for index, fn in demo.fns.items() if fn.fn is not None}
    for fn in events.values():
        queue.create_event_queue_for_fn(fn)
    return {
        index: queue.event_queue_per_concurrency_id[fn.concurrency_id].concurrency_limit for index, fn in events.items()
    }


def streams(demo) -> dict[int, str]:
    """Backend events that stream (generators): their index and API name."""
    return {
        index: fn.api_name
        for index, fn in demo.fns.items()
        if fn.fn is not None and (inspect.isgeneratorfunction(fn.fn) or inspect.isasyncgenfunction(fn.fn))
    }


def test_no_event_is_held_below_its_own_limit_by_another_of_its_group(demo) -> None:
    applied = applied_limits(demo)
    held = {
        demo.fns[index].api_name: (own_limit(demo, demo.fns[index]), limit)
        for index, limit in applied.items()
        if limit != own_limit(demo, demo.fns[index])
    }
    assert not held, f"events held below their own limit (own, applied): {held}"


def test_the_run_streams_share_one_group_that_lets_every_page_stream(demo) -> None:
    applied = applied_limits(demo)
    runs = {
        fn.api_name: index for index, fn in demo.fns.items() if fn.api_name in ("train", "continue_training", "compare")
    }
    assert set(runs) == {"train", "continue_training", "compare"}
    assert {demo.fns[index].concurrency_id for index in runs.values()} == {"streams"}
    assert {applied[index] for index in runs.values()} == {STREAMS}


def test_every_other_event_runs_for_every_page_at_once(demo) -> None:
    """Quick events (tabs, pickers, sliders, views) and the figure watchers that live as long as a page: no limit."""
    applied = applied_limits(demo)
    limited = {
        demo.fns[index].api_name: limit
        for index, limit in applied.items()
        if limit is not None and demo.fns[index].concurrency_id != "streams"
    }
    assert not limited, f"events limited to a few at a time across the whole server: {limited}"
    assert streams(demo), "the app streams its runs"


@pytest.mark.slow
def test_after_a_comparison_several_pages_train_at_once(app_url: str) -> None:
    """A comparison runs first (the event that once joined the streams' group with a limit of one); then four
    sessions press Train on long runs: each must show a step while all the others still train."""
    comparer = Client(app_url, verbose=False)
    comparison = comparer.submit("moons", ["MADE"], "steps", 20, api_name="/compare").result(timeout=120)
    assert "Done" in str(comparison), comparison  # the status line, after the state the API does not see

    students = [Client(app_url, verbose=False) for _ in range(4)]
    jobs = [
        student.submit("moons", "MADE", 1_000_000, 1e-3, 256, 64, 0, 1.0, "best", "constant", 0, api_name="/train")
        for student in students
    ]
    seen: set[int] = set()
    deadline = time.monotonic() + 120  # a generous bound: held one at a time, the others would wait for good
    while len(seen) < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.2)
        for i, job in enumerate(jobs):
            if any((found := STEP.search(line or "")) and int(found[1]) > 0 for line in job.outputs()):
                seen.add(i)
    stoppers = [threading.Thread(target=student.predict, kwargs={"api_name": "/stop"}) for student in students]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join(timeout=60)
    assert seen == set(range(len(jobs))), f"only sessions {sorted(seen)} of 4 trained while the others did"
