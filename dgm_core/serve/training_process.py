"""Training in worker processes: one Python process trains on about one core however many threads it has (the
interpreter lock), so a server that trains many runs at once trains them in processes of their own.

    worker = TrainingProcess()          # a spawned process (``worker_loop``): imports torch once, then waits
    run.start()
    while run.active:
        run.advance(0.1, worker)        # the slice runs in the worker; the run here takes over what it did

The run in the server stays the one everything reads (pages, views, the store): at the first slice of a stretch of
training the worker gets a replica of it (spec, the trainer's whole state, the start's arguments) and trains that
replica a slice at a time. Each slice's answer carries the new loss points, the step, the phase and message, fresh
samples with the weights that drew them, and, whenever the replica scored (or ended) and at least every
``STATE_EVERY_S``, the trainer's whole state: the run here then holds exactly what the replica holds, so what the
store saves and what a view draws were evaluated there, and a run saved mid-training resumes from at most a few
seconds back. A server that stops asks for every replica's state at once (``state``). A replica ends with its
run's stretch of training (done, stopped, abandoned); Continue ships a new one.

Messages go over a socket pair (framed by ``multiprocessing.connection``) as JSON and safetensors
(``dgm_core.serve.wire``): no pickle, even between the server's own processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from dgm_core.data import Dataset, DataSpec
from dgm_core.runs.slices import Shipment, SliceReport, WorkerError
from dgm_core.serve.wire import decode, encode

MESSAGE_KINDS = {kind.__name__: kind for kind in (Shipment, SliceReport, Dataset, DataSpec)}


class TrainingProcess:
    """A worker process (``python -m dgm_core.serve.worker_loop``: torch and the core, no web) that trains replicas of
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
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dgm_core.serve.worker_loop", str(theirs.fileno())],
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
                send(self._connection, (command, key, *args))
                reply = receive(self._connection)
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


def send(connection: Connection, message: object) -> None:
    connection.send_bytes(encode(message))


def receive(connection: Connection) -> object:
    return decode(connection.recv_bytes(), MESSAGE_KINDS)
