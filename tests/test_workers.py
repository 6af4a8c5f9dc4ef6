"""Training in worker processes: a run trained a slice at a time in another process is the run trained here — the
same steps, scores, weights and curve — and the server's copy holds what the worker evaluated. A worker that dies
fails its run with a message and comes back for the next one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from dgm_core.data import USER_SETS
from dgm_core.data import user as user_data
from dgm_core.data.upload import points_from_drawing
from dgm_core.runs.run import Run
from dgm_core.runs.slices import Shipment, SliceReport
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import Scheduler
from dgm_core.serve.training_process import TrainingProcess
from dgm_core.serve.wire import decode, encode

torch.set_num_threads(1)
DETERMINISTIC = {"eval_every_steps": 40, "sample_every_s": None}


@pytest.fixture(scope="module")
def worker():
    process = TrainingProcess()
    yield process
    process.close()


def _train(run: Run, worker: TrainingProcess | None = None, steps: int | None = None) -> Run:
    run.start(steps)
    while run.active:
        run.advance(0.05, worker)
    return run


def _scores(run: Run) -> list[dict]:
    """Every evaluation's scores (not the time it took: that differs between any two runs)."""
    return [{k: v for k, v in s.to_json().items() if k != "elapsed_s"} for s in run.history]


def _weights(run: Run) -> list[torch.Tensor]:
    return list(run.model.state_dict().values())


@pytest.mark.parametrize("model", ["RealNVP", "GAN"])  # one optimizer; two, stepped in turn
def test_a_run_trained_in_a_worker_equals_the_same_run_trained_here(worker, model):
    spec = RunSpec.defaults(model, "moons", steps=80)
    here, there = (_train(Run(spec, **DETERMINISTIC), w) for w in (None, worker))
    assert there.phase == here.phase == "done" and there.message == here.message
    assert _scores(there) == _scores(here)
    assert all(torch.equal(a, b) for a, b in zip(_weights(here), _weights(there), strict=True))
    assert there.losses.to_json() == here.losses.to_json() and there.step == here.step == 80
    assert there.kept.step == here.kept.step
    _train(here, None, 40), _train(there, worker, 40)  # Continue ships the run again, with its optimizer state
    assert _scores(there) == _scores(here)
    assert all(torch.equal(a, b) for a, b in zip(_weights(here), _weights(there), strict=True))


def test_stop_in_a_worker_ends_the_run_here_at_once_with_weights_it_evaluated(worker):
    run = Run(RunSpec.defaults("RealNVP", "moons", steps=1_000_000))
    run.start()
    while not run.history:
        run.advance(0.05, worker)
    run.stop()  # no slice needed: the server's run holds the evaluated weights and their scores
    assert run.phase == "stopped" and not run.active
    assert run.kept is not None and run.kept.step in [scores.step for scores in run.history]
    assert f"Stopped at step {run.step}. Kept the weights of step {run.kept.step}" in run.message
    assert run.samples is not None and len(run.samples) == run.data.spec.display_samples
    assert all(torch.equal(a, b) for a, b in zip(_weights(run), run.kept.state.values(), strict=True))


def test_stop_does_not_wait_for_the_workers_slice_and_that_slice_changes_nothing(worker):
    run = Run(RunSpec.defaults("RealNVP", "moons", steps=1_000_000))
    run.start()
    while not run.history:
        run.advance(0.05, worker)
    long_slice = threading.Thread(target=run.advance, args=(3.0, worker))
    long_slice.start()
    time.sleep(0.5)
    run.stop()
    assert long_slice.is_alive() and run.phase == "stopped"  # answered while the worker still trains
    step, message = run.step, run.message
    long_slice.join()
    assert (run.phase, run.step, run.message) == ("stopped", step, message)  # the slice's report was void


def test_stop_before_anything_was_evaluated_scores_the_weights_in_the_workers_next_slices(worker):
    run = Run(RunSpec.defaults("RealNVP", "moons", steps=1_000_000), **DETERMINISTIC)
    run.start()
    while run.step < 30:
        run.advance(0.05, worker)
    run.stop()
    assert run.phase == "stopping"
    stopped_at = run.step
    for _ in range(20):  # the replica scores its weights (an evaluation may take a few 0.05-s slices) and stops
        run.advance(0.05, worker)
        if run.phase != "stopping":
            break
    assert run.phase == "stopped" and run.kept is not None and run.kept.step == run.step == stopped_at


def test_a_run_on_your_own_data_trains_in_a_worker_that_never_saw_that_data(worker):
    rng = np.random.default_rng(0)
    data = points_from_drawing(rng.standard_normal((300, 2)) * [2.0, 0.5])
    name = user_data.name_for(data, "ellipse.csv")
    user_data.register(data, name)
    try:
        run = _train(Run(RunSpec.defaults("RealNVP", name, steps=60)), worker)
    finally:
        USER_SETS.pop(name, None)
    assert run.phase == "done" and run.step == 60 and run.history


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_run_with_a_message_and_starts_again_for_the_next():
    worker = TrainingProcess()
    try:
        run = Run(RunSpec.defaults("RealNVP", "moons", steps=1_000_000))
        run.start()
        run.advance(0.05, worker)
        worker.process.kill()
        worker.process.wait()
        run.advance(0.05, worker)
        assert run.phase == "failed" and "training process stopped" in run.message
        assert run.kept is None or run.kept.step <= run.step  # what it holds was evaluated
        assert _train(Run(RunSpec.defaults("RealNVP", "moons", steps=20)), worker).phase == "done"
    finally:
        worker.close()


@pytest.mark.slow
def test_the_scheduler_trains_runs_in_its_processes_each_on_one_worker_spread_evenly():
    scheduler = Scheduler(workers=2, slice_s=0.05, processes=True)
    where: dict[int, set[str]] = {}
    advance = Run.advance

    def recording(run: Run, budget_s: float, worker: TrainingProcess | None = None):
        assert worker is not None  # the slice runs in a worker process
        where.setdefault(run.id, set()).add(threading.current_thread().name)
        return advance(run, budget_s, worker)

    runs = [Run(RunSpec.defaults("RealNVP", "moons", steps=60)) for _ in range(4)]
    for i, run in enumerate(runs):
        run.id = i
        run.advance = recording.__get__(run)
        run.start()
        scheduler.submit(run)
    deadline = time.monotonic() + 120
    while any(run.active for run in runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [run.phase for run in runs] == ["done"] * 4 and all(run.step == 60 for run in runs)
    assert all(len(threads) == 1 for threads in where.values())  # a run keeps its worker
    assert sorted(sum((list(t) for t in where.values()), [])) == ["trainer-0"] * 2 + ["trainer-1"] * 2
    for process in scheduler.processes:
        process.close()


def test_messages_travel_as_json_and_safetensors_and_come_back_whole():
    run = Run(RunSpec.defaults("RealNVP", "moons", steps=10))
    report = SliceReport(
        3, True, False, False, "training", "", 3, 0.1, 30.0, ([1.0, 2.0], {"loss": [2.5, float("nan")]})
    )
    report.state = run.trainer.state()
    back = decode(encode(report), {"SliceReport": SliceReport})
    assert (back.step, back.phase, back.losses[0]) == (3, "training", [1.0, 2.0]) and np.isnan(
        back.losses[1]["loss"][1]
    )
    tensors, meta = back.state
    assert meta == report.state[1]
    assert all(torch.equal(tensors[name], value) for name, value in report.state[0].items())
    with pytest.raises(TypeError, match="unknown kind"):  # only the kinds the reader names are built
        decode(encode(report), {"Shipment": Shipment})
    with pytest.raises(TypeError, match="cannot carry"):
        encode({"a function": print})


@pytest.mark.slow
def test_a_lazy_scheduler_starts_its_processes_when_asked_or_at_the_first_slice() -> None:
    """A server serves its page first: its training processes load torch only after that (or when a run needs one)."""
    scheduler = Scheduler(2, processes=True, lazy=True)
    assert all(process.process is None for process in scheduler.processes)
    run = Run(RunSpec.defaults("MADE", "moons", steps=5), **DETERMINISTIC)
    run.start()
    scheduler.submit(run)
    deadline = time.monotonic() + 120
    while run.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.phase == "done" and run.step == 5
    scheduler.start_processes()
    assert all(process.process is not None for process in scheduler.processes)
    for process in scheduler.processes:
        process.close()


def test_a_run_in_a_worker_hands_over_its_whole_current_state_when_asked(worker) -> None:
    """Between evaluations the server's run mirrors steps, not the optimizer: ``checkpoint`` fetches all of it (a
    server that stops saves that)."""
    run = Run(RunSpec.defaults("RealNVP", "moons", steps=10_000, hidden=16), **DETERMINISTIC)
    run.start()
    while run.step < 15:
        run.advance(0.02, worker)
    run.checkpoint()
    moments = run.trainer.optimizers[0].state_dict()["state"]
    assert moments and all(int(moment["step"]) == run.step for moment in moments.values())
    run.abandon()


def test_a_status_line_waiting_for_news_wakes_when_the_run_changes(worker) -> None:
    """``wait_for_change`` returns as soon as a slice brings steps (and at once when asked about an old version)."""
    run = Run(RunSpec.defaults("MADE", "moons", steps=50), **DETERMINISTIC)
    run.start()
    seen = run.version
    waiter: list[int] = []
    thread = threading.Thread(target=lambda: waiter.append(run.wait_for_change(seen, timeout_s=60)))
    thread.start()
    run.advance(0.05, worker)
    thread.join(timeout=30)
    assert waiter and waiter[0] > seen and run.step > 0
    assert run.wait_for_change(seen, timeout_s=60) == run.version  # already changed: no wait
    run.abandon()
