"""Brief training runs with the registry's defaults: every family learns, and no likelihood is too good to be true.

On 2D data the entropy H of the generator bounds every honest test NLL from below (cross-entropy ≥ entropy), and the
best single Gaussian bounds from above what a model that learned anything must reach:  H ≤ NLL_model < NLL_Gaussian.
"""

from __future__ import annotations

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import baseline_nll, mean_log_prob, mmd
from dgm_core.learn.train_config import TrainConfig
from dgm_core.learn.training import Trainer
from dgm_core.models.registry import MODELS, build_model, defaults_for
from tests.core_helpers import likelihood_of

torch.set_num_threads(1)

STEPS = 400
EVAL_ITEMS = 2000  # held-out items per split: the test NLL's standard error is ≈ 0.02 nats on 2D data
TOLERANCE = 0.05  # nats: a few standard errors of a 2,000-item test NLL


def _train(name: str, dataset: str, steps: int = STEPS) -> Trainer:
    data = load_dataset(dataset)
    defaults = defaults_for(name, data.spec)
    model = build_model(name, data.spec, hidden=defaults.hidden, seed=0)
    config = TrainConfig(
        steps=steps,
        lr=defaults.lr,
        batch_size=defaults.batch_size,
        seed=0,
        eval_every_s=None,
        eval_every_steps=steps // 2,
        sample_every_s=None,
        max_eval_items=EVAL_ITEMS,
    )
    trainer = Trainer(model, data, config)
    for _ in trainer.run():
        pass
    return trainer


def _likelihood_models(dataset: str) -> list[str]:
    return [name for name in MODELS if likelihood_of(name, dataset) not in (None, "none")]


@pytest.mark.slow
@pytest.mark.parametrize("name", _likelihood_models("moons"))
def test_likelihood_models_beat_a_gaussian_on_moons_but_not_the_entropy(name):
    data = load_dataset("moons")
    trainer = _train(name, "moons")
    test_nll = trainer.best.scores.nll["test"]
    _, gaussian_nll = baseline_nll(data)
    assert test_nll < gaussian_nll - 0.1, f"{name}: {test_nll:.3f} nats, single Gaussian {gaussian_nll:.3f}"
    assert test_nll > data.spec.entropy_nats - TOLERANCE, f"{name}: {test_nll:.3f} nats is below the entropy"


# Bounds too loose to beat independent pixels in a short run, whatever the network learns. DDPM's discrete variational
# bound with T = 100 steps stays above it even with the exact denoiser for independent pixels (≈ 130 nats against
# 108): the gap is the bound's, not the model's. These models must still learn: their bound must halve.
LOOSE_BOUNDS_ON_DIGITS = {"DDPM"}
# The models with the slowest steps on digits already beat independent pixels by more than the nat asked after 200
# steps (by 3.4–15 nats: PixelCNN 15, NSF 14, IWAE 7, the transformer 6.6, RealNVP 5, the VDM 3.4), in half the time.
STEPS_ON_DIGITS = dict.fromkeys(["PixelCNN", "NSF", "IWAE", "Transformer", "RealNVP", "VDM"], 200)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in _likelihood_models("digits") if n not in LOOSE_BOUNDS_ON_DIGITS])
def test_likelihood_models_beat_independent_pixels_on_digits(name):
    data = load_dataset("digits")
    trainer = _train(name, "digits", STEPS_ON_DIGITS.get(name, STEPS))
    _, independent_nll = baseline_nll(data)
    assert trainer.best.scores.nll["test"] < independent_nll - 1.0  # nats per image


@pytest.mark.parametrize("name", sorted(LOOSE_BOUNDS_ON_DIGITS))
def test_loose_bounds_on_digits_still_halve_in_a_short_run(name):
    data = load_dataset("digits")
    untrained = build_model(name, data.spec, hidden=defaults_for(name, data.spec).hidden, seed=0).eval()
    with torch.no_grad():
        before = -mean_log_prob(untrained, data.test)
    after = _train(name, "digits").best.scores.nll["test"]
    assert after < before / 2, f"{name}: {before:.1f} → {after:.1f} nats"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODELS if likelihood_of(n, "moons") == "none"])
def test_implicit_models_move_toward_the_data(name):
    """Without a likelihood, progress is a falling two-sample distance: MMD² to test data drops by a factor of 3
    (in 250 steps each drops it 15–100-fold)."""
    data = load_dataset("moons")
    test = data.test[:1000]

    def distance(model):
        torch.manual_seed(99)
        with torch.no_grad():
            return mmd(model.sample(1000), test)

    before = distance(build_model(name, data.spec, hidden=defaults_for(name, data.spec).hidden, seed=0))
    after = distance(_train(name, "moons", steps=250).model)
    assert after < before / 3, f"{name}: MMD² {before:.4f} → {after:.4f}"
