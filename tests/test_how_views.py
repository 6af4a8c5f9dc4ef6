"""The How it works views, without a server: each family's view on a shipped or freshly built run, its figures,
notes and exports, and the sentence it gives a run it does not fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.draw import figures
from app.how.scaffold import Frame


def test_how_it_works_steps_a_flow_from_the_gaussian_to_its_samples_and_explains_other_runs() -> None:
    from app.how import flow_layers as how_it_works
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["flows-on-rings"], rescore=False))

    named = how_it_works.Controls(Frame("note", "state"), "layer", "plot", "log_dets")  # its outputs, by name
    shown = how_it_works.show_layers(named, Page())
    passes, formula, slider, rows = (shown[name] for name in ("state", "note", "layer", "log_dets"))
    layers = len(Page.current.model.layers)
    assert len(passes.draws) == len(passes.grid) == layers + 1 and len(rows) == layers
    assert slider.maximum == layers and "log p(x) = log N(z; 0, I)" in formula
    assert "0 of" in how_it_works.stage_figure(passes, 0).layout.title.text
    assert not np.allclose(passes.draws[0], passes.draws[-1])  # the layers moved the points
    test = Page.current.data.test[: how_it_works.POINTS].numpy()  # inference: the data, layer by layer, to z = f(x)
    np.testing.assert_allclose(passes.tests[-1], test, atol=1e-4)

    def near_centre(points: np.ndarray) -> float:
        return float((np.linalg.norm(points, axis=1) < 0.5).mean())

    assert near_centre(test) == 0 < 0.01 < near_centre(passes.tests[0])  # the rings' hole is filled: a Gaussian
    inference = how_it_works.stage_figure(passes, layers, how_it_works.DIRECTIONS[1]).layout.title.text
    assert f"z = f(x) ({layers} of {layers} layers applied)" in inference
    assert how_it_works.export_gif(passes, how_it_works.DIRECTIONS[1]).endswith(".gif")
    Page.current = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    assert how_it_works.show_layers(named, Page()) == {"state": None, "note": how_it_works.HOW.unfit}


def test_how_conditionals_draws_the_first_density_and_a_sample_step_by_step() -> None:
    from app.how import conditionals as how_conditionals
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["autoregressive-masks"], rescore=False))

    named = how_conditionals.Controls(Frame("note", "state"), "value", "plot")  # its outputs, by name
    shown = how_conditionals.show_conditionals(named, Page())
    steps, said, slider = (shown[name] for name in ("state", "note", "value"))
    peak = steps.values[steps.first_density.argmax()]
    assert "draws **x₁ first**" in said and slider.value == pytest.approx(peak, abs=0.01)
    assert np.trapezoid(steps.first_density, steps.values) == pytest.approx(1.0, abs=0.05)  # most mass in the window
    value, drawn, note = how_conditionals.draw_step_by_step(steps)
    assert f"x₁ = {value:.2f}" in note and any(trace.name == "the drawn sample" for trace in drawn.data)
    Page.current = RunView(open_preset(PRESETS["flows-on-rings"], rescore=False))
    assert how_conditionals.show_conditionals(named, Page()) == {"state": None, "note": how_conditionals.HOW.unfit}


@pytest.mark.parametrize("model", ["VAE", "IWAE"])
def test_how_posteriors_draws_each_items_ellipse_its_kl_and_the_priors_gaussians_for_a_2d_latent(model: str) -> None:
    """The VAE on points has a prior mixing 16 learned Gaussians, the IWAE N(0, I): each is drawn, and each item's
    KL is against that prior (closed form for N(0, I))."""
    from app.how import posteriors as how_posteriors
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset
    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    class Page:
        current = RunView(Run(RunSpec.defaults(model, "moons")))  # fresh weights: the picture's parts, not its look

    said, figure, table = how_posteriors.show_posteriors(Page())
    rows = table.value["data"]
    assert "mean KL" in said and len(rows) == how_posteriors.ITEMS
    assert table.value["headers"] == how_posteriors.POINT_HEADERS  # a view on images before it set its own
    with Page.current.run.inspecting(seed=0) as vae:
        expected = vae.posterior_kl(Page.current.data.test[: how_posteriors.ITEMS])
        components = vae.prior_components()
    for (_, mu1, mu2, sigma1, sigma2, kl), kl_expected in zip(rows, expected.tolist()):
        assert kl == pytest.approx(kl_expected, abs=1e-3)
        if components is None:  # KL(N(μ, σ²) ‖ N(0, 1)) in closed form, per item
            closed_form = 0.5 * (mu1**2 + mu2**2 + sigma1**2 + sigma2**2 - 2 - 2 * np.log(sigma1 * sigma2))
            assert kl >= 0 and kl == pytest.approx(closed_form, abs=0.02)
    (prior,) = [trace for trace in figure.data if (trace.name or "").endswith("at 1σ")]
    gaussians = 1 if components is None else len(components[0])
    assert np.isnan(np.asarray(prior.x, dtype=float)).sum() == gaussians  # one closed outline for each
    assert ("16 Gaussians" if model == "VAE" else "N(0, I)") in prior.name
    assert sum(trace.name == f"item #{i + 1}" for trace in figure.data for i in range(len(rows))) == len(rows)
    Page.current = RunView(open_preset(PRESETS["flows-on-rings"], rescore=False))  # no encoder's posterior
    assert "Train or open a **VAE" in how_posteriors.show_posteriors(Page())[0]


def test_how_diffusion_shows_the_noised_data_and_the_reverse_chains_at_any_step() -> None:
    from app.how import diffusion as how_diffusion
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["diffusion"], rescore=False))

    named = how_diffusion.Controls(Frame("note", "state"), "step", "passes", "plot", "table")  # its outputs, by name
    shown = how_diffusion.show_process(named, Page())
    process, said, slider, passes, figure = (shown[name] for name in ("state", "note", "step", "passes", "plot"))
    steps = Page.current.model.steps
    assert slider.maximum == steps and process.chains.shape == (steps + 1, how_diffusion.CHAINS, 2)
    assert passes.value == process.passes == steps
    assert f"T = {steps} steps" in said and "step 100" in figure.layout.annotations[0].text
    assert "at step 0," in how_diffusion.figure(process, 0).layout.annotations[1].text
    gif = how_diffusion.export_gif(process)
    assert gif.endswith(".gif") and Image.open(gif).n_frames > 1
    Page.current = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    assert how_diffusion.show_process(named, Page()) == {"state": None, "note": how_diffusion.HOW.unfit}


def test_how_diffusion_redraws_the_chains_with_fewer_passes_and_tests_the_samples_of_each_choice() -> None:
    from app.how import diffusion as how_diffusion
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["diffusion"], rescore=False))

    named = how_diffusion.Controls(Frame("note", "state"), "step", "passes", "plot", "table")  # its outputs, by name
    process = how_diffusion.show_process(named, Page())["state"]
    choices = Page.current.model.sampler_choices
    fewer, figure = how_diffusion.redraw_chains(process, choices[-1], 60)
    assert fewer.chains.shape == (choices[-1] + 1, how_diffusion.CHAINS, 2)
    assert fewer.steps[0] == 0 and fewer.steps[-1] == Page.current.model.steps
    assert f"reverse, {choices[-1]} passes:" in figure.layout.annotations[1].text
    (shown,) = [trace for trace in figure.data if trace.name == "chains at step t"]
    row = int(np.searchsorted(fewer.steps, 60))  # at step 60 the chains still sit where the pass to the next step left
    assert fewer.steps[row - 1] < 60 <= fewer.steps[row]
    np.testing.assert_array_equal(shown.x, fewer.chains[row][:, 0])
    rows = how_diffusion.measure_sample_test(named, Page())["table"]
    assert [row[0] for row in rows] == list(choices)
    assert all(verdict in ("told apart", "indistinguishable from the test data at 5%") for *_, verdict, _ in rows)
    assert rows[-1][1] > rows[0][1]  # fewer passes, worse samples: a larger MMD²
    Page.current = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    assert how_diffusion.measure_sample_test(named, Page()) == {"note": how_diffusion.HOW.unfit}


def test_how_pixels_reveals_a_sampled_image_in_each_runs_order_with_its_conditionals(monkeypatch) -> None:
    from app.how import pixels as how_pixels
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset
    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    pixelcnn = RunView(open_preset(PRESETS["sampling-digits"], rescore=False))
    made = RunView(Run(RunSpec.defaults("MADE", "digits", options={"order": 3})))

    class Page:
        current = pixelcnn
        views = {1: pixelcnn, 2: made}

    monkeypatch.setattr(how_pixels, "PLAY_S", 0.0)
    drawing, said, _ = how_pixels.start_image(Page())
    assert "2 runs on digits" in said and drawing.drawn == 0
    first, second = drawing.lanes
    assert first.order == list(range(64)) and sorted(second.order) == list(range(64)) != second.order
    drawing, figure = how_pixels.next_pixel(drawing)
    assert np.isfinite(first.so_far(1)).sum() == 1 and not np.isnan(first.so_far(1)[0])
    (bars,) = [trace for trace in figure.data if trace.type == "bar"]
    assert np.asarray(bars.y).sum() == pytest.approx(1.0, abs=1e-5)  # the drawn pixel's conditional over 17 levels
    *_, (drawing, _) = how_pixels.play_pixels(drawing)
    assert drawing.drawn == 64 and np.isfinite(drawing.lanes[1].so_far(64)).all()
    assert how_pixels.export_gif(drawing).endswith(".gif")
    Page.current = RunView(open_preset(PRESETS["flows-on-rings"], rescore=False))
    assert how_pixels.start_image(Page())[0] is None


def test_how_players_steps_a_copy_of_the_gans_players_one_at_a_time() -> None:
    from app.how import players as how_players
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["gan-modes"], rescore=False))

    before = [p.detach().clone() for p in Page.current.model.parameters()]
    match, said, figure = how_players.copy_players(Page())
    assert "Copied the players" in said and "modes covered" in figure.layout.title.subtitle.text
    note, figure = how_players.play(match, "discriminator", 10)
    assert note.startswith("After 10 D steps and 0 G steps") and "discriminator loss" in note
    note, figure = how_players.play(match, "both", 2, k=3)
    assert note.startswith("After 16 D steps and 2 G steps")
    assert any(trace.name == Page.current.model.arrows_name for trace in figure.data)
    assert all(torch.equal(p, q) for p, q in zip(Page.current.model.parameters(), before))  # the run is untouched
    Page.current = RunView(open_preset(PRESETS["energy-based"], rescore=False))
    assert how_players.copy_players(Page())[0] is None


def test_how_energy_draws_the_chains_paths_and_the_positives_against_the_negatives() -> None:
    from app.how import energy as how_energy
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["energy-based"], rescore=False))

    named = how_energy.Controls(Frame("note", "state"), "step", "plot")  # its outputs, by name
    shown = how_energy.show_chains(named, Page())
    landscape, said, slider, figure = (shown[name] for name in ("state", "note", "step", "plot"))
    steps = Page.current.model.langevin_steps
    assert slider.maximum == steps and landscape.chains.shape == (steps + 1, how_energy.CHAINS, 2)
    positive, negative = landscape.energies
    assert f"{positive:.2f} − {negative:.2f}" in said
    names = [trace.name for trace in how_energy.figure(landscape, 3).data]
    assert "chains at step 3" in names and "positives: data (E lowered)" in names
    assert how_energy.export_gif(landscape).endswith(".gif")
    Page.current = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    assert how_energy.show_chains(named, Page()) == {"state": None, "note": how_energy.HOW.unfit}


def test_how_posteriors_on_images_shows_reconstructions_posterior_draws_and_active_dimensions() -> None:
    from app.how import posteriors as how_posteriors
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    class Page:
        current = RunView(open_preset(PRESETS["latent-walk"], rescore=False))

    said, figure, table = how_posteriors.show_posteriors(Page())
    latent = Page.current.capabilities.latent_dim
    active = int(said.split(" of ")[0].split(": ")[-1])
    assert 0 < active <= latent and f"of {latent} latent dimensions active" in said
    (picture,) = figure.data
    columns = how_posteriors.IMAGE_DRAWS + 2  # the item, its reconstruction, the draws
    assert (
        np.asarray(picture.z).shape[:2]
        == figures.image_grid(np.zeros((columns * how_posteriors.ITEMS, 1, 8, 8)), 17, columns=columns, scale=6).shape
    )
    assert len(table.value["data"]) == how_posteriors.ITEMS and all(row[1] > 0 for row in table.value["data"])
    assert table.value["headers"] == how_posteriors.IMAGE_HEADERS


def test_every_how_it_works_view_can_show_one_of_the_shipped_runs_and_says_what_to_open_otherwise() -> None:
    """The views are found by capability (``HOW.fits``), never by a model's name: each fits a gallery run, and none
    fits every run."""
    from app.how.catalog import VIEWS
    from app.page.session import RunView
    from dgm_core.lecture.presets import PRESETS, open_preset

    runs = [RunView(open_preset(preset, rescore=False)) for preset in PRESETS.values()]
    for view in VIEWS:
        fitting = [run for run in runs if view.HOW.fits(run)]
        assert 0 < len(fitting) < len(runs), view.HOW.title
        assert view.HOW.unfit.startswith("Train or open")
