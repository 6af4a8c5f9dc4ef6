"""How it works, under the Train tab's figures: a flow's sampling pass one layer at a time (2D points).

The base Gaussian's draws and a grid of its plane are pushed through the layers f_K⁻¹, …, f_1⁻¹ one at a time; a
slider (or Play) picks how many have been undone, so the class sees each layer bend the plane until the Gaussian
becomes the data. The other direction, inference, pushes test data and a grid of the data's window through
f_1, …, f_K to the Gaussian (stage K − k of the sampling pass from z = f(x) is x after k layers: the flow is
invertible). Each layer's mean log |det| says where it stretches or squeezes, and the change of variables is written
out with the numbers of one test point. **Export GIF** saves the chosen direction as an animation. What a view needs
is asked of the model through its capabilities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from app.draw import raster
from app.draw.figures import DATA_COLOR, PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, base_figure
from app.draw.latent_figures import save_gif
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, Frame, HowView, accordion, gif_button, play
from app.page.session import RunView, Session

POINTS = 500  # base draws followed through the layers
GRID_LINES, GRID_POINTS, GRID_EXTENT = 9, 60, 2.5  # lines of the base plane, points per line, ±σ they span
PLAY_S = 0.7  # seconds per layer when playing
GRID_COLOR = "rgba(37, 99, 235, 0.55)"
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
DIRECTIONS = ("Gaussian → data (sampling)", "data → Gaussian (inference)")


@dataclass(frozen=True)
class Passes:
    """One run's sampling pass, stage by stage (K + 1), for the draws and for the grid, plus each layer's log-det."""

    title: str
    bounds: tuple[float, float, float, float]
    data: np.ndarray
    draws: list[np.ndarray]  # (POINTS, 2) per stage
    grid: list[np.ndarray]  # (2 · GRID_LINES · GRID_POINTS, 2) per stage
    tests: list[np.ndarray]  # test points per stage of the sampling pass from their z = f(x): stage K is x
    data_grid: list[np.ndarray]  # a grid of the data's window, likewise
    log_dets: list[float]  # per layer, f_1 … f_K
    formula: str


HOW = HowView(
    key="how",
    title="a flow, layer by layer",
    intro="For a flow on 2D points: press **Show the layers**, then move the slider or press **Play** to watch the "
    "Gaussian become the data, one layer at a time.",
    fits=lambda view: view.capabilities.layer_trajectory,
    unfit="Train or open a **flow on 2D points** first (e.g. the gallery's *NSF on rings*).",
    accordion_id="how-it-works",
)


@dataclass(frozen=True)
class Controls:
    frame: Frame
    layer: gr.Slider
    plot: LivePlot
    log_dets: gr.Dataframe


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        with gr.Row():
            show = gr.Button("Show the layers", variant="primary", elem_id="how-show", scale=0)
            layer = gr.Slider(0, 1, value=0, step=1, label="layers undone (0 = the base Gaussian)", elem_id="how-layer")
            play_btn = gr.Button("Play", elem_id="how-play", scale=0)
        with gr.Row():
            direction = gr.Radio(list(DIRECTIONS), value=DIRECTIONS[0], label="direction", elem_id="how-direction")
            gif_button("how", "The layers as a GIF", export_gif, [frame.state, direction])
        with gr.Row():
            plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="how-plot")
            log_dets = gr.Dataframe(
                headers=["layer", "mean log |det| on test data"],
                value=[],
                interactive=False,
                label="Where each layer stretches (> 0) or squeezes (< 0) space",
                elem_id="how-log-dets",
            )
    where = Controls(frame, layer, plot, log_dets)
    show.click(partial(show_layers, where), session, [frame.state, frame.note, layer, plot, log_dets], **QUIET)
    layer.input(draw_stage, [frame.state, layer, direction], plot, trigger_mode="always_last", **QUIET)
    direction.change(draw_stage, [frame.state, layer, direction], plot, **QUIET)
    play_btn.click(play_layers, [frame.state, direction], [layer, plot], **QUIET)


def show_layers(where: Controls, page: Session) -> dict:
    view = HOW.current(page)
    if view is None:
        return {where.frame.state: None, where.frame.note: HOW.unfit}
    passes = _passes(view)
    layers = len(passes.log_dets)
    return {
        where.frame.state: passes,
        where.frame.note: passes.formula,
        where.layer: gr.Slider(
            0, layers, value=layers, step=1, label=f"layers undone (0 = the base Gaussian, {layers} = x)"
        ),
        where.plot: stage_figure(passes, layers),
        where.log_dets: [[f"f{k + 1}", round(value, 3)] for k, value in enumerate(passes.log_dets)],
    }


def draw_stage(passes: Passes | None, layer: float, direction: str = DIRECTIONS[0]) -> go.Figure | None:
    return None if passes is None else stage_figure(passes, int(layer), direction)


def play_layers(passes: Passes | None, direction: str = DIRECTIONS[0]) -> Iterator[tuple]:
    if passes is not None:
        yield from play(range(len(passes.draws)), lambda k: stage_figure(passes, k, direction), PLAY_S)


def export_gif(passes: Passes | None, direction: str) -> str | None:
    """Every stage in the chosen direction as one frame (there and back, looping)."""
    if passes is None:
        return None
    frames = []
    for k in range(len(passes.draws)):
        points, grid = _stage(passes, k, direction)
        lines = grid.reshape(2 * GRID_LINES, GRID_POINTS, 2)
        fine = np.linspace(0, GRID_POINTS - 1, 6 * GRID_POINTS)  # the grid's lines drawn solid: 6 dots per point
        grid = np.stack([np.interp(fine, np.arange(GRID_POINTS), line[:, c]) for line in lines for c in (0, 1)])
        grid = grid.reshape(-1, 2, len(fine)).transpose(0, 2, 1).reshape(-1, 2)
        clouds = [
            raster.Cloud(passes.data, DATA_COLOR, 0.3, 1.2),
            raster.Cloud(grid, (37, 99, 235), 0.5, 0.9),
            raster.Cloud(points, SAMPLE_COLOR, 0.9, 1.8),
        ]
        frames.append(raster.points_picture(passes.bounds, clouds, size=360))
    return str(save_gif(frames, "flow-layers", seconds=2 * PLAY_S * len(frames)))


def _stage(passes: Passes, layer: int, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """The points and grid to draw at slider value ``layer``: layers undone from the Gaussian (sampling), or
    layers applied to the data (inference)."""
    if direction == DIRECTIONS[0]:
        return passes.draws[layer], passes.grid[layer]
    stage = len(passes.log_dets) - layer
    return passes.tests[stage], passes.data_grid[stage]


def _passes(view: RunView) -> Passes:
    model = view.model
    with view.run.inspecting(seed=0):
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
        tests = [stage.cpu().numpy() for stage in model.layer_trajectory(model.encode(test[:POINTS]))]
        window = _window_grid(view.bounds).to(view.device)
        data_grid = [stage.cpu().numpy() for stage in model.layer_trajectory(model.encode(window))]
    return Passes(view.title, view.bounds, view.data_points, draws, grid_stages, tests, data_grid, log_dets, formula)


def _window_grid(bounds: tuple[float, float, float, float]) -> torch.Tensor:
    """GRID_LINES lines across and GRID_LINES down the data's window, GRID_POINTS points each."""
    x_min, x_max, y_min, y_max = bounds
    xs, ys = torch.linspace(x_min, x_max, GRID_POINTS), torch.linspace(y_min, y_max, GRID_POINTS)
    across = [torch.stack([xs, torch.full_like(xs, c)], 1) for c in np.linspace(y_min, y_max, GRID_LINES + 2)[1:-1]]
    down = [torch.stack([torch.full_like(ys, c), ys], 1) for c in np.linspace(x_min, x_max, GRID_LINES + 2)[1:-1]]
    return torch.cat(across + down)


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


def stage_figure(passes: Passes, layer: int, direction: str = DIRECTIONS[0]) -> go.Figure:
    layers = len(passes.log_dets)
    sampling = direction == DIRECTIONS[0]
    if sampling:
        what = "the base Gaussian" if layer == 0 else "the samples x" if layer == layers else f"after {layer} layers"
        title = f"{passes.title}: {what} ({layer} of {layers} layers undone)"
    else:
        applied = f"after f₁ … f{str(layer).translate(SUBSCRIPTS)}"
        what = "the test data x" if layer == 0 else "z = f(x)" if layer == layers else applied
        title = f"{passes.title}: {what} ({layer} of {layers} layers applied)"
    figure = base_figure(title, "x₁", "x₂", SAMPLE_HEIGHT)
    points, grid = _stage(passes, layer, direction)
    grid = grid.reshape(2 * GRID_LINES, GRID_POINTS, 2)
    gaps = np.full((len(grid), 1, 2), np.nan)
    lines = np.concatenate([grid, gaps], 1).reshape(-1, 2)
    figure.add_scatter(
        x=passes.data[:, 0],
        y=passes.data[:, 1],
        mode="markers",
        name="data",
        marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.3},
        hoverinfo="skip",
    )
    figure.add_scatter(
        x=lines[:, 0],
        y=lines[:, 1],
        mode="lines",
        hoverinfo="skip",
        name="the base plane's grid" if sampling else "the data window's grid",
        line={"color": GRID_COLOR, "width": 1},
    )
    figure.add_scatter(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        name="draws" if sampling else "test points",
        marker={"size": 4, "color": f"rgb{SAMPLE_COLOR}" if sampling else PALETTE[2]},
        hoverinfo="skip",
    )
    x_min, x_max, y_min, y_max = passes.bounds
    figure.update_layout(
        xaxis={"range": [x_min, x_max], "constrain": "domain"},
        yaxis={"range": [y_min, y_max], "scaleanchor": "x", "scaleratio": 1, "constrain": "domain"},
    )
    return figure
