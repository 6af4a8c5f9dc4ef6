"""What a registry entry declares: a model's default settings per kind of data, the options users may change, and
how to build it (``registry.MODELS`` lists the entries)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from dgm_core.data import DataKind
from dgm_core.models.base import GenerativeModel

LrSchedule = Literal["constant", "cosine"]  # constant, or cosine to 0 over the steps (or the time budget)
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)


@dataclass(frozen=True)
class TrainingDefaults:
    """What the Train tab fills in for a model on a kind of data: the steps, the learning rate and its schedule
    (constant, or cosine to 0 over the steps or the time budget), the batch size and the hidden width."""

    steps: int
    lr: float
    batch_size: int
    hidden: int
    schedule: LrSchedule = "constant"


@dataclass(frozen=True)
class ModelOption:
    """A numeric constructor argument offered to users (e.g. a β-VAE's β): its label, range and default per kind of
    data."""

    label: str
    minimum: float
    maximum: float
    step: float
    defaults: dict[DataKind, float]
    info: str = ""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    description: str
    make: Callable[..., GenerativeModel]  # (spec, hidden=...) -> model
    defaults: dict[DataKind, TrainingDefaults]  # the kinds of data the model works on, with settings for each
    needs_labels: bool = False  # conditional models train on (item, class label) pairs
    options: dict[str, ModelOption] = field(default_factory=dict)  # constructor settings a user may change
    representative: bool = False  # the family's model to show first (e.g. in a comparison of families)
