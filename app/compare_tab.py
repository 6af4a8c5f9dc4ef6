"""The Compare tab: one data set, several families, one budget; samples side by side and one table of scores."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import gradio as gr
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from app import figures, views
from app.compare import COLUMNS, KERNEL_NOTE, Comparison, default_models
from app.figures import Series
from app.live_plot import LivePlot
from app.session import Session
from dgm_core.data import dataset_names, load_dataset
from dgm_core.models.registry import MODELS, models_for

DEFAULT_DATASET = "moons"
SLICE_S = 0.25
IMAGES_SHOWN = 16

Update = tuple[Any, Any, Any, Any, Any, Any]  # status, table, samples plot, gallery, NLL curves, MMD curves


def model_choices(dataset: str) -> list[tuple[str, str]]:
    return [(f"{name} ({MODELS[name].family})", name) for name in models_for(load_dataset(dataset))]


def build_compare_tab(device: torch.device, session: gr.State, tab: gr.Tab) -> None:
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

    outputs = [status, table, samples_plot, gallery, nll_plot, mmd_plot]
    dataset.change(on_dataset, dataset, models, show_progress="hidden", api_visibility="private")
    run_btn.click(
        partial(compare, device),
        [dataset, models, budget, amount, session],
        outputs,
        api_name="compare",
        concurrency_id="training",
        show_progress="hidden",
    )
    stop_btn.click(stop, session, status, api_name="stop_compare", show_progress="hidden", concurrency_limit=None)


def on_dataset(dataset: str) -> Any:
    return gr.update(choices=model_choices(dataset), value=default_models(dataset))


def compare(
    device: torch.device, dataset: str, models: list[str], budget: str, amount: Any, session: Session
) -> Iterator[Update]:
    """Train the chosen models in turn, streaming progress, then show samples, scores and curves side by side."""
    try:
        comparison = Comparison(dataset, list(models or []), budget, float(amount), device)
    except (TypeError, ValueError) as error:
        gr.Warning(str(error))
        yield f"**Cannot compare:** {error}", *(gr.skip(),) * 5
        return
    with session.lock:
        session.compare_token += 1
        token, session.comparison = session.compare_token, comparison
        for entry in comparison.entries:
            session.keep(entry.run)
    yield _status(comparison), comparison.rows(), *_samples(comparison), *_curves(comparison)
    drawn = 0  # evaluations already on the curves: the figures are rebuilt only when a new one arrives
    while comparison.current is not None:
        with session.lock:
            if token != session.compare_token:
                break
            finished = comparison.advance(SLICE_S)
        pictures = _samples(comparison) if finished is not None else (gr.skip(), gr.skip())
        evaluations = sum(len(entry.run.history) for entry in comparison.entries)
        curves = _curves(comparison) if evaluations > drawn else (gr.skip(), gr.skip())
        drawn = evaluations
        yield _status(comparison), comparison.rows(), *pictures, *curves
    yield _status(comparison), comparison.rows(), *_samples(comparison), *_curves(comparison)


def stop(session: Session) -> str:
    with session.lock:
        session.compare_token += 1
        comparison = session.comparison
        if comparison is None or comparison.current is None:
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
        doing = "Stopping" if current.state == "stopping" else "Training"
        head = f"**{doing}** {run.settings.model} ({finished + 1} of {total}) · step {run.step}"
    tail = f"{finished} of {total} models finished" + (f", {skipped} not started" if skipped else "")
    return f"{head} · `{bar}` {percent:.0f}% · {tail}"


def _samples(comparison: Comparison) -> tuple[Any, Any]:
    """Samples of every model that has some: scatter panels over their densities (2D), or captioned image grids;
    none yet (a new comparison): both cleared, so no earlier comparison's samples stand beside the new table."""
    finished = [entry.run for entry in comparison.entries if entry.run.samples is not None]
    if not finished:
        return gr.update(value=None), gr.update(value=None)
    first = finished[0]
    if first.bounds is not None:
        return gr.update(value=_panels(finished), visible=True), gr.update(visible=False)
    levels = first.spec.levels or 256
    pictures = [
        (figures.image_grid(run.samples[:IMAGES_SHOWN], levels, columns=4), f"{run.settings.model}") for run in finished
    ]
    return gr.update(visible=False), gr.update(value=pictures, visible=True)


def _panels(runs: list) -> go.Figure:
    figure = make_subplots(rows=1, cols=len(runs), subplot_titles=[run.settings.model for run in runs])
    for column, run in enumerate(runs, start=1):
        figures.add_points_panel(figure, run.bounds, run.data_points, run.samples, run.log_density, panel=column)
    figure.update_layout(template=figures.TEMPLATE, height=360, title_text="Samples side by side")
    return figure


def _curves(comparison: Comparison) -> tuple[go.Figure, go.Figure]:
    """Held-out NLL (bits/dim; bounds dashed) and validation MMD² against training time, one curve per model."""
    runs = [entry.run for entry in comparison.entries if entry.run.history]
    likelihood = [run for run in runs if run.capabilities.likelihood != "none"]
    nll = [
        Series(
            run.settings.model + (" (bound)" if run.capabilities.likelihood == "bound" else ""),
            [row["elapsed_s"] for row in run.history],
            [row["test_bpd"] for row in run.history],
            dashed=run.capabilities.likelihood == "bound",
        )
        for run in likelihood
    ]
    references = views.reference_lines(comparison.entries[0].run)
    note = "" if nll else "models with a likelihood draw their test NLL here"
    nll_figure = figures.curve_figure(
        "Test NLL against training time", "bits/dim", nll, references, note=note, x_title="training seconds"
    )
    mmd = [
        Series(run.settings.model, [row["elapsed_s"] for row in run.history], [row["val_mmd"] for row in run.history])
        for run in runs
    ]
    return nll_figure, figures.curve_figure(
        "Validation MMD² (every family)", "MMD²", mmd, note="" if mmd else "…", x_title="training seconds"
    )
