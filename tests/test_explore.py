"""The explore tabs' logic without a browser: the session's runs, comparisons, the latent explorer and checkpoint
upload (the Likelihood tab's: ``test_likelihood_tab``)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from app.page import views
from app.page.session import MAX_RUNS, Backend, RunView
from app.page.session import Session as Session_
from app.tabs import compare as compare_tab
from app.tabs import compare_table, latent_explorer
from app.tabs import latent as latent_tab
from app.tabs.latent_explorer import LatentState
from app.tabs.runs import RunsView, export, upload_run
from dgm_core.learn.evaluation import item_log_probs
from dgm_core.models.registry import MODELS
from dgm_core.runs.checkpoints import CheckpointError
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import RunStore
from dgm_core.serve.comparison import ENDED, Comparison, default_models
from dgm_core.serve.scheduler import Scheduler
from tests.app_helpers import CPU, Session, picture_in, trained

torch.set_num_threads(1)
LATENT_TAB = latent_tab.LatentView(*(field.name for field in fields(latent_tab.LatentView)))  # by name
COMPARE_TAB = compare_tab.CompareView(*(field.name for field in fields(compare_tab.CompareView)))  # by name
RUNS_TAB = RunsView(*(field.name for field in fields(RunsView)))  # its outputs, by name


# --- the session's runs -------------------------------------------------------------------------------------------


def test_runs_are_numbered_listed_newest_first_and_deleted():
    session = Session()
    first, second = trained(session, "moons", "MADE", 5), trained(session, "moons", "VAE", 5)
    assert (first.id, second.id) == (1, 2)
    assert [run_id for _, run_id in session.choices()] == [2, 1]
    assert session.choices()[0][0] == "#2 VAE on moons (step 5)"
    assert session.delete(1) is first and session.find(1) is None and session.find("2") is second
    assert session.delete(99) is None and session.find("not a number") is None


def test_the_oldest_idle_runs_make_room_beyond_the_limit():
    session = Session()
    for _ in range(MAX_RUNS + 2):
        session.keep(Run(RunSpec("moons", "MADE", 5, 1e-3, 64, 8), CPU))
    assert len(session.views) == MAX_RUNS and min(session.views) == 3


def test_a_server_restart_brings_each_browsers_runs_back_and_only_its_own(tmp_path):
    alice, bob = "a" * 32, "b" * 32
    before = Backend(CPU, Scheduler(1), RunStore(tmp_path))
    page = Session_(before)
    page.attach(alice)
    trained(page, "moons", "MADE", 5)
    trained(page, "moons", "VAE", 5)
    page.close()
    after = Backend(CPU, Scheduler(1), RunStore(tmp_path))  # a new server process on the same run store
    reloaded = Session_(after)
    reloaded.attach(alice)
    assert [title for title, _ in reloaded.choices()] == ["#2 VAE on moons (step 5)", "#1 MADE on moons (step 5)"]
    stranger = Session_(after)
    assert stranger.attach(bob) == [] and stranger.choices() == []


def test_runs_kept_before_the_page_knew_its_browser_are_stored_once_it_does(tmp_path):
    backend = Backend(CPU, Scheduler(1), RunStore(tmp_path))
    page = Session_(backend)
    early = trained(page, "moons", "MADE", 5)  # a click in the page's first moments, before its token arrived
    page.current = early
    page.attach("a" * 32)
    assert page.current is not None and page.current.run is early.run
    page.close()
    reloaded = Session_(Backend(CPU, Scheduler(1), RunStore(tmp_path)))
    reloaded.attach("a" * 32)
    assert [title for title, _ in reloaded.choices()] == ["#1 MADE on moons (step 5)"]


def test_a_poisoned_upload_leaves_the_session_working(tmp_path):
    session = Session()
    good = trained(session, "moons", "MADE", 5)
    path, _ = export(session, good.id)
    poisoned = tmp_path / "poisoned.dgm.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(poisoned, "w") as target:
        config = json.loads(source.read("config.json"))
        config["run"]["history"][-1]["nll"]["test"] = "x"
        target.writestr("config.json", json.dumps(config))
        target.writestr("weights.safetensors", source.read("weights.safetensors"))
    shown = upload_run(RUNS_TAB, session, str(poisoned), None)
    assert shown["message"].startswith("**Not loaded:**") and len(shown["table"]) == 1
    shown = upload_run(RUNS_TAB, session, path, None)
    assert shown["message"].startswith("Loaded MADE on moons as run #2") and len(shown["table"]) == 2


# --- comparisons --------------------------------------------------------------------------------------------------


def test_default_comparison_takes_one_model_per_family_that_fits_the_data():
    models = default_models("moons")
    assert len({MODELS[name].family for name in models}) == len(models) >= 4
    assert all(MODELS[name].defaults.get("image") for name in default_models("digits"))


def test_a_comparison_spends_the_same_budget_on_each_model_and_scores_every_family_by_mmd():
    comparison = Comparison("moons", ["MADE", "RealNVP", "GAN"], "steps", 30, CPU)
    while comparison.active:
        comparison.advance(0.01)  # short slices: the models take many turns each
    made, realnvp, gan = compare_table.rows(comparison)
    assert [entry.state for entry in comparison.entries] == ["done"] * 3
    assert made[0] == "MADE" and gan[0] == "GAN" and made[9] == realnvp[9] == gan[9] == 30  # each its own 30 steps
    assert isinstance(made[3], float) and made[4] == "exact"
    assert gan[3] == "—" and gan[4].startswith("none")
    assert all(0 < float(row[6]) <= 1 for row in (made, gan))  # a permutation p-value for both
    assert all(row[7] == compare_table.verdict(float(row[6])) for row in (made, gan))
    assert comparison.progress() == 1.0


def test_a_negative_unbiased_mmd_reads_as_about_zero():
    assert views.format_mmd(-1.45e-3) == "≈ 0" and views.format_mmd(0.0) == "≈ 0"
    assert views.format_mmd(3.98e-3) == "3.98e-03"


def test_a_comparisons_models_train_at_once_every_one_showing_samples_before_any_ends():
    comparison = Comparison("moons", ["MADE", "RealNVP", "GAN"], "steps", 100, CPU)
    sampled_when_the_first_ended = None
    while comparison.active:
        comparison.advance(0.05)
        if sampled_when_the_first_ended is None and any(entry.state in ENDED for entry in comparison.entries):
            sampled_when_the_first_ended = [entry.run.samples is not None for entry in comparison.entries]
    assert sampled_when_the_first_ended == [True, True, True]
    assert [entry.run.step for entry in comparison.entries] == [100] * 3


def test_stop_halts_every_model_where_it_is_and_each_keeps_weights_it_evaluated():
    comparison = Comparison("moons", ["MADE", "VAE", "GAN"], "steps", 100_000, CPU)
    while not all(entry.run.samples is not None for entry in comparison.entries):
        comparison.advance(0.05)
    comparison.stop()
    assert [entry.state for entry in comparison.entries] == ["stopping"] * 3
    status = compare_tab._status(comparison)
    assert status.startswith("**Stopped**: scoring the weights each model kept · 0 of 3 scored…"), status
    stopped_at = [entry.run.step for entry in comparison.entries]
    while comparison.active:  # each keeps its chosen evaluated weights, then gets its test
        comparison.advance(0.2)
    assert [entry.state for entry in comparison.entries] == ["stopped"] * 3  # none "not started"
    for entry, step in zip(comparison.entries, stopped_at, strict=True):
        run = entry.run
        assert run.step == step  # not a step more
        assert run.kept is not None and run.scores is run.kept.scores and run.kept.scores in run.history
        assert entry.mmd is not None and entry.p_value is not None
    made, vae, gan = compare_table.rows(comparison)
    assert isinstance(made[3], float) and isinstance(vae[3], float) and gan[3] == "—"
    status = compare_tab._status(comparison)
    assert status.startswith("**Stopped**: each model keeps the weights it chose"), status
    assert "3 of 3 models finished" in status


def test_models_stopped_before_their_first_slice_are_marked_not_started():
    comparison = Comparison("moons", ["MADE", "GAN"], "steps", 20, CPU)
    comparison.advance(0.01)  # MADE's first slice; the GAN's has not come
    comparison.stop()
    while comparison.active:
        comparison.advance(0.2)
    assert [entry.state for entry in comparison.entries] == ["stopped", "not started"]
    assert comparison.entries[1].run.step == 0 and comparison.entries[1].mmd is None  # nothing to score
    assert "1 of 2 models finished, 1 not started" in compare_tab._status(comparison)


def test_the_page_streams_samples_while_the_models_train():
    updates = compare_tab.compare(COMPARE_TAB, "moons", ["MADE", "GAN"], "seconds", 1.5, Session())
    streamed = [
        update
        for update in updates
        if update["status"].startswith("**Training**")
        and "samples" in update
        and update["samples"]["value"] is not None
    ]
    assert streamed, "the samples figure is drawn while the models train, not only at the end"


def test_a_new_comparison_clears_the_previous_ones_samples_and_curves():
    session = Session()
    for models in (["MADE"], ["GAN"]):
        updates = list(compare_tab.compare(COMPARE_TAB, "moons", models, "steps", 5, session))
    first = updates[0]  # the second comparison's first update
    samples, nll, mmd = first["samples"], first["nll"], first["mmd"]
    assert samples["value"] is None
    assert len(nll.data) == len(mmd.data) == 0  # fresh curves: no MADE from before
    assert updates[-1]["samples"]["value"] is not None  # its own samples at the end


@pytest.mark.parametrize(("budget", "amount"), [("seconds", 0.0), ("steps", 0), ("steps", 10**9)])
def test_a_comparison_refuses_budgets_it_cannot_keep(budget, amount):
    with pytest.raises(ValueError, match="budget"):
        Comparison("moons", ["MADE"], budget, amount, CPU)
    with pytest.raises(ValueError, match="at least one"):
        Comparison("moons", [], "steps", 10, CPU)


# --- the latent explorer ------------------------------------------------------------------------------------------


def test_models_without_a_latent_space_say_why_in_a_sentence():
    run = trained(Session(), "moons", "MADE", 2)
    assert not latent_explorer.has_latent(run)
    assert latent_explorer.explains(run).startswith("**MADE has no latent space.**")


@pytest.mark.parametrize("model", ["RealNVP", "VAE"])
def test_a_path_between_two_test_items_starts_and_ends_at_their_latents(model):
    session = Session()
    run = trained(session, "moons", model)
    ends = latent_explorer.choose_endpoints(run, "two test items", 3, 7, seed=0)
    path = latent_explorer.path_latents(ends, 5, "slerp")
    assert torch.equal(path[0], ends.start) and torch.equal(path[-1], ends.end)
    if model == "RealNVP":  # a flow's latent is exact: decoding it gives the item back
        items = latent_explorer.decode(run, torch.stack([ends.start, ends.end]))
        np.testing.assert_allclose(items, run.data.test[[3, 7]].numpy(), atol=1e-4)


def test_the_slider_decodes_the_point_it_is_at_and_every_view_renders():
    session, state = Session(), LatentState()
    run = trained(session, "digits", "VAE")
    latent_tab.on_run(LATENT_TAB, session, state, run.id)
    shown = latent_tab.set_endpoints(
        LATENT_TAB, session, state, run.id, "random latents", 0, 1, 5, "linear", 6, 0.0, None
    )
    here, strip = shown["here"], shown["strip"]
    start = latent_explorer.picture(
        run, latent_explorer.decode(run, state.endpoints.start[None]), 1, latent_tab.ITEM_SCALE
    )
    assert np.array_equal(picture_in(here), start)
    assert strip["value"].shape[1] > 5 * strip["value"].shape[0] // 2  # six items side by side
    moved = latent_tab.move(session, state, run.id, "linear", 1.0)
    assert not np.array_equal(picture_in(moved), start)
    assert picture_in(latent_tab.traverse(session, state, run.id, 5, 2.0)).ndim == 2  # rows: dimensions
    assert latent_tab.export_gif(session, state, run.id, "slerp").endswith(".gif")


def test_random_endpoints_are_drawn_from_the_models_own_prior_and_the_text_names_it():
    """The MNIST VAE's prior is a VampPrior: its random endpoints are the model's own draws (the explorer once drew
    them from N(0, I) whatever the prior), and the sentence above the explorer names that prior."""
    run = Session().keep(Run(RunSpec("mnist", "VAE", 1, 3e-3, 128, 32), CPU))  # untrained: its prior is enough
    ends = latent_explorer.choose_endpoints(run, "random latents", 0, 1, seed=4)
    expected = run.model.draw_latents(2, torch.Generator().manual_seed(4))
    assert torch.equal(torch.stack([ends.start, ends.end]), expected)
    assert not torch.allclose(expected, torch.randn(2, expected.shape[1], generator=torch.Generator().manual_seed(4)))
    assert "with a VampPrior" in latent_explorer.explains(run)


@pytest.mark.parametrize("model", ["VAE", "IWAE"])
def test_the_map_of_a_2d_latent_holds_the_models_own_prior(model):
    """The VAE on points has a mixture prior whose Gaussians may sit beyond ±3 (after its default click 21–28 % of
    the test items' codes did, outside a map fixed at ±3); the IWAE's N(0, I) keeps the ±3 grid."""
    run = Session().keep(Run(RunSpec.defaults(model, "8gaussians"), CPU))  # untrained: its prior is enough
    grid = latent_explorer.latent_map(run, (0, 1, 2), None, None)
    low, high, _, _ = grid.extent
    draws = run.model.draw_latents(20_000, torch.Generator().manual_seed(7))
    held = (draws.abs() <= high).all(1).float().mean().item()
    assert held >= 0.985 and grid.latents.abs().max().item() == pytest.approx(high) and low == -high
    assert (high == 3.0) == (model == "IWAE")


def test_a_conditional_model_holds_one_class_along_the_path_and_encodes_with_labels():
    """The CVAE's strip and the item at the slider decode for the same class (they once disagreed: the strip cycled
    through the classes); picking another class redraws both; its encoder reads test items with their labels."""
    session, state = Session(), LatentState()
    run = trained(session, "digits", "CVAE", 20)
    info = latent_tab.on_run(LATENT_TAB, session, state, run.id)["info"]
    assert "encoder" in info and "has no encoder" not in info and "class" in info
    shown = latent_tab.set_endpoints(
        LATENT_TAB, session, state, run.id, "two test items", 0, 1, 0, "linear", 4, 0.0, None
    )
    here, strip, klass = shown["here"], shown["strip"], shown["klass"]
    assert klass == int(run.data.labels["test"][0])
    first_cell = latent_explorer.picture(run, latent_explorer.decoded_path(run, state.endpoints, 4, "linear")[:1], 1)
    start = latent_explorer.decode(run, state.endpoints.start[None], klass)
    assert np.array_equal(latent_explorer.picture(run, start, 1), first_cell)
    other = (klass + 1) % 10
    shown = latent_tab.set_class(LATENT_TAB, session, state, run.id, other, "linear", 4, 0.0)
    here_other, strip_other = shown["here"], shown["strip"]
    assert not np.array_equal(strip_other["value"], strip["value"])
    assert not np.array_equal(picture_in(here_other), picture_in(here))


def test_picking_another_run_clears_the_previous_runs_map_and_traversal():
    session, state = Session(), LatentState()
    first, second = trained(session, "digits", "VAE", 2), trained(session, "moons", "RealNVP", 2)
    latent_tab.on_run(LATENT_TAB, session, state, first.id)
    shown = latent_tab.on_run(LATENT_TAB, session, state, second.id)
    assert all(shown[name].get("value", "kept") is None for name in ("traversed", "mapped", "overlay", "factors"))


def test_invalid_items_get_a_message_not_a_traceback():
    session, state = Session(), LatentState()
    run = trained(session, "digits", "VAE", 2)
    with pytest.raises(Exception, match="numbered 0 to 358"):
        latent_tab.set_endpoints(
            LATENT_TAB, session, state, run.id, "two test items", 0, 10_000, 0, "linear", 6, 0.5, None
        )


# --- checkpoints through the Runs tab -----------------------------------------------------------------------------


def test_a_downloaded_checkpoint_uploads_as_a_run_with_the_same_scores():
    session = Session()
    run = trained(session, "moons", "RealNVP")
    path, said = export(session, run.id)
    assert path.endswith(".dgm.zip") and "ready" in said
    loaded = Run.load(Path(path), CPU)
    x = run.data.test[:500]
    assert torch.equal(item_log_probs(loaded.model, x), item_log_probs(run.model, x))
    assert loaded.step == run.step and loaded.history == run.run.history and loaded.phase == "done"


def test_a_bad_upload_is_refused_and_changes_nothing(tmp_path):
    session = Session()
    trained(session, "moons", "MADE", 2)
    bad = tmp_path / "bad.dgm.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(CheckpointError):
        Run.load(bad, CPU)
    said = upload_run(RUNS_TAB, session, str(bad), 1)["message"]
    assert said.startswith("**Not loaded:**") and list(session.views) == [1] and not bad.exists()


def test_side_by_side_panels_name_what_each_shades_and_claim_no_shared_colour_scale():
    """One "log p" colour bar once spanned every panel, the GAN's and the EBM's (which have no log p) included."""
    comparison = Comparison("moons", ["RealNVP", "GAN", "EBM"], "steps", 3, CPU)
    while comparison.active:
        comparison.advance(0.5)
    shown = [RunView(entry.run) for entry in comparison.entries]
    figure = compare_tab._panels(shown, shown)
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles[0] == "RealNVP · log p" and titles[1].startswith("GAN · ") and titles[2].startswith("EBM · ")
    assert "log p" not in titles[1] + titles[2]
    assert not any(getattr(trace.marker, "showscale", False) for trace in figure.data)


def test_a_comparison_counts_as_one_job_against_a_browsers_limit():
    """Six compared models once counted as six runs: the page could not press Train until the comparison ended."""
    page = Session_(Backend(CPU, Scheduler(1)))  # at most 3 jobs at once
    comparison = Comparison("moons", default_models("moons"), "steps", 100_000, CPU)
    page.keep_together([entry.run for entry in comparison.entries])
    while not all(entry.run.active for entry in comparison.entries):
        comparison.advance(0.05)
    for _ in range(2):
        page.check_room()
        run = Run(RunSpec.defaults("MADE", "moons", hidden=8, steps=100_000))
        page.keep(run)
        run.start()
    with pytest.raises(ValueError, match="3 of your runs or comparisons are training already"):
        page.check_room()
    comparison.stop()
