"""What an export reads of a run (``replay_of``): its settings, the steps it evaluated and what it scored there, the
kept weights' scores, and why a replay of it may not be exact (``dgm_core.runs.export``)."""

from __future__ import annotations

from dataclasses import dataclass

from dgm_core.data import DataSpec
from dgm_core.models.base import GenerativeModel
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec


class ExportError(ValueError):
    """A run that cannot be exported; the message says why, in a sentence for the user."""


@dataclass(frozen=True)
class Replay:
    """What an export reads of a run, under its lock: its settings, each evaluated step with the validation score the
    run got there (``Scores.score``), the kept weights' scores, and why a replay may not be exact."""

    spec: RunSpec
    data: DataSpec
    model: GenerativeModel
    run_scores: dict[int, float]
    kept_test_nll: float | None  # None: no likelihood
    kept_val_mmd: float
    timed_cosine: bool  # a cosine schedule that followed a time budget's clock
    caveats: tuple[str, ...]  # why the replay is not exact; empty when it is
    where: str  # which run, where it stands

    @property
    def conditional(self) -> bool:
        return self.model.capabilities.conditional


def replay_of(run: Run) -> Replay:
    """The facts about ``run`` its notebook needs; ``ExportError`` for a run on a user's own data, or one that has no
    evaluated weights yet."""
    with run.lock:
        spec, phase, step, kept = run.spec, run.phase, run.step, run.kept
        if run.data.spec.content_hash is not None:
            raise ExportError(
                f"This run trained on your own data set {spec.dataset}, which stays with this browser: a notebook "
                "elsewhere could not load it. Download its checkpoint instead (Run.load reads it back)."
            )
        if kept is None:
            raise ExportError("This run has no evaluated weights yet: train it until its first evaluation.")
        run_scores = {scores.step: scores.score for scores in run.history}
        where = f"run #{run.id}, {phase} at step {step}" if run.id else f"{phase} at step {step}"
        if run.active:
            where += f"; still training, so this replays its first {len(run_scores)} evaluations"
        timed_cosine = spec.lr_schedule == "cosine" and (
            run.budget is not None or (phase == "done" and step < run.target)
        )
        data, model, device = run.data.spec, run.model, run.device.type
    caveats = []
    if timed_cosine:
        caveats.append(
            "its cosine schedule followed the clock of a time budget, which is not recorded step by step: this "
            f"replay spans the cosine over the {max(run_scores)} steps it took instead"
        )
    if device != "cpu":
        caveats.append(f"it trained on {device}, whose arithmetic rounds differently from the CPU's")
    test_nll, val_mmd = kept.scores.nll.get("test"), kept.scores.val_mmd
    return Replay(spec, data, model, run_scores, test_nll, val_mmd, timed_cosine, tuple(caveats), where)
