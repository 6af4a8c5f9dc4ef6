"""A training run's whole life in one object: what it trains (``RunSpec``), its ``Trainer``, its phase, the weights
it keeps and why, its loss curve, and saving it to one file and loading it back.

    run = Run(RunSpec.defaults("RealNVP", "moons", steps=500))
    run.start()
    while run.active:
        run.advance(0.2)          # train for ~0.2 s (a worker calls this in turn for every active run)
    run.save("realnvp.dgm.zip")   # weights, optimizer and random state, curves: ``Run.load`` continues exactly

The UI, Compare, the command line, checkpoints, benchmarks and tests all drive runs this way; only ``Run`` touches
its trainer's internals.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from dgm_core.data import Dataset, load_dataset
from dgm_core.data.user import content_hash
from dgm_core.evaluation import Scores
from dgm_core.loss_curve import LossCurve
from dgm_core.models.base import GenerativeModel
from dgm_core.spec import RunSpec
from dgm_core.training import Snapshot, Trainer, TrainEvent
from dgm_core.workers import Shipment, SliceReport, TrainingProcess, WorkerError

Phase = Literal["ready", "training", "stopping", "done", "stopped", "diverged", "failed", "interrupted"]
ACTIVE: tuple[Phase, ...] = ("training", "stopping")
_keys = itertools.count(1)  # a run's key among the replicas of a worker process


@dataclass
class Progress:
    """What one ``Run.advance`` changed: steps taken, whether new scores or samples arrived, whether the run holds
    its whole current training state (weights, optimizers, random state: worth saving), whether it ended."""

    steps: int = 0
    scores: bool = False
    samples: bool = False
    done: bool = False
    state: bool = False


class Run:
    """One training run: its spec, data, model and trainer, and where it stands.

    ``phase``: ready → training → (stopping →) done | stopped | diverged | failed; a run found training in the store
    after a crash is "interrupted" (it holds its last saved weights). ``message`` says what happened last, in words.
    ``lock`` serialises everything that touches the model: training slices, views, saving. ``id`` numbers the run
    among its browser's runs (0 until a session or store keeps it); ``on_change(run, ended)``, when set, is called
    after a slice that brought new scores and when the run ends (the store saves it then).
    """

    def __init__(
        self,
        spec: RunSpec,
        device: torch.device | None = None,
        n_samples: int | None = None,
        cost_checked: bool = False,
        **schedule: object,
    ) -> None:
        """``schedule`` overrides the spec's training config for this process only (e.g. ``eval_every_steps`` for
        deterministic tests, ``sample_every_s=None`` for benchmarks); ``n_samples`` drawn to show (by default as
        many as its kind of data shows, ``DataSpec.display_samples``)."""
        self.spec = spec
        self.data: Dataset = load_dataset(spec.dataset)
        n_samples = self.data.spec.display_samples if n_samples is None else n_samples
        model = spec.build(cost_checked)
        self.trainer = Trainer(model, self.data, spec.config(n_samples, **schedule), device)
        self.phase: Phase = "ready"
        self.message = ""
        self.target = 0
        self.budget: tuple[float, float] | None = None  # (training time at the start, seconds) of a timed stretch
        self.losses = LossCurve()
        self.samples: Tensor | None = None  # the latest display samples (CPU)
        self.steps_per_s = 0.0
        self.lock = threading.RLock()
        self.id = 0
        self.on_change: Callable[[Run, bool], None] | None = None
        self.unsaved = ""  # why its store could not save its latest state, in words ("" when saved, or no store)
        self._events: Iterator[TrainEvent] | None = None
        self._settings = (n_samples, schedule)
        self._start_args: tuple[int | None, float | None] = (None, None)
        self._worker: TrainingProcess | None = None  # the process that trains this stretch's replica, if any
        self._key = next(_keys)
        self._resume: tuple[dict[str, Tensor], dict] | None = None  # an interrupted run's training state
        self.version = 0  # counts the changes a page may show (steps, scores, samples, phase): ``wait_for_change``
        self._changed = threading.Condition()

    # --- what it is -----------------------------------------------------------------------------------------------
    @property
    def model(self) -> GenerativeModel:
        return self.trainer.model

    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def device(self) -> torch.device:
        return self.trainer.device

    def draw(self, n: int, seed: int | None = None, label: int | None = None) -> Tensor:
        """``n`` samples from the weights the run holds now (on the CPU), from ``seed`` when given; of class
        ``label`` when the model is conditional (``capabilities.conditional``)."""
        with self.lock, torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            return self.trainer.samples(n, label)

    @property
    def elapsed_s(self) -> float:
        return self.trainer.elapsed_s

    @property
    def history(self) -> list[Scores]:
        return self.trainer.history

    @property
    def latest(self) -> Scores | None:
        return self.trainer.history[-1] if self.trainer.history else None

    @property
    def kept(self) -> Snapshot | None:
        """The evaluated weights the run holds once it ends (best on validation, or the final ones)."""
        return self.trainer.kept

    @property
    def scores(self) -> Scores | None:
        """The scores of the weights the run holds now: the kept ones when it is not training, else the latest."""
        kept = self.kept
        return kept.scores if kept is not None and self.phase not in ACTIVE else self.latest

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    # --- its life -------------------------------------------------------------------------------------------------
    def start(self, steps: int | None = None, max_seconds: float | None = None) -> None:
        """Begin training ``steps`` more steps (default: the spec's), or ``max_seconds`` of training time; an
        interrupted run resumes from the training state it was saved with."""
        with self.lock:
            if steps is not None:
                replace(self.trainer.config, steps=steps).check()
            if self._resume is not None:
                self.trainer.restore(*self._resume)
                self._resume = None
            self.target = self.step + (steps or self.spec.steps)
            self.budget = None if max_seconds is None else (self.elapsed_s, max_seconds)
            self.phase, self.message = "training", ""
            self._events = self.trainer.run(steps, max_seconds)
            self._start_args = (steps, max_seconds)

    def advance(self, budget_s: float, worker: TrainingProcess | None = None) -> Progress:
        """Train (or finish a stop) for about ``budget_s`` seconds; whoever calls it next continues the stream. With
        a ``worker`` process, the slice runs there (on a replica: ``dgm_core.workers``) and this run mirrors it; a
        stretch of training that began in one worker continues in that one."""
        if worker is not None:
            return self._advance_in(worker, budget_s)
        progress = Progress()
        with self.lock:
            if self._events is None or not self.active:
                return progress
            deadline = time.perf_counter() + budget_s
            while time.perf_counter() < deadline and not progress.done:
                try:
                    event = next(self._events, None)
                except (RuntimeError, ValueError) as error:  # e.g. out of memory: say so, keep the last good weights
                    self._end("failed", f"Training failed: {error}")
                    progress.done = True
                    break
                if event is None:
                    self._end("done", self.trainer.finish())
                    progress.done = True
                    break
                self._record(event, progress)
            progress.state = progress.steps > 0 or progress.done  # trained here: its state is the current one
        return self._changes(progress)

    def _advance_in(self, worker: TrainingProcess, budget_s: float) -> Progress:
        """One slice in ``worker``. The run's lock is not held while the worker trains, so that a Stop is answered
        here at once (``stop``); a slice whose stretch ended meanwhile is void (its replica is being dropped)."""
        with self.lock:
            if not self.active:
                return Progress()
            try:
                if self._worker is None:  # a new stretch: a new key, so that a late drop of the last one misses it
                    self._key = next(_keys)
                    worker.call("start", self._key, self._shipment())
                    self._worker = worker
                elif self._worker is not worker:
                    raise WorkerError("a run's stretch of training continues in the worker that began it")
            except WorkerError as error:
                return self._changes(self._fail(error))
            key, stopping = self._key, self.phase == "stopping"
        try:
            report: SliceReport | WorkerError = worker.call("advance", key, budget_s, stopping)
        except WorkerError as error:
            report = error
        with self.lock:
            if self._worker is not worker or self._key != key:  # ended here while the worker trained
                return Progress()
            progress = self._fail(report) if isinstance(report, WorkerError) else self._mirror(report)
        return self._changes(progress)

    def _fail(self, error: WorkerError) -> Progress:
        """The worker failed: back to the evaluated weights the run kept, if any."""
        self._worker = None
        self._end("failed", f"Training failed: {error}. {self.trainer.finish(stopped=True)}")
        return Progress(done=True)

    def _changes(self, progress: Progress) -> Progress:
        """After a slice: save when there is a state worth it (``on_change``), and wake whoever waits for news."""
        if self.on_change is not None and (progress.state or progress.done):
            self.on_change(self, progress.done)
        if progress.steps or progress.scores or progress.samples or progress.done:
            self._announce()
        return progress

    def _announce(self) -> None:
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def wait_for_change(self, seen: int, timeout_s: float) -> int:
        """Wait until the run changed since ``version`` was ``seen`` (a slice brought steps, scores, samples or an
        end; a stop was asked for), at most ``timeout_s``; returns the version now. A status line waits so instead of
        polling: its first step and a Stop show the moment they happen."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen, timeout=timeout_s)
            return self.version

    def checkpoint(self) -> None:
        """Bring the run's whole current training state here from the process that trains it (a server that stops
        saves it so); a run trained here holds it already."""
        with self.lock:
            if self._worker is not None and self.active:
                self.trainer.restore(*self._worker.call("state", self._key))

    def _shipment(self) -> Shipment:
        n_samples, schedule = self._settings
        user_data = self.data if content_hash(self.spec.dataset) is not None else None
        steps, max_seconds = self._start_args
        spec, state = self.spec.to_json(), self.training_state()
        return Shipment(spec, str(self.device), n_samples, schedule, state, steps, max_seconds, user_data)

    def _mirror(self, report: SliceReport) -> Progress:
        """Take over what a slice in the worker did: its loss points, step and phase, samples and weights, and its
        trainer's whole state whenever it scored or ended."""
        steps, terms = report.losses
        for i, step in enumerate(steps):
            self.losses.add(int(step), {name: values[i] for name, values in terms.items()})
        if report.state is not None:
            self.trainer.restore(*report.state)
        elif report.weights is not None:
            self.model.load_state_dict(report.weights)
        self.trainer.step, self.trainer.elapsed_s = report.step, report.elapsed_s
        self.steps_per_s = report.steps_per_s
        if report.samples is not None:
            self.samples = report.samples
        if report.done:
            self.phase, self.message, self._events, self._worker = report.phase, report.message, None, None
        return Progress(report.steps, report.scores, report.samples_changed, report.done, report.state is not None)

    def _record(self, event: TrainEvent, progress: Progress) -> None:
        if event.losses:
            progress.steps += 1
            self.steps_per_s = event.steps_per_s
            if all(math.isfinite(value) for value in event.losses.values()):
                self.losses.add(event.step, event.losses)
        progress.scores |= event.scores is not None
        if event.samples is not None:
            self.samples, progress.samples = event.samples, True
        if event.done:
            finite = all(math.isfinite(value) for value in event.losses.values())
            self._end("stopped" if event.stopped else "done" if finite else "diverged", event.message or "")
            progress.done = True

    def _end(self, phase: Phase, message: str) -> None:
        self.phase, self.message, self._events = phase, message, None
        self.samples = self.trainer.samples(len(self.samples) if self.samples is not None else 1000)

    def interrupt(self) -> None:
        """A run found training when its server stopped (read from its file): it shows its kept, evaluated weights,
        and keeps its whole training state aside, so that ``start`` (Continue) resumes exactly where it was."""
        with self.lock:
            tensors, meta = self.trainer.state()
            self._resume = {name: value.clone() for name, value in tensors.items()}, meta  # the model's own tensors
            kept = self.trainer.finish(stopped=True)  # … which this overwrites
            self.phase, self._events = "interrupted", None
            self.message = f"Interrupted at step {self.step} (the server stopped); Continue resumes from there. {kept}"

    def training_state(self) -> tuple[dict[str, Tensor], dict]:
        """What continuing this run depends on (``Trainer.state``): for an interrupted run, the state set aside."""
        with self.lock:
            return self._resume if self._resume is not None else self.trainer.state()

    def stop(self) -> None:
        """Ask a training run to stop, keeping the chosen evaluated weights. A run trained in a worker process whose
        weights to keep were evaluated already (``Trainer.stops_at_once``) ends here at once: this run holds those
        weights and their scores (``_mirror``), and the replica is let go. Otherwise the next ``advance`` halts it
        (phase "stopping" until then; ``dgm_core.training``)."""
        ended = False
        with self.lock:
            if self.phase == "training" and self._worker is not None and self.trainer.stops_at_once:
                self._let_replica_go()
                self._end("stopped", self.trainer.finish(stopped=True))
                ended = True
            elif self.phase == "training":
                self.trainer.request_stop()
                self.phase = "stopping"
        if ended and self.on_change is not None:
            self.on_change(self, True)
        self._announce()

    def abandon(self, phase: Phase = "stopped") -> None:
        """End at once, without scoring the current weights (nobody will advance the run again): keep the evaluated
        weights chosen so far."""
        with self.lock:
            self._let_replica_go()
            if self.active:
                self._end(phase, self.trainer.finish(stopped=True))
                if self.on_change is not None:
                    self.on_change(self, True)
        self._announce()

    def _let_replica_go(self) -> None:
        """The worker drops this stretch's replica when it is next free (its slice now, if any, is void): nobody
        waits for it."""
        if self._worker is not None:
            worker, key, self._worker = self._worker, self._key, None
            threading.Thread(target=worker.call, args=("drop", key), daemon=True).start()

    def rescore(self, known: Mapping[int, Scores] | None = None) -> dict[int, Scores]:
        """Score the kept weights again here (``Trainer.rescore``; ``known``: this process's own earlier scores of
        the same weights, by step); returns the scores now in place, by step."""
        with self.lock:
            return self.trainer.rescore(known)

    # --- saving ---------------------------------------------------------------------------------------------------
    def save(self, path: str | Path, training_state: bool = True) -> Path:
        """One ``.dgm.zip`` (``dgm_core.checkpoints``) that ``load`` turns back into this run; without the
        ``training_state`` (optimizer moments, random state, current weights) it holds only the kept weights."""
        from dgm_core.checkpoints import write_run  # checkpoints builds runs: imported late to avoid a cycle

        with self.lock:
            return write_run(self, Path(path), training_state)

    @classmethod
    def load(
        cls, path: str | Path, device: torch.device | None = None, rescore: bool = True, **schedule: object
    ) -> Run:
        """A run from a file written by ``save`` (or uploaded): every field is validated, and, with ``rescore``, the
        kept weights are scored again here; the file's own claims are never shown as scores."""
        from dgm_core.checkpoints import read_run

        return read_run(Path(path), device, rescore, **schedule)
