"""How it works for a diffusion model on 2D points: the forward noising, the denoiser's pull, the reverse chains.

One slider, the step t (0 = data, T = pure noise). Left: test points noised to step t by the forward process
x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, with arrows from each toward the denoiser's guess x̂_0 of where it came from (the
learned score at that noise level, rescaled). Right: sampling chains run backwards from noise, at step t with
the last moves each has made. **Play** runs the reverse process from T down to 0. The sampler may take fewer network
passes than it was trained with (the model's ``sampler_choices``): the chains take fewer, larger steps, and
**Measure the sample test** draws with each choice and tests the samples against the test data (MMD, 5 %).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from app.draw.figures import DATA_COLOR, PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, TEMPLATE, add_arrows
from app.draw.latent_figures import points_gif
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, Frame, HowView, accordion, gif_button, play
from app.page.session import RunView, Session
from dgm_core.inspect.samplers import LEVEL, sampler_trials

POINTS = 300  # test points noised
CHAINS = 40  # reverse chains drawn
PLAY_FRAMES = 20  # frames of Play, from T to 0
PLAY_S = 0.35
TRAIL = 15  # rows of each chain's path drawn behind it (passes; noise levels for a score model)
TESTED = 500  # samples drawn with each choice of passes for the sample test, against as many test points


@dataclass(frozen=True)
class Process:
    view: RunView
    clean: torch.Tensor  # (POINTS, 2) test points
    noise: torch.Tensor  # (POINTS, 2) their fixed ε
    passes: int  # the sampler's network passes
    steps: np.ndarray  # (R,) the step t of each row of ``chains``, 0 … T
    chains: np.ndarray  # (R, CHAINS, 2) the reverse chains at those steps


HOW = HowView(
    key="diff",
    title="diffusion, forward and reverse",
    intro="For a diffusion or score model on 2D points (DDPM, NCSN): press **Show the process**, move the step t, "
    "or **Play** the reverse process from noise to data. Give the sampler fewer passes, and **Measure the sample "
    "test** to see what they cost.",
    fits=lambda view: view.data_spec.kind == "points2d" and view.capabilities.denoising,
    unfit="Train or open a **diffusion model on 2D points** first (the gallery's *DDPM* card).",
    accordion_id="how-diffusion",
)


@dataclass(frozen=True)
class Controls:
    frame: Frame
    step: gr.Slider
    passes: gr.Radio
    plot: LivePlot
    table: gr.Dataframe


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        with gr.Row():
            show = gr.Button("Show the process", variant="primary", elem_id="diff-show", scale=0)
            step = gr.Slider(0, 1, value=0, step=1, label="step t (0 = data, T = noise)", elem_id="diff-step")
            play_btn = gr.Button("Play (T → 0)", elem_id="diff-play", scale=0)
        with gr.Row():
            passes = gr.Radio([], label="sampler passes (network evaluations per sample)", elem_id="diff-passes")
            measure = gr.Button("Measure the sample test", elem_id="diff-measure", scale=0)
            gif_button("diff", "The reverse chains (GIF)", export_gif, [frame.state])
        plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="diff-plot")
        table = gr.Dataframe(
            headers=["passes", "MMD²", "p-value", "verdict", "sampling ms"],
            value=[],
            interactive=False,
            label=f"{TESTED} samples with each choice of passes against {TESTED} test points (MMD permutation test)",
            elem_id="diff-table",
        )
    where = Controls(frame, step, passes, plot, table)
    show.click(partial(show_process, where), session, [frame.state, frame.note, step, passes, plot], **QUIET)
    redraw = lambda shown, t: None if shown is None else figure(shown, int(t))  # noqa: E731
    step.input(redraw, [frame.state, step], plot, trigger_mode="always_last", **QUIET)
    passes.input(redraw_chains, [frame.state, passes, step], [frame.state, plot], trigger_mode="always_last", **QUIET)
    play_btn.click(play_reverse, frame.state, [step, plot], **QUIET)
    measure.click(
        partial(measure_sample_test, where),
        session,
        [frame.note, table],
        show_progress="minimal",
        api_visibility="private",
    )


def show_process(where: Controls, page: Session) -> dict:
    view = HOW.current(page)
    if view is None:
        return {where.frame.state: None, where.frame.note: HOW.unfit}
    with view.run.inspecting(seed=0):
        clean = view.data.test[:POINTS].to(view.device)
        noise = torch.randn(POINTS, 2, device=view.device)
    choices = view.model.sampler_choices
    process = Process(view, clean, noise, choices[0], *_chains(view, choices[0]))
    steps = view.model.steps
    return {
        where.frame.state: process,
        where.frame.note: f"{view.title}: {view.model.process_note}",
        where.step: gr.Slider(0, steps, value=steps, step=1, label=f"step t (0 = data, {steps} = noise)"),
        where.passes: gr.Radio(list(choices), value=choices[0]),
        where.plot: figure(process, steps),
    }


def _chains(view: RunView, passes: int) -> tuple[np.ndarray, np.ndarray]:
    """The steps and CHAINS reverse chains of a ``passes``-pass sampler (``Process.steps``, ``Process.chains``), from
    the same starting noise whatever the passes."""
    with view.run.inspecting(seed=1):
        chains = view.model.reverse_trajectory(CHAINS, passes).cpu().numpy()
    return np.array(view.model.trajectory_steps(passes)), chains


def redraw_chains(process: Process | None, passes: int, t: float) -> tuple:
    if process is None:
        return gr.skip(), gr.skip()
    steps, chains = _chains(process.view, int(passes))
    process = replace(process, passes=int(passes), steps=steps, chains=chains)
    return process, figure(process, int(t))


def measure_sample_test(where: Controls, page: Session) -> dict:
    """Draws TESTED samples with each choice of passes and tests them against as many test points."""
    view = HOW.current(page)
    if view is None:
        return {where.frame.note: HOW.unfit}
    trials = sampler_trials(view.model, view.data.test, TESTED, lock=view.run.lock)
    verdicts = {True: f"indistinguishable from the test data at {LEVEL:.0%}", False: "told apart"}
    rows = [
        [
            trial.passes,
            round(trial.mmd, 5),
            round(trial.p_value, 3),
            verdicts[trial.indistinguishable],
            round(1000 * trial.seconds),
        ]
        for trial in trials
    ]
    return {where.table: rows}


def play_reverse(process: Process | None) -> Iterator[tuple]:
    if process is not None:
        frames = [int(t) for t in np.linspace(process.view.model.steps, 0, PLAY_FRAMES).round()]
        yield from play(frames, lambda t: figure(process, t), PLAY_S)


def export_gif(process: Process | None) -> str | None:
    """The reverse chains from noise to data, one frame per step of the chosen sampler."""
    if process is None:
        return None
    view = process.view
    return str(points_gif(view.bounds, view.data_points, process.chains[::-1], "reverse-chains"))


def figure(process: Process, t: int) -> go.Figure:
    view, model = process.view, process.view.model
    row = int(np.searchsorted(process.steps, t))  # the first row at a step ≥ t: where the chains are at step t
    with view.run.lock:
        noisy = model.noised(process.clean, t, process.noise)
        pull = model.denoise_direction(noisy, t).cpu().numpy()
    noisy = noisy.cpu().numpy()
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.08,
        subplot_titles=(
            f"forward: the data noised to step {t}; arrows: the denoiser's pull",
            f"reverse, {process.passes} passes: {CHAINS} chains at step {t}, and where they came from",
        ),
    )
    data = view.data_points
    for col in (1, 2):
        fig.add_scatter(
            x=data[:, 0],
            y=data[:, 1],
            mode="markers",
            name="data",
            showlegend=col == 1,
            marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.25},
            hoverinfo="skip",
            row=1,
            col=col,
        )
    add_arrows(fig, noisy, pull, view.bounds, name="toward the denoiser's x̂₀", row=1, col=1)
    fig.add_scatter(
        x=noisy[:, 0],
        y=noisy[:, 1],
        mode="markers",
        name=f"x_t, t = {t}",
        marker={"size": 4, "color": PALETTE[0]},
        hoverinfo="skip",
        row=1,
        col=1,
    )
    paths = process.chains[row : row + TRAIL + 1][::-1]  # the last TRAIL moves, down to step t
    trails = np.concatenate([paths.transpose(1, 0, 2), np.full((CHAINS, 1, 2), np.nan)], 1).reshape(-1, 2)
    fig.add_scatter(
        x=trails[:, 0],
        y=trails[:, 1],
        mode="lines",
        name=f"their last {TRAIL} moves",
        line={"color": "rgba(234, 88, 12, 0.35)", "width": 1},
        hoverinfo="skip",
        row=1,
        col=2,
    )
    fig.add_scatter(
        x=process.chains[row][:, 0],
        y=process.chains[row][:, 1],
        mode="markers",
        name="chains at step t",
        marker={"size": 6, "color": f"rgb{SAMPLE_COLOR}"},
        hoverinfo="skip",
        row=1,
        col=2,
    )
    x_min, x_max, y_min, y_max = view.bounds
    fig.update_layout(
        template=TEMPLATE,
        height=SAMPLE_HEIGHT,
        title={"text": view.title, "x": 0.02},
        margin={"t": 80},
        legend={"orientation": "h", "y": -0.15},
    )
    for col, anchor in ((1, "x"), (2, "x2")):
        fig.update_xaxes(range=[x_min, x_max], row=1, col=col)
        fig.update_yaxes(range=[y_min, y_max], scaleanchor=anchor, row=1, col=col)
    return fig
