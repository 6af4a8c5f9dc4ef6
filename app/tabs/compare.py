"""The Compare tab: one data set, several families, one budget; samples side by side and one table of scores."""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import gradio as gr
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.draw import figures
from app.draw.figures import Series
from app.draw.live_plot import LivePlot
from app.page import views
from app.page.session import RunView, Session
from app.page.streaming import EVERY_S, PAGES, POLL_S, STREAMING, TICK_S
from app.tabs import compare_table
from app.tabs.compare_table import COLUMNS, KERNEL_NOTE
from dgm_core.data import dataset_names, load_dataset
from dgm_core.models.registry import MODELS, models_for
from dgm_core.serve.comparison import ENDED, TRAINING, Comparison, default_models

DEFAULT_DATASET = "moons"
IMAGES_SHOWN = 16
DRAWING_SHARE = 4  # a streamed samples figure comes ≥ 4× its drawing time after the last (≤ a quarter of a core),
# unless it brings a model's first panel


def model_choices(dataset: str) -> list[tuple[str, str]]:
    return [(f"{name} ({MODELS[name].family})", name) for name in models_for(load_dataset(dataset))]


def build_compare_tab(session: gr.State, tab: gr.Tab) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            dataset = gr.Dropdown(dataset_names(), value=DEFAULT_DATASET, label="Data set", elem_id="compare-data")
            models = gr.CheckboxGroup(
                model_choices(DEFAULT_DATASET),
                value=default_models(DEFAULT_DATASET),
                label="Models",
                elem_id="compare-models",
                info="One per family by default. Each trains with its own recommended settings.",
            )
            with gr.Row():
                budget = gr.Radio(
                    ["seconds", "steps"], value="seconds", label="Same budget in", elem_id="compare-budget"
                )
                amount = gr.Number(
                    5,
                    label="Budget per model",
                    elem_id="compare-amount",
                    info="Seconds of training (evaluation not counted) or steps.",
                )
            with gr.Row():
                run_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn", min_width=80)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="compare-stop", min_width=80)
            gr.Markdown(
                "All models train at once, taking turns in short slices of one training process (one share of the "
                "server, as one run takes), so their samples and curves grow side by side. *Stop* halts them all: "
                "each keeps the evaluated weights it chose. Every compared model also "
                "appears in the Runs tab.",
                elem_classes="hint",
            )
        with gr.Column(scale=3, min_width=520):
            status = gr.Markdown("Pick models and press **Compare**.", elem_id="compare-status", elem_classes="status")
    table = gr.Dataframe(
        headers=COLUMNS, value=[], interactive=False, elem_id="compare-table", elem_classes="wide-table", wrap=False
    )
    gr.Markdown(KERNEL_NOTE, elem_classes="hint")
    samples_plot = LivePlot(None, show_label=False, elem_id="compare-samples")
    with gr.Row():
        nll_plot = LivePlot(None, show_label=False, elem_id="compare-nll")
        mmd_plot = LivePlot(None, show_label=False, elem_id="compare-mmd")

    comparison = gr.State(None)  # this page's latest comparison
    where = CompareView(comparison, status, table, samples_plot, nll_plot, mmd_plot)
    dataset.change(on_dataset, dataset, models, show_progress="hidden", api_visibility="private")
    tab.select(
        own_data_sets,
        session,
        dataset,
        show_progress="hidden",
        api_visibility="private",
        concurrency_limit=None,
    )
    run_btn.click(
        partial(compare, where),
        [dataset, models, budget, amount, session],
        where.all(),
        api_name="compare",
        **STREAMING,
    )
    stop_btn.click(stop, comparison, status, api_name="stop_compare", show_progress="hidden", concurrency_limit=None)


def own_data_sets(session: Session) -> Any:
    """The data set picker, with this browser's own data sets (once the page's restore listed them)."""
    session.wait_known()
    return gr.update(choices=session.dataset_choices())


def on_dataset(dataset: str) -> Any:
    return gr.update(choices=model_choices(dataset), value=default_models(dataset))


@dataclass(frozen=True)
class CompareView:
    """What a comparison streams, by name: its updates are dicts keyed by these components."""

    comparison: Any  # the page's latest comparison (a gr.State), for Stop
    status: Any
    table: Any
    samples: Any
    nll: Any
    mmd: Any

    def all(self) -> list:
        return [getattr(self, field.name) for field in fields(self)]


def compare(
    where: CompareView,
    dataset: str,
    models: list[str],
    budget: str,
    amount: Any,
    session: Session,
    request: gr.Request | None = None,
) -> Iterator[dict]:
    """Train the chosen models side by side (the scheduler does, in slices among everyone's runs), streaming their
    samples, scores and curves as they learn, and the final scores as they come."""
    if request is not None:  # Gradio passes it: the page is remembered, to let go of its runs when it closes
        session.backend.opened(request.session_hash, session)
    try:
        if not session.can_use(str(dataset)):
            raise ValueError("Choose a data set from the list: built-in, or your own.")
        session.check_room()
        comparison = Comparison(dataset, list(models or []), budget, float(amount), session.backend.device)
    except (TypeError, ValueError) as error:
        gr.Warning(views.toast_text(error))
        yield {where.status: f"**Cannot compare:** {views.plain(error)}"}
        return
    views_ = session.keep_together([entry.run for entry in comparison.entries])

    def said() -> dict:  # the status line and the table: every tick
        return {where.status: _status(comparison), where.table: compare_table.rows(comparison)}

    def drawn(density_turn: int | None = None) -> dict:
        return {where.samples: _samples(views_, density_turn)}

    def curves() -> dict:
        return dict(zip((where.nll, where.mmd), _curves(views_), strict=True))

    yield {where.comparison: comparison} | said() | drawn() | curves()
    session.backend.scheduler.submit(comparison)
    states, ticked = _states(comparison), time.monotonic()
    samples_key: Hashable = _samples_key(views_)
    evaluations = draws = panels = 0
    samples_sent, curves_sent, drawing_s = -math.inf, time.monotonic(), 0.0
    while comparison.active:
        # every skipped output costs Gradio a component rebuild (see app.page.streaming): the status line and table tick
        # at a pace that slows with more pages, and at once when a model changes state (Stop shows at once); the
        # figures, plotly ones that the browser redraws whole, ride on the ticks by wall clock, slowed alike
        time.sleep(POLL_S)
        now, slowdown = time.monotonic(), PAGES.slowdown()
        if _states(comparison) == states and now - ticked < TICK_S * max(2.5, slowdown):
            continue
        states, ticked = _states(comparison), now
        update = said()
        sampled = sum(view.run.samples is not None for view in views_)
        samples_every = EVERY_S["samples"] * slowdown
        if sampled == panels:  # no first panel to show: the drawing's own cost paces it too
            samples_every = max(samples_every, DRAWING_SHARE * drawing_s)
        if _samples_key(views_) != samples_key and now - samples_sent >= samples_every:
            samples_key, samples_sent, draws, panels = _samples_key(views_), now, draws + 1, sampled
            update |= drawn(density_turn=draws)
            drawing_s = time.monotonic() - now
        if _evaluations(views_) > evaluations and now - curves_sent >= EVERY_S["nll"] * slowdown:
            evaluations, curves_sent = _evaluations(views_), now
            update |= curves()
        yield update
    yield said() | drawn() | curves()


def stop(comparison: Comparison | None) -> str:
    if comparison is None or not comparison.active:
        return "Nothing to stop."
    comparison.stop()
    return _status(comparison)


def _states(comparison: Comparison) -> tuple:
    """What the table says of each model: its state, and whether its two-sample test is in."""
    return tuple((entry.state, entry.p_value is None) for entry in comparison.entries)


def _samples_key(views_: list[RunView]) -> Hashable:
    """Changes whenever a model has fresh samples."""
    return tuple(id(view.run.samples) for view in views_)


def _evaluations(views_: list[RunView]) -> int:
    return sum(len(view.run.history) for view in views_)


def _status(comparison: Comparison) -> str:
    """One line: how many models train at once, then, once none does, whether it stopped or ended and how many are
    scored; a progress bar of the budget spent; how many models finished (or never started)."""
    entries = comparison.entries
    total = len(entries)
    training = sum(entry.state in TRAINING for entry in entries)
    finished = sum(entry.state in ENDED for entry in entries)
    skipped = sum(entry.state == "not started" for entry in entries)
    scored = sum(entry.state in ENDED and not entry.untested for entry in entries)
    stopped = any(entry.state in ("stopping", "stopped", "not started") for entry in entries)
    if training:
        head = f"**Training** {training} of {total} models at once"
    elif comparison.active:  # a Stop's scoring of the weights reached, or the final two-sample tests, to come
        word = "Stopped" if stopped else "Trained"
        head = f"**{word}**: scoring the weights each model kept · {scored} of {total - skipped} scored…"
    else:
        head = "**Stopped**: each model keeps the weights it chose" if stopped else "**Done**"
    percent = 100 * comparison.progress()
    bar = "█" * int(percent // 5) + "░" * (20 - int(percent // 5))
    tail = f"{finished} of {total} models finished" + (f", {skipped} not started" if skipped else "")
    return f"{head} · `{bar}` {percent:.0f}% · {tail}"


def _samples(views_: list[RunView], density_turn: int | None = None) -> Any:
    """Samples of every model that has some, side by side: scatter panels over their densities (2D), or captioned
    image grids; none yet (a new comparison): cleared, so no earlier comparison's samples stand beside the new table.

    Each panel's density is recomputed when due (``RunView.refresh_density``); while streaming, only one panel's
    per figure, the ``density_turn``-th in turn (and those not drawn yet): a grid can take 0.4 s (a diffusion
    model's bound), six of them a second of the server's time."""
    shown = [view for view in views_ if view.run.samples is not None]
    if not shown:
        return gr.update(value=None)
    if shown[0].bounds is not None:
        turn = None if density_turn is None else density_turn % len(shown)
        refreshed = [v for i, v in enumerate(shown) if turn in (None, i) or v.log_density is None]
        return gr.update(value=_panels(shown, refreshed))
    levels = shown[0].data_spec.levels or 256
    pictures = [figures.image_grid(view.samples()[:IMAGES_SHOWN], levels, columns=4) for view in shown]
    titles = [view.spec.model for view in shown]
    return gr.update(value=figures.pictures_figure(pictures, titles, "Samples side by side"))


def _panels(views_: list[RunView], refreshed: list[RunView]) -> go.Figure:
    """One panel per model over what it shades: its log density, or its own field (a GAN's discriminator, an EBM's
    −E), each on its own scale: no colour bar, which would claim one scale for all; the titles say what is shaded."""
    titles = [f"{view.spec.model} · {_shaded(view)}" for view in views_]
    figure = make_subplots(rows=1, cols=len(views_), subplot_titles=titles)
    for column, view in enumerate(views_, start=1):
        if view in refreshed:
            view.refresh_density()
        figures.add_points_panel(
            figure, view.bounds, view.data_points, view.samples(), view.log_density, panel=column, colorbar=False
        )
    figure.update_layout(template=figures.TEMPLATE, height=360, title_text="Samples side by side")
    return figure


def _shaded(view: RunView) -> str:
    if view.has_density:
        return "log p"
    return view.model.field_name if view.has_field else "samples only"


def _curves(views_: list[RunView]) -> tuple[go.Figure, go.Figure]:
    """Held-out NLL (bits/dim; bounds dashed) and validation MMD² against training time, one curve per model."""
    shown = [view for view in views_ if view.run.history]
    nll = [
        Series(
            view.spec.model + (" (bound)" if view.capabilities.likelihood == "bound" else ""),
            [scores.elapsed_s for scores in view.run.history],
            [scores.bits(scores.nll["test"]) for scores in view.run.history],
            dashed=view.capabilities.likelihood == "bound",
        )
        for view in shown
        if view.capabilities.likelihood != "none"
    ]
    note = "" if nll else "models with a likelihood draw their test NLL here"
    nll_figure = figures.curve_figure(
        "Test NLL against training time",
        "bits/dim",
        nll,
        views.reference_lines(views_[0]),
        note=note,
        x_title="training seconds",
    )
    mmd = [
        Series(view.spec.model, [s.elapsed_s for s in view.run.history], [s.val_mmd for s in view.run.history])
        for view in shown
    ]
    return nll_figure, figures.curve_figure(
        "Validation MMD² (every family)", "MMD²", mmd, note="" if mmd else "…", x_title="training seconds"
    )
