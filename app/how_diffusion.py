"""How it works for a diffusion model on 2D points: the forward noising, the denoiser's pull, the reverse chains.

One slider, the step t (0 = data, T = pure noise). Left: test points noised to step t by the forward process
x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, with arrows from each toward the denoiser's guess x̂_0 of where it came from (the
learned score at that noise level, rescaled). Right: sampling chains run backwards from noise, at step t with
the last steps each has taken. **Play** runs the reverse process from T down to 0.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from app.figures import DATA_COLOR, PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, TEMPLATE, add_arrows
from app.live_plot import LivePlot
from app.session import RunView, Session

POINTS = 300  # test points noised
CHAINS = 40  # reverse chains drawn
PLAY_FRAMES = 20  # frames of Play, from T to 0
PLAY_S = 0.35
TRAIL = 15  # reverse steps of each chain's path drawn behind it


@dataclass(frozen=True)
class Process:
    view: RunView
    clean: torch.Tensor  # (POINTS, 2) test points
    noise: torch.Tensor  # (POINTS, 2) their fixed ε
    chains: np.ndarray  # (T + 1, CHAINS, 2), index t = the chains at step t


def build_how_diffusion(session: gr.State) -> None:
    with gr.Accordion("How it works — diffusion, forward and reverse", open=False, elem_id="how-diffusion"):
        note = gr.Markdown(
            "For a diffusion or score model on 2D points (DDPM, NCSN): press **Show the process**, move the step t, "
            "or **Play** the reverse process from noise to data.",
            elem_id="diff-note",
        )
        with gr.Row():
            show = gr.Button("Show the process", variant="primary", elem_id="diff-show", scale=0)
            step = gr.Slider(0, 1, value=0, step=1, label="step t (0 = data, T = noise)", elem_id="diff-step")
            play = gr.Button("Play (T → 0)", elem_id="diff-play", scale=0)
        plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="diff-plot")
        process = gr.State(None)
    quiet = {"show_progress": "hidden", "api_visibility": "private"}
    show.click(show_process, session, [process, note, step, plot], **quiet)
    step.input(lambda p, t: None if p is None else figure(p, int(t)), [process, step], plot,
               trigger_mode="always_last", **quiet)  # fmt: skip
    play.click(play_reverse, process, [step, plot], **quiet)


def show_process(page: Session) -> tuple:
    view = page.current
    if view is None or view.data_spec.kind != "points2d" or not view.capabilities.denoising:
        return (
            None,
            "Train or open a **diffusion model on 2D points** first (the gallery's *DDPM* card).",
            *[gr.skip()] * 2,
        )
    with view.run.lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        view.model.eval()
        clean = view.data.test[:POINTS].to(view.device)
        noise = torch.randn(POINTS, 2, device=view.device)
        chains = view.model.reverse_trajectory(CHAINS).cpu().numpy()
    process = Process(view, clean, noise, chains)
    steps = view.model.steps
    said = f"{view.title}: {view.model.process_note}"
    slider = gr.Slider(0, steps, value=steps, step=1, label=f"step t (0 = data, {steps} = noise)")
    return process, said, slider, figure(process, steps)


def play_reverse(process: Process | None) -> Iterator[tuple]:
    if process is None:
        return
    steps = process.view.model.steps
    for t in np.linspace(steps, 0, PLAY_FRAMES).round().astype(int):
        yield int(t), figure(process, int(t))
        time.sleep(PLAY_S)


def figure(process: Process, t: int) -> go.Figure:
    view, model = process.view, process.view.model
    with view.run.lock:
        noisy = model.noised(process.clean, t, process.noise)
        pull = model.denoise_direction(noisy, t).cpu().numpy()
    noisy = noisy.cpu().numpy()
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.08,
        subplot_titles=(f"forward: the data noised to step {t}; arrows: the denoiser's pull",
                        f"reverse: {CHAINS} chains at step {t}, and where they came from"),
    )  # fmt: skip
    data = view.data_points
    for col in (1, 2):
        fig.add_scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data", showlegend=col == 1,
                        marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.25}, hoverinfo="skip",
                        row=1, col=col)  # fmt: skip
    add_arrows(fig, noisy, pull, view.bounds, name="toward the denoiser's x̂₀", row=1, col=1)
    fig.add_scatter(x=noisy[:, 0], y=noisy[:, 1], mode="markers", name=f"x_t, t = {t}",
                    marker={"size": 4, "color": PALETTE[0]}, hoverinfo="skip", row=1, col=1)  # fmt: skip
    paths = process.chains[t : t + TRAIL + 1][::-1]  # the last TRAIL steps, down to step t
    trails = np.concatenate([paths.transpose(1, 0, 2), np.full((CHAINS, 1, 2), np.nan)], 1).reshape(-1, 2)
    fig.add_scatter(x=trails[:, 0], y=trails[:, 1], mode="lines", name=f"their last {TRAIL} steps",
                    line={"color": "rgba(234, 88, 12, 0.35)", "width": 1}, hoverinfo="skip", row=1, col=2)  # fmt: skip
    fig.add_scatter(x=process.chains[t][:, 0], y=process.chains[t][:, 1], mode="markers", name="chains at step t",
                    marker={"size": 6, "color": f"rgb{SAMPLE_COLOR}"}, hoverinfo="skip", row=1, col=2)  # fmt: skip
    x_min, x_max, y_min, y_max = view.bounds
    fig.update_layout(template=TEMPLATE, height=SAMPLE_HEIGHT, title={"text": view.title, "x": 0.02},
                      margin={"t": 80}, legend={"orientation": "h", "y": -0.15})  # fmt: skip
    for col, anchor in ((1, "x"), (2, "x2")):
        fig.update_xaxes(range=[x_min, x_max], row=1, col=col)
        fig.update_yaxes(range=[y_min, y_max], scaleanchor=anchor, row=1, col=col)
    return fig
