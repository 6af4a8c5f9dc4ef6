"""Per-browser-session training state: one Trainer per tab, advanced in short slices so that Stop answers quickly.

Gradio keeps one ``Session`` per tab (``gr.State(Session)``) and hands the same object to every event of that tab.
Every run (Train or Continue) takes a new token; a slice of training only proceeds while its token is current, so
Stop, or a newer run, retires the old stream at its next slice. A lock keeps two threads off one model.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dgm_core.data import Dataset, dataset_names, load_dataset
from dgm_core.device import describe
from dgm_core.evaluation import baseline_nll, log_density_grid
from dgm_core.models.base import GenerativeModel
from dgm_core.models.registry import MODELS, build_model, unsupported_reason
from dgm_core.training import TrainConfig, Trainer, TrainEvent

SAMPLES_SHOWN = {"points2d": 600, "image": 64}  # samples drawn for display, per kind of data
DATA_POINTS_SHOWN = 800
DENSITY_GRID = 100
DENSITY_EVERY_S = 0.6
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Settings:
    dataset: str
    model: str
    steps: int
    lr: float
    batch_size: int
    hidden: int
    seed: int
    options: dict[str, float] = field(default_factory=dict)  # the model's declared options (e.g. β), if set
    keep: str = "best"  # the weights a run ends with: "best" on validation or "final"


def parse_settings(
    dataset: Any,
    model: Any,
    steps: Any,
    lr: Any,
    batch_size: Any,
    hidden: Any,
    seed: Any,
    option: Any = None,
    keep: Any = "best",
) -> Settings:
    """Settings from raw inputs, or ValueError with a message a user can act on (ranges are checked by the core).
    ``option`` sets the model's first declared option (``ModelInfo.options``), if it has one."""
    if dataset not in dataset_names():
        raise ValueError(f"Choose a data set: one of {', '.join(dataset_names())}.")
    if model not in MODELS:
        raise ValueError(f"Choose a model: one of {', '.join(MODELS)}.")
    reason = unsupported_reason(model, load_dataset(dataset))
    if reason is not None:
        raise ValueError(reason)
    settings = Settings(
        dataset=dataset,
        model=model,
        steps=whole(steps, "Steps"),
        lr=_number(lr, "The learning rate"),
        batch_size=whole(batch_size, "The batch size"),
        hidden=whole(hidden, "The hidden width"),
        seed=whole(seed, "The seed"),
        options=_options(model, option),
        keep=keep,
    )
    if keep not in ("best", "final"):
        raise ValueError("Keep the weights best on validation or the final ones.")
    if not 0 <= settings.seed <= MAX_SEED:
        raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED:,}.")
    return settings


def _options(model: str, value: Any) -> dict[str, float]:
    declared = MODELS[model].options
    if not declared or value is None:
        return {}
    name, option = next(iter(declared.items()))
    return {name: _number(value, option.label)}


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (got {value!r}).") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number.")
    return number


def whole(value: Any, name: str) -> int:
    number = _number(value, name)
    if number != int(number):
        raise ValueError(f"{name} must be a whole number (got {number:g}).")
    return int(number)


@dataclass
class Tick:
    """What changed during one slice of training."""

    metrics: bool = False
    samples: bool = False
    done: bool = False


class TrainingRun:
    """One model being trained, and what the page shows of it: loss history, latest samples, log density.

    ``model`` is a freshly built one unless given (e.g. loaded from a checkpoint). ``run_id`` numbers the runs of a
    session (0 until the session keeps the run).
    """

    def __init__(self, settings: Settings, device: torch.device, model: GenerativeModel | None = None) -> None:
        self.settings = settings
        self.run_id = 0
        self.data: Dataset = load_dataset(settings.dataset)
        self.spec = self.data.spec
        if model is None:
            model = build_model(
                settings.model, self.spec, hidden=settings.hidden, seed=settings.seed, **settings.options
            )
        config = TrainConfig(
            steps=settings.steps,
            lr=settings.lr,
            batch_size=settings.batch_size,
            seed=settings.seed,
            n_samples=SAMPLES_SHOWN[self.spec.kind],
            keep=settings.keep,
        )
        self.trainer = Trainer(model, self.data, config, device)
        self.capabilities = model.capabilities
        self.num_parameters = model.num_parameters()
        self.baseline = baseline_nll(self.data)
        self.bounds = display_bounds(self.data) if self.spec.kind == "points2d" else None
        self.data_points = self.data.test[:DATA_POINTS_SHOWN].numpy()
        self.loss_steps: list[int] = []
        self.loss_terms: dict[str, list[float]] = {}
        self.samples: np.ndarray | None = None
        self.log_density: np.ndarray | None = None
        self._density_at, self._density_cost = -math.inf, 0.0
        self.steps_per_s = 0.0
        self.target = 0
        self.device_label = describe(device)  # set again by the training thread, which uses one CPU thread
        self.phase = "ready"  # ready | training | stopping | done | stopped | diverged | failed
        self.message = ""

    @property
    def step(self) -> int:
        return self.trainer.step

    @property
    def model(self) -> GenerativeModel:
        return self.trainer.model

    @property
    def title(self) -> str:
        """How lists name the run: "#2 RealNVP on moons (step 1500)"."""
        return f"#{self.run_id} {self.settings.model} on {self.settings.dataset} (step {self.step})"

    def kept_metrics(self) -> dict[str, float] | None:
        """The scores of the weights the run holds when not training: best on validation, else the latest."""
        best = self.trainer.best
        return best.metrics if best is not None and self.phase != "training" else self.latest_metrics()

    @property
    def has_density(self) -> bool:
        return self.bounds is not None and self.capabilities.likelihood != "none"

    def begin(self, steps: int | None, max_seconds: float | None = None) -> Iterator[TrainEvent]:
        self.target = self.step + (steps or self.trainer.config.steps)
        self.phase, self.message = "training", ""
        return self.trainer.run(steps, max_seconds)

    def record(self, event: TrainEvent, tick: Tick) -> None:
        self.steps_per_s = event.steps_per_s or self.steps_per_s
        finite = all(math.isfinite(value) for value in event.losses.values())
        if event.losses and finite:
            self.loss_steps.append(event.step)
            for name, value in event.losses.items():
                self.loss_terms.setdefault(name, []).append(value)
        tick.metrics |= event.metrics is not None
        if event.samples is not None:
            self.samples, tick.samples = event.samples.numpy(), True
        if event.done:
            phase = "stopped" if event.stopped else "done" if finite else "diverged"
            self.phase, self.message, tick.done = phase, event.message or "", True

    def abandon(self) -> None:
        """Training ends without a last evaluation (its stream was closed): keep the evaluated weights as they are."""
        if self.phase in ("training", "stopping"):
            self.phase, self.message = "stopped", self.trainer.finish(stopped=True)
            self.refresh_samples()

    def refresh_samples(self) -> None:
        """Fresh samples (and density) from the model as it is now, e.g. after the best weights were restored."""
        self.samples = self.trainer.samples(SAMPLES_SHOWN[self.spec.kind]).numpy()
        self.refresh_density(force=True)

    def refresh_density(self, force: bool = False) -> None:
        """Recompute the log-density grid (2D models with a likelihood) if it is due or ``force``d: every
        DENSITY_EVERY_S, and at most a fifth of the time (a bound drawn smoothly costs more than an exact density)."""
        since = time.perf_counter() - self._density_at
        if not self.has_density or (not force and since < max(DENSITY_EVERY_S, 4 * self._density_cost)):
            return
        start = time.perf_counter()
        grid = log_density_grid(self.trainer.model, self.bounds, n=DENSITY_GRID)
        self.log_density = grid.numpy().astype(np.float32)
        self._density_at = time.perf_counter()
        self._density_cost = self._density_at - start

    @property
    def history(self) -> list[dict[str, float]]:
        return self.trainer.history

    def latest_metrics(self) -> dict[str, float] | None:
        return self.trainer.history[-1] if self.trainer.history else None


def warm_up(settings: Settings, device: torch.device) -> None:
    """Pay one-time costs at startup instead of on the first click: torch imports torch._dynamo (~2 s) when the
    first optimizer is made, and data sets load on first use."""
    TrainingRun(settings, device)


def single_thread(run: TrainingRun) -> TrainingRun:
    """Train on one CPU thread in the calling thread (the server and the browser need the other cores)."""
    torch.set_num_threads(1)
    run.device_label = describe(run.trainer.device)
    return run


def display_bounds(data: Dataset, margin: float = 0.12) -> tuple[float, float, float, float]:
    """A square window around the bulk of the 2D training data (for plotting only)."""
    points = data.train.numpy()
    low, high = np.quantile(points, 0.001, axis=0), np.quantile(points, 0.999, axis=0)
    center, half = (low + high) / 2, float((high - low).max()) / 2 * (1 + margin)
    return (float(center[0] - half), float(center[0] + half), float(center[1] - half), float(center[1] + half))


class Session:
    """Everything one browser tab trains. Gradio makes one per tab from the class itself (a factory).

    ``runs`` holds every model of the session by id (trained, compared or uploaded); ``run`` is the Train tab's.
    ``lock`` keeps two threads off the models: training slices, the explorer and the likelihood views all take it.
    """

    MAX_RUNS = 24  # the oldest finished runs are dropped beyond this (each holds a model in memory)

    def __init__(self) -> None:
        self.run: TrainingRun | None = None
        self.runs: dict[int, TrainingRun] = {}
        self._last_id = 0
        self.token = 0
        self.lock = threading.RLock()
        self.endpoints: Any = None  # the latent explorer's current path (app.explorer.Endpoints)
        self.compare_token = 0
        self.comparison: Any = None  # the Compare tab's latest comparison (app.compare.Comparison)

    def keep(self, run: TrainingRun) -> TrainingRun:
        """Number ``run`` and list it among the session's runs (dropping the oldest idle ones beyond MAX_RUNS)."""
        with self.lock:
            self._last_id += 1
            run.run_id = self._last_id
            self.runs[run.run_id] = run
            idle = [key for key, kept in self.runs.items() if kept.phase != "training" and kept is not self.run]
            for key in idle[: max(0, len(self.runs) - self.MAX_RUNS)]:
                del self.runs[key]
            return run

    def find(self, run_id: Any) -> TrainingRun | None:
        try:
            return self.runs.get(int(run_id))
        except (TypeError, ValueError):
            return None

    def delete(self, run_id: Any) -> TrainingRun | None:
        """Forget a run (stopping it first if the Train tab is training it)."""
        run = self.find(run_id)
        if run is None:
            return None
        if run is self.run:
            self.stop()
            self.run = None
        with self.lock:
            return self.runs.pop(run.run_id, None)

    def choices(self) -> list[tuple[str, int]]:
        """(title, id) of every run, newest first: the choices of a run picker."""
        return [(run.title, run.run_id) for run in reversed(self.runs.values())]

    def __deepcopy__(self, memo: dict) -> Session:
        return Session()  # Gradio deep-copies a new tab's initial state: it is always a fresh, empty session

    def start(self, run: TrainingRun, steps: int | None) -> tuple[int, Iterator[TrainEvent]]:
        """Make ``run`` this tab's model and start training it; an older stream retires at its next slice."""
        with self.lock:
            if self.run is not None and self.run is not run:
                self.run.abandon()
            self.token += 1
            if run.run_id not in self.runs:
                self.keep(run)
            self.run = single_thread(run)
            return self.token, run.begin(steps)

    def advance(self, events: Iterator[TrainEvent], token: int, budget_s: float) -> Tick | None:
        """Train for about ``budget_s`` seconds; None when this stream was stopped or replaced."""
        with self.lock:
            if token != self.token or self.run is None:
                return None
            run, tick = single_thread(self.run), Tick()
            deadline = time.perf_counter() + budget_s
            while not tick.done and time.perf_counter() < deadline:
                event = next(events, None)
                if event is None:
                    run.phase, tick.done = "done", True
                    break
                run.record(event, tick)
            if tick.done:
                run.refresh_samples()
            elif tick.samples:
                run.refresh_density()
            return tick

    def stop(self) -> TrainingRun | None:
        """Ask this tab's training (if any) to stop: its stream scores the weights it stopped at, keeps the weights
        chosen (best on validation, or final) and draws the stopped state (``run.phase`` is "stopping" until then)."""
        with self.lock:
            run = self.run
            if run is not None and run.phase == "training":
                run.trainer.request_stop()
                run.phase = "stopping"
            return run
