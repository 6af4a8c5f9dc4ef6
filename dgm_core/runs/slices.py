"""A run trains a slice at a time: what a slice changed (``SliceReport``), what it means to whoever drives the run
(``Progress``), and what travels to a worker process that trains a replica of it (``Shipment``; the process itself
is ``dgm_core.serve``'s). A slice trained here and a slice trained in a worker give the same report, and ``Run``
applies both in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from torch import Tensor

Phase = Literal["ready", "training", "stopping", "done", "stopped", "diverged", "failed", "interrupted"]
PHASES: tuple[Phase, ...] = ("ready", "training", "stopping", "done", "stopped", "diverged", "failed", "interrupted")
ACTIVE: tuple[Phase, ...] = ("training", "stopping")


def resting_message(phase: Phase, step: int, summary: str) -> str:
    """What the page says of a run that does not train (read from a file, or interrupted), from its phase, step and
    the ``summary`` of its scores: never a file's own words."""
    return {
        "ready": "",
        "done": summary,
        "stopped": summary,
        "diverged": f"Training diverged at step {step}. {summary}",
        "failed": f"Training failed at step {step}. {summary}",
        "interrupted": f"Interrupted at step {step} while it trained; Continue resumes from there. {summary}",
    }[phase]


@dataclass
class Progress:
    """What one ``Run.advance`` changed: steps taken, whether new scores or samples arrived, whether the run holds
    its whole current training state (weights, optimizers, random state: worth saving), whether it ended."""

    steps: int = 0
    scores: bool = False
    samples: bool = False
    done: bool = False
    state: bool = False


@dataclass
class SliceReport:
    """What one slice of training changed, for the run that shows it to apply (``Run._apply``). From a worker it also
    carries the model's weights (with fresh samples) and, now and then, the trainer's whole state."""

    steps: int
    scores: bool
    samples_changed: bool
    done: bool
    phase: Phase
    message: str
    step: int
    elapsed_s: float
    steps_per_s: float
    losses: tuple[list[int], dict[str, list[float]]]  # the slice's loss points: steps, and values per term
    samples: Tensor | None = None
    weights: dict[str, Tensor] | None = field(default=None, repr=False)  # the model's, with fresh samples
    state: tuple[dict[str, Tensor], dict] | None = field(default=None, repr=False)  # Trainer.state(), now and then


@dataclass
class Shipment:
    """What a worker needs to build a replica of a run and start it where the run stands (``Run.replica``)."""

    spec: dict  # RunSpec.to_json()
    device: str
    n_samples: int
    schedule: dict  # the run's TrainConfig overrides
    state: tuple[dict[str, Tensor], dict]  # Trainer.state()
    steps: int | None  # Run.start's arguments
    max_seconds: float | None
    dataset: object | None = None  # a user's own Dataset (other processes do not have it registered)


class WorkerError(RuntimeError):
    """The worker process failed to do what was asked (the message says why), or it is gone."""


class Worker(Protocol):
    """A process that trains replicas of runs (``dgm_core.serve.training_process.TrainingProcess``): ``start`` a
    replica from a ``Shipment``, ``advance`` it one slice (a ``SliceReport``), hand over its ``state``, ``drop`` it."""

    def call(self, command: str, key: int, *args: object) -> object: ...
