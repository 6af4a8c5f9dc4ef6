"""How a run trains: its steps, learning rate and schedule, batch size, seed, evaluation and sampling clocks, and
which weights it keeps (``TrainConfig``), each checked with a sentence a user can act on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from dgm_core.models.entries import LR_SCHEDULES, LrSchedule

Keep = Literal["best", "final"]  # the weights a run ends with: best on validation, or the final ones
KEEPS: tuple[str, ...] = get_args(Keep)


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    eval_every_s: float | None = 1.0  # evaluate by the trainer's busy clock (and at doubling step counts)…
    eval_every_steps: int | None = None  # …or every so many steps (deterministic, for tests)
    sample_every_s: float | None = 0.3  # fresh samples for display, by the busy clock
    n_samples: int = 1000
    max_eval_items: int | None = None  # held-out items per split; None: EVAL_ITEMS for the kind of data
    lr_schedule: LrSchedule = "constant"  # cosine: lr · ½(1 + cos π t), t = step / steps, restarting
    keep: Keep = "best"  # the weights a run ends with: best on validation, or the final ones

    def check(self) -> None:
        """Raise ValueError with a readable message for settings that cannot train."""
        if not 1 <= self.steps <= 1_000_000:
            raise ValueError("Steps must be between 1 and 1,000,000.")
        if not (0 < self.lr <= 1.0) or not math.isfinite(self.lr):
            raise ValueError("The learning rate must be a number in (0, 1]; try 1e-3.")
        if not 2 <= self.batch_size <= 65_536:
            raise ValueError("The batch size must be between 2 and 65,536.")
        if self.eval_every_steps is not None and self.eval_every_steps < 1:
            raise ValueError("Evaluate every 1 or more steps (or set eval_every_steps to None).")
        if self.n_samples < 1 or (self.max_eval_items is not None and self.max_eval_items < 2):
            raise ValueError("Draw at least 1 sample and evaluate on at least 2 items.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError("The learning-rate schedule must be 'constant' or 'cosine'.")
        if self.keep not in KEEPS:
            raise ValueError("Keep the 'best' weights (on validation) or the 'final' ones.")

    def lr_factor(self, step: int) -> float:
        """The learning rate after ``step`` steps as a fraction of ``lr``: 1 throughout, or a cosine from 1 down to 0
        over ``steps`` steps that restarts when training continues past them (Loshchilov & Hutter, 2017)."""
        if self.lr_schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step % self.steps) / self.steps))
