"""Mode coverage makes mode collapse a number: the data reach all eight modes, a collapsed sampler one, and data sets
without separate Gaussian modes have no count."""

from __future__ import annotations

import numpy as np
import torch

from dgm_core.data import load_dataset
from dgm_core.data.toy2d import mixture_modes
from dgm_core.inspect.modes import mode_coverage


def test_the_data_cover_every_mode_about_equally() -> None:
    coverage = mode_coverage(load_dataset("8gaussians").test[:2000], "8gaussians")
    assert coverage.covered == coverage.modes == 8
    assert all(0.09 < share < 0.16 for share in coverage.shares)  # a fair share is 1/8 = 0.125


def test_a_sampler_collapsed_onto_one_mode_covers_one() -> None:
    centres, std = mixture_modes("8gaussians")
    collapsed = centres[3] + std * np.random.default_rng(0).standard_normal((600, 2))
    coverage = mode_coverage(collapsed, "8gaussians")
    assert coverage.covered == 1 and coverage.shares[3] > 0.95


def test_a_mode_needs_a_quarter_of_its_fair_share_to_count() -> None:
    centres, _ = mixture_modes("8gaussians")
    few = np.concatenate([np.repeat(centres[:7], 100, axis=0), np.repeat(centres[7:], 10, axis=0)])  # 10 of 710
    assert mode_coverage(few, "8gaussians").covered == 7


def test_sets_without_separate_modes_have_no_count() -> None:
    assert mode_coverage(torch.zeros(10, 2), "moons") is None
