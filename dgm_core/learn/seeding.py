"""Private random streams on torch's global generator, so that runs are reproducible whatever else draws numbers.

Models draw their noise from torch's global generator (``torch.randn_like`` …). A ``RandomStream`` keeps its own
generator state: inside ``with stream:`` the global generator continues that stream, and on leaving, the stream's
new state is kept and the global generator is put back as it was. A trainer's batches, its evaluation draws and a
display sample therefore never disturb one another, even when they interleave.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import torch
from torch import Tensor

EVAL_SEED = 1234  # evaluation draws (dequantization noise, a VAE's z) are fixed so scores compare across steps


@contextmanager
def forked(device: torch.device, seed: int | None = None) -> Iterator[None]:
    """Draw inside without disturbing anyone's random stream: torch's global generators (the CPU's, and ``device``'s
    when it is a GPU) are put back as they were on leaving. Inside, the draws start from ``seed``, or from a fresh
    random seed when None (each time other draws)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is None:
            torch.seed()
        else:
            torch.manual_seed(seed)
        yield


class RandomStream:
    """A reproducible stream of random numbers, seeded once, continued each time it is entered."""

    def __init__(self, seed: int, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        self._fork: AbstractContextManager | None = None
        with self._forked():
            torch.manual_seed(seed)
            self.state = self._get()

    def _forked(self) -> AbstractContextManager:  # the generators as they were, restored on leaving
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def _get(self) -> tuple[Tensor, Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def __enter__(self) -> RandomStream:
        self._fork = self._forked()
        self._fork.__enter__()
        cpu, cuda = self.state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, self.device)
        return self

    def __exit__(self, *exc_info) -> None:
        self.state = self._get()
        fork, self._fork = self._fork, None
        fork.__exit__(*exc_info)
