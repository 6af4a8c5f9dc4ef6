"""Lecture 1, discriminative against generative: Bayes' rule on a class-conditional model gives probabilities, a
mask that hides nothing changes nothing, and with half the pixels hidden the classifier that marginalises them beats
the one that must impute them (on the shipped CVAE and the 359 test digits)."""

from __future__ import annotations

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.lecture.classifiers import accuracy, accuracy_vs_missing, bayes_probs, fit_logistic, hide_pixels
from dgm_core.lecture.presets import PRESETS, open_companions, open_preset
from dgm_core.models.registry import build_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def logistic(digits):
    return fit_logistic(digits)


@pytest.fixture(scope="module")
def shipped_cvae():
    return open_preset(PRESETS["discriminative-vs-generative"], rescore=False).model.eval()


def test_bayes_probabilities_sum_to_one_with_and_without_hidden_pixels(digits) -> None:
    model = build_model("CVAE", digits.spec).eval()
    x = digits.test[:20]
    for observed in (None, hide_pixels(20, 64, 0.5)):
        probs = bayes_probs(model, x, observed)
        assert probs.shape == (20, 10) and (probs >= 0).all()
        torch.testing.assert_close(probs.sum(1), torch.ones(20))


def test_marginalising_no_pixels_is_the_full_likelihood(digits) -> None:
    model = build_model("CVAE", digits.spec).eval()
    x, labels = digits.test[:16], digits.labels["test"][:16]
    everything = torch.ones(16, 64, dtype=torch.bool)
    torch.manual_seed(3)
    full = model.conditional_log_prob(x, labels)
    torch.manual_seed(3)
    marginal = model.conditional_log_prob(x, labels, everything)
    torch.testing.assert_close(marginal, full)


def test_hidden_pixels_drop_out_of_the_likelihood(digits) -> None:
    """Changing a hidden pixel leaves log p(x_obs | y) as it was; changing an observed one does not."""
    model = build_model("CVAE", digits.spec).eval()
    x, labels = digits.test[:8].clone(), digits.labels["test"][:8]
    observed = hide_pixels(8, 64, 0.5, seed=1)
    changed_hidden = x.flatten(1).where(observed, 16 - x.flatten(1)).reshape(x.shape)
    changed_seen = x.flatten(1).where(~observed, 16 - x.flatten(1)).reshape(x.shape)
    scores = []
    for items in (x, changed_hidden, changed_seen):
        torch.manual_seed(0)
        scores.append(model.conditional_log_prob(items, labels, observed))
    torch.testing.assert_close(scores[1], scores[0])
    assert not torch.allclose(scores[2], scores[0])


def test_hide_pixels_hides_the_asked_share_of_each_item_at_random() -> None:
    observed = hide_pixels(100, 64, 0.25, seed=0)
    assert (observed.sum(1) == 48).all()
    assert not torch.equal(observed[0], observed[1])
    assert torch.equal(observed, hide_pixels(100, 64, 0.25, seed=0))


def test_logistic_regression_reads_whole_digits_well_and_ignores_a_mask_that_hides_nothing(digits, logistic) -> None:
    assert accuracy(logistic.probs(digits.test), digits.labels["test"]) > 0.92
    everything = torch.ones(len(digits.test), 64, dtype=torch.bool)
    torch.testing.assert_close(logistic.probs(digits.test, everything), logistic.probs(digits.test))


def test_with_half_the_pixels_hidden_the_generative_classifier_wins(digits, logistic, shipped_cvae) -> None:
    curve = accuracy_vs_missing(shipped_cvae, logistic, digits.test, digits.labels["test"], fractions=(0.0, 0.5))
    whole, half = 0, 1
    assert curve.generative[whole] > 0.9 and curve.discriminative[whole] > 0.9
    assert curve.generative[half] > curve.discriminative[half] + 0.05


@pytest.mark.parametrize("which", [0, 1, 2], ids=["CVAE", "cGAN", "cMADE"])
def test_conditional_samples_are_recognised_as_their_class_far_above_chance(which, logistic) -> None:
    preset = PRESETS["conditional-generation"]
    run = [open_preset(preset), *open_companions(preset)][which]
    for label in (0, 3, 7):
        samples = run.draw(40, seed=0, label=label)
        assert accuracy(logistic.probs(samples), torch.full((40,), label)) > 0.6  # chance is 0.1
