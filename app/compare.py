"""A comparison: several models trained one after another on one data set under the same budget, then scored alike.

Every model gets the same number of steps, or the same seconds of training time (evaluation excluded), with its own
registry defaults otherwise. Every family is then scored by the same two-sample test against held-out data; models
with a likelihood also by their test NLL (or bound). A comparison is a job for the scheduler (``active``,
``advance``): it trains its current model in the slices it is given. No Gradio here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import torch

from app.session import SAMPLES_SHOWN
from app.views import format_mmd
from dgm_core.data import load_dataset
from dgm_core.evaluation import mmd_test
from dgm_core.models.registry import MODELS, models_by_family, models_for
from dgm_core.runs import Progress, Run, RunSpec
from dgm_core.workers import TrainingProcess

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
    run: Run
    state: str = "waiting"  # waiting | training | done | stopped | failed | not started
    mmd: float | None = None
    p_value: float | None = None
    note: str = ""


class Comparison:
    """The models of one comparison, trained in turn until each has spent its budget."""

    def __init__(self, dataset: str, models: list[str], budget: Budget, amount: float, device: torch.device) -> None:
        if not models:
            raise ValueError("Pick at least one model to compare.")
        limit = {"seconds": (0.5, 600.0), "steps": (1, 100_000)}[budget]
        if not limit[0] <= amount <= limit[1]:
            raise ValueError(f"The budget must be {limit[0]:g} to {limit[1]:,g} {budget}.")
        self.budget, self.amount = budget, amount
        steps = int(amount) if budget == "steps" else MAX_STEPS
        shown = SAMPLES_SHOWN[load_dataset(dataset).spec.kind]
        self.entries = [Entry(Run(RunSpec.defaults(name, dataset, steps=steps), device, shown)) for name in models]
        self.lock = threading.RLock()

    @property
    def current(self) -> Entry | None:
        return next((entry for entry in self.entries if entry.state in ("waiting", "training")), None)

    @property
    def active(self) -> bool:
        return self.current is not None

    def progress(self) -> float:
        """The fraction of the whole comparison's budget spent, in [0, 1]."""
        spent = sum(min(self._spent(entry), 1.0) for entry in self.entries)
        return spent / len(self.entries)

    def _spent(self, entry: Entry) -> float:
        if entry.state not in ("waiting", "training"):
            return 1.0
        run = entry.run
        return run.elapsed_s / self.amount if self.budget == "seconds" else run.step / self.amount

    def advance(self, budget_s: float, worker: TrainingProcess | None = None) -> Progress:
        """Train the current model for about ``budget_s`` seconds (in ``worker``'s process, when given); when it
        ends, score it and start the next."""
        with self.lock:
            entry = self.current
            if entry is None:
                return Progress(done=True)
            run = entry.run
            if entry.state == "waiting":
                entry.state = "training"
                run.start(max_seconds=self.amount if self.budget == "seconds" else None)
            progress = run.advance(budget_s, worker)
            if not run.active:
                self._finish(entry, {"done": "done", "stopped": "stopped"}.get(run.phase, "failed"))
            return progress

    def stop(self) -> None:
        """The model in training stops (its last weights are scored, its best kept); the models that finished are
        kept; those that never started are marked so."""
        with self.lock:
            for entry in self.entries:
                if entry.state == "training":
                    entry.run.stop()
                elif entry.state == "waiting":
                    entry.state, entry.note = "not started", "stopped before its turn"

    def _finish(self, entry: Entry, state: str) -> None:
        """Score the kept weights by the two-sample test, then mark the entry finished (pages read it meanwhile)."""
        run = entry.run
        test = run.data.test[:TEST_ITEMS]
        samples = run.draw(len(test), seed=0)
        entry.mmd, entry.p_value = mmd_test(samples.float(), test.float(), n_permutations=PERMUTATIONS)
        entry.state = state

    def rows(self) -> list[list]:
        return [_row(entry) for entry in self.entries]


def verdict(p_value: float) -> str:
    return "told apart from data" if p_value < 0.05 else "not told apart"


def _row(entry: Entry) -> list:
    run = entry.run
    caps = run.model.capabilities
    scores = run.scores
    if caps.likelihood == "none":
        nll, kind = "—", "none (no likelihood)"
    else:
        nll = round(scores.bits(scores.nll["test"]), 4) if scores is not None else "…"
        kind = "exact" if caps.likelihood == "exact" else f"bound ({caps.likelihood_name.removesuffix(' bound')})"
    speed = run.step / run.elapsed_s if run.elapsed_s > 0 else 0.0
    return [
        run.spec.model,
        MODELS[run.spec.model].family,
        entry.state + (f" ({entry.note})" if entry.note else ""),
        nll,
        kind,
        "…" if entry.mmd is None else format_mmd(entry.mmd),
        "…" if entry.p_value is None else f"{entry.p_value:.3f}",
        "…" if entry.p_value is None else verdict(entry.p_value),
        round(run.elapsed_s, 1),
        run.step,
        round(speed, 1),
        run.model.num_parameters(),
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
