"""The Likelihood tab's logic without a browser: every test item scored (and scored once per set of weights, before
the click when a user picks the run), out-of-distribution sets, the importance-weighted bound, and inpainting."""

from __future__ import annotations

import threading

import gradio as gr
import numpy as np
import pytest
import torch

from app.draw import figures
from app.page.session import RunView
from app.tabs import inpaint, item_scores
from app.tabs import likelihood as likelihood_tab
from dgm_core.data import load_dataset
from dgm_core.lecture.presets import PRESETS, open_preset
from dgm_core.models.registry import build_model, models_for
from tests.app_helpers import CPU, Session, picture_in, trained

torch.set_num_threads(1)


# --- per-item scores ----------------------------------------------------------------------------------------------


def test_item_scores_rank_test_items_and_score_out_of_distribution_sets_of_the_same_format():
    run = trained(Session(), "digits", "MADE", 40)
    scores = item_scores.item_scores(run)
    assert scores.test.shape == (len(run.data.test),)
    assert torch.equal(scores.items, run.data.test)  # the scored items themselves, for the page to show
    assert scores.test[scores.most_likely].max() <= scores.test[scores.least_likely].min()
    assert {"inverted test items", "uniform noise"} <= set(scores.others)
    assert scores.others["uniform noise"].mean() > scores.test.mean()  # noise is far less likely than digits
    means = dict((row[0], row[1]) for row in item_scores.ood_table(scores))
    assert means["test data (in distribution)"] == pytest.approx(scores.test.mean(), abs=1e-3)


def test_a_model_of_mnist_is_scored_beside_out_of_distribution_items_of_28x28():
    run = trained(Session(), "mnist", "NADE", 2, hidden=8)
    scores = item_scores.item_scores(run)
    assert set(scores.others) == {"shapes", "inverted test items", "mirrored test items", "uniform noise", "blank",
                                  "constant grey"}  # fmt: skip
    assert all(np.isfinite(values).all() for values in scores.others.values())


def test_item_scores_on_a_large_2d_test_split_stop_at_what_a_browser_can_draw():
    run = trained(Session(), "moons", "MADE", 2)
    scores = item_scores.item_scores(run)
    assert len(run.data.test) > item_scores.SCORED_ITEMS == len(scores.test) == len(scores.items)
    assert not scores.others  # out-of-distribution sets exist only for grey-level images


def test_the_importance_weighted_bound_tightens_with_k():
    run = trained(Session(), "digits", "VAE", 40)
    ks, values = item_scores.iwae_curve(run, 50)
    assert ks[0] == 1 and ks[-1] == 50 and values[-1] < values[0]


def test_the_same_weights_opened_in_many_browsers_are_scored_item_by_item_once(monkeypatch):
    preset = PRESETS["likelihood-surprise"]
    first, second = RunView(open_preset(preset, CPU)), RunView(open_preset(preset, CPU))
    calls = []
    monkeypatch.setattr(item_scores, "_score", lambda run: calls.append(run) or object())
    item_scores._SCORED.clear()
    assert item_scores.item_scores(first) is item_scores.item_scores(second) and len(calls) == 1
    with torch.no_grad():
        next(second.model.parameters()).add_(1.0)  # trained further: other weights, scored anew
    assert item_scores.item_scores(second) is not item_scores.item_scores(first) and len(calls) == 2


def test_a_run_picked_on_the_likelihood_tab_is_scored_before_its_score_click(monkeypatch):
    session = Session()
    run = trained(session, "moons", "MADE", 2)
    scored = threading.Event()
    real_score = item_scores._score
    monkeypatch.setattr(item_scores, "_score", lambda view: scored.set() or real_score(view))
    item_scores._SCORED.clear()
    likelihood_tab.choose_run(session, run.id)  # the user picks the run
    assert scored.wait(timeout=60)  # scoring began with no click
    calls = []
    monkeypatch.setattr(item_scores, "_score", lambda view: calls.append(view))
    histogram, *_ = likelihood_tab.score_items(session, run.id)
    assert calls == [] and histogram is not None  # the click found the scores made for the choice


def test_a_score_click_never_waits_behind_other_pages_chosen_runs(monkeypatch):
    session = Session()
    chosen, clicked = trained(session, "moons", "MADE", 2), trained(session, "moons", "NICE", 2)
    item_scores._SCORED.clear()
    busy = threading.Event()
    item_scores._SOON.submit(busy.wait, 60)  # the background line is held up…
    item_scores.score_soon(chosen)  # … with another page's choice waiting in it
    assert item_scores.item_scores(clicked).test.shape == (len(clicked.data.test[: item_scores.SCORED_ITEMS]),)
    busy.set()
    assert item_scores.item_scores(chosen) is not None  # the choice is scored once the line moves


def test_the_gallerys_pinned_scores_outlive_every_other_run_scored(monkeypatch):
    session = Session()
    pinned, *others = [trained(session, "moons", model, 2) for model in ("MADE", "NICE", "RealNVP", "MAF")]
    monkeypatch.setattr(item_scores, "SCORED_KEPT", 1)
    item_scores._SCORED.clear()
    first = item_scores.item_scores(pinned, pin=True)
    for run in others:
        item_scores.item_scores(run)
    assert len(item_scores._SCORED) == 2 and item_scores.item_scores(pinned) is first


# --- inpainting ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", inpaint.IMAGE_MASKS)
def test_each_mask_hides_part_of_an_item_and_completions_keep_the_rest(kind):
    session = Session()
    run = trained(session, "digits", "MADE", 5)
    observed = inpaint.observed_mask(kind, run.data_spec.shape)
    assert 0 < observed.sum() < observed.numel()
    x = run.data.test[4:5].repeat(3, 1, 1, 1)
    filled = run.model.inpaint(x, observed.expand_as(x))
    assert torch.equal(filled[observed.expand_as(x)], x[observed.expand_as(x)])
    figure, said = inpaint.complete(session, run.id, 4, kind, 0)
    assert said.startswith("Test item 4")  # the item, what the model sees, and fifteen completions as one picture
    image = picture_in(figure)
    amber = (image == figures.HIDDEN_RGB).all(axis=-1)
    side = run.data_spec.shape[-1] * inpaint.SCALE  # an item's width on screen: readable, not a thumbnail
    assert image.ndim == 3 and image.shape[0] >= 3 * side
    assert amber.sum() == (~observed).sum() * inpaint.SCALE**2  # exactly the hidden pixels of "what it sees"


def test_models_that_cannot_inpaint_say_so_in_words_and_change_nothing():
    """No bare "Error" badge: the note says why, and the picture and plot are left as they were."""
    session = Session()
    run = trained(session, "digits", "VAE", 2)
    figure, said = inpaint.complete(session, run.id, 0, inpaint.IMAGE_MASKS[0], 0)
    assert said.startswith("**Cannot complete:**") and "cannot complete partly observed items" in said
    assert isinstance(figure, type(gr.skip()))


def test_only_models_with_an_unconditional_importance_weighted_bound_offer_it():
    digits = load_dataset("digits")
    offering = {
        name for name in models_for(digits) if build_model(name, digits.spec, hidden=8).capabilities.importance_weighted
    }
    assert offering == {"VAE", "IWAE", "β-VAE"}
