"""A run's loss curve: the training losses by step, each term its own curve, bounded however long the run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_LOSS_POINTS = 2000  # the loss curve keeps at most this many points, averaging neighbours as it grows


@dataclass
class LossCurve:
    """The training losses by step, each term its own curve; beyond ``MAX_LOSS_POINTS`` neighbours are averaged in
    pairs (older points cover two steps, then four …), so a run of any length keeps a bounded, readable curve."""

    steps: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, step: int, losses: Mapping[str, float]) -> None:
        self.steps.append(float(step))
        for name, value in losses.items():
            self.terms.setdefault(name, [math.nan] * (len(self.steps) - 1)).append(value)
        if len(self.steps) > MAX_LOSS_POINTS:
            self.steps = _pairs(self.steps)
            self.terms = {name: _pairs(values) for name, values in self.terms.items()}

    def to_json(self) -> dict:
        return {"steps": self.steps, "terms": self.terms}

    @classmethod
    def from_json(cls, data: object) -> LossCurve:
        if not isinstance(data, dict) or set(data) != {"steps", "terms"}:
            raise ValueError("a loss curve needs exactly steps and terms")
        steps, terms = data["steps"], data["terms"]
        if not isinstance(steps, list) or not isinstance(terms, dict) or len(terms) > 8:
            raise ValueError("a loss curve's steps must be a list and its terms at most eight named lists")
        columns = [steps, *terms.values()]
        if len(steps) > MAX_LOSS_POINTS or not all(isinstance(c, list) and len(c) == len(steps) for c in columns):
            raise ValueError(f"a loss curve holds at most {MAX_LOSS_POINTS} points, equally many per term")
        numbers = [v for column in columns for v in column]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            raise ValueError("a loss curve holds numbers only")
        if not all(isinstance(name, str) and 0 < len(name) <= 40 for name in terms):
            raise ValueError("a loss curve's terms need short names")
        return cls([float(v) for v in steps], {k: [float(v) for v in c] for k, c in terms.items()})


def _pairs(values: list[float]) -> list[float]:
    """Average neighbours in pairs (a last odd value stays as it is)."""
    merged = [(a + b) / 2 for a, b in zip(values[0::2], values[1::2])]
    return merged + values[len(merged) * 2 :]
