"""Class labels as network inputs: the one-hot code of y, appended to what a conditional network reads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def one_hot(labels: Tensor | None, n_classes: int) -> Tensor:
    """(N,) integer labels → (N, n_classes) float one-hot codes; a readable error when a model gets no labels."""
    if labels is None:
        raise ValueError("This model is conditional: pass the batch's class labels (labels=...).")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"Class labels must lie in 0..{n_classes - 1}.")
    return F.one_hot(labels.long(), n_classes).float()


def cycle_labels(n: int, n_classes: int, device: torch.device) -> Tensor:
    """0, 1, ..., n_classes − 1, 0, 1, ...: a grid of n samples shows every class in order."""
    return torch.arange(n, device=device) % n_classes


def join(h: Tensor, condition: Tensor | None) -> Tensor:
    """A network's input with the condition vector, if any, appended: [h, c]."""
    return h if condition is None else torch.cat([h, condition], dim=-1)
