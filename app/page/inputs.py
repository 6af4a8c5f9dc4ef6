"""Raw values from the page's fields, turned into numbers and run specs, or a ValueError a user can act on."""

from __future__ import annotations

import math
from typing import Any

from dgm_core.models.registry import MODELS
from dgm_core.runs.spec import RunSpec


def number(value: Any, name: str) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (got {str(value)[:40]!r}).") from None
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number.")
    return result


def whole(value: Any, name: str) -> int:
    result = number(value, name)
    if result != int(result):
        raise ValueError(f"{name} must be a whole number (got {result:g}).")
    return int(result)


def parse_spec(
    dataset: Any,
    model: Any,
    steps: Any,
    lr: Any,
    batch_size: Any,
    hidden: Any,
    seed: Any,
    option: Any = None,
    keep: Any = "best",
    schedule: Any = "constant",
) -> RunSpec:
    """A ``RunSpec`` from the Train tab's fields, each turned into the number it must be (ValueError with a sentence
    otherwise); ``option`` sets the model's first declared option. What the numbers may be is ``RunSpec.check``'s to
    say, once, when the run is built."""
    options = {}
    if model in MODELS and MODELS[model].options and option is not None:
        name, declared = next(iter(MODELS[model].options.items()))
        options = {name: number(option, declared.label)}
    return RunSpec(
        dataset=str(dataset),
        model=model,
        steps=whole(steps, "Steps"),
        lr=number(lr, "The learning rate"),
        batch_size=whole(batch_size, "The batch size"),
        hidden=whole(hidden, "The hidden width"),
        seed=whole(seed, "The seed"),
        options=options,
        keep=keep,
        lr_schedule=schedule,
    )


def seconds_budget(value: Any) -> float | None:
    """The Train tab's time budget: None for 0 (no limit), else seconds of training between 1 and 3,600."""
    seconds = number(value, "The time budget")
    if seconds == 0:
        return None
    if not 1 <= seconds <= 3600:
        raise ValueError("The time budget must be 0 (none) or between 1 and 3,600 seconds.")
    return seconds
