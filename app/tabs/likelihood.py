"""The Likelihood tab: held-out curves of every run overlaid, per-item scores, out-of-distribution items, IWAE vs k."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from app.draw import figures
from app.draw.figures import PALETTE, Reference, base_figure
from app.draw.live_plot import LivePlot
from app.page import views
from app.page.pickers import refresh_runs, run_picker
from app.page.session import RunView, Session
from app.tabs import item_scores
from app.tabs.inpaint import build_inpaint_section

X_AXES = ("training step", "training seconds")


def build_likelihood_tab(session: gr.State, tab: gr.Tab) -> tuple[gr.Dropdown, list]:
    """The tab; returns its one-run picker and the outputs that ``score_items`` fills."""
    gr.Markdown(
        "Negative log-likelihood in **bits per dimension** (lower is better). Solid: exact likelihood; dashed: an "
        "upper bound on the NLL (ELBO, IWAE, dequantization), so the true NLL is at most that. Thin dotted: the "
        "same score on training items; when test rises while train keeps falling, the model is overfitting. Models "
        "without a likelihood (GANs) are left out: compare them by MMD in the Compare tab.",
        elem_classes="hint",
    )
    with gr.Row():
        runs = run_picker("lik-runs", label="Runs to overlay", multiselect=True)
        x_axis = gr.Radio(list(X_AXES), value="training step", label="Against", elem_id="lik-x")
    curves = LivePlot(
        figures.curve_figure("Held-out NLL", "bits/dim", [], note="pick runs"), show_label=False, elem_id="lik-curves"
    )
    gr.Markdown("## One run, item by item")
    with gr.Row():
        run_id = run_picker("lik-run")
        score_btn = gr.Button("Score every test item", variant="primary", elem_id="lik-score")
    with gr.Row():
        histogram = LivePlot(None, show_label=False, elem_id="lik-hist")
        extremes = LivePlot(None, show_label=False, elem_id="lik-extremes")  # a picture, or points for 2D data
    ood_table = gr.Dataframe(
        headers=item_scores.OOD_COLUMNS,
        value=[],
        interactive=False,
        elem_id="lik-ood",
        elem_classes="wide-table",
        wrap=False,
        visible=False,
    )
    with gr.Accordion("ELBO → IWAE: how the bound tightens with more importance samples", open=False):
        with gr.Row():
            k_max = gr.Dropdown([10, 50, 200, 1000], value=200, label="largest k", elem_id="lik-k")
            iwae_btn = gr.Button("Compute the bounds", elem_id="lik-iwae-btn")
        iwae_plot = LivePlot(None, show_label=False, elem_id="lik-iwae")

    build_inpaint_section(session, run_id)  # p(hidden | observed): the likelihood's conditionals at work

    quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
    tab.select(on_tab, [session, runs, run_id], [runs, run_id, curves], **quick)
    for control in (runs, x_axis):
        control.change(draw_curves, [session, runs, x_axis], curves, **quick)
    score_btn.click(score_items, [session, run_id], [histogram, extremes, ood_table], api_name="score_items")
    run_id.input(choose_run, [session, run_id], None, **quick)
    iwae_btn.click(draw_iwae, [session, run_id, k_max], iwae_plot, api_visibility="private")
    return run_id, [histogram, extremes, ood_table]


def on_tab(session: Session, chosen: list | None, current: Any) -> tuple[Any, Any, Any]:
    """Offer the runs that have a likelihood (once the page's restore listed them, in its first moments); overlay
    all of them unless the user chose some still there."""
    session.wait_known()
    choices = [(title, rid) for title, rid in session.choices() if _has_likelihood(session.find(rid))]
    ids = [rid for _, rid in choices]
    kept = [rid for rid in chosen or [] if rid in ids] or ids
    single = refresh_runs(session, current)
    return gr.update(choices=choices, value=kept), single, curves_figure(session, kept, "training step")


def choose_run(session: Session, run_id: Any) -> None:
    """A run chosen for scoring item by item: its scores are computed while the user reaches for the button."""
    run = session.find(run_id)
    if _has_likelihood(run):
        item_scores.score_soon(run)


def _has_likelihood(run: RunView | None) -> bool:
    return run is not None and run.capabilities.likelihood != "none"


def draw_curves(session: Session, chosen: list | None, x_axis: str) -> Any:
    return curves_figure(session, chosen or [], x_axis)


def curves_figure(session: Session, chosen: list, x_axis: str) -> go.Figure:
    """Train (thin dotted) and test (bold; dashed for bounds) bits/dim of each run, one colour per run."""
    runs = [run for run in (session.find(rid) for rid in chosen) if _has_likelihood(run) and run.run.history]
    figure = base_figure("Held-out NLL of the session's runs", x_axis, "bits/dim")
    for i, run in enumerate(runs):
        color, bound = PALETTE[i % len(PALETTE)], run.capabilities.likelihood == "bound"
        name = f"#{run.id} {run.spec.model}" + (f" ({run.capabilities.likelihood_name})" if bound else "")
        history = run.run.history
        x = [scores.step if x_axis == "training step" else scores.elapsed_s for scores in history]
        lines = [("test", "test", 2.5, "dash" if bound else "solid"), ("train", "train", 1.2, "dot")]
        for label, split, width, dash in lines:
            y = [scores.bits(scores.nll[split]) for scores in history]
            figure.add_scatter(
                x=x, y=y, mode="lines", name=f"{name} {label}", line={"color": color, "width": width, "dash": dash}
            )
        for tracked in views.tracked_bounds(history):
            y = [scores.bits(scores.bounds.get(tracked, np.nan)) for scores in history]
            figure.add_scatter(
                x=x,
                y=y,
                mode="lines",
                name=f"{name} test, {tracked} bound",
                line={"color": color, "width": 1.8, "dash": "dashdot"},
            )
    for reference in _references(runs):
        figure.add_hline(
            y=reference.value,
            line={"color": "#6b7280", "dash": "dot"},
            annotation_text=reference.label,
            annotation_position="bottom left",
        )
    if not runs:
        figure.add_annotation(
            text="train a model with a likelihood, then pick it here",
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
        )
    return figure


def _references(runs: list[RunView]) -> list[Reference]:
    """Baseline and entropy lines, when every overlaid run is on the same data set (else they would mislead)."""
    if not runs or len({run.spec.dataset for run in runs}) > 1:
        return []
    return views.reference_lines(runs[0])


def _run(session: Session, run_id: Any) -> RunView:
    run = session.find(run_id)
    if run is None:
        raise gr.Error("Pick a run (train one first).")
    if not _has_likelihood(run):
        raise gr.Error(f"{run.spec.model} has no likelihood to score items by: compare it by MMD instead.")
    return run


def score_items(session: Session, run_id: Any) -> tuple[Any, Any, Any]:
    """The histogram of every test item's score, the most and least likely items, the out-of-distribution table."""
    run = _run(session, run_id)
    scores = item_scores.item_scores(run)  # cached by weights: the same run scored again answers at once
    table = gr.update(value=item_scores.ood_table(scores), visible=bool(scores.others))
    return _histogram(run, scores), _extremes_figure(run, scores), table


def _histogram(run: RunView, scores: item_scores.ItemScores) -> go.Figure:
    """Per-item bits/dim of the test data and each out-of-distribution set, on shared bins over a range that shows
    the test data (items far beyond it, e.g. noise under an autoregressive model, are counted in a note)."""
    kind = "bound" if run.capabilities.likelihood == "bound" else "NLL"
    title = f"#{run.id} {run.spec.model}: per-item {kind} (bits/dim)"
    figure = base_figure(
        title, f"bits/dim ({'upper bound' if kind == 'bound' else 'exact'}; lower = more likely)", "share of items"
    )
    sets = {"test data": scores.test, **scores.others}
    low, high = item_scores.histogram_range(sets)
    size = (high - low) / 60
    beyond = []
    for i, (name, values) in enumerate(sets.items()):
        shown = values[values <= high]
        figure.add_histogram(  # each bar: its share of ALL the set's items (those beyond the range count too)
            x=shown.astype(np.float32),
            y=np.full(len(shown), 1 / len(values), dtype=np.float32),
            histfunc="sum",
            name=name,
            opacity=0.6,
            marker_color=PALETTE[i % len(PALETTE)],
            xbins={"start": low, "end": high, "size": size},
        )
        if len(shown) < len(values):
            beyond.append(f"{name}: {100 * (1 - len(shown) / len(values)):.0f}%")
    figure.update_layout(barmode="overlay")
    figure.update_xaxes(range=[low, high])
    if beyond:
        figure.add_annotation(
            text=f"beyond {high:.2f} bits/dim (not drawn): " + ", ".join(beyond),
            xref="paper",
            yref="paper",
            x=1.0,
            y=1.0,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
        )
    return figure


def _extremes_figure(run: RunView, scores: item_scores.ItemScores) -> go.Figure:
    """Images: the most likely test items in the top row, the least likely below. 2D: test points coloured by their
    score, the most and least likely ones ringed."""
    if run.data_spec.kind != "points2d":
        items = scores.items[np.concatenate([scores.most_likely, scores.least_likely])].numpy()
        picture = figures.image_grid(items, run.data_spec.levels or 256, columns=item_scores.EXTREMES, scale=7)
        title = "Top row: the most likely test items; bottom row: the least likely"
        return figures.picture_figure(picture, title, height=260)
    points = scores.items.numpy()
    figure = figures.scatter_figure("Test points by log-likelihood", run.bounds, points[:0])
    figure.add_scatter(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        name="test points",
        marker={
            "size": 3,
            "color": -scores.test.astype(np.float32),
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "−bits/dim"}, "thickness": 12},
        },
    )
    for name, index, color in (
        ("most likely", scores.most_likely, "#16a34a"),
        ("least likely", scores.least_likely, "#dc2626"),
    ):
        figure.add_scatter(
            x=points[index, 0],
            y=points[index, 1],
            mode="markers",
            name=name,
            marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"color": color, "width": 2}},
        )
    return figure


def draw_iwae(session: Session, run_id: Any, k_max: Any) -> go.Figure:
    run = _run(session, run_id)
    if not run.capabilities.importance_weighted:
        raise gr.Error(f"{run.spec.model} has no importance-weighted bound: it needs an encoder q(z|x).")
    with run.run.lock:
        ks, values = item_scores.iwae_curve(run, int(k_max))
    figure = base_figure(
        f"#{run.id} {run.spec.model}: test bound against k",
        "k (importance samples)",
        "bits/dim (upper bound on NLL)",
    )
    figure.add_scatter(x=ks, y=values, mode="lines+markers", name="IWAE_k (k = 1 is the ELBO)")
    figure.update_xaxes(type="log")
    gap = values[0] - values[-1]
    figure.add_annotation(
        text=f"ELBO − IWAE_{ks[-1]} gap: {gap:.4f} bits/dim",
        xref="paper",
        yref="paper",
        x=0.98,
        y=0.95,
        showarrow=False,
        xanchor="right",
    )
    return figure
