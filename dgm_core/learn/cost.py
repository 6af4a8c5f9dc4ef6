"""What a model costs, counted before a run trains: its parameters (on the meta device), and the floating-point
operations of one training step, from torch's
own per-operator formulas (the table behind ``torch.utils.flop_counter``), on a copy of the model and two items.

Counting runs the step once on a throwaway copy (so the run's own weights and random stream are untouched) under a
dispatch mode that adds up the FLOPs of every matrix product and convolution, forward and backward alike — also
inside ``torch.autograd.grad`` (an energy model's Langevin chain), where ``FlopCounterMode``'s module tracking fails.
Results are cached per configuration: a second Train click of the same model pays nothing, and threads that ask at
once (every browser reloading its runs after a restart) wait for one count instead of each making its own.
"""

from __future__ import annotations

import copy
import threading
from functools import lru_cache

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from dgm_core.data import load_dataset
from dgm_core.models.base import GenerativeModel
from dgm_core.models.registry import build_model

COUNTED_ITEMS = 2
_COUNTING = threading.Lock()  # one count at a time: a second asker finds the first's answer cached


class _FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of the operators torch has formulas for (matrix products, convolutions, attention)."""

    formulas = FlopCounterMode().flop_registry

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self.formulas.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def train_step_flops(model: GenerativeModel, x: torch.Tensor, labels: torch.Tensor | None = None) -> int:
    """FLOPs of one ``train_step`` of ``model`` on the batch ``x``, run on a copy (the model is not changed)."""
    twin = copy.deepcopy(model)
    optimizers = twin.configure_optimizers(1e-3)
    with torch.random.fork_rng(), _FlopCount() as count:
        if labels is None:
            twin.train_step(x, optimizers)
        else:
            twin.train_step(x, optimizers, labels=labels)
    return count.total


@lru_cache(maxsize=256)
def parameter_count(model: str, dataset: str, hidden: int, options: tuple[tuple[str, float], ...] = ()) -> int:
    """The parameter count of a model configuration, counted on the meta device: nothing is allocated."""
    with torch.device("meta"):
        return build_model(model, load_dataset(dataset).spec, hidden, 0, **dict(options)).num_parameters()


def flops_per_item(model: str, dataset: str, hidden: int, options: tuple[tuple[str, float], ...] = ()) -> float:
    """FLOPs of one training step per batch item, for this model configuration (built afresh, seed 0)."""
    with _COUNTING:
        return _counted_flops_per_item(model, dataset, hidden, options)


@lru_cache(maxsize=256)
def _counted_flops_per_item(model: str, dataset: str, hidden: int, options: tuple[tuple[str, float], ...]) -> float:
    data = load_dataset(dataset)
    built = build_model(model, data.spec, hidden, 0, **dict(options))
    labels = data.labels["train"][:COUNTED_ITEMS] if built.capabilities.conditional else None
    return train_step_flops(built, data.train[:COUNTED_ITEMS], labels) / COUNTED_ITEMS
