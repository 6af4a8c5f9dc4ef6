"""Many runs, few cores: a worker per core gives every active run a short time slice in turn (round robin).

    scheduler = Scheduler(workers=2, processes=True)
    scheduler.submit(run)            # any object with ``active`` and ``advance(budget_s)``: a Run, a Comparison
    ...                              # the run trains in slices between everyone else's; pages only read its state

Each active job gets the same share of the workers' time, so with twenty students on one server everyone sees
progress within a second or two and nobody's long run can hold a slot while others wait; a new job's first slice
comes before everyone's next one. A job that ends (or is stopped: it finishes its stop in its next slice) leaves the
rotation. Beyond ``max_active`` jobs, new ones wait in
line and ``position`` says where.

One Python process trains on about one core however many threads it has (the interpreter lock): with ``processes``,
each worker thread drives a training process of its own (``training_process``) and the slices run there, so a server
trains on all its cores while its own process serves pages. A job keeps the worker that gave it its first slice
until it leaves the rotation (its replica lives in that worker's process); a new job goes to the worker with the
fewest jobs, so the jobs spread over the workers.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Protocol

import torch

from dgm_core.serve.training_process import TrainingProcess

FIRST_SLICE_S = 0.02  # a job's first slice: its first steps show at once, and the next new job's soon after


class Job(Protocol):
    @property
    def active(self) -> bool: ...

    def advance(self, budget_s: float, worker: TrainingProcess | None = None) -> object: ...


class Scheduler:
    """Round-robin time slices of ``slice_s`` seconds for every active job, on ``workers`` threads (each driving a
    training process of its own with ``processes``; with ``lazy``, those start at ``start_processes`` or at their
    first slice, so that a server can serve its page before they load torch on the same cores)."""

    def __init__(
        self,
        workers: int | None = None,
        slice_s: float = 0.1,
        max_active: int = 64,
        processes: bool = False,
        lazy: bool = False,
    ) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.slice_s = slice_s
        self.max_active = max_active
        self._turns: deque[Job] = deque()  # jobs waiting for their next slice
        self._running: set[int] = set()  # ids of jobs inside a slice right now
        self._queue: deque[Job] = deque()  # jobs beyond max_active, waiting to join
        self._homes: dict[int, int] = {}  # id(job) → the worker it keeps while in the rotation
        self._fresh: set[int] = set()  # ids of jobs that have not had a slice yet
        self._ready = threading.Condition()
        self._paused = False
        self.processes = [TrainingProcess(start=not lazy) for _ in range(self.workers)] if processes else []
        self._threads = [
            threading.Thread(target=self._work, args=(i,), daemon=True, name=f"trainer-{i}")
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def start_processes(self) -> None:
        """Start every training process that has not started yet."""
        for process in self.processes:
            process.start()

    def pause(self, timeout_s: float = 5.0) -> None:
        """Hand out no more slices, and wait (at most ``timeout_s``) for the slices under way to end: a server that
        stops, before it saves its runs."""
        with self._ready:
            self._paused = True
            self._ready.wait_for(lambda: not self._running, timeout=timeout_s)

    def close(self) -> None:
        """End the training processes (after ``pause``)."""
        for process in self.processes:
            process.close()

    def submit(self, job: Job) -> None:
        """Give ``job`` slices from now on (or queue it when ``max_active`` jobs are already in the rotation)."""
        with self._ready:
            if self._known(job):
                return
            if len(self._turns) + len(self._running) < self.max_active:
                self._join(job)
            else:
                self._queue.append(job)
            self._ready.notify_all()

    def _join(self, job: Job) -> None:
        """Into the rotation, on the worker with the fewest jobs; its first slice comes next."""
        loads = [0] * self.workers
        for home in self._homes.values():
            loads[home] += 1
        self._homes[id(job)] = loads.index(min(loads))
        self._fresh.add(id(job))
        self._turns.appendleft(job)

    def hurry(self, job: Job) -> None:
        """Give ``job`` its next slice before the others waiting on its worker: a Stop is answered within a slice,
        not after everyone's turn."""
        with self._ready:
            for i, waiting in enumerate(self._turns):
                if waiting is job:
                    del self._turns[i]
                    self._turns.appendleft(job)
                    self._ready.notify_all()
                    return

    def position(self, job: Job) -> int | None:
        """1 for the first job waiting to join the rotation, 2 for the next …; None when it trains or is unknown."""
        with self._ready:
            for i, queued in enumerate(self._queue):
                if queued is job:
                    return i + 1
        return None

    def _known(self, job: Job) -> bool:
        return id(job) in self._running or any(j is job for j in self._turns) or any(j is job for j in self._queue)

    def _next_for(self, worker: int) -> tuple[Job, float] | None:
        """This worker's first job waiting for a slice (taken out of the line), and its slice: a short one for a
        job's first, so that twenty new runs all show a step within a moment."""
        if self._paused:
            return None
        for i, job in enumerate(self._turns):
            if self._homes[id(job)] == worker:
                del self._turns[i]
                first = id(job) in self._fresh
                self._fresh.discard(id(job))
                return job, min(FIRST_SLICE_S, self.slice_s) if first else self.slice_s
        return None

    def _work(self, worker: int) -> None:
        torch.set_num_threads(1)
        process = self.processes[worker] if self.processes else None
        while True:
            with self._ready:
                while (turn := self._next_for(worker)) is None:
                    self._ready.wait()
                job, slice_s = turn
                self._running.add(id(job))
            try:
                if job.active:
                    job.advance(slice_s) if process is None else job.advance(slice_s, process)
            except Exception:  # a job that fails must not take a worker down with it; the job says why itself
                time.sleep(self.slice_s)
            finally:
                with self._ready:
                    self._running.discard(id(job))
                    if job.active:
                        self._turns.append(job)
                    else:
                        self._homes.pop(id(job), None)
                    while self._queue and len(self._turns) + len(self._running) < self.max_active:
                        self._join(self._queue.popleft())
                    self._ready.notify_all()
