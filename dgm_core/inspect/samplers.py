"""What a sampler's number of network passes buys: draw with each choice a model offers, time it, and put the samples
to the two-sample test against held-out data (``evaluation.mmd_test``). For models with ``capabilities.denoising``.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor

from dgm_core.learn.evaluation import mmd_test
from dgm_core.learn.seeding import forked
from dgm_core.models.abilities import Denoising, ability
from dgm_core.models.base import GenerativeModel

LEVEL = 0.05  # the test's significance level


@dataclass(frozen=True)
class SamplerTrial:
    passes: int
    seconds: float  # wall time to draw the samples
    mmd: float  # MMD² between the samples and the test items
    p_value: float  # of H₀: the samples and the test items come from one distribution

    @property
    def indistinguishable(self) -> bool:
        """The test keeps H₀ at the ``LEVEL``: it cannot tell these samples from the test items."""
        return self.p_value >= LEVEL


def sampler_trials(
    model: GenerativeModel, test: Tensor, n: int = 500, lock: AbstractContextManager | None = None, seed: int = 0
) -> list[SamplerTrial]:
    """For each of ``model.sampler_choices``: n samples drawn with that many passes, every draw from the same seed
    (the same starting noise, so only the passes differ), timed, then tested against the first n ``test`` items.
    ``lock`` is held while the model draws, not while the tests run."""
    drawn = []
    denoiser = ability(model, Denoising)
    with lock or nullcontext(), forked(model.device):
        model.eval()
        for passes in denoiser.sampler_choices:
            torch.manual_seed(seed)
            start = time.perf_counter()
            samples = denoiser.sample_with(n, passes).cpu()
            drawn.append((passes, time.perf_counter() - start, samples))
    reference = test[:n].cpu()
    return [SamplerTrial(passes, seconds, *mmd_test(samples, reference)) for passes, seconds, samples in drawn]
