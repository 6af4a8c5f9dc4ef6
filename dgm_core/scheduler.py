"""Many runs, few cores: a worker per core gives every active run a short time slice in turn (round robin).

    scheduler = Scheduler(workers=2)
    scheduler.submit(run)            # any object with ``active`` and ``advance(budget_s)``: a Run, a Comparison
    ...                              # the run trains in slices between everyone else's; pages only read its state

Each active job gets the same share of the workers' time, so with twenty students on one server everyone sees
progress within a second or two and nobody's long run can hold a slot while others wait; a new job's first slice
comes before everyone's next one. A job that ends (or is stopped: it finishes its stop in its next slice) leaves the
rotation. Beyond ``max_active`` jobs, new ones wait in
line and ``position`` says where.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Protocol

import torch


class Job(Protocol):
    @property
    def active(self) -> bool: ...

    def advance(self, budget_s: float) -> object: ...


class Scheduler:
    """Round-robin time slices of ``slice_s`` seconds for every active job, on ``workers`` threads."""

    def __init__(self, workers: int | None = None, slice_s: float = 0.1, max_active: int = 64) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.slice_s = slice_s
        self.max_active = max_active
        self._turns: deque[Job] = deque()  # jobs waiting for their next slice
        self._running: set[int] = set()  # ids of jobs inside a slice right now
        self._queue: deque[Job] = deque()  # jobs beyond max_active, waiting to join
        self._ready = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"trainer-{i}") for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        """Give ``job`` slices from now on (or queue it when ``max_active`` jobs are already in the rotation)."""
        with self._ready:
            if self._known(job):
                return
            if len(self._turns) + len(self._running) < self.max_active:
                self._turns.appendleft(job)  # a new job's first slice comes next: its first steps show at once
            else:
                self._queue.append(job)
            self._ready.notify()

    def position(self, job: Job) -> int | None:
        """1 for the first job waiting to join the rotation, 2 for the next …; None when it trains or is unknown."""
        with self._ready:
            for i, queued in enumerate(self._queue):
                if queued is job:
                    return i + 1
        return None

    def active_jobs(self) -> int:
        with self._ready:
            return len(self._turns) + len(self._running)

    def _known(self, job: Job) -> bool:
        return id(job) in self._running or any(j is job for j in self._turns) or any(j is job for j in self._queue)

    def _work(self) -> None:
        torch.set_num_threads(1)
        while True:
            with self._ready:
                while not self._turns:
                    self._ready.wait()
                job = self._turns.popleft()
                self._running.add(id(job))
            try:
                if job.active:
                    job.advance(self.slice_s)
            except Exception:  # a job that fails must not take a worker down with it; the job says why itself
                time.sleep(self.slice_s)
            finally:
                with self._ready:
                    self._running.discard(id(job))
                    if job.active:
                        self._turns.append(job)
                    while self._queue and len(self._turns) + len(self._running) < self.max_active:
                        self._turns.append(self._queue.popleft())
                    self._ready.notify()


_shared: Scheduler | None = None
_shared_lock = threading.Lock()


def shared_scheduler(workers: int | None = None) -> Scheduler:
    """The process's scheduler, started on first use (``workers`` applies then)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Scheduler(workers)
        return _shared
