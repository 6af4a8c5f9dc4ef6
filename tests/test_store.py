"""The run store: runs survive a reload and a restart, per browser, within a size cap; and the scheduler that trains
every active run in turn gives each a fair share."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from dgm_core.runs import store as store_module
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import RunStore
from dgm_core.serve.scheduler import Scheduler

torch.set_num_threads(1)

ALICE, BOB = "a" * 32, "b" * 32
DETERMINISTIC = {"eval_every_s": None, "eval_every_steps": 5, "sample_every_s": None}


def _run(steps: int = 10, **spec) -> Run:
    return Run(RunSpec.defaults("RealNVP", "moons", hidden=16, batch_size=64, steps=steps, **spec), **DETERMINISTIC)


def _finish(run: Run) -> Run:
    run.start()
    while run.active:
        run.advance(1.0)
    return run


# --- the store ------------------------------------------------------------------------------------------------------


def test_a_run_comes_back_after_a_restart_with_its_weights_scores_and_curves(tmp_path):
    store = RunStore(tmp_path)
    run = store.add(ALICE, _run())
    _finish(run)  # saved as it keeps weights and when it ends
    (back,) = RunStore(tmp_path).runs(ALICE)  # a new store on the same folder: the server restarted
    assert back.id == run.id == 1 and back.phase == "done" and back.step == run.step
    assert back.history == run.history and back.losses.steps == run.losses.steps
    weights, expected = back.model.state_dict(), run.model.state_dict()
    assert all(torch.equal(weights[key], expected[key]) for key in expected)


def test_a_run_training_when_the_server_died_shows_its_kept_weights_and_resumes_where_it_was_saved(tmp_path):
    store = RunStore(tmp_path)
    run = store.add(ALICE, _run(steps=1000))
    run.start()
    while run.step < 12:
        run.advance(1e-4)  # about one event at a time: stops at step 12, after the evaluation at step 10
    store.save(ALICE, run)  # the last save before the crash: the run was training
    saved_at, current, kept_step = run.step, run.model.state_dict(), run.kept.step
    assert kept_step < saved_at  # weights after the last evaluation: a restart must not lose them
    (back,) = RunStore(tmp_path).runs(ALICE)
    assert back.phase == "interrupted" and "Interrupted at step" in back.message and back.kept.step == kept_step
    kept = back.kept.state
    assert all(torch.equal(back.model.state_dict()[key], kept[key]) for key in kept)  # views show evaluated weights
    back.start(5)  # Continue: from the saved training state, not from the kept weights
    assert back.step == saved_at
    assert all(torch.equal(back.model.state_dict()[key], current[key]) for key in current)
    while back.active:
        back.advance(1.0)
    assert back.phase == "done" and back.step == saved_at + 5


def test_an_interrupted_run_saved_again_keeps_its_training_state(tmp_path):
    """A restored run that is let go (and so saved) before anyone continues it still resumes where it was."""
    store = RunStore(tmp_path)
    run = store.add(ALICE, _run(steps=1000))
    run.start()
    while run.step < 12:
        run.advance(1e-4)
    store.save(ALICE, run)
    current, kept_step = run.model.state_dict(), run.kept.step
    assert kept_step < run.step
    (back,) = RunStore(tmp_path).runs(ALICE)
    RunStore(tmp_path).save(ALICE, back)
    (again,) = RunStore(tmp_path).runs(ALICE)
    again.start(5)
    assert all(torch.equal(again.model.state_dict()[key], current[key]) for key in current)


def test_browsers_never_see_each_others_runs(tmp_path):
    store = RunStore(tmp_path)
    store.add(ALICE, _finish(_run()))
    store.add(BOB, _finish(_run(seed=1)))
    store.add(BOB, _finish(_run(seed=2)))
    assert [r.id for r in store.runs(ALICE)] == [1] and [r.id for r in store.runs(BOB)] == [1, 2]
    assert [r.spec.seed for r in RunStore(tmp_path).runs(BOB)] == [1, 2]


@pytest.mark.parametrize("token", ["../../etc", "A" * 32, "a" * 31, "", "a" * 32 + "\n"])
def test_a_token_that_is_not_32_hex_digits_is_refused(tmp_path, token):
    with pytest.raises(ValueError, match="32 hexadecimal digits"):
        RunStore(tmp_path).runs(token)


def test_past_the_size_cap_runs_stay_in_memory_and_the_store_says_why(tmp_path):
    store = RunStore(tmp_path, max_bytes_per_browser=1)
    first = store.add(ALICE, _finish(_run()))
    second = store.add(ALICE, _finish(_run(seed=1)))
    assert (tmp_path / ALICE / f"run-{first.id}.dgm.zip").exists()
    assert not (tmp_path / ALICE / f"run-{second.id}.dgm.zip").exists()
    assert "delete old runs or data sets in the Runs tab" in second.unsaved and not first.unsaved
    assert [r.id for r in store.runs(ALICE)] == [1, 2]


def test_deleting_a_run_removes_its_file(tmp_path):
    store = RunStore(tmp_path)
    run = store.add(ALICE, _finish(_run()))
    store.delete(ALICE, run.id)
    assert store.runs(ALICE) == [] and not list((tmp_path / ALICE).glob("*.dgm.zip"))


def test_a_browser_whose_pages_all_closed_is_let_go(tmp_path):
    """Its training runs stop (keeping their weights) and leave memory; a reload in time keeps them."""
    store = RunStore(tmp_path)
    store.attach(ALICE)
    run = store.add(ALICE, _run(steps=1000))
    run.start()
    run.advance(0.05)
    store.detach(ALICE)
    store.attach(ALICE)  # a reload: a new page attaches before the old one is let go
    assert store.let_go(older_than_s=0.0) == [] and run.active
    store.detach(ALICE)
    assert store.let_go(older_than_s=0.0) == [ALICE]
    assert run.phase == "stopped" and ALICE not in store._live
    (back,) = store.runs(ALICE)
    assert back is not run and back.step == run.step


def test_a_browser_that_stays_holds_only_its_newest_runs_in_memory_and_every_one_that_trains(tmp_path, monkeypatch):
    """Memory is bounded by the browsers served, not by how long they stay: older runs wait on disk."""
    monkeypatch.setattr(store_module, "KEEP_IN_MEMORY", 3)
    store = RunStore(tmp_path)
    training = store.add(ALICE, _run(steps=1000))
    training.start()
    runs = [store.add(ALICE, _run(seed=seed)) for seed in range(5)]
    assert sorted(store._live[ALICE]) == [training.id, *[run.id for run in runs[-3:]]]
    assert len(list((tmp_path / ALICE).glob("run-*.dgm.zip"))) == 6  # every one is saved
    training.abandon()
    store.add(ALICE, _run(seed=9))
    assert training.id not in store._live[ALICE]  # it stopped: it may leave memory now
    shown = runs[0]  # a page still shows it and trains it again: it comes back, saved as it goes
    shown.start(steps=10)
    while shown.active:
        shown.advance(1.0)
    assert store._live[ALICE][shown.id] is shown


def test_a_reload_loads_only_the_newest_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "KEEP_IN_MEMORY", 2)
    for seed in range(4):
        RunStore(tmp_path).add(ALICE, _run(seed=seed))
    assert [run.id for run in RunStore(tmp_path).runs(ALICE)] == [3, 4]


def test_a_browser_reading_its_runs_back_holds_up_no_other_browser(tmp_path, monkeypatch):
    """After a restart every browser reloads its runs at once: while one reads its files, another's Train (a new
    run added to the store) goes ahead."""
    RunStore(tmp_path).add(ALICE, _run())
    store, reading, bob_added, alice_waited_for_bob = RunStore(tmp_path), threading.Event(), threading.Event(), []
    load = Run.load

    def slow_load(*args, **kwargs) -> Run:  # Alice's file is read until Bob's run is in (30 s at most)
        reading.set()
        alice_waited_for_bob.append(bob_added.wait(timeout=30))
        return load(*args, **kwargs)

    monkeypatch.setattr(Run, "load", staticmethod(slow_load))
    alice = threading.Thread(target=store.runs, args=(ALICE,))
    alice.start()
    reading.wait()
    store.add(BOB, _run())
    bob_added.set()
    alice.join()
    assert alice_waited_for_bob == [True] and [run.id for run in store.runs(ALICE)] == [1]


# --- the scheduler --------------------------------------------------------------------------------------------------


class _Busy:
    """A job that burns its slices and counts the time it got."""

    def __init__(self, seconds: float) -> None:
        self.left, self.got, self.lock = seconds, 0.0, threading.Lock()

    @property
    def active(self) -> bool:
        return self.left > 0

    def advance(self, budget_s: float) -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < budget_s:
            pass
        spent = time.perf_counter() - start
        self.got += spent
        self.left -= spent


def test_every_active_job_gets_a_fair_share_of_the_workers():
    scheduler = Scheduler(workers=2, slice_s=0.02)
    jobs = [_Busy(60.0) for _ in range(6)]
    for job in jobs:
        scheduler.submit(job)
    time.sleep(1.5)
    for job in jobs:
        job.left = 0  # end them
    shares = [job.got for job in jobs]
    fair = sum(shares) / len(shares)
    assert min(shares) >= 0.5 * fair, shares


def test_jobs_beyond_the_limit_wait_in_line_and_say_where():
    scheduler = Scheduler(workers=1, slice_s=0.01, max_active=2)
    running, waiting = [_Busy(60.0), _Busy(60.0)], [_Busy(0.05), _Busy(0.05)]
    for job in running + waiting:
        scheduler.submit(job)
    assert [scheduler.position(job) for job in waiting] == [1, 2]
    assert scheduler.position(running[0]) is None
    running[0].left = 0  # one ends: the first in line joins
    deadline = time.monotonic() + 5
    while waiting[0].got == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert waiting[0].got > 0 and scheduler.position(waiting[1]) == 1
    running[1].left = 0


def test_a_hurried_job_gets_the_next_slice_before_those_waiting_on_its_worker():
    """Stop hurries its run: the stop is scored in the next slice, not after everyone's turn."""
    order: list[str] = []
    hold = threading.Event()

    class _Named:
        active = True

        def __init__(self, name: str) -> None:
            self.name = name

        def advance(self, budget_s: float) -> None:
            order.append(self.name)
            if self.name == "holder":
                hold.wait(5)  # keeps the one worker busy while the others line up
            self.active = False

    scheduler = Scheduler(workers=1, slice_s=0.01)
    scheduler.submit(_Named("holder"))
    while not order:
        time.sleep(0.01)
    queued = [_Named(name) for name in ("a", "b", "stopped")]
    for job in queued:
        scheduler.submit(job)
    scheduler.hurry(queued[-1])
    hold.set()
    deadline = time.monotonic() + 5
    while any(job.active for job in queued) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order[1] == "stopped", order


def test_a_failing_job_does_not_take_its_worker_down():
    class _Broken:
        active = True

        def advance(self, budget_s: float) -> None:
            self.active = False
            raise RuntimeError("boom")

    scheduler = Scheduler(workers=1, slice_s=0.01)
    scheduler.submit(_Broken())
    healthy = _Busy(0.05)
    scheduler.submit(healthy)
    deadline = time.monotonic() + 5
    while healthy.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not healthy.active


def test_a_server_that_shuts_down_saves_every_run_where_it_is_and_ends_its_training_processes(tmp_path):
    from app.page.session import Backend

    backend = Backend(torch.device("cpu"), Scheduler(1, processes=True), RunStore(tmp_path))
    run = backend.store.add(ALICE, Run(RunSpec.defaults("RealNVP", "moons", steps=100_000, hidden=16)))
    run.start()
    backend.scheduler.submit(run)
    deadline = time.monotonic() + 120
    while run.step < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = run.step
    assert backend.shut_down() == 1
    assert all(process.process.poll() is not None for process in backend.scheduler.processes)
    (back,) = RunStore(tmp_path).runs(ALICE)
    assert back.phase == "interrupted"
    back.start(5)
    assert back.step >= seen and back.step == run.step  # where the training process was when the server stopped
