"""Training in worker processes: one Python process trains on about one core however many threads it has (the
interpreter lock), so a server that trains many runs at once trains them in processes of their own.

    worker = TrainingProcess()          # a spawned process: imports torch once, then waits for work
    run.start()
    while run.active:
        run.advance(0.1, worker)        # the slice runs in the worker; the run here mirrors what it did

The run in the server stays the one everything reads (pages, views, the store): at the first slice of a stretch of
training the worker gets a replica of it (spec, the trainer's whole state, the start's arguments) and trains that
replica a slice at a time. Each slice's answer carries the new loss points, the step, the phase and message, fresh
samples with the weights that drew them, and, whenever the replica scored (or ended) and at least every
``STATE_EVERY_S``, the trainer's whole state: the run here then holds exactly what the replica holds, so what the
store saves and what a view draws were evaluated there, and a run saved mid-training resumes from at most a few
seconds back. A server that stops asks for every replica's state at once (``state``). A replica ends with its
run's stretch of training (done, stopped, abandoned); Continue ships a new one.

Messages go over a socket pair (framed by ``multiprocessing.connection``) as JSON and safetensors
(``dgm_core.wire``): no pickle, even between the server's own processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import torch
from torch import Tensor

from dgm_core.loss_curve import LossCurve
from dgm_core.memory import freeze_startup_objects, release_memory, trim_memory
from dgm_core.wire import decode, encode


@dataclass
class Shipment:
    """What a worker needs to build a replica of a run and start it where the run stands."""

    spec: dict  # RunSpec.to_json()
    device: str
    n_samples: int
    schedule: dict  # the run's TrainConfig overrides
    state: tuple[dict[str, Tensor], dict]  # Trainer.state()
    steps: int | None  # Run.start's arguments
    max_seconds: float | None
    dataset: object | None = None  # a user's own Dataset (other processes do not have it registered)


@dataclass
class SliceReport:
    """What one slice in the worker changed (``Run.advance`` there), for the run in the server to mirror."""

    steps: int
    scores: bool
    samples_changed: bool
    done: bool
    phase: str
    message: str
    step: int
    elapsed_s: float
    steps_per_s: float
    losses: tuple[list[float], dict[str, list[float]]]  # the slice's loss points: steps, and values per term
    samples: Tensor | None = None
    weights: dict[str, Tensor] | None = field(default=None, repr=False)  # the model's, with fresh samples
    state: tuple[dict[str, Tensor], dict] | None = field(default=None, repr=False)  # Trainer.state(), now and then


NICENESS = 10  # training processes yield the cores to the server that serves the pages (clicks, streams) first
TRIM_EVERY_S = 15.0  # a training process hands freed heap pages back this often
STATE_EVERY_S = 5.0  # a slice sends the replica's whole training state at least this often (and when it scored or
# ended): the server's run, and so the store, is never more than this behind the optimizer and the random state


class WorkerError(RuntimeError):
    """The worker process failed to do what was asked (the message says why), or it is gone."""


class TrainingProcess:
    """A worker process (``python -m dgm_core.workers``: torch and the core, no web server) that trains replicas of
    runs, one slice per call; calls from several threads wait in turn. A process that died (killed, out of memory)
    is started again at the next call; the call that found it dead raises ``WorkerError``. The process ends when the
    server does (its end of the socket closes)."""

    def __init__(self, start: bool = True) -> None:
        """``start=False``: the process starts at ``start()`` or at the first call (a server serves its page first)."""
        self._lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        if start:
            self.start()

    def start(self) -> None:
        """Start the process now, if it has not started yet."""
        with self._lock:
            if self.process is None:
                self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dgm_core.workers", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env={**os.environ, "PYTHONPATH": path},
        )
        theirs.close()
        self._connection = Connection(ours.detach())

    def call(self, command: str, key: int, *args: object) -> object:
        with self._lock:
            if self.process is None or self.process.poll() is not None:  # not started yet, or died since the last
                died = self.process is not None  # call (and its replicas with it)
                if died:
                    self._connection.close()
                self._start()
                if command == "drop":
                    return None
                if died and command != "start":
                    raise WorkerError("the training process stopped unexpectedly; it was started again")
            try:
                _send(self._connection, (command, key, *args))
                reply = _receive(self._connection)
            except (EOFError, OSError) as error:
                self.process.kill()
                raise WorkerError(f"the training process stopped unexpectedly ({type(error).__name__})") from error
        outcome, value = reply
        if outcome == "failed":
            raise WorkerError(value)
        return value

    def close(self) -> None:
        with self._lock:
            if self.process is None:
                return
            self._connection.close()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:  # still importing torch, or deep in a step: it has to go now
                self.process.kill()
                self.process.wait()


# --- inside the worker process -------------------------------------------------------------------------------------


def _serve(connection: Connection) -> None:
    """The worker's loop: build, advance and drop replicas as the server asks, until its end of the pipe closes."""
    torch.set_num_threads(1)
    os.nice(NICENESS)
    import dgm_core.runs  # noqa: F401 (the models and data: imported now, not at the first run's first slice)

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo (≈ 2 s)
    import sklearn.datasets  # noqa: F401 (the 2D sets' and the digits' source, ≈ 1 s: not in a class's first slices)

    freeze_startup_objects()

    replicas: dict[int, object] = {}
    trimmed = time.monotonic()
    while True:
        try:
            command, key, *args = _receive(connection)
        except (EOFError, OSError):
            return
        try:
            reply = ("done", COMMANDS[command](replicas, key, *args))
        except Exception as error:  # the server's run says why; the worker keeps serving the others
            reply = ("failed", f"{type(error).__name__}: {error}")
        _send(connection, reply)
        if time.monotonic() - trimmed >= TRIM_EVERY_S:  # slices free what they built: hand it back (see memory)
            trim_memory()
            trimmed = time.monotonic()


@dataclass
class _Replica:
    run: object  # dgm_core.runs.Run (imported in the worker only)
    state_sent_at: float = field(default_factory=time.monotonic)


def _start(replicas: dict, key: int, shipment: Shipment) -> None:
    from dgm_core.data import USER_SETS
    from dgm_core.runs import Run, RunSpec

    if shipment.dataset is not None:
        USER_SETS[shipment.spec["dataset"]] = shipment.dataset
    spec = RunSpec.from_json(shipment.spec)
    replica = Run(spec, torch.device(shipment.device), shipment.n_samples, cost_checked=True, **shipment.schedule)
    replica.trainer.restore(*shipment.state)
    replica.start(shipment.steps, shipment.max_seconds)
    replicas[key] = _Replica(replica)


def _advance(replicas: dict, key: int, budget_s: float, stop: bool) -> SliceReport:
    held = replicas[key]
    replica = held.run
    if stop:
        replica.stop()
    replica.losses = LossCurve()  # the curve lives in the server: a slice reports only its own points
    progress = replica.advance(budget_s)
    report = SliceReport(
        progress.steps,
        progress.scores,
        progress.samples,
        progress.done,
        replica.phase,
        replica.message,
        replica.step,
        replica.elapsed_s,
        replica.steps_per_s,
        (list(replica.losses.steps), {k: list(v) for k, v in replica.losses.terms.items()}),
    )
    if progress.samples or progress.done:
        report.samples, report.weights = replica.samples, replica.model.state_dict()
    if progress.scores or progress.done or time.monotonic() - held.state_sent_at >= STATE_EVERY_S:
        report.state, held.state_sent_at = replica.trainer.state(), time.monotonic()
    if progress.done:
        _drop(replicas, key)
    return report


def _state(replicas: dict, key: int) -> tuple[dict[str, Tensor], dict]:
    """The replica's whole training state now (a server that stops saves it)."""
    return replicas[key].run.trainer.state()


def _drop(replicas: dict, key: int) -> None:
    replicas.pop(key, None)
    if not replicas:  # the last run here ended: its memory goes back to the system
        release_memory()


def _send(connection: Connection, message: object) -> None:
    connection.send_bytes(encode(message))


def _receive(connection: Connection) -> object:
    from dgm_core.data import Dataset, DataSpec

    kinds = {kind.__name__: kind for kind in (Shipment, SliceReport, Dataset, DataSpec)}
    return decode(connection.recv_bytes(), kinds)


COMMANDS = {"start": _start, "advance": _advance, "state": _state, "drop": _drop}


if __name__ == "__main__":
    from dgm_core import workers  # under its own name: one module, one set of message kinds

    workers._serve(Connection(int(sys.argv[1])))
