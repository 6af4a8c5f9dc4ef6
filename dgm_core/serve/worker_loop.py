"""Inside a training process (``python -m dgm_core.serve.worker_loop``, started by ``TrainingProcess``): build,
advance and drop replicas of the server's runs as it asks, one command at a time, until its end of the socket closes.

Each ``advance`` is one slice of ``Run.train_slice`` on the replica; its report carries, besides what the slice did,
the weights that drew fresh samples and, whenever the replica scored or ended and at least every ``STATE_EVERY_S``,
the trainer's whole state.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import torch
from torch import Tensor

from dgm_core.data import USER_SETS
from dgm_core.runs.run import Run
from dgm_core.runs.slices import Shipment, SliceReport
from dgm_core.serve.memory import freeze_startup_objects, release_memory, trim_memory
from dgm_core.serve.training_process import receive, send

NICENESS = 10  # training processes yield the cores to the server that serves the pages (clicks, streams) first
TRIM_EVERY_S = 15.0  # a training process hands freed heap pages back this often
STATE_EVERY_S = 5.0  # a slice sends the replica's whole training state at least this often (and when it scored or
# ended): the server's run, and so the store, is never more than this behind the optimizer and the random state


def serve(connection: Connection) -> None:
    """The loop: one command at a time, until the server's end of the socket closes."""
    torch.set_num_threads(1)
    os.nice(NICENESS)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo (≈ 2 s)
    import sklearn.datasets  # noqa: F401 (the 2D sets' and the digits' source, ≈ 1 s: not in a class's first slices)

    freeze_startup_objects()

    replicas: dict[int, _Replica] = {}
    trimmed = time.monotonic()
    while True:
        try:
            command, key, *args = receive(connection)
        except (EOFError, OSError):
            return
        try:
            reply = ("done", COMMANDS[command](replicas, key, *args))
        except Exception as error:  # the server's run says why; the worker keeps serving the others
            reply = ("failed", f"{type(error).__name__}: {error}")
        send(connection, reply)
        if time.monotonic() - trimmed >= TRIM_EVERY_S:  # slices free what they built: hand it back (see memory)
            trim_memory()
            trimmed = time.monotonic()


@dataclass
class _Replica:
    run: Run
    state_sent_at: float = field(default_factory=time.monotonic)


def _start(replicas: dict[int, _Replica], key: int, shipment: Shipment) -> None:
    if shipment.dataset is not None:  # a user's own data: this process registers it under its name
        USER_SETS[shipment.spec["dataset"]] = shipment.dataset
    replicas[key] = _Replica(Run.replica(shipment))


def _advance(replicas: dict[int, _Replica], key: int, budget_s: float, stop: bool) -> SliceReport:
    held = replicas[key]
    report = held.run.train_slice(budget_s, stop)
    if report.samples_changed or report.done:
        report.weights = held.run.model.state_dict()
    if report.scores or report.done or time.monotonic() - held.state_sent_at >= STATE_EVERY_S:
        report.state, held.state_sent_at = held.run.training_state(), time.monotonic()
    if report.done:
        _drop(replicas, key)
    return report


def _state(replicas: dict[int, _Replica], key: int) -> tuple[dict[str, Tensor], dict]:
    """The replica's whole training state now (a server that stops saves it)."""
    return replicas[key].run.training_state()


def _drop(replicas: dict[int, _Replica], key: int) -> None:
    replicas.pop(key, None)
    if not replicas:  # the last run here ended: its memory goes back to the system
        release_memory()


COMMANDS = {"start": _start, "advance": _advance, "state": _state, "drop": _drop}


if __name__ == "__main__":
    from dgm_core.serve import worker_loop  # under its own name: one module, one set of commands

    worker_loop.serve(Connection(int(sys.argv[1])))
