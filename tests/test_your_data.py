"""Your own data on the Train tab, through its handlers: an upload or a drawing becomes this browser's data set and
is chosen; a bad file changes nothing; the uploaded files are deleted; no other browser can see or train on it."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch

from app.page.session import Backend, Session
from app.tabs import train as train_tab
from app.tabs.your_data import add_drawing, add_files
from dgm_core.data import USER_SETS
from dgm_core.runs.store import RunStore
from dgm_core.serve.scheduler import Scheduler

ALICE, BOB = "a" * 32, "b" * 32


@pytest.fixture()
def shared(tmp_path) -> Backend:
    yield Backend(torch.device("cpu"), Scheduler(1), RunStore(tmp_path / "runs"))
    USER_SETS.clear()


def _browser(backend: Backend, token: str) -> Session:
    session = Session(backend)
    session.attach(token)
    return session


def _clusters_csv(path, n: int = 300) -> str:
    rng = np.random.default_rng(0)
    points = rng.standard_normal((n, 2)) + rng.integers(3, size=(n, 1)) * 3
    path.write_text("x,y\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in points))
    return str(path)


def test_an_uploaded_csv_becomes_this_browsers_data_set_and_is_chosen(shared, tmp_path):
    alice = _browser(shared, ALICE)
    upload = _clusters_csv(tmp_path / "Clusters.csv")
    said, picker, files = add_files(alice, [upload], 8)
    name = picker["value"]
    assert name.startswith("clusters-") and f"Added **{name}**" in said and "300 points" in said
    assert (f"{name} (yours)", name) in picker["choices"] and ("moons", "moons") in picker["choices"]
    assert files is None and not (tmp_path / "Clusters.csv").exists()  # the uploaded file is deleted
    assert name in _browser(shared, ALICE).datasets  # a reload (another page of this browser) finds it


def test_a_bad_file_gets_its_message_changes_nothing_and_is_deleted(shared, tmp_path):
    alice = _browser(shared, ALICE)
    bad = tmp_path / "three.csv"
    bad.write_text("\n".join("1,2,3" for _ in range(100)))
    said, picker, _ = add_files(alice, [str(bad)], 8)
    assert said.startswith("**Not used:**") and "3 columns" in said
    assert alice.datasets == {} and not bad.exists()
    assert picker == gr.skip()  # the picker is untouched


def test_a_drawing_becomes_points_where_the_paint_is():
    alice = _browser(Backend(torch.device("cpu"), Scheduler(1)), ALICE)
    canvas = np.full((400, 400, 4), 255, np.uint8)
    canvas[..., 3] = 0
    canvas[50:100, 200:400] = (0, 0, 0, 255)  # a bar in the top right quarter
    said, picker = add_drawing(alice, {"composite": canvas, "layers": [], "background": None}, 2000)
    points = USER_SETS[picker["value"]].train.numpy()
    assert "2,000 drawn points" in said and len(points) == 1400
    assert points[:, 0].min() >= 0 and points[:, 1].min() >= 2.0 and points[:, 1].max() <= 3.0
    empty = np.full((400, 400, 4), 255, np.uint8)
    assert "Nothing is drawn yet" in add_drawing(alice, {"composite": empty}, 2000)[0]
    USER_SETS.clear()


def test_another_browser_can_neither_see_nor_train_on_it(shared, tmp_path):
    alice, bob = _browser(shared, ALICE), _browser(shared, BOB)
    name = add_files(alice, [_clusters_csv(tmp_path / "mine.csv")], 8)[1]["value"]
    assert name not in [value for _, value in bob.dataset_choices()] and not bob.can_use(name)
    (refused,) = train_tab.start_training(bob, name, "RealNVP", 10, 1e-3, 64, 16, 0, None, "best")
    assert "Choose a data set from the list" in refused and bob.views == {}


def test_an_upload_swept_before_use_asks_for_the_file_again_and_changes_nothing(shared, tmp_path):
    alice = _browser(shared, ALICE)
    said, picker, _ = add_files(alice, [str(tmp_path / "swept.csv")], 8)
    assert said.startswith("**Not used:**") and "Choose the file again" in said
    assert alice.datasets == {} and picker == gr.skip()
