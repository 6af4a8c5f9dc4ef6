"""The learning-rate schedule of TrainConfig: constant, or a cosine from lr to 0 over ``steps`` that restarts."""

from __future__ import annotations

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.models.registry import build_model
from dgm_core.training import TrainConfig, Trainer

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
