"""A comparison: several models trained one after another on one data set under the same budget, then scored alike.

Every model gets the same number of steps, or the same seconds of training time (evaluation excluded), with its own
registry defaults otherwise. Every family is then scored by the same two-sample test against held-out data; models
with a likelihood also by their test NLL (or bound). No Gradio here: the tab streams what ``advance`` changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from app.session import Settings, Tick, TrainingRun, single_thread
from dgm_core.data import load_dataset
from dgm_core.evaluation import mmd_test
from dgm_core.models.registry import MODELS, defaults_for, models_by_family, models_for
from dgm_core.training import TrainEvent

Budget = Literal["seconds", "steps"]
TEST_ITEMS = 500  # samples and test items in the final two-sample test
PERMUTATIONS = 200
MAX_STEPS = 1_000_000  # a seconds budget trains "forever" and stops by the clock
KERNEL_NOTE = (
    f"MMD² between as many model samples as test items (up to {TEST_ITEMS}), averaged over Gaussian kernels "
    "exp(−|a − b|² / 2h²) at seven bandwidths h, from 4× down to 1/16× the median pairwise distance (one bandwidth "
    "alone cannot tell a Gaussian blob from two moons). Lower is better; the estimate is unbiased, so a model as good "
    "as the data scatters around 0 and can come out slightly negative: shown as ≈ 0. p is a permutation test of "
    f'"same distribution" ({PERMUTATIONS} relabellings) on the largest standardised MMD² over the bandwidths: '
    "p < 0.05 says the samples can be told apart from real data."
)


def default_models(dataset: str) -> list[str]:
    """One model per family that works on this data set: the family's representative, else its first."""
    available = models_for(load_dataset(dataset))
    chosen = []
    for names in models_by_family().values():
        usable = [name for name in names if name in available]
        if usable:
            chosen.append(next((name for name in usable if MODELS[name].representative), usable[0]))
    return chosen


@dataclass
class Entry:
    run: TrainingRun
    state: str = "waiting"  # waiting | training | stopping | done | stopped | failed | not started
    mmd: float | None = None
    p_value: float | None = None
    note: str = ""


class Comparison:
    """The models of one comparison, trained in turn by ``advance`` until each has spent its budget."""

    def __init__(self, dataset: str, models: list[str], budget: Budget, amount: float, device: torch.device) -> None:
        if not models:
            raise ValueError("Pick at least one model to compare.")
        limit = {"seconds": (0.5, 600.0), "steps": (1, 100_000)}[budget]
        if not limit[0] <= amount <= limit[1]:
            raise ValueError(f"The budget must be {limit[0]:g} to {limit[1]:,g} {budget}.")
        data = load_dataset(dataset)
        self.budget, self.amount = budget, amount
        self.entries = [Entry(TrainingRun(self._settings(name, data.spec, budget, amount), device)) for name in models]
        self._events: Iterator[TrainEvent] | None = None
        self.started = time.perf_counter()

    @staticmethod
    def _settings(name: str, spec, budget: Budget, amount: float) -> Settings:
        d = defaults_for(name, spec)
        steps = int(amount) if budget == "steps" else MAX_STEPS
        return Settings(spec.name, name, steps, d.lr, d.batch_size, d.hidden, seed=0)

    @property
    def current(self) -> Entry | None:
        return next((entry for entry in self.entries if entry.state in ("waiting", "training", "stopping")), None)

    def progress(self) -> float:
        """The fraction of the whole comparison's budget spent, in [0, 1]."""
        spent = sum(min(self._spent(entry), 1.0) for entry in self.entries)
        return spent / len(self.entries)

    def _spent(self, entry: Entry) -> float:
        if entry.state in ("done", "stopped", "failed", "not started"):
            return 1.0
        trainer = entry.run.trainer
        return trainer.elapsed_s / self.amount if self.budget == "seconds" else trainer.step / self.amount

    def advance(self, budget_s: float) -> Entry | None:
        """Train the current model for about ``budget_s`` seconds; returns the entry that finished, if one did."""
        entry = self.current
        if entry is None:
            return None
        run = single_thread(entry.run)
        if entry.state == "waiting":
            seconds = self.amount if self.budget == "seconds" else None
            entry.state, self._events = "training", run.begin(None, max_seconds=seconds)
        deadline = time.perf_counter() + budget_s
        while time.perf_counter() < deadline:
            event = next(self._events, None)
            if event is None or event.done:
                if event is not None:
                    run.record(event, Tick())
                outcome = {"done": "done", "stopped": "stopped"}.get(run.phase, "failed")
                return self._finish(entry, outcome)
            run.record(event, Tick())
        return None

    def stop(self) -> None:
        """The model in training stops (its last weights are scored, its best kept) and is scored; the models that
        finished are kept; those that never started are marked so."""
        for entry in self.entries:
            if entry.state == "training":
                entry.state = "stopping"
                entry.run.trainer.request_stop()
                entry.run.phase = "stopping"
            elif entry.state == "waiting":
                entry.state, entry.note = "not started", "stopped before its turn"

    def _finish(self, entry: Entry, state: str) -> Entry:
        """Score the kept weights by the two-sample test and draw fresh samples for display."""
        entry.state, self._events = state, None
        run = entry.run
        run.refresh_samples()
        test = run.data.test[:TEST_ITEMS]
        with torch.random.fork_rng():
            torch.manual_seed(0)
            samples = run.trainer.samples(len(test))
        entry.mmd, entry.p_value = mmd_test(samples.float(), test.float(), n_permutations=PERMUTATIONS)
        return entry

    def rows(self) -> list[list]:
        return [_row(entry) for entry in self.entries]


def format_mmd(value: float) -> str:
    """MMD² for a table: "≈ 0" when the unbiased estimate is at or below zero (it scatters around 0 for a perfect
    model), else three significant digits."""
    return "≈ 0" if value <= 0 else f"{value:.2e}"


def verdict(p_value: float) -> str:
    return "told apart from data" if p_value < 0.05 else "not told apart"


def _row(entry: Entry) -> list:
    run = entry.run
    caps = run.capabilities
    metrics = run.kept_metrics() or {}
    if caps.likelihood == "none":
        nll, kind = "—", "none (no likelihood)"
    else:
        nll = round(metrics["test_bpd"], 4) if "test_bpd" in metrics else "…"
        kind = "exact" if caps.likelihood == "exact" else f"bound ({caps.likelihood_name.removesuffix(' bound')})"
    speed = run.step / run.trainer.elapsed_s if run.trainer.elapsed_s > 0 else 0.0
    return [
        run.settings.model,
        MODELS[run.settings.model].family,
        entry.state + (f" ({entry.note})" if entry.note else ""),
        nll,
        kind,
        "…" if entry.mmd is None else format_mmd(entry.mmd),
        "…" if entry.p_value is None else f"{entry.p_value:.3f}",
        "…" if entry.p_value is None else verdict(entry.p_value),
        round(run.trainer.elapsed_s, 1),
        run.step,
        round(speed, 1),
        run.num_parameters,
        run.model.sampling_cost,
    ]


COLUMNS = [
    "model",
    "family",
    "state",
    "test NLL (bits/dim)",
    "likelihood",
    "test MMD²",
    "MMD p-value",
    "at 5 %",
    "train s",
    "steps",
    "steps/s",
    "params",
    "sampling cost",
]
