"""One browser's runs, and what the page shows of each: the session holds the runs (``dgm_core.runs.run.Run``, trained
by the shared ``Scheduler``) and, beside each, a ``RunView`` of display state only — the density picture and the
samples to draw. Nothing here trains or scores: the core does.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from app.page.pages import Pages
from dgm_core.data import DISPLAY_SAMPLES, Dataset, dataset_names, load_dataset
from dgm_core.data import user as user_data
from dgm_core.data.upload import UserData
from dgm_core.learn.evaluation import baseline_nll, field_grid, log_density_grid
from dgm_core.learn.seeding import forked
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.runs.run import Run
from dgm_core.runs.sharing import Shares
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import KEEP_IN_MEMORY, RunStore
from dgm_core.serve.scheduler import Scheduler

SAMPLES_SHOWN = DISPLAY_SAMPLES  # samples drawn for display, per kind of data
DATA_POINTS_SHOWN = 800
DENSITY_GRID = 100
ARROWS = 150  # samples drawn with the way the model moves them over its field (a GAN's pull, an EBM's drift)
DENSITY_EVERY_S = 2.0
MAX_RUNS = KEEP_IN_MEMORY  # a page lists at most this many runs (the oldest finished ones go first)
KNOWN_WAIT_S = 15.0  # how long a tab shown in a page's first moments waits for the page's restore to list its runs


def display_bounds(data: Dataset, margin: float = 0.12) -> tuple[float, float, float, float]:
    """A square window around the bulk of the 2D training data (for plotting only)."""
    return _bounds(data.spec.name, margin)


@lru_cache(maxsize=64)
def _bounds(name: str, margin: float) -> tuple[float, float, float, float]:
    points = load_dataset(name).train.numpy()
    low, high = np.quantile(points, 0.001, axis=0), np.quantile(points, 0.999, axis=0)
    center, half = (low + high) / 2, float((high - low).max()) / 2 * (1 + margin)
    return (float(center[0] - half), float(center[0] + half), float(center[1] - half), float(center[1] + half))


@lru_cache(maxsize=64)
def _baseline(name: str) -> tuple[str, float]:
    return baseline_nll(load_dataset(name))


class RunView:
    """A run and what the page draws of it: its data's window and points, the model's density over that window
    (recomputed at most a fifth of the time: a bound drawn smoothly costs more than an exact density), and the
    samples to show."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.data_spec = run.data.spec
        self.baseline = _baseline(run.data.spec.name)
        points = self.data_spec.kind == "points2d"
        self.bounds = display_bounds(run.data) if points else None
        self.data_points = run.data.test[:DATA_POINTS_SHOWN].numpy() if points else None
        self.log_density: np.ndarray | None = None  # or, for a model without one, its field (``has_field``)
        self.arrows: tuple[np.ndarray, np.ndarray] | None = None  # samples and how the model moves each
        self._density_at, self._density_cost = -math.inf, 0.0
        self._density_step = -1

    # --- the run, as lists and titles name it ---------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.run.id

    @property
    def spec(self) -> RunSpec:
        return self.run.spec

    @property
    def model(self) -> GenerativeModel:
        return self.run.model

    @property
    def data(self) -> Dataset:
        return self.run.data

    @property
    def step(self) -> int:
        return self.run.step

    @property
    def device(self) -> torch.device:
        return self.run.device

    @property
    def capabilities(self) -> Capabilities:
        return self.run.model.capabilities

    @property
    def title(self) -> str:
        """How lists name the run: "#2 RealNVP on moons (step 1500)"."""
        return f"#{self.id} {self.spec.model} on {self.spec.dataset} (step {self.run.step})"

    @property
    def has_density(self) -> bool:
        return self.bounds is not None and self.capabilities.likelihood != "none"

    @property
    def has_field(self) -> bool:
        """A 2D model without a density whose own field is drawn instead (a GAN's discriminator, an EBM's −E)."""
        return self.bounds is not None and not self.has_density and self.capabilities.field

    # --- what to draw ---------------------------------------------------------------------------------------------
    def samples(self) -> np.ndarray | None:
        """The run's latest display samples (as many as the page shows), or None before the first."""
        samples = self.run.samples
        return None if samples is None else samples[: SAMPLES_SHOWN[self.data_spec.kind]].numpy()

    def refresh_density(self, force: bool = False) -> bool:
        """Recompute the log-density grid (2D models with a likelihood; the field and its arrows for those with one)
        when the weights changed and it is due, or when ``force``d; True when it was."""
        since = time.perf_counter() - self._density_at
        due = since >= max(DENSITY_EVERY_S, 4 * self._density_cost) and self.run.step != self._density_step
        if not (self.has_density or self.has_field) or not (force or due):
            return False
        with self.run.lock:
            start = time.perf_counter()
            if self.has_density:
                grid = log_density_grid(self.run.model, self.bounds, n=DENSITY_GRID)
            else:
                grid = field_grid(self.run.model, self.bounds, n=DENSITY_GRID)
                with forked(self.run.device, seed=self.run.step):  # drawing must not change what training draws next
                    pull = self.run.model.field_arrows(ARROWS)
                self.arrows = (pull[0].cpu().numpy(), pull[1].cpu().numpy())
            self._density_step = self.run.step
        self.log_density = grid.numpy().astype(np.float32)
        self._density_at = time.perf_counter()
        self._density_cost = self._density_at - start
        return True


@dataclass(frozen=True)
class Backend:
    """What every page shares: the device models train on, the scheduler that trains them, and the run store
    (None: runs live in memory only)."""

    device: torch.device
    scheduler: Scheduler
    store: RunStore | None = None
    max_active_per_browser: int = 3
    pages: Pages = field(default_factory=Pages)  # the pages served now, by Gradio's session hash
    shares: Shares = field(default_factory=Shares)  # the runs shared by a follow code

    def opened(self, page_id: str, session: Session) -> None:
        """A page (or API client) showed up or did something: remember it, so that its runs can be let go when it
        closes or falls idle."""
        self.pages.seen(page_id, session)

    def closed(self, page_id: str) -> None:
        self.pages.left(page_id)

    def shut_down(self) -> int:
        """Stop cleanly: no more slices, every run saved with its whole current training state (a restart resumes
        each where it was), the training processes ended. Returns how many runs were saved."""
        self.scheduler.pause()
        saved = self.store.save_all() if self.store is not None else 0
        self.scheduler.close()
        return saved


class Session:
    """Everything one browser trains: its runs by id, oldest first (shared by every tab of that browser through
    its token and the store). Gradio makes one per page from a factory; ``current`` is the run the Train tab shows."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.token: str | None = None
        self.views: dict[int, RunView] = {}
        self.current: RunView | None = None
        self.opened_spec: RunSpec | None = None  # a run opened from elsewhere: the Train form shows its settings
        self.datasets: dict[str, str] = {}  # this browser's own data sets: name → what it is
        self._unsaved: dict[str, UserData] = {}  # own data sets added before the page knew its browser
        self._last_id = 0
        self._together: list[list[Run]] = []  # the runs of each comparison: one job each
        self.lock = threading.RLock()
        self.open = True  # until the page closes: its streams end then (each holds one of Gradio's queue slots)
        self.last_seen = time.monotonic()  # the page's last event (``Pages`` lets go of idle pages)
        self.watchers = 0  # the page's figure watchers alive now: a page open in a browser has some
        self.known = threading.Event()  # set once the page knows its browser (its restore attached it) or closed
        self.following: str | None = None  # the follow code whose run the page's Follow tab shows

    def wait_known(self, timeout_s: float = KNOWN_WAIT_S) -> None:
        """Wait until the page knows its browser, at most ``timeout_s``. A tab that lists runs asks first: shown in
        the page's first moments (a server that just restarted takes seconds to restore a page), it would otherwise
        list nothing while the status says "Welcome back: 1 run restored (see the Runs tab)", and keep listing
        nothing until shown again."""
        self.known.wait(timeout_s)

    def training(self) -> bool:
        """Whether any of this page's runs trains now."""
        with self.lock:
            return any(view.run.active for view in self.views.values())

    def attach(self, token: str) -> list[RunView]:
        """Know this browser by ``token``: list every run the store has for it (in memory or on disk). Runs kept
        before the page knew its browser (a click in its first moments) go into the store now, numbered anew."""
        with self.lock:
            self.token = token
            store = self.backend.store
            if store is not None:
                store.attach(token)
                for name, data in self._unsaved.items():
                    store.add_data(token, name, data)
                self._unsaved.clear()
                self.datasets = {**store.datasets(token), **self.datasets}
                early = [view.run for view in self.views.values()]
                self.views.clear()
                for run in early:
                    store.add(token, run)
                for run in store.runs(token):
                    self._list(run)
                self.current = self.views.get(self.current.id) if self.current is not None else None
            self.known.set()
            return list(self.views.values())

    def close(self) -> None:
        """The page closed: let go of its runs (the store stops and unloads them once no page of this browser is
        open for a while)."""
        with self.lock:
            self.open = False
            if self.backend.store is not None and self.token is not None:
                self.backend.store.detach(self.token)
            else:
                for view in self.views.values():
                    view.run.abandon()
            self.views.clear()
            self.current = None
        self.known.set()  # nothing to wait for any more

    def keep(self, run: Run) -> RunView:
        """Number and list a new run (and save it in the store, which keeps saving it as it trains)."""
        with self.lock:
            store = self.backend.store
            if store is not None and self.token is not None:
                store.add(self.token, run)
            else:
                self._last_id += 1
                run.id = self._last_id
            return self._list(run)

    def _list(self, run: Run) -> RunView:
        self._last_id = max(self._last_id, run.id)
        view = self.views.get(run.id)
        if view is None or view.run is not run:
            view = self.views[run.id] = RunView(run)
        idle = [key for key, kept in self.views.items() if not kept.run.active and kept is not self.current]
        for key in idle[: max(0, len(self.views) - MAX_RUNS)]:
            del self.views[key]  # only from this page's memory: the store still has it
        return view

    # --- its own data sets ----------------------------------------------------------------------------------------
    def add_data(self, data: UserData, title: str) -> tuple[str, str]:
        """Make ``data`` a data set of this browser (saved with its runs); returns its name, and "" or why it could
        not be saved (it is usable until the server restarts then)."""
        name = user_data.name_for(data, title)
        user_data.register(data, name)
        with self.lock:
            self.datasets[name] = data.note
            if self.backend.store is not None and self.token is not None:
                return name, self.backend.store.add_data(self.token, name, data)
            self._unsaved[name] = data
        return name, ""

    def delete_data(self, name: str) -> bool:
        """Forget one of this browser's own data sets (its runs stay listed)."""
        with self.lock:
            if self.datasets.pop(name, None) is None:
                return False
            if self.backend.store is not None and self.token is not None:
                self.backend.store.delete_data(self.token, name)
            self._unsaved.pop(name, None)
            return True

    def can_use(self, dataset: str) -> bool:
        """Built-in data, or this browser's own (no other browser's)."""
        return dataset in dataset_names() or dataset in self.datasets

    def dataset_choices(self) -> list[tuple[str, str]]:
        """(label, name) of every data set this browser may use: the built-in ones, then its own."""
        return [(name, name) for name in dataset_names()] + [(f"{name} (yours)", name) for name in self.datasets]

    def find(self, run_id: Any) -> RunView | None:
        try:
            return self.views.get(int(run_id))
        except (TypeError, ValueError):
            return None

    def delete(self, run_id: Any) -> RunView | None:
        """Forget a run for good (memory and store), stopping it first if it trains."""
        with self.lock:
            view = self.find(run_id)
            if view is None:
                return None
            view.run.abandon()
            if self.backend.store is not None and self.token is not None:
                self.backend.store.delete(self.token, view.id)
                self.backend.shares.unshare(self.token, view.id)
            if view is self.current:
                self.current = None
            return self.views.pop(view.id, None)

    def choices(self) -> list[tuple[str, int]]:
        """(title, id) of every run, newest first: the choices of a run picker."""
        return [(view.title, view.id) for view in reversed(self.views.values())]

    def keep_together(self, runs: list[Run]) -> list[RunView]:
        """Keep the runs of one comparison: listed as runs, counted as one job by ``check_room`` (the scheduler
        trains them as one)."""
        with self.lock:
            self._together = [group for group in self._together if any(run.active for run in group)]
            self._together.append(runs)
            return [self.keep(run) for run in runs]

    def check_room(self) -> None:
        """ValueError when this browser already trains as many jobs as one may at once (a run, or a comparison)."""
        with self.lock:
            grouped = {id(run) for group in self._together for run in group}
            alone = sum(view.run.active and id(view.run) not in grouped for view in self.views.values())
            active = alone + sum(any(run.active for run in group) for group in self._together)
        if active >= self.backend.max_active_per_browser:
            raise ValueError(
                f"{active} of your runs or comparisons are training already (at most "
                f"{self.backend.max_active_per_browser} at once, so that everyone on this server gets a fair "
                "share): stop one, or wait for one to finish."
            )

    def __deepcopy__(self, memo: dict) -> Session:
        return Session(self.backend)  # Gradio deep-copies a new page's initial state: a fresh, empty session


def single_thread() -> None:
    """Torch on one thread per operation: training workers, the server and a browser share this machine's cores."""
    torch.set_num_threads(1)
