"""A store that tells: whatever cannot be saved (a browser past its cap, a full store) says so at once on the page —
the status line, the Runs tab, the message after adding data — with what to delete; the Runs tab shows the space
used against the cap and deletes a browser's own data sets."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch

from app.page import views
from app.page.session import Backend, Session
from app.tabs import runs as runs_tab
from app.tabs.your_data import add_files
from dgm_core.data import USER_SETS
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import RunStore
from dgm_core.serve.scheduler import Scheduler

ALICE = "a" * 32


RUNS_TAB = runs_tab.RunsView(*(field.name for field in fields(runs_tab.RunsView)))  # its outputs, by name


def _page(store: RunStore) -> Session:
    session = Session(Backend(torch.device("cpu"), Scheduler(1), store))
    session.attach(ALICE)
    return session


def _csv(path) -> str:
    points = np.random.default_rng(0).standard_normal((300, 2))
    path.write_text("x,y\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in points))
    return str(path)


@pytest.fixture(autouse=True)
def _forget_user_sets():
    yield
    USER_SETS.clear()


def _trained_run() -> Run:
    run = Run(RunSpec.defaults("RealNVP", "moons", hidden=16, steps=5))
    run.start()
    while run.active:
        run.advance(1.0)
    return run


def test_a_run_past_the_cap_says_so_in_its_status_line_and_in_the_runs_tab(tmp_path):
    page = _page(RunStore(tmp_path, max_bytes_per_browser=1))
    page.keep(_trained_run())  # the first file fits (the folder was empty); the second passes the cap
    view = page.keep(_trained_run())
    status = views.status_markdown(view)
    assert "Not saved" in status and "delete old runs or data sets in the Runs tab" in status
    shown = runs_tab.refresh(RUNS_TAB, page, None)
    assert [row[-1] for row in shown["table"]] == ["NOT SAVED", "yes"]
    space = shown["space"]
    assert "1 run is not saved" in space and "MB of 0 MB" in space


def test_a_run_saved_again_once_there_is_room_no_longer_says_so(tmp_path):
    store = RunStore(tmp_path, max_bytes_per_browser=1)
    page = _page(store)
    page.keep(_trained_run())
    view = page.keep(_trained_run())
    store.max_bytes_per_browser = 2**30
    store.save(ALICE, view.run)
    assert "Not saved" not in views.status_markdown(view)


def test_a_data_set_past_the_cap_is_added_for_now_and_the_message_says_it_is_not_saved(tmp_path):
    page = _page(RunStore(tmp_path, max_bytes_per_browser=1))
    page.keep(_trained_run())
    said, picker, _ = add_files(page, [_csv(tmp_path / "points.csv")], 8)
    assert said.startswith("Added") and "**Not saved** (it is gone when the server restarts)" in said
    assert picker["value"] in page.datasets
    assert not list((tmp_path / ALICE).glob("data/*.npz"))


def test_the_runs_tab_shows_the_space_used_and_deletes_own_data_sets(tmp_path):
    page = _page(RunStore(tmp_path))
    _, picker, _ = add_files(page, [_csv(tmp_path / "points.csv")], 8)
    name = picker["value"]
    shown = runs_tab.refresh(RUNS_TAB, page, None)
    assert "Saved on the server for this browser: 0.0 MB of 500 MB" in shown["space"]
    assert shown["own_data"]["choices"] == [name]
    said = runs_tab.delete_data(RUNS_TAB, page, name, None)["message"]
    assert "Deleted your data set" in said and name not in page.datasets
    assert not list((tmp_path / ALICE).glob("data/*.npz")) and name not in _page(RunStore(tmp_path)).datasets
