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
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from dgm_core.data import Dataset, load_dataset
from dgm_core.data.user import content_hash
from dgm_core.learn.evaluation import Scores
from dgm_core.learn.loss_curve import LossCurve
from dgm_core.learn.seeding import forked
from dgm_core.learn.training import Snapshot, Trainer, TrainEvent
from dgm_core.models.base import GenerativeModel
from dgm_core.runs.checkpoints import CheckpointError, RunRecord, read_record, shorten, write_record
from dgm_core.runs.slices import ACTIVE, Phase, Progress, Shipment, SliceReport, Worker, WorkerError, resting_message
from dgm_core.runs.spec import RunSpec

_keys = itertools.count(1)  # a run's key among the replicas of a worker process


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
        checked: bool = False,
        **schedule: object,
    ) -> None:
        """``schedule`` overrides the spec's training config for this process only (e.g. ``eval_every_steps`` for
        deterministic tests, ``sample_every_s=None`` for benchmarks); ``n_samples`` drawn to show (by default as
        many as its kind of data shows, ``DataSpec.display_samples``)."""
        self.spec = spec
        self.data: Dataset = load_dataset(spec.dataset)
        n_samples = self.data.spec.display_samples if n_samples is None else n_samples
        model = spec.build(checked)
        self.trainer = Trainer(model, self.data, spec.config(n_samples, **schedule), device)
        self.phase: Phase = "ready"
        self.message = ""
        self.target = 0
        self.budget: tuple[float, float] | None = None  # (training time at the start, seconds) of a timed stretch
        self.losses = LossCurve()
        self._samples: Tensor | None = None  # the latest display samples (CPU): ``samples``
        self._samples_owed = False  # a run read from a file draws its samples when they are first asked for
        self.steps_per_s = 0.0
        self.lock = threading.RLock()
        self.id = 0
        self.on_change: Callable[[Run, bool], None] | None = None
        self.unsaved = ""  # why its store could not save its latest state, in words ("" when saved, or no store)
        self._events: Iterator[TrainEvent] | None = None
        self._settings = (n_samples, schedule)
        self._start_args: tuple[int | None, float | None] = (None, None)
        self._worker: Worker | None = None  # the process that trains this stretch's replica, if any
        self._key = next(_keys)
        self._resume: tuple[dict[str, Tensor], dict] | None = None  # an interrupted run's training state
        self.version = 0  # counts the changes a page may show (steps, scores, samples, phase): ``wait_for_change``
        self._changed = threading.Condition()

    # --- what it is -----------------------------------------------------------------------------------------------
    @property
    def samples(self) -> Tensor | None:
        """The latest display samples (CPU), None before the first; a run read from a file draws them when first
        asked (of a browser's many restored runs only the one shown needs them, and a sampler may take 100 passes)."""
        if self._samples_owed:
            with self.lock:
                if self._samples_owed:  # not drawn by another thread meanwhile
                    self._samples, self._samples_owed = self.trainer.samples(self.trainer.config.n_samples), False
        return self._samples

    @samples.setter
    def samples(self, samples: Tensor | None) -> None:
        self._samples, self._samples_owed = samples, False

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
        with self.inspecting(seed):
            return self.trainer.samples(n, label)

    @contextmanager
    def inspecting(self, seed: int | None = None) -> Iterator[GenerativeModel]:
        """Look inside the model without changing the run: the lock held (no slice changes the weights meanwhile),
        every random stream the model's device uses forked (training draws next what it would have), draws seeded by
        ``seed`` (None: fresh ones each time), eval mode and no gradients (a model that needs some for sampling, e.g.
        Langevin dynamics, enables them itself). Yields the model."""
        with self.lock, forked(self.device, seed), torch.no_grad():
            yield self.model.eval()

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

    def advance(self, budget_s: float, worker: Worker | None = None) -> Progress:
        """Train (or finish a stop) for about ``budget_s`` seconds; whoever calls it next continues the stream. With
        a ``worker`` process, the slice runs there (on a replica: ``dgm_core.serve.worker_loop``) and this run takes
        over what it did; a stretch of training that began in one worker continues in that one."""
        if worker is not None:
            return self._advance_in(worker, budget_s)
        with self.lock:
            if self._events is None or not self.active:
                return Progress()
            progress = self._apply(self.train_slice(budget_s), here=True)
        return self._changes(progress)

    def train_slice(self, budget_s: float, stop: bool = False) -> SliceReport:
        """Train here for about ``budget_s`` seconds (after asking to ``stop``: finish the stop) and report what
        changed, for ``_apply`` here or in the server (a worker's replica); the loss points go in the report."""
        with self.lock:
            if stop:
                self.stop()
            points, steps, scores, samples, done = LossCurve(), 0, False, False, False
            deadline = time.perf_counter() + budget_s
            while self._events is not None and self.active and time.perf_counter() < deadline and not done:
                try:
                    event = next(self._events, None)
                except (RuntimeError, ValueError) as error:  # e.g. out of memory: say so, keep the last good weights
                    self._end("failed", f"Training failed: {error}")
                    done = True
                    break
                if event is None:
                    self._end("done", self.trainer.finish())
                    done = True
                    break
                finite = all(math.isfinite(value) for value in event.losses.values())
                if event.losses:
                    steps += 1
                    self.steps_per_s = event.steps_per_s
                    if finite:
                        points.add(event.step, event.losses)
                scores |= event.scores is not None
                if event.samples is not None:
                    self.samples, samples = event.samples, True
                if event.done:
                    self._end("stopped" if event.stopped else "done" if finite else "diverged", event.message or "")
                    done = True
            return SliceReport(
                steps,
                scores,
                samples,
                done,
                self.phase,
                self.message,
                self.step,
                self.elapsed_s,
                self.steps_per_s,
                (list(points.steps), {name: list(values) for name, values in points.terms.items()}),
                self.samples if samples or done else None,
            )

    def _advance_in(self, worker: Worker, budget_s: float) -> Progress:
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
            progress = self._fail(report) if isinstance(report, WorkerError) else self._apply(report, here=False)
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

    def _apply(self, report: SliceReport, here: bool) -> Progress:
        """Take in what a slice did, trained ``here`` or in a worker: its loss points, step, speed, samples and phase;
        from a worker also its weights, and its trainer's whole state whenever it scored or ended (or every
        ``STATE_EVERY_S``: ``dgm_core.serve.worker_loop``)."""
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
        whole = report.state is not None or (here and (report.steps > 0 or report.done))  # here: the state is ours
        return Progress(report.steps, report.scores, report.samples_changed, report.done, whole)

    def _end(self, phase: Phase, message: str) -> None:
        self.phase, self.message, self._events = phase, message, None
        self.samples = self.trainer.samples(len(self.samples) if self.samples is not None else 1000)

    def interrupt(self) -> None:
        """A run read from a record written while it trained (its server stopped, or it was copied): it shows its kept
        weights, and keeps its whole training state aside, so that ``start`` (Continue) resumes exactly where it was."""
        with self.lock:
            tensors, meta = self.trainer.state()
            self._resume = {name: value.clone() for name, value in tensors.items()}, meta  # the model's own tensors
            self.trainer.finish()  # … which this overwrites
            self.phase, self._events = "interrupted", None
            self.message = resting_message(self.phase, self.step, self.trainer.summary(stopped=False))

    def training_state(self) -> tuple[dict[str, Tensor], dict]:
        """What continuing this run depends on (``Trainer.state``): for an interrupted run, the state set aside."""
        with self.lock:
            return self._resume if self._resume is not None else self.trainer.state()

    def stop(self) -> None:
        """Ask a training run to stop, keeping the chosen evaluated weights. A run trained in a worker process whose
        weights to keep were evaluated already (``Trainer.stops_at_once``) ends here at once: this run holds those
        weights and their scores (``_apply``), and the replica is let go. Otherwise the next ``advance`` halts it
        (phase "stopping" until then; ``dgm_core.learn.training``)."""
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
    def to_record(self, training_state: bool = True) -> RunRecord:
        """What a file holds of this run (``dgm_core.runs.checkpoints``): its spec, where it stands and its trainer's
        whole state; without ``training_state`` (optimizer moments, random state, current weights) only the kept
        weights, as the latest evaluated ones: a slim file for shipped presets and shared results."""
        with self.lock:
            tensors, state = self.training_state()
            if not training_state:
                kept = self.trainer.kept
                tensors = {} if kept is None else {f"last.{name}": value for name, value in kept.state.items()}
                step = None if kept is None else kept.step
                state = {**state, "best_step": step, "last_step": step, "optimizers": [], "schedulers": []}
            data = self.data.spec
            items = len(self.data.train) + len(self.data.val) + len(self.data.test)
            owned = None if data.content_hash is None else {"content_hash": data.content_hash, "items": items}
            return RunRecord(
                self.spec, self.phase, self.message, self.target, self.losses, tensors, state, training_state, owned
            )

    def save(self, path: str | Path, training_state: bool = True) -> Path:
        """One ``.dgm.zip`` (``dgm_core.runs.checkpoints``) that ``load`` turns back into this run (``to_record``)."""
        return write_record(self.to_record(training_state), Path(path))

    @classmethod
    def from_record(
        cls, record: RunRecord, device: torch.device | None = None, rescore: bool = True, **schedule: object
    ) -> Run:
        """The run a record read from a file describes (``read_record`` checked every field, and the weights against
        the model); with ``rescore``, its kept weights are scored again here. What it says of itself is made here
        from its phase and scores: a file's own message is never shown (it could claim any score, or carry markup).
        """
        try:
            run = cls(record.spec, device, checked=True, **schedule)  # read_record checked it
        except ValueError as error:
            raise CheckpointError(f"The checkpoint's settings cannot build a run here: {error}") from None
        try:
            run.trainer.restore(record.tensors, record.state)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"The checkpoint's training state does not fit {record.spec.model}: {shorten(error, 200)}"
            ) from None
        run.phase, run.target, run.losses = record.phase, record.target, record.losses
        if run.phase in ACTIVE:  # it was training when its file was written: its server stopped
            run.interrupt()
        if rescore and run.kept is not None:
            run.rescore()
        run.message = resting_message(run.phase, run.step, run.trainer.summary(stopped=run.phase == "stopped"))
        run._samples_owed = True
        return run

    @classmethod
    def load(
        cls, path: str | Path, device: torch.device | None = None, rescore: bool = True, **schedule: object
    ) -> Run:
        """A run from a file written by ``save`` (or uploaded): ``CheckpointError`` for any bad file."""
        return cls.from_record(read_record(Path(path)), device, rescore, **schedule)

    @classmethod
    def copy_of(cls, run: Run, device: torch.device | None = None) -> Run:
        """An independent run where ``run`` stands now (a follower's "Copy to my runs"); a copy of a run that trains
        rests "interrupted", and Continue resumes it from the copied state."""
        return cls.from_record(run.to_record(), device, rescore=False)  # this server scored those weights

    @classmethod
    def replica(cls, shipment: Shipment) -> Run:
        """The run a worker process trains for the server's run that sent ``shipment``, started where that stands."""
        spec = RunSpec(**shipment.spec)  # the server's run checked it: the worker builds it as it is
        run = cls(spec, torch.device(shipment.device), shipment.n_samples, checked=True, **shipment.schedule)
        run.trainer.restore(*shipment.state)
        run.start(shipment.steps, shipment.max_seconds)
        return run
