"""How it works for an energy-based model on 2D points: Langevin chains over the energy landscape, and the contrast.

p(x) ∝ exp(−E(x)). Left: the landscape −E(x) with short-run Langevin chains, each a path from its uniform start
through K steps y ← y − η∇E(y) + τz to a sample (a slider, or **Play**, walks the steps; the step size η and noise τ
are in the title). Right: what contrastive divergence compares — data (the positives, whose energy the loss lowers)
against the chains' ends (the negatives, whose energy it raises), with each side's mean energy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.draw.figures import PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, TEMPLATE, add_points_panel
from app.draw.latent_figures import points_gif
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, Frame, HowView, accordion, gif_button, play
from app.page.session import DENSITY_GRID, RunView, Session
from dgm_core.learn.evaluation import field_grid

CHAINS = 40  # chains drawn as paths
CONTRAST = 300  # positives and negatives
PLAY_S = 0.2


@dataclass(frozen=True)
class Landscape:
    view: RunView
    field: np.ndarray  # −E over the window (DENSITY_GRID²)
    chains: np.ndarray  # (K + 1, CHAINS, 2)
    positives: np.ndarray  # (CONTRAST, 2) test data
    negatives: np.ndarray  # (CONTRAST, 2) chain ends
    energies: tuple[float, float]  # mean E of positives and of negatives


HOW = HowView(
    key="energy",
    title="an energy-based model's chains",
    intro="For an energy-based model on 2D points: press **Show the chains**, then move the step slider or **Play**.",
    fits=lambda view: view.bounds is not None and view.capabilities.chains,
    unfit="Train or open an **energy-based model on 2D points** first (the gallery's *EBM* card).",
    accordion_id="how-energy",
)


@dataclass(frozen=True)
class Controls:
    frame: Frame
    step: gr.Slider
    plot: LivePlot


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        with gr.Row():
            show = gr.Button("Show the chains", variant="primary", elem_id="energy-show", scale=0)
            step = gr.Slider(0, 1, value=0, step=1, label="Langevin steps taken", elem_id="energy-step")
            play_btn = gr.Button("Play", elem_id="energy-play", scale=0)
            gif_button("energy", "The chains (GIF)", export_gif, [frame.state])
        plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="energy-plot")
    where = Controls(frame, step, plot)
    show.click(partial(show_chains, where), session, [frame.state, frame.note, step, plot], **QUIET)
    step.input(
        lambda s, k: None if s is None else figure(s, int(k)),
        [frame.state, step],
        plot,
        trigger_mode="always_last",
        **QUIET,
    )
    play_btn.click(play_chains, frame.state, [step, plot], **QUIET)


def show_chains(where: Controls, page: Session) -> dict:
    view = HOW.current(page)
    if view is None:
        return {where.frame.state: None, where.frame.note: HOW.unfit}
    model = view.model
    with view.run.inspecting(seed=0):
        field = field_grid(model, view.bounds, n=DENSITY_GRID).numpy()
        chains = model.langevin_trajectory(CHAINS).cpu().numpy()
        positives = view.data.test[:CONTRAST].to(view.device)
        negatives = model.sample(CONTRAST)
        energies = (-float(model.field(positives).mean()), -float(model.field(negatives).mean()))
    landscape = Landscape(view, field, chains, positives.cpu().numpy(), negatives.cpu().numpy(), energies)
    steps = len(chains) - 1
    said = (
        f"{view.title}: {model.field_note}. The loss is mean E(data) − mean E(negatives) (+ a small penalty): "
        f"today {energies[0]:.2f} − {energies[1]:.2f} = {energies[0] - energies[1]:.2f}. Training pushes the first "
        "down and the second up until the chains' ends look like data."
    )
    return {
        where.frame.state: landscape,
        where.frame.note: said,
        where.step: gr.Slider(0, steps, value=steps, step=1, label=f"Langevin steps taken (of {steps})"),
        where.plot: figure(landscape, steps),
    }


def play_chains(landscape: Landscape | None) -> Iterator[tuple]:
    if landscape is not None:
        yield from play(range(len(landscape.chains)), lambda k: figure(landscape, k), PLAY_S)


def export_gif(landscape: Landscape | None) -> str | None:
    """The chains from their uniform start to the samples, one frame per Langevin step."""
    if landscape is None:
        return None
    view = landscape.view
    return str(points_gif(view.bounds, view.data_points, landscape.chains, "langevin-chains"))


def figure(landscape: Landscape, k: int) -> go.Figure:
    view, model = landscape.view, landscape.view.model
    positive, negative = landscape.energies
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.08,
        subplot_titles=(
            f"{CHAINS} chains after {k} steps (η = {model.step_size}, τ = {model.noise_scale})",
            f"positives (data, mean E {positive:.2f}) against negatives (mean E {negative:.2f})",
        ),
    )
    span = (float(landscape.field.min()), float(landscape.field.max()))
    for panel, data in ((1, view.data_points), (2, view.data_points[:0])):
        add_points_panel(
            fig,
            view.bounds,
            data,
            log_density=landscape.field,
            panel=panel,
            density_label=model.field_name,
            density_range=span,
        )
    paths = landscape.chains[: k + 1]
    trails = np.concatenate([paths.transpose(1, 0, 2), np.full((CHAINS, 1, 2), np.nan)], 1).reshape(-1, 2)
    fig.add_scatter(
        x=trails[:, 0],
        y=trails[:, 1],
        mode="lines",
        name="chain paths",
        hoverinfo="skip",
        line={"color": "rgba(234, 88, 12, 0.5)", "width": 1},
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=paths[-1][:, 0],
        y=paths[-1][:, 1],
        mode="markers",
        name=f"chains at step {k}",
        marker={"size": 6, "color": f"rgb{SAMPLE_COLOR}"},
        hoverinfo="skip",
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=landscape.positives[:, 0],
        y=landscape.positives[:, 1],
        mode="markers",
        hoverinfo="skip",
        name="positives: data (E lowered)",
        marker={"size": 4, "color": PALETTE[2]},
        row=1,
        col=2,
    )
    fig.add_scatter(
        x=landscape.negatives[:, 0],
        y=landscape.negatives[:, 1],
        mode="markers",
        hoverinfo="skip",
        name="negatives: chain ends (E raised)",
        marker={"size": 4, "color": f"rgb{SAMPLE_COLOR}"},
        row=1,
        col=2,
    )
    fig.update_layout(
        template=TEMPLATE,
        height=SAMPLE_HEIGHT,
        title={"text": view.title, "x": 0.02},
        margin={"t": 80},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig
