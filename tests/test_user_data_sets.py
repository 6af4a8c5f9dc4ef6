"""A user's own data set is a data set like any other: named by its content, trained on, saved with its browser's
runs, brought back after a restart, and recorded in checkpoints so that a load without that data says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgm_core.data import USER_SETS, dataset_names, is_known, load_dataset
from dgm_core.data import user as user_data
from dgm_core.data.upload import DataError, points_from_drawing
from dgm_core.runs.checkpoints import CheckpointError
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import RunStore

torch.set_num_threads(1)
ALICE = "a" * 32


@pytest.fixture(autouse=True)
def _forget_user_sets():
    yield
    USER_SETS.clear()


def _three_clusters(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    return points_from_drawing(centres[rng.integers(3, size=n)] + 0.3 * rng.standard_normal((n, 2)))


def test_a_registered_set_is_named_by_its_content_and_loads_like_a_built_in_one():
    data = _three_clusters()
    name = user_data.name_for(data, "My Clusters!.csv")
    assert name == f"my-clusters-{data.content_hash()[:8]}" and not is_known(name)
    user_data.register(data, name)
    loaded = load_dataset(name)
    assert is_known(name) and name not in dataset_names()  # listed per browser, not for everyone
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (420, 60, 120)
    assert loaded.spec.kind == "points2d" and loaded.spec.content_hash == data.content_hash()
    assert user_data.name_for(_three_clusters(seed=1), "My Clusters!.csv") != name  # other data, another name
    with pytest.raises(DataError, match="not the name of this data"):
        user_data.register(_three_clusters(seed=1), name)


def test_a_run_trains_on_a_user_set_and_its_checkpoint_needs_that_data(tmp_path):
    data = _three_clusters()
    name = user_data.name_for(data, "clusters.csv")
    user_data.register(data, name)
    run = Run(RunSpec.defaults("RealNVP", name, hidden=16, batch_size=64, steps=20), eval_every_steps=10)
    run.start()
    while run.active:
        run.advance(1.0)
    assert run.phase == "done" and run.scores.nll["test"] < 10
    path = run.save(tmp_path / "run.dgm.zip")
    assert Run.load(path, rescore=False).spec.dataset == name
    USER_SETS.clear()  # another server, without the data
    with pytest.raises(CheckpointError, match="your own data set 'clusters-.*add that data again"):
        Run.load(path)
    other = _three_clusters(seed=3)
    user_data.USER_SETS[name] = user_data.user_dataset(other, name)  # a different set under the same name
    with pytest.raises(CheckpointError, match="trained on other data"):
        Run.load(path)


def test_a_browsers_data_sets_come_back_after_a_restart_with_their_runs(tmp_path):
    data = _three_clusters()
    name = user_data.name_for(data, "clusters.csv")
    user_data.register(data, name)
    store = RunStore(tmp_path)
    assert store.add_data(ALICE, name, data) == ""
    run = store.add(ALICE, Run(RunSpec.defaults("RealNVP", name, hidden=16, steps=5), eval_every_steps=5))
    run.start()
    while run.active:
        run.advance(1.0)
    USER_SETS.clear()  # the server restarts
    restarted = RunStore(tmp_path)
    (back,) = restarted.runs(ALICE)
    assert back.spec.dataset == name and name in restarted.datasets(ALICE)
    torch.testing.assert_close(back.data.test, run.data.test)
    assert restarted.datasets("b" * 32) == {}  # another browser has none of it


def test_a_saved_set_is_read_back_only_when_it_holds_what_its_name_says(tmp_path):
    data = _three_clusters()
    name = user_data.name_for(data, "clusters.csv")
    user_data.save(data, tmp_path / f"{name}.npz")
    assert user_data.load(tmp_path / f"{name}.npz").content_hash() == data.content_hash()
    (tmp_path / f"{name}.npz").rename(tmp_path / "clusters-00000000.npz")
    with pytest.raises(DataError, match="does not hold the data its name says"):
        user_data.load(tmp_path / "clusters-00000000.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "objects.npy").rename(tmp_path / "evil-12345678.npz")
    with pytest.raises(DataError, match="not a saved data set"):
        user_data.load(tmp_path / "evil-12345678.npz")
