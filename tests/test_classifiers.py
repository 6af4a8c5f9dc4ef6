"""Lecture 1, discriminative against generative: Bayes' rule on a class-conditional model gives probabilities, a
mask that hides nothing changes nothing, naive Bayes is Bayes' rule on independent pixels, and with pixels hidden the
deep generative classifier, which marginalises them, beats both naive Bayes and the discriminative classifier that
must impute them (on the shipped CVAE and the 359 test digits)."""

from __future__ import annotations

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.lecture.classifiers import (
    NaiveBayes,
    accuracy,
    accuracy_vs_missing,
    bayes_probs,
    fit_logistic,
    fit_naive_bayes,
    hide_pixels,
)
from dgm_core.lecture.presets import PRESETS, open_companions, open_preset
from dgm_core.models.labels import one_hot
from dgm_core.models.registry import build_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def logistic(digits):
    return fit_logistic(digits)


@pytest.fixture(scope="module")
def naive_bayes(digits):
    return fit_naive_bayes(digits)


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


def test_marginalising_no_pixels_estimates_the_full_likelihood(digits) -> None:
    """With nothing hidden, log p(x_obs | y) is log p(x | y): the two estimators (each with its own proposal) agree
    once they draw enough samples."""
    model = build_model("CVAE", digits.spec).eval()
    x, condition = digits.test[:16], one_hot(digits.labels["test"][:16], 10)
    everything = torch.ones(16, 64, dtype=torch.bool)
    with torch.no_grad():
        full = model.iwae_bound(x, 2048, condition)
        marginal = model.observed_log_prob(x, condition, everything, 2048)
    torch.testing.assert_close(marginal, full, atol=0.1, rtol=0)


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


def test_naive_bayes_is_bayes_rule_on_pixels_independent_given_the_class() -> None:
    """Two binary pixels, two classes, worked by hand: p(y | x) ∝ p(y) p(x_1 | y) p(x_2 | y); a hidden pixel drops
    out of the product."""
    p_on = torch.tensor([[0.9, 0.2], [0.3, 0.6]])  # p(x_d = 1 | y), pixel d by row, class y by column
    log_pixel = torch.stack([1 - p_on, p_on], dim=1).log()  # (D, L, C)
    model = NaiveBayes(log_pixel, torch.tensor([0.25, 0.75]).log(), smoothing=0.0)
    x = torch.tensor([[1.0, 0.0]])
    joint = torch.tensor([0.25 * 0.9 * 0.7, 0.75 * 0.2 * 0.4])
    torch.testing.assert_close(model.probs(x), (joint / joint.sum())[None])
    first_only = torch.tensor([0.25 * 0.9, 0.75 * 0.2])
    torch.testing.assert_close(model.probs(x, torch.tensor([[True, False]])), (first_only / first_only.sum())[None])


def test_naive_bayes_counts_digits_well_enough_to_be_a_baseline(digits, naive_bayes) -> None:
    assert accuracy(naive_bayes.probs(digits.test), digits.labels["test"]) > 0.85
    assert naive_bayes.smoothing > 0  # a level never seen in a class's training pixels is not impossible


def test_the_deep_generative_classifier_beats_naive_bayes_and_logistic_regression_once_pixels_go_missing(
    digits, logistic, naive_bayes, shipped_cvae
) -> None:
    """Lecture 1's claim on the 359 test digits: Bayes' rule on the CVAE is at least as right as naive Bayes at every
    share of pixels hidden, and than logistic regression (which must impute them) from a quarter hidden on."""
    curve = accuracy_vs_missing(shipped_cvae, logistic, naive_bayes, digits.test, digits.labels["test"])
    assert curve.fractions == (0.0, 0.25, 0.5, 0.75, 0.9)
    assert curve.generative[0] > 0.9 and curve.discriminative[0] > 0.9
    assert all(deep >= naive for deep, naive in zip(curve.generative, curve.naive_bayes))
    assert all(deep >= imputed for deep, imputed in zip(curve.generative[1:], curve.discriminative[1:]))
    assert curve.generative[2] > curve.discriminative[2] + 0.05


@pytest.mark.parametrize("which", [0, 1, 2], ids=["CVAE", "cGAN", "cMADE"])
def test_conditional_samples_are_recognised_as_their_class_far_above_chance(which, logistic) -> None:
    preset = PRESETS["conditional-generation"]
    run = [open_preset(preset), *open_companions(preset)][which]
    for label in (0, 3, 7):
        samples = run.draw(40, seed=0, label=label)
        assert accuracy(logistic.probs(samples), torch.full((40,), label)) > 0.6  # chance is 0.1
