"""A comparison: several models trained at once on one data set under the same budget, then scored alike.

Every model gets the same number of steps, or the same seconds of training time (evaluation excluded), with its own
registry defaults otherwise. Every family is then scored by the same two-sample test against held-out data; models
with a likelihood also by their test NLL (or bound). A comparison is ONE job for the scheduler (``active``,
``advance``) however many models it holds, so that one browser's six-model comparison takes one share of the server,
not six: it hands each of its slices to one model in turn, and all its models train side by side in the job's
training process. No Gradio here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import mmd_test
from dgm_core.models.registry import MODELS, models_by_family, models_for
from dgm_core.runs.run import Run
from dgm_core.runs.slices import Progress, Worker
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import FIRST_SLICE_S

Budget = Literal["seconds", "steps"]
TEST_ITEMS = 500  # samples and test items in the final two-sample test
PERMUTATIONS = 200
MAX_STEPS = 1_000_000  # a seconds budget trains "forever" and stops by the clock


def default_models(dataset: str) -> list[str]:
    """One model per family that works on this data set: the family's representative, else its first."""
    available = models_for(load_dataset(dataset))
    chosen = []
    for names in models_by_family().values():
        usable = [name for name in names if name in available]
        if usable:
            chosen.append(next((name for name in usable if MODELS[name].representative), usable[0]))
    return chosen


TRAINING = ("waiting", "training")  # an entry's states while it still has budget to spend
ENDED = ("done", "stopped", "failed")  # its run has ended: its kept weights await (or have) the two-sample test


@dataclass
class Entry:
    run: Run
    state: str = "waiting"  # waiting | training | stopping | done | stopped | failed | not started
    mmd: float | None = None
    p_value: float | None = None
    note: str = ""

    @property
    def untested(self) -> bool:
        """Its run has ended, and the final two-sample test of its kept weights is still to come."""
        return self.state in ENDED and self.p_value is None


# Who gets a comparison's next slice: the first kind that any entry is of, in turn (round robin) among its entries.
# A Stop halts training at once, so its scoring comes first; then every entry's first (short) slice, so that all
# panels start; then the tests of models that ended; then entries still without samples (a first evaluation can take
# a second); then everyone in turn.
TURNS: tuple[Callable[[Entry], bool], ...] = (
    lambda entry: entry.state == "stopping",
    lambda entry: entry.state == "waiting",
    lambda entry: entry.untested,
    lambda entry: entry.state == "training" and entry.run.samples is None,
    lambda entry: entry.state == "training",
)


class Comparison:
    """The models of one comparison, trained side by side, a slice each in turn, until each has spent its budget."""

    def __init__(self, dataset: str, models: list[str], budget: Budget, amount: float, device: torch.device) -> None:
        if not models:
            raise ValueError("Pick at least one model to compare.")
        limit = {"seconds": (0.5, 600.0), "steps": (1, 100_000)}[budget]
        if not limit[0] <= amount <= limit[1]:
            raise ValueError(f"The budget must be {limit[0]:g} to {limit[1]:,g} {budget}.")
        self.budget, self.amount = budget, amount
        steps = int(amount) if budget == "steps" else MAX_STEPS
        self.entries = [Entry(Run(RunSpec.defaults(name, dataset, steps=steps), device)) for name in models]
        self.lock = threading.RLock()
        self._last = -1  # the entry that had the last slice: the next turn starts after it

    @property
    def active(self) -> bool:
        """Some model still trains or scores, or waits for its two-sample test."""
        return any(entry.state in (*TRAINING, "stopping") or entry.untested for entry in self.entries)

    def progress(self) -> float:
        """The fraction of the whole comparison's budget spent, in [0, 1]."""
        spent = sum(min(self._spent(entry), 1.0) for entry in self.entries)
        return spent / len(self.entries)

    def _spent(self, entry: Entry) -> float:
        if entry.state not in TRAINING:
            return 1.0
        run = entry.run
        return run.elapsed_s / self.amount if self.budget == "seconds" else run.step / self.amount

    def advance(self, budget_s: float, worker: Worker | None = None) -> Progress:
        """Give this slice of about ``budget_s`` seconds to the entry whose turn it is (``TURNS``): it trains there
        (in ``worker``'s process, when given: every entry's replica lives in the job's one worker), or, once its run
        has ended, its kept weights get their two-sample test. An entry's first slice starts it, and is short.

        The lock covers only the choice: the slice itself (which waits for the run's own lock while a page draws the
        run) happens outside it, so that ``stop`` never waits for it. One scheduler thread at a time advances a job.
        """
        with self.lock:
            entry = self._next()
            if entry is None:
                return Progress(done=True)
            stopping = entry.state == "stopping"  # only after its first slice: a run's stop needs its stream begun
            if entry.state == "waiting":
                entry.state = "training"
                entry.run.start(max_seconds=self.amount if self.budget == "seconds" else None)
                budget_s = min(budget_s, FIRST_SLICE_S)
        if entry.untested:
            self._finish(entry)
            return Progress(done=not self.active)
        run = entry.run
        if stopping:
            run.stop()
        progress = run.advance(budget_s, worker)
        if not run.active:  # ended by its budget or a stop (or abandoned when its page closed)
            with self.lock:
                entry.state = {"done": "done", "stopped": "stopped"}.get(run.phase, "failed")
        progress.done = not self.active
        return progress

    def _next(self) -> Entry | None:
        """The entry whose turn it is: of the first kind in ``TURNS`` that any entry is of, the first after the one
        that had the last slice."""
        count = len(self.entries)
        in_turn = [(self._last + 1 + i) % count for i in range(count)]
        for wanted in TURNS:
            index = next((i for i in in_turn if wanted(self.entries[i])), None)
            if index is not None:
                self._last = index
                return self.entries[index]
        return None

    def stop(self) -> None:
        """Every model in training stops where it is (a slice under way ends first): its next slices only score
        the weights it stopped at and keep the ones it chose, as a Train-tab run's Stop does (``Run.stop``, asked
        there), then it gets its two-sample test. Models that never started (none, once every entry has had its
        first slice) are marked so. Returns at once: it waits for no slice and no drawing."""
        with self.lock:
            for entry in self.entries:
                if entry.state == "training":
                    entry.state = "stopping"
                elif entry.state == "waiting":
                    entry.state, entry.note = "not started", "stopped before its turn"

    def _finish(self, entry: Entry) -> None:
        """The final two-sample test of the weights the entry's run kept (pages read the entry meanwhile)."""
        run = entry.run
        test = run.data.test[:TEST_ITEMS]
        samples = run.draw(len(test), seed=0)
        entry.mmd, entry.p_value = mmd_test(samples.float(), test.float(), n_permutations=PERMUTATIONS)
