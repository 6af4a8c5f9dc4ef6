"""How it works for an autoregressive model on 2D points: one conditional at a time, as it samples.

p(x) = p(x_a) p(x_b | x_a), a and b in the model's order. The first panel is the data with the line x_a = v; the
second draws p(x_a), and p(x_b | x_a = v), the joint's slice along that line renormalised. A slider moves v; **Draw
step by step** samples v ~ p(x_a), then w ~ p(x_b | v), and marks the point — what ``sample()`` does, made visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from app.draw.figures import DATA_COLOR, PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, TEMPLATE
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, Frame, HowView, accordion
from app.page.session import RunView, Session
from dgm_core.models.abilities import Conditionals, ability

GRID = 400  # points along each conditional's line
NAMES = ("x₁", "x₂")


@dataclass(frozen=True)
class Steps:
    """What one page shows of one run: its view, the order of its two dimensions, and the first one's density."""

    view: RunView
    first: int  # the dimension drawn first
    second: int
    values: np.ndarray  # (GRID,) along the first dimension's window
    first_density: np.ndarray  # p(x_first) on ``values``


HOW = HowView(
    key="cond",
    title="an autoregressive model, one conditional at a time",
    intro="For an autoregressive model on 2D points (MADE, NADE, the transformer): p(x) = p(first) · p(second | "
    "first). Press **Show the conditionals**, move the slider along the first dimension, or **Draw step by step**.",
    fits=lambda view: view.data_spec.kind == "points2d" and view.capabilities.conditionals,
    unfit="Train or open an **autoregressive model on 2D points** first (e.g. the gallery's *MADE* card).",
    accordion_id="how-conditionals",
)


@dataclass(frozen=True)
class Controls:
    frame: Frame
    value: gr.Slider
    plot: LivePlot


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        with gr.Row():
            show = gr.Button("Show the conditionals", variant="primary", elem_id="cond-show", scale=0)
            value = gr.Slider(-1, 1, value=0, step=0.01, label="the first dimension's value v", elem_id="cond-value")
            draw = gr.Button("Draw step by step", elem_id="cond-draw", scale=0)
        plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="cond-plot")
    where = Controls(frame, value, plot)
    show.click(partial(show_conditionals, where), session, [frame.state, frame.note, value, plot], **QUIET)
    redraw = lambda shown, v: None if shown is None else figure(shown, v)  # noqa: E731
    value.input(redraw, [frame.state, value], plot, trigger_mode="always_last", **QUIET)
    draw.click(draw_step_by_step, frame.state, [value, plot, frame.note], **QUIET)


def show_conditionals(where: Controls, page: Session) -> dict:
    view = HOW.current(page)
    if view is None:
        return {where.frame.state: None, where.frame.note: HOW.unfit}
    first, second = view.model.order.tolist()
    low, high = view.bounds[2 * first], view.bounds[2 * first + 1]
    values = np.linspace(low, high, GRID)
    steps = Steps(view, first, second, values, _density(view, first, torch.zeros(2), values))
    start = float(values[np.argmax(steps.first_density)])
    return {
        where.frame.state: steps,
        where.frame.note: f"This model draws **{NAMES[first]} first**, then {NAMES[second]} given it.",
        where.value: gr.Slider(
            round(low, 2), round(high, 2), value=round(start, 2), step=0.01, label=f"v, the value of {NAMES[first]}"
        ),
        where.plot: figure(steps, start),
    }


def draw_step_by_step(steps: Steps | None) -> tuple:
    if steps is None:
        return gr.skip(), gr.skip(), "Press **Show the conditionals** first."
    model, run = steps.view.model, steps.view.run
    with run.inspecting():
        point = torch.zeros(2)
        point[steps.first] = model.draw_conditional(point.to(steps.view.device), steps.first)
        point[steps.second] = model.draw_conditional(point.to(steps.view.device), steps.second)
    v, w = float(point[steps.first]), float(point[steps.second])
    said = (
        f"Drew {NAMES[steps.first]} = {v:.2f} from p({NAMES[steps.first]}), then {NAMES[steps.second]} = {w:.2f} "
        f"from p({NAMES[steps.second]} | {NAMES[steps.first]} = {v:.2f}): the sample is the black cross."
    )
    return v, figure(steps, v, point.numpy()), said


def _density(view: RunView, d: int, item: torch.Tensor, values: np.ndarray) -> np.ndarray:
    with view.run.inspecting(seed=0) as model:
        log_p = ability(model, Conditionals).conditional_log_density(
            item.to(view.device), d, torch.as_tensor(values, dtype=torch.float32, device=view.device)
        )
    return log_p.exp().cpu().numpy()


def figure(steps: Steps, v: float, sample: np.ndarray | None = None) -> go.Figure:
    first, second = NAMES[steps.first], NAMES[steps.second]
    item = torch.zeros(2)
    item[steps.first] = v
    view = steps.view
    low, high = view.bounds[2 * steps.second], view.bounds[2 * steps.second + 1]
    along = np.linspace(low, high, GRID)
    second_density = _density(view, steps.second, item, along)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        horizontal_spacing=0.12,
        subplot_titles=("the data, and the line " + f"{first} = v", f"p({first}) and p({second} | {first} = {v:.2f})"),
    )
    data = view.data_points
    fig.add_scatter(
        x=data[:, 0],
        y=data[:, 1],
        mode="markers",
        name="data",
        hoverinfo="skip",
        marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.35},
        row=1,
        col=1,
    )
    line = ([v, v], [low, high]) if steps.first == 0 else ([low, high], [v, v])
    fig.add_scatter(
        x=line[0],
        y=line[1],
        mode="lines",
        name=f"{first} = v",
        hoverinfo="skip",
        line={"color": f"rgb{SAMPLE_COLOR}", "width": 2},
        row=1,
        col=1,
    )
    if sample is not None:
        fig.add_scatter(
            x=[sample[0]],
            y=[sample[1]],
            mode="markers",
            name="the drawn sample",
            marker={"symbol": "x", "size": 12, "color": "black"},
            row=1,
            col=1,
        )
    fig.add_scatter(
        x=steps.values,
        y=steps.first_density,
        mode="lines",
        name=f"p({first})",
        line={"color": PALETTE[0]},
        row=1,
        col=2,
    )
    fig.add_scatter(
        x=along,
        y=second_density,
        mode="lines",
        name=f"p({second} | {first} = v)",
        line={"color": f"rgb{SAMPLE_COLOR}"},
        row=1,
        col=2,
    )
    x_min, x_max, y_min, y_max = view.bounds
    fig.update_layout(
        template=TEMPLATE,
        height=SAMPLE_HEIGHT,
        title={"text": view.title, "x": 0.02},
        margin={"t": 80},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(range=[x_min, x_max], title_text="x₁", row=1, col=1)
    fig.update_yaxes(range=[y_min, y_max], title_text="x₂", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="value", row=1, col=2)
    fig.update_yaxes(title_text="density", rangemode="tozero", row=1, col=2)
    return fig
