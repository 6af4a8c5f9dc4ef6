"""The learning-rate schedule: constant, or a cosine from lr to 0 over the steps (restarting) or over a time budget."""

from __future__ import annotations

import math

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.learn.train_config import TrainConfig
from dgm_core.learn.training import Trainer
from dgm_core.models.registry import build_model

torch.set_num_threads(1)


def test_cosine_falls_from_one_to_zero_over_the_steps_and_restarts():
    config = TrainConfig(steps=100, lr_schedule="cosine")
    factors = [config.lr_factor(step) for step in range(201)]
    assert factors[0] == 1.0 and factors[50] == pytest.approx(0.5) and factors[99] < 0.001
    assert all(b < a for a, b in zip(factors[:99], factors[1:100]))
    assert factors[100:] == factors[:101]


def test_constant_schedule_keeps_the_learning_rate():
    config = TrainConfig(steps=100)
    assert {config.lr_factor(step) for step in (0, 50, 99, 1000)} == {1.0}


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(lr_schedule="linear").check()


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_trainer_steps_the_optimiser_learning_rate_along_the_schedule(schedule):
    data = load_dataset("moons")
    config = TrainConfig(steps=8, lr=0.01, batch_size=16, eval_every_steps=8, sample_every_s=None, lr_schedule=schedule)
    trainer = Trainer(build_model("RealNVP", data.spec, hidden=8), data, config)
    (optimizer,) = trainer.optimizers
    seen = [optimizer.param_groups[0]["lr"] for event in trainer.run() if event.losses]  # the rate the next step uses
    assert seen == pytest.approx([0.01 * config.lr_factor(step) for step in range(1, 9)])


def test_a_cosine_run_with_a_time_budget_falls_to_zero_over_that_budgets_training_time():
    data = load_dataset("moons")
    config = TrainConfig(steps=10, lr=0.01, batch_size=16, eval_every_s=None, sample_every_s=None, lr_schedule="cosine")
    trainer = Trainer(build_model("RealNVP", data.spec, hidden=8), data, config)
    (optimizer,) = trainer.optimizers
    seen = []
    for event in trainer.run(steps=1_000_000, max_seconds=0.5):  # far more steps than the time allows
        if event.losses:
            progress = min(1.0, trainer.elapsed_s / 0.5)
            seen.append((optimizer.param_groups[0]["lr"], 0.005 * (1 + math.cos(math.pi * progress))))
    assert len(seen) > 20  # not the step schedule: that would restart every 10 steps
    assert all(lr == pytest.approx(expected) for lr, expected in seen)
    assert seen[-1][0] < 1e-4 and all(b[0] <= a[0] for a, b in zip(seen, seen[1:]))
