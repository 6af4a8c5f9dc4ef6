"""Lecture 1, generation and inference: the shipped factor reader inverts the shapes' renderer, scores as recorded
when it was made, and a VAE's latents can be set against the true factors."""

from __future__ import annotations

import math

import torch

from dgm_core.data.shapes import FACTOR_NAMES, KINDS, render
from dgm_core.lecture.inverse_graphics import (
    FactorReader,
    factor_errors,
    latents_against_factors,
    load_reader,
    train_reader,
)
from dgm_core.lecture.presets import PRESETS, open_preset, recorded_scores


def test_the_shipped_reader_reads_the_test_shapes_as_recorded() -> None:
    recorded = recorded_scores()["factor-reader"]
    errors = factor_errors(load_reader())
    for name in FACTOR_NAMES:  # stale weights read differently: remake them with python -m dgm_core.lecture.pretrain
        assert math.isclose(errors.mean_absolute[name], recorded["mean_absolute"][name], rel_tol=1e-3)
    assert errors.mean_absolute["x"] < 0.01 and errors.mean_absolute["y"] < 0.01  # image widths: < 1/6 pixel
    assert errors.mean_absolute["size"] < 0.01 and errors.kind_accuracy > 0.98


def test_the_reader_reads_back_the_factors_an_image_was_rendered_from() -> None:
    image = render("triangle", 0.6, 0.4, 0.55, 14)
    kind, factors = load_reader().read(image[None])
    assert KINDS[int(kind)] == "triangle"
    read = {name: float(values) for name, values in factors.items()}
    assert abs(read["size"] - 0.6) < 0.03 and abs(read["x"] - 0.4) < 0.03 and abs(read["y"] - 0.55) < 0.03
    assert abs(read["intensity"] - 14) < 1


def test_a_reader_trains_the_same_for_the_same_seed_and_learns() -> None:
    first, second = train_reader(steps=40), train_reader(steps=40)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b)
    untrained = FactorReader()
    untrained.factor_mean.copy_(first.factor_mean)
    assert factor_errors(first).mean_absolute["x"] < factor_errors(untrained).mean_absolute["x"]


def test_latents_against_factors_name_one_dimension_and_a_strength_per_factor() -> None:
    model = open_preset(PRESETS["generation-and-inference"], rescore=False).model
    found = latents_against_factors(model)
    assert list(found) == ["kind", *FACTOR_NAMES]
    for dim, strength in found.values():
        assert 0 <= dim < model.capabilities.latent_dim and 0.0 <= strength <= 1.0
    assert max(strength for _, strength in found.values()) > 0.5  # the β-VAE found at least one factor
