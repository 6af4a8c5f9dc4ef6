"""The Compare tab: one data set, several families, one budget; samples side by side and one table of scores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app import figures, views
from app.compare import COLUMNS, KERNEL_NOTE, Comparison, default_models
from app.figures import Series
from app.live_plot import LivePlot
from app.session import RunView, Session
from app.streaming import EVERY_S, PAGES, POLL_S, STREAMING, TICK_S
from dgm_core.data import dataset_names, load_dataset
from dgm_core.models.registry import MODELS, models_for

DEFAULT_DATASET = "moons"
IMAGES_SHOWN = 16

Update = tuple[Any, Any, Any, Any, Any, Any, Any]  # comparison, status, table, samples, gallery, NLL and MMD curves


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
                "Models train one after another on one CPU thread. *Stop* keeps the models that finished (and the "
                "best weights of the one training); every compared model also appears in the Runs tab.",
                elem_classes="hint",
            )
        with gr.Column(scale=3, min_width=520):
            status = gr.Markdown("Pick models and press **Compare**.", elem_id="compare-status", elem_classes="status")
    table = gr.Dataframe(
        headers=COLUMNS, value=[], interactive=False, elem_id="compare-table", elem_classes="wide-table", wrap=False
    )
    gr.Markdown(KERNEL_NOTE, elem_classes="hint")
    samples_plot = LivePlot(None, show_label=False, elem_id="compare-samples", visible=True)
    gallery = gr.Gallery(None, label="Samples", columns=4, height="auto", elem_id="compare-gallery", visible=False)
    with gr.Row():
        nll_plot = LivePlot(None, show_label=False, elem_id="compare-nll")
        mmd_plot = LivePlot(None, show_label=False, elem_id="compare-mmd")

    comparison = gr.State(None)  # this page's latest comparison
    outputs = [comparison, status, table, samples_plot, gallery, nll_plot, mmd_plot]
    dataset.change(on_dataset, dataset, models, show_progress="hidden", api_visibility="private")
    tab.select(
        lambda page: gr.update(choices=page.dataset_choices()),
        session,
        dataset,
        show_progress="hidden",
        api_visibility="private",
        concurrency_limit=None,
    )  # fmt: skip (the browser's own data sets too)
    run_btn.click(
        compare,
        [dataset, models, budget, amount, session],
        outputs,
        api_name="compare",
        **STREAMING,
    )
    stop_btn.click(stop, comparison, status, api_name="stop_compare", show_progress="hidden", concurrency_limit=None)


def on_dataset(dataset: str) -> Any:
    return gr.update(choices=model_choices(dataset), value=default_models(dataset))


def compare(
    dataset: str, models: list[str], budget: str, amount: Any, session: Session, request: gr.Request | None = None
) -> Iterator[Update]:
    """Train the chosen models in turn (the scheduler does, in slices among everyone's runs), streaming progress,
    then show samples, scores and curves side by side."""
    if request is not None:  # Gradio passes it: the page is remembered, to let go of its runs when it closes
        session.backend.opened(request.session_hash, session)
    try:
        if not session.can_use(str(dataset)):
            raise ValueError("Choose a data set from the list: built-in, or your own.")
        session.check_room()
        comparison = Comparison(dataset, list(models or []), budget, float(amount), session.backend.device)
    except (TypeError, ValueError) as error:
        gr.Warning(str(error))
        yield gr.skip(), f"**Cannot compare:** {error}", *(gr.skip(),) * 5
        return
    views_ = [session.keep(entry.run) for entry in comparison.entries]
    yield comparison, _status(comparison), comparison.rows(), *_samples(views_), *_curves(views_)
    session.backend.scheduler.submit(comparison)
    drawn = finished = 0  # evaluations on the curves, models in the samples: redrawn only when these change
    sent = curves_sent = time.monotonic()
    while comparison.active:
        # every skipped output costs Gradio a component rebuild (see app.streaming): send at a pace that slows with
        # more pages, but at once when a model finishes or stops (and the end as soon as the loop sees it)
        time.sleep(POLL_S)
        done = sum(entry.state not in ("waiting", "training") for entry in comparison.entries)
        now = time.monotonic()
        if done == finished and now - sent < TICK_S * max(2.5, PAGES.slowdown()):
            continue
        evaluations = sum(len(entry.run.history) for entry in comparison.entries)
        pictures = _samples(views_) if done > finished else (gr.skip(), gr.skip())
        fresh_curves = evaluations > drawn and now - curves_sent >= EVERY_S["nll"] * PAGES.slowdown()
        curves = _curves(views_) if fresh_curves else (gr.skip(), gr.skip())
        finished, sent = done, now
        if fresh_curves:
            drawn, curves_sent = evaluations, now
        yield gr.skip(), _status(comparison), comparison.rows(), *pictures, *curves
    yield gr.skip(), _status(comparison), comparison.rows(), *_samples(views_), *_curves(views_)


def stop(comparison: Comparison | None) -> str:
    if comparison is None or not comparison.active:
        return "Nothing to stop."
    comparison.stop()
    return _status(comparison)


def _status(comparison: Comparison) -> str:
    """One line: what trains now (or how it ended), a progress bar, and how many models finished, stopped or never
    started."""
    states = [entry.state for entry in comparison.entries]
    finished, skipped, total = (
        sum(s in ("done", "stopped", "failed") for s in states),
        states.count("not started"),
        len(states),
    )
    percent = 100 * comparison.progress()
    bar = "█" * int(percent // 5) + "░" * (20 - int(percent // 5))
    current = comparison.current
    if current is None:
        stopped = skipped > 0 or "stopped" in states
        head = "**Stopped**: the finished models are kept." if stopped else "**Done**"
    else:
        run = current.run
        doing = "Stopping" if run.phase == "stopping" else "Training"
        head = f"**{doing}** {run.spec.model} ({finished + 1} of {total}) · step {run.step}"
    tail = f"{finished} of {total} models finished" + (f", {skipped} not started" if skipped else "")
    return f"{head} · `{bar}` {percent:.0f}% · {tail}"


def _samples(views_: list[RunView]) -> tuple[Any, Any]:
    """Samples of every model that has some: scatter panels over their densities (2D), or captioned image grids;
    none yet (a new comparison): both cleared, so no earlier comparison's samples stand beside the new table."""
    shown = [view for view in views_ if view.run.samples is not None]
    if not shown:
        return gr.update(value=None), gr.update(value=None)
    if shown[0].bounds is not None:
        return gr.update(value=_panels(shown), visible=True), gr.update(visible=False)
    levels = shown[0].data_spec.levels or 256
    pictures = [
        (figures.image_grid(view.samples()[:IMAGES_SHOWN], levels, columns=4), view.spec.model) for view in shown
    ]
    return gr.update(visible=False), gr.update(value=pictures, visible=True)


def _panels(views_: list[RunView]) -> go.Figure:
    figure = make_subplots(rows=1, cols=len(views_), subplot_titles=[view.spec.model for view in views_])
    for column, view in enumerate(views_, start=1):
        view.refresh_density()
        figures.add_points_panel(figure, view.bounds, view.data_points, view.samples(), view.log_density, panel=column)
    figure.update_layout(template=figures.TEMPLATE, height=360, title_text="Samples side by side")
    return figure


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
