"""How it works, under the Train tab's figures: a flow's sampling pass one layer at a time (2D points).

The base Gaussian's draws and a grid of its plane are pushed through the layers f_K⁻¹, …, f_1⁻¹ one at a time; a
slider (or Play) picks how many have been undone, so the class sees each layer bend the plane until the Gaussian
becomes the data. Each layer's mean log |det| says where it stretches or squeezes, and the change of variables is
written out with the numbers of one sample. GANs show their mechanism in the samples figure itself (the
discriminator's field and the generator's pull). What a view needs is asked of the model through its capabilities.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from app.figures import DATA_COLOR, SAMPLE_COLOR, SAMPLE_HEIGHT, base_figure
from app.live_plot import LivePlot
from app.session import RunView, Session

POINTS = 500  # base draws followed through the layers
GRID_LINES, GRID_POINTS, GRID_EXTENT = 9, 60, 2.5  # lines of the base plane, points per line, ±σ they span
PLAY_S = 0.7  # seconds per layer when playing
GRID_COLOR = "rgba(37, 99, 235, 0.55)"


@dataclass(frozen=True)
class Passes:
    """One run's sampling pass, stage by stage (K + 1), for the draws and for the grid, plus each layer's log-det."""

    title: str
    bounds: tuple[float, float, float, float]
    data: np.ndarray
    draws: list[np.ndarray]  # (POINTS, 2) per stage
    grid: list[np.ndarray]  # (2 · GRID_LINES · GRID_POINTS, 2) per stage
    log_dets: list[float]  # per layer, f_1 … f_K
    formula: str


def build_how_it_works(session: gr.State) -> None:
    with gr.Accordion("How it works — a flow, layer by layer", open=False, elem_id="how-it-works"):
        note = gr.Markdown(
            "For a flow on 2D points: press **Show the layers**, then move the slider or press **Play** to watch the "
            "Gaussian become the data, one layer at a time.",
            elem_id="how-note",
        )
        with gr.Row():
            show = gr.Button("Show the layers", variant="primary", elem_id="how-show", scale=0)
            layer = gr.Slider(0, 1, value=0, step=1, label="layers undone (0 = the base Gaussian)", elem_id="how-layer")
            play = gr.Button("Play", elem_id="how-play", scale=0)
        with gr.Row():
            plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="how-plot")
            log_dets = gr.Dataframe(
                headers=["layer", "mean log |det| on test data"], value=[], interactive=False,
                label="Where each layer stretches (> 0) or squeezes (< 0) space", elem_id="how-log-dets",
            )  # fmt: skip
        passes = gr.State(None)  # this page's last shown pass
    quiet = {"show_progress": "hidden", "api_visibility": "private", "concurrency_limit": None}
    show.click(show_layers, session, [passes, note, layer, plot, log_dets], **quiet)
    layer.input(draw_stage, [passes, layer], plot, trigger_mode="always_last", **quiet)
    play.click(play_layers, passes, [layer, plot], **quiet)


def show_layers(page: Session) -> tuple:
    view = page.current
    if view is None or not view.capabilities.layer_trajectory:
        said = "Train or open a **flow on 2D points** first (e.g. the gallery's *NSF on rings*)."
        return None, said, gr.skip(), gr.skip(), gr.skip()
    passes = _passes(view)
    layers = len(passes.log_dets)
    rows = [[f"f{k + 1}", round(value, 3)] for k, value in enumerate(passes.log_dets)]
    slider = gr.Slider(0, layers, value=layers, step=1, label=f"layers undone (0 = the base Gaussian, {layers} = x)")
    return passes, passes.formula, slider, stage_figure(passes, layers), rows


def draw_stage(passes: Passes | None, layer: float) -> go.Figure | None:
    return None if passes is None else stage_figure(passes, int(layer))


def play_layers(passes: Passes | None) -> Iterator[tuple]:
    if passes is None:
        return
    for k in range(len(passes.draws)):
        yield k, stage_figure(passes, k)
        time.sleep(PLAY_S)


def _passes(view: RunView) -> Passes:
    model = view.model
    with view.run.lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model.eval()
        z = torch.randn(POINTS, 2, device=view.device)
        line = torch.linspace(-GRID_EXTENT, GRID_EXTENT, GRID_POINTS)
        grid = torch.cat(
            [torch.stack([line, torch.full_like(line, c)], 1) for c in np.linspace(-2, 2, GRID_LINES)]
            + [torch.stack([torch.full_like(line, c), line], 1) for c in np.linspace(-2, 2, GRID_LINES)]
        ).to(view.device)
        draws = [stage.cpu().numpy() for stage in model.layer_trajectory(z)]
        grid_stages = [stage.cpu().numpy() for stage in model.layer_trajectory(grid)]
        test = view.data.test[:2000].to(view.device)
        log_dets = model.layer_log_dets(test)
        formula = _change_of_variables(model, view.data.test[:1].to(view.device))
    return Passes(view.title, view.bounds, view.data_points, draws, grid_stages, log_dets, formula)


def _change_of_variables(model, x: torch.Tensor) -> str:
    """The formula with the numbers of one test point: the base density at z = f(x), the learned layers' log-dets
    and the fixed standardisation's."""
    with torch.no_grad():
        log_p = float(model.log_prob(x))
        z = model.encode(x)
        log_base = float(-0.5 * z.pow(2).sum() - math.log(2 * math.pi))
        layers = sum(model.layer_log_dets(x))
    fixed = log_p - log_base - layers
    point, latent = x[0].tolist(), z[0].tolist()
    return (
        f"Change of variables at the test point x = ({point[0]:.2f}, {point[1]:.2f}), z = f(x) = "
        f"({latent[0]:.2f}, {latent[1]:.2f}):  \n"
        f"log p(x) = log N(z; 0, I) + Σ_k log |det ∂f_k| + log |det standardisation| = {log_base:.3f} "
        f"{_signed(layers)} {_signed(fixed)} = **{log_p:.3f} nats**"
    )


def _signed(value: float) -> str:
    return f"+ {value:.3f}" if value >= 0 else f"− {-value:.3f}"


def stage_figure(passes: Passes, layer: int) -> go.Figure:
    layers = len(passes.log_dets)
    what = "the base Gaussian" if layer == 0 else ("the samples x" if layer == layers else f"after {layer} layers")
    figure = base_figure(f"{passes.title}: {what} ({layer} of {layers} layers undone)", "x₁", "x₂", SAMPLE_HEIGHT)
    grid = passes.grid[layer].reshape(2 * GRID_LINES, GRID_POINTS, 2)
    gaps = np.full((len(grid), 1, 2), np.nan)
    lines = np.concatenate([grid, gaps], 1).reshape(-1, 2)
    figure.add_scatter(x=passes.data[:, 0], y=passes.data[:, 1], mode="markers", name="data",
                       marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.3}, hoverinfo="skip")  # fmt: skip
    figure.add_scatter(x=lines[:, 0], y=lines[:, 1], mode="lines", name="the base plane's grid",
                       line={"color": GRID_COLOR, "width": 1}, hoverinfo="skip")  # fmt: skip
    draws = passes.draws[layer]
    figure.add_scatter(x=draws[:, 0], y=draws[:, 1], mode="markers", name="draws",
                       marker={"size": 4, "color": f"rgb{SAMPLE_COLOR}"}, hoverinfo="skip")  # fmt: skip
    x_min, x_max, y_min, y_max = passes.bounds
    figure.update_layout(
        xaxis={"range": [x_min, x_max], "constrain": "domain"},
        yaxis={"range": [y_min, y_max], "scaleanchor": "x", "scaleratio": 1, "constrain": "domain"},
    )
    return figure
