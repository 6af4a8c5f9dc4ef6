"""Pages come and go, and their memory goes with them: a page that unloads is let go at once, one that never says
goodbye (an API client, a closed laptop) once it has been idle, and Gradio's own state of either is dropped."""

from __future__ import annotations

import time

import pytest
import torch
from gradio_client import Client

from app.page.pages import Pages
from app.page.session import Backend, Session
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import Scheduler


@pytest.fixture()
def fresh() -> Backend:
    return Backend(torch.device("cpu"), Scheduler(1), pages=Pages(idle_s=60, sweep_every_s=None))


def page(backend: Backend, page_id: str, seen_s_ago: float = 0.0) -> Session:
    session = Session(backend)
    backend.opened(page_id, session)
    session.last_seen -= seen_s_ago
    return session


def test_a_page_idle_without_watchers_or_training_is_let_go_and_its_gradio_state_dropped(fresh) -> None:
    forgotten: list[str] = []
    fresh.pages.forget_state = forgotten.append
    idle, busy = page(fresh, "idle", seen_s_ago=61), page(fresh, "busy", seen_s_ago=1)
    idle.keep(Run(RunSpec.defaults("MADE", "moons", steps=5)))
    assert fresh.pages.sweep() == ["idle"]
    assert not idle.open and not idle.views, "its runs are let go"
    assert busy.open and "busy" in fresh.pages and "idle" not in fresh.pages
    assert forgotten == []  # Gradio may still be ending the page's last event: its state goes at the next sweep
    fresh.pages.sweep()
    assert forgotten == ["idle"]


def test_a_page_open_in_a_browser_or_training_is_kept_however_long_it_is_quiet(fresh) -> None:
    watching, training = page(fresh, "watching", seen_s_ago=3600), page(fresh, "training", seen_s_ago=3600)
    watching.watchers = 4
    run = Run(RunSpec.defaults("MADE", "moons", steps=5))
    run.start()
    training.keep(run)
    assert fresh.pages.sweep() == []
    assert watching.open and training.open and run.active


def test_a_page_that_unloads_is_let_go_at_once(fresh) -> None:
    forgotten: list[str] = []
    fresh.pages.forget_state = forgotten.append
    session = page(fresh, "gone")
    fresh.closed("gone")
    assert not session.open and "gone" not in fresh.pages
    fresh.pages.sweep()
    assert forgotten == ["gone"]


def test_the_served_app_drops_gradios_state_of_a_page_it_let_go(served, backend) -> None:
    client = Client(served.local_url, verbose=False)
    client.submit("moons", "MADE", 20, 1e-3, 256, 64, 0, 1.0, "best", "constant", 0, api_name="/train").result(
        timeout=120
    )
    page_id = client.session_hash
    assert page_id in backend.pages and page_id in served.state_holder.session_data
    backend.closed(page_id)
    backend.pages.sweep()
    deadline = time.monotonic() + 10
    while page_id in served.state_holder.session_data and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page_id not in served.state_holder.session_data
