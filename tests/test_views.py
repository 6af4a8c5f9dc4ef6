"""The UI's pure pieces, without a server: settings parsing, figure builders, the image grid, the model list."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch

from app.draw import figures, latent_figures
from app.page.inputs import parse_spec, seconds_budget
from app.page.streaming import TrainForm, TrainOutputs
from app.tabs import item_scores
from app.tabs.train import model_choices, on_model
from dgm_core.models.registry import MODELS

FORM = TrainForm(*(field.name for field in fields(TrainForm)))
TRAIN_TAB = TrainOutputs("status", "loss", "nll", "samples", FORM, "data_info", "model_info")  # its outputs, by name


def test_settings_are_parsed_then_checked_once_when_the_run_is_built_or_explained() -> None:
    spec = parse_spec("moons", "RealNVP", 100.0, "0.001", 64, 32.0, 0)
    assert (spec.steps, spec.lr, spec.batch_size, spec.hidden) == (100, 1e-3, 64, 32)
    for args, expected in [
        (("moons", "RealNVP", None, 1e-3, 64, 32, 0), "Steps must be a number"),
        (("moons", "RealNVP", 10.5, 1e-3, 64, 32, 0), "Steps must be a whole number"),
        (("moons", "RealNVP", 10, float("nan"), 64, 32, 0), "learning rate must be a finite number"),
        (("moons", "RealNVP", 10, 1e-3, 64, 32, -1), "seed must be a whole number from 0"),
        (("nowhere", "RealNVP", 10, 1e-3, 64, 32, 0), "Choose a data set"),
        (("moons", "Nope", 10, 1e-3, 64, 32, 0), "Choose a model"),
        (("moons", "MADE", 10, 1e-3, 512, 4096, 0), r"parameters; this playground trains at most 4,000,000"),
        (("digits", "PixelCNN", 10, 1e-3, 4096, 256, 0), r"GFLOP; this playground trains at most 20 GFLOP"),
        (("moons", "RealNVP", 10, 1e-3, 64, 32, 0, None, "best", "linear"), "'constant' or 'cosine'"),
        (("moons", "RealNVP", 10, 1e-3, 64, 32, 0, None, "worst", "constant"), "'best' weights"),
    ]:
        with pytest.raises(ValueError, match=expected):
            parse_spec(*args).build()  # a number that is not one: at once; a value out of range: when built
    assert parse_spec("moons", "RealNVP", 10, 1e-3, 64, 32, 0, None, "best", "cosine").lr_schedule == "cosine"
    assert seconds_budget(0) is None and seconds_budget("60") == 60.0
    with pytest.raises(ValueError, match="0 \\(none\\) or between 1 and 3,600 seconds"):
        seconds_budget(0.5)


def test_every_registered_model_is_offered_with_its_family() -> None:
    labels = dict((value, label) for label, value in model_choices())
    assert set(labels) == set(MODELS)
    assert all(labels[name] == f"{name} ({MODELS[name].family})" for name in MODELS)


def test_choosing_a_model_fills_in_its_recommended_settings_schedule_included() -> None:
    for dataset, model in [("digits", "VDM"), ("digits", "PixelCNN"), ("moons", "RealNVP")]:
        shown = on_model(TRAIN_TAB, dataset, model)
        recommended = MODELS[model].defaults["image" if dataset == "digits" else "points2d"]
        assert tuple(shown[name] for name in ("steps", "lr", "batch_size", "hidden", "schedule")) == (
            recommended.steps,
            recommended.lr,
            recommended.batch_size,
            recommended.hidden,
            recommended.schedule,
        )
    assert on_model(TRAIN_TAB, "digits", "VDM")["schedule"] == "cosine"
    assert on_model(TRAIN_TAB, "digits", "PixelCNN")["schedule"] == "constant"


def test_image_grid_lays_out_upscaled_images_with_gaps() -> None:
    images = np.zeros((10, 1, 8, 8), dtype=np.float32)
    images[0] = 16  # full ink: black
    picture = figures.image_grid(images, levels=17, columns=8, scale=4, gap=2)
    assert picture.dtype == np.uint8 and picture.shape == (2 * 34 + 2, 8 * 34 + 2)
    assert picture[2:34, 2:34].max() == 0 and picture[2:34, 36:68].min() == 255


def test_long_curves_are_binned_and_references_are_labelled() -> None:
    x, y = np.arange(10_000), np.linspace(5, 1, 10_000)
    bx, by = figures.binned(x, y)
    assert len(bx) == figures.MAX_CURVE_POINTS and bx.dtype == np.float32
    assert by[0] == pytest.approx(y[:25].mean(), rel=1e-5)
    figure = figures.curve_figure("t", "bits/dim", [figures.Series("val", x, y)], [figures.Reference("floor", 0.5)])
    assert [a.text for a in figure.layout.annotations] == ["floor"]
    assert figure.layout.yaxis.range[0] < 0.5


def test_score_histograms_show_the_test_data_not_the_far_outliers():
    """Noise at 1,500 bits/dim under an autoregressive model once stretched the axis until the test data were one
    bar; the range now ends near the test data and the outliers are left out."""
    rng = np.random.default_rng(0)
    sets = {"test data": rng.normal(2.2, 0.2, 359), "blank": np.full(50, 1.6), "noise": rng.normal(1500, 10, 50)}
    low, high = item_scores.histogram_range(sets)
    assert low == min(values.min() for values in sets.values()) and sets["test data"].max() <= high < 5


def test_the_factor_table_prints_two_decimals():
    """A float32 0.45 once showed as 0.44999998807907104."""
    figure = latent_figures.correlation_figure(np.array([[0.45, 0.1]], dtype=np.float32), ["size", "x"])
    assert figure.data[0].texttemplate == "%{z:.2f}" and figure.data[0].text is None


def test_legends_sit_below_the_plot_never_over_the_title():
    """Legends once overlapped titles: now a curve figure's title hangs from the top and its legend stands on the
    bottom edge of the figure, below the axis title, with room kept for one line per curve."""
    curves = [figures.Series(name, [1, 2], [3.0, 2.0]) for name in ("val", "test", "test, IWAE (k=64) bound")]
    layout = figures.curve_figure("Held-out NLL", "bits/dim", curves).layout
    legend = layout.template.layout.legend  # every figure's, from the shared template
    assert layout.title.yanchor == "top" and legend.yref == "container" and legend.y == 0
    assert legend.yanchor == "bottom" and layout.margin.b >= 80 + 22 * len(curves)


def test_a_gan_on_points_is_drawn_over_its_discriminator_with_the_generators_pull() -> None:
    from app.page.session import ARROWS, RunView
    from app.page.views import samples_figure
    from dgm_core.lecture.presets import PRESETS, open_preset

    view = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    view.refresh_density(force=True)
    assert view.log_density.shape == (100, 100) and 0 <= view.log_density.min() <= view.log_density.max() <= 1
    figure = samples_figure(view)
    colour_bars = [t for t in figure.data if t.marker and t.marker.showscale]
    assert colour_bars[0].marker.colorbar.title.text == view.model.field_name
    arrows = next(t for t in figure.data if t.name == view.model.arrows_name)
    assert len(arrows.x) == 3 * ARROWS  # start, end, gap for each sample
    assert "8 of 8 modes covered" in figure.layout.title.subtitle.text


def test_a_run_that_ended_shows_its_average_speed_not_measuring() -> None:
    from app.page.session import RunView
    from app.page.views import status_markdown
    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    run = Run(RunSpec.defaults("MADE", "moons", hidden=16, steps=5))
    assert "not trained yet" in status_markdown(RunView(run))
    run.start()
    while run.active:
        run.advance(1.0)
    run.steps_per_s = 0.0  # as a run loaded from its file: no live measurement
    line = status_markdown(RunView(run))
    assert "steps/s on average" in line and "measuring" not in line


def test_opening_a_run_makes_the_forms_own_events_keep_its_settings() -> None:
    """The data set and model changes that Open sets off once reset the form to defaults: they keep the run's."""
    from app.page.session import Backend, Session
    from app.tabs.train import on_dataset
    from dgm_core.runs.spec import RunSpec
    from dgm_core.serve.scheduler import Scheduler

    page = Session(Backend(torch.device("cpu"), Scheduler(1)))
    page.opened_spec = RunSpec.defaults("GAN", "8gaussians", steps=777, lr=3e-4, batch_size=96, hidden=48)
    settings = ("steps", "lr", "batch_size", "hidden")
    shown = on_dataset(TRAIN_TAB, "8gaussians", "RealNVP", page)
    assert shown["model"]["value"] == "GAN" and tuple(shown[name] for name in settings) == (777, 3e-4, 96, 48)
    shown = on_model(TRAIN_TAB, "8gaussians", "GAN", page)
    assert tuple(shown[name] for name in settings) == (777, 3e-4, 96, 48)
    on_dataset(TRAIN_TAB, "moons", "GAN", page)  # the user chose other data: defaults from now on
    assert page.opened_spec is None and on_model(TRAIN_TAB, "8gaussians", "GAN", page)["steps"] != 777


def test_a_small_data_sets_preview_counts_the_points_it_draws_and_fits_them(tmp_path) -> None:
    """A 150-point iris CSV (1.0–6.9 by 0.1–2.5) once was titled "800 test points"."""
    from app.page.views import data_preview
    from dgm_core.data import load_dataset
    from dgm_core.data import user as user_data
    from dgm_core.data.upload import read_upload

    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(1.0, 6.9, 150), rng.uniform(0.1, 2.5, 150)]
    path = tmp_path / "iris.csv"
    path.write_text("petal_length,petal_width\n" + "\n".join(f"{a:.1f},{b:.1f}" for a, b in points))
    data = read_upload([path], 8)
    name = user_data.name_for(data, "iris.csv")
    user_data.register(data, name)
    figure = data_preview(load_dataset(name))
    test = load_dataset(name).test.numpy()
    assert f"({len(test)} test points)" in figure.layout.title.text
    (x0, x1), (y0, y1) = figure.layout.xaxis.range, figure.layout.yaxis.range
    assert x0 <= test[:, 0].min() and test[:, 0].max() <= x1 and y0 <= test[:, 1].min() and test[:, 1].max() <= y1


def test_a_run_on_tiny_data_that_ends_worse_than_the_baseline_says_so_and_what_to_try(tmp_path) -> None:
    """A 36-item set trained briefly kept weights worse than a single Gaussian, and the page said only "Done"."""
    from app.page.session import RunView
    from app.page.views import status_markdown
    from dgm_core.data import user as user_data
    from dgm_core.data.upload import points_from_drawing
    from dgm_core.runs.run import Run
    from dgm_core.runs.spec import RunSpec

    data = points_from_drawing(np.random.default_rng(0).standard_normal((60, 2)) * [3.0, 0.2] + 5.0)
    name = user_data.name_for(data, "tiny.csv")
    user_data.register(data, name)
    run = Run(RunSpec.defaults("VAE", name, steps=3, lr=1e-5))  # an ELBO at its start: far above the baseline
    run.start()
    while run.active:
        run.advance(1.0)
    line = status_markdown(RunView(run))
    assert "no better than the baseline (only" in line and "Try a smaller hidden width" in line


def test_the_ood_histogram_gives_every_set_its_own_colour_and_bars_count_all_its_items() -> None:
    """Test data and "constant grey" once shared one blue, and a set mostly beyond the range drew a bar at 1.0."""
    from types import SimpleNamespace

    from app.tabs.likelihood import _histogram

    rng = np.random.default_rng(0)
    test = rng.normal(1.0, 0.1, 300)
    others = {f"set {k}": rng.normal(1.2 + 0.1 * k, 0.1, 300) for k in range(5)}
    others["far"] = np.r_[np.full(285, 1000.0), rng.normal(1.0, 0.01, 15)]  # 95 % beyond the range
    scores = SimpleNamespace(test=test, others=others)
    view = SimpleNamespace(
        id=1, spec=SimpleNamespace(model="PixelCNN"), capabilities=SimpleNamespace(likelihood="exact")
    )
    figure = _histogram(view, scores)
    colours = [trace.marker.color for trace in figure.data]
    assert len(colours) == 7 and len(set(colours)) == 7
    far = next(trace for trace in figure.data if trace.name == "far")
    assert far.histfunc == "sum" and abs(sum(far.y) - 0.05) < 1e-6  # the bars of the 5 % drawn sum to 0.05
