"""How it works for a GAN on 2D points: the two players, one step at a time (GAN Lab's step D / step G).

**Copy the players** takes the run's discriminator and generator into an arena (``inspect.arena``): the run itself
keeps its evaluated weights. **Step D** trains the discriminator alone against today's fakes — its field sharpens
around the data; **Step G** trains the generator alone — its samples move along the arrows, up the discriminator's
field; **Step both, k : 1** alternates k discriminator steps with one generator step, as training does. The figure
redraws after every click, with the mode count on 8gaussians.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import gradio as gr
import torch

from app.draw.figures import SAMPLE_HEIGHT
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, HowView, accordion
from app.page.session import ARROWS, DATA_POINTS_SHOWN, DENSITY_GRID, SAMPLES_SHOWN, RunView, Session
from app.page.views import field_figure
from dgm_core.inspect.arena import Arena
from dgm_core.inspect.modes import mode_coverage
from dgm_core.learn.evaluation import field_grid
from dgm_core.learn.seeding import forked


@dataclass
class Match:
    """The page's arena and where it came from."""

    view: RunView
    arena: Arena
    lock: threading.Lock = field(default_factory=threading.Lock)  # one click at a time moves the players


HOW = HowView(
    key="players",
    title="a GAN's two players, one step at a time",
    intro="For a GAN on 2D points: press **Copy the players**, then step the discriminator or the generator alone, "
    "or both k : 1 as training does. The run itself is not changed.",
    fits=lambda view: view.bounds is not None and view.capabilities.players and view.capabilities.field,
    unfit="Train or open a **GAN on 2D points** first (e.g. the gallery's *A GAN on eight Gaussians*).",
    accordion_id="how-players",
)


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        with gr.Row():
            copy = gr.Button("Copy the players", variant="primary", elem_id="players-copy", scale=0)
            times = gr.Radio([1, 10, 50], value=10, label="steps per click", elem_id="players-times", scale=0)
            ratio = gr.Slider(
                1, 5, value=1, step=1, label="k (discriminator steps per generator step)", elem_id="players-k"
            )
        with gr.Row():
            step_d = gr.Button("Step D", elem_id="players-d")
            step_g = gr.Button("Step G", elem_id="players-g")
            both = gr.Button("Step both, k : 1", elem_id="players-both")
        plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="players-plot")
    match, note = frame.state, frame.note
    copy.click(copy_players, session, [match, note, plot], **QUIET)
    step_d.click(lambda m, n: play(m, "discriminator", int(n)), [match, times], [note, plot], **QUIET)
    step_g.click(lambda m, n: play(m, "generator", int(n)), [match, times], [note, plot], **QUIET)
    both.click(lambda m, n, k: play(m, "both", int(n), int(k)), [match, times, ratio], [note, plot], **QUIET)


def copy_players(page: Session) -> tuple:
    view = HOW.current(page)
    if view is None:
        return None, HOW.unfit, None
    with view.run.lock:
        arena = Arena(view.model, view.data.train, view.spec.lr, view.spec.batch_size, seed=view.run.step)
    match = Match(view, arena)
    said = f"Copied the players of {view.title}. Step them: the run keeps its own weights."
    return match, said, figure(match)


def play(match: Match | None, player: str, times: int, k: int = 1) -> tuple:
    """Step ``player`` ``times`` times, or "both": ``times`` rounds of k discriminator steps and one generator step."""
    if match is None:
        return "Press **Copy the players** first.", gr.skip()
    with match.lock:
        if player == "both":
            for _ in range(times):
                match.arena.step("discriminator", k)
                match.arena.step("generator")
        else:
            match.arena.step(player, times)
        losses = ", ".join(f"{name} loss {value:.3f}" for name, value in match.arena.losses.items())
        return f"After {_counts(match.arena)}: {losses}.", figure(match)


def _counts(arena: Arena) -> str:
    return f"{arena.steps['discriminator']} D steps and {arena.steps['generator']} G steps"


def figure(match: Match):
    view, model = match.view, match.arena.model
    with forked(view.device, seed=0):  # the arena's own copy of the players: no lock, gradients for the arrows
        field = field_grid(model, view.bounds, n=DENSITY_GRID).numpy()
        with torch.no_grad():
            samples = model.sample(SAMPLES_SHOWN["points2d"]).numpy()
        points, pull = model.field_arrows(ARROWS)
    coverage = mode_coverage(samples, view.data_spec.name)
    notes = [model.field_note] + ([f"{coverage.covered} of {coverage.modes} modes covered"] if coverage else [])
    title = f"Arena from {view.title}: {_counts(match.arena)}"
    return field_figure(
        model,
        title,
        " · ".join(notes),
        view.bounds,
        view.data_points[:DATA_POINTS_SHOWN],
        samples,
        field,
        (points.numpy(), pull.detach().numpy()),
    )
