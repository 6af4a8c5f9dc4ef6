"""What defines a run: which model on which data, and how to train it (``RunSpec``), checked before anything is
built — settings a user can fix are refused with a sentence saying how, and so are models too big or too slow for a
shared server (``MAX_PARAMETERS``, ``MAX_STEP_FLOPS``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from dgm_core.data import dataset_names, is_known, load_dataset
from dgm_core.data.user import content_hash
from dgm_core.learn.cost import flops_per_item, parameter_count
from dgm_core.learn.train_config import Keep, TrainConfig
from dgm_core.models.base import GenerativeModel
from dgm_core.models.entries import LrSchedule
from dgm_core.models.registry import MODELS, build_model, defaults_for, unsupported_reason

MAX_SEED = 2**32 - 1
MAX_PARAMETERS = 4_000_000  # beyond this a model's weights, optimizer moments and snapshots crowd a shared server
MAX_STEP_FLOPS = 20e9  # ≈ 0.5 s per step on one core of this class of machine: Stop would lag behind


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run: which model on which data, and how to train it."""

    dataset: str
    model: str
    steps: int
    lr: float
    batch_size: int
    hidden: int
    seed: int = 0
    options: Mapping[str, float] = field(default_factory=dict)  # the model's declared options (e.g. β)
    keep: Keep = "best"
    lr_schedule: LrSchedule = "constant"

    @classmethod
    def defaults(cls, model: str, dataset: str, **changes) -> RunSpec:
        """The registry's recommended settings for ``model`` on ``dataset``'s kind of data, with ``changes``."""
        d = defaults_for(model, load_dataset(dataset).spec)
        return replace(cls(dataset, model, d.steps, d.lr, d.batch_size, d.hidden, lr_schedule=d.schedule), **changes)

    def config(self, n_samples: int = 1000, **changes) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            lr=self.lr,
            batch_size=self.batch_size,
            seed=self.seed,
            n_samples=n_samples,
            keep=self.keep,
            lr_schedule=self.lr_schedule,
            **changes,
        )

    def check(self) -> None:
        """ValueError with a sentence a user can act on, for a spec that cannot train here (before anything is
        built): unknown names, a model that does not fit the data, values out of range, undeclared options."""
        if content_hash(self.dataset) is not None and not is_known(self.dataset):
            raise ValueError(
                f"This run is on your own data set {self.dataset!r}, which this server does not have: add that data "
                "again (Train tab, Your own data; the same data gets the same name), then retry."
            )
        if not is_known(self.dataset):
            raise ValueError(f"Choose a data set: one of {', '.join(dataset_names())}.")
        if self.model not in MODELS:
            raise ValueError(f"Choose a model: one of {', '.join(MODELS)}.")
        reason = unsupported_reason(self.model, load_dataset(self.dataset))
        if reason is not None:
            raise ValueError(reason)
        if not 4 <= self.hidden <= 4096:
            raise ValueError("The hidden width must be between 4 and 4,096.")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED:,}.")
        declared = MODELS[self.model].options
        for name, value in self.options.items():
            if name not in declared:
                raise ValueError(f"{self.model} has no option {name!r}.")
            option = declared[name]
            if not (math.isfinite(value) and option.minimum <= value <= option.maximum):
                raise ValueError(f"{option.label} must be between {option.minimum:g} and {option.maximum:g}.")
        self.config().check()

    def check_cost(self) -> None:
        """ValueError naming the limit when the model is too large, or a step too costly, to train live here:
        parameters are counted on the meta device (nothing allocated), FLOPs per step once per configuration."""
        parameters = self.parameter_count()
        if parameters > MAX_PARAMETERS:
            raise ValueError(
                f"{self.model} with hidden width {self.hidden} has {parameters:,} parameters; this playground trains "
                f"at most {MAX_PARAMETERS:,} live. {self._advice('Try a smaller hidden width.')}"
            )
        flops = self.step_flops()
        if flops > MAX_STEP_FLOPS:
            raise ValueError(
                f"One training step of {self.model} (hidden width {self.hidden}, batch size {self.batch_size}) costs "
                f"about {flops / 1e9:.0f} GFLOP; this playground trains at most {MAX_STEP_FLOPS / 1e9:.0f} GFLOP "
                "per step live (about half a second on one core). "
                + self._advice("Try a smaller batch or hidden width.")
            )

    def _advice(self, smaller: str) -> str:
        """What to do about a refused setting: ``smaller`` settings, unless even the least a useful setting asks of
        this model on this data (width 4, batch 16) is refused too; then other data or another model."""
        least = replace(self, hidden=4, batch_size=16)
        if least.parameter_count() <= MAX_PARAMETERS and least.step_flops() <= MAX_STEP_FLOPS:
            return smaller
        return (
            f"No hidden width or batch size fits {self.model} on {self.dataset} ({load_dataset(self.dataset).spec.dim} "
            "numbers an item): choose smaller data (e.g. digits) or another model."
        )

    def build(self, checked: bool = False) -> GenerativeModel:
        """The model, freshly initialised from the seed, after ``check`` and ``check_cost`` (unless the spec was
        ``checked`` where it came from: a worker's replica of a run the server built)."""
        if not checked:
            self.check()
            self.check_cost()
        return build_model(self.model, load_dataset(self.dataset).spec, self.hidden, self.seed, **self.options)

    def step_flops(self) -> float:
        """Floating-point operations of one training step (``dgm_core.learn.cost``; counted once per configuration)."""
        options = tuple(sorted(self.options.items()))
        return flops_per_item(self.model, self.dataset, self.hidden, options) * self.batch_size

    def parameter_count(self) -> int:
        """The model's parameter count, counted on the meta device: nothing is allocated."""
        return parameter_count(self.model, self.dataset, self.hidden, tuple(sorted(self.options.items())))

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "steps": self.steps,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "hidden": self.hidden,
            "seed": self.seed,
            "options": dict(self.options),
            "keep": self.keep,
            "lr_schedule": self.lr_schedule,
        }

    @classmethod
    def from_json(cls, data: object) -> RunSpec:
        """A spec from stored JSON, every field checked for its type and then ``check``ed: ValueError otherwise."""
        types = {
            "dataset": str,
            "model": str,
            "steps": int,
            "lr": float,
            "batch_size": int,
            "hidden": int,
            "seed": int,
            "options": dict,
            "keep": str,
            "lr_schedule": str,
        }
        if not isinstance(data, dict) or set(data) != set(types):
            raise ValueError(f"a run's settings need exactly: {', '.join(types)}")
        for name, kind in types.items():
            value = data[name]
            ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
            if not ok or isinstance(value, bool):
                raise ValueError(f"the setting {name!r} must be a {kind.__name__}")
        if len(data["options"]) > 4 or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in data["options"].items()
        ):
            raise ValueError("a run's options must map at most four names to numbers")
        spec = cls(**{**data, "lr": float(data["lr"]), "options": {k: float(v) for k, v in data["options"].items()}})
        spec.check()
        return spec
