"""The Real or fake? tab: a human evaluation game on any run. A grid mixes held-out data with the model's samples; the
player marks the tiles they think real, and the page scores them against chance beside the MMD test's verdict on the
same tiles (``dgm_core.inspect.real_or_fake``).

The round in play lives in a ``gr.State``: on the server, never sent to the browser. What the page shows before a
player is scored (the grid, the checkboxes, the prompt) depends on the tiles alone, never on which are real.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from app.draw import figures, raster
from app.draw.live_plot import LivePlot
from app.draw.raster import Bounds, Cloud
from app.page.following import Boards, ClassRound
from app.page.pickers import run_picker, tab_runs
from app.page.session import Session
from app.tabs.class_game import class_answers, deal_to_followers
from dgm_core.inspect.real_or_fake import CLOUD_POINTS, TILES, Round, Verdict, binomial_tail

COLUMNS = 4
TILE_PX = 112  # a tile's side on the picture, in pixels
GAP_PX = 24  # between tiles: room for each tile's number above it
INK = (17, 24, 39)  # the clouds' points and the tiles' numbers
RIGHT, WRONG = "#15803d", "#b91c1c"
NO_RUN = "Pick a run (train one first, on the Train or Compare tab)."
PROMPT = "Mark the tiles you think are **real**, then press **Submit**."

INTRO = f"""
Some of these {TILES} tiles are held-out data the model never saw; the others are the model's samples. A coin toss
decided each tile, so any number of them may be real. Mark those you think real and press **Submit**: the page says
how well you did against guessing, and what a kernel two-sample test says of the same tiles. On 2D data a single
point proves nothing, so each tile is a cloud of up to {CLOUD_POINTS} points, all from the data or all from the model.
"""

HINT = f"""
**Against chance.** A player who cannot tell is right on each tile with probability ½ (each tile's truth is a coin
toss of its own), so their number right follows the binomial Bin({TILES}, ½): {TILES // 2} on average, 12 or more in
only {100 * binomial_tail(12, TILES):.1f} % of rounds. Your p-value is the chance of guessing at least as well as you
did: below 0.05, you can tell the model from the data.

**You and the kernel can disagree.** The MMD test compares the real tiles with the model's through a kernel on raw
pixels (or point positions). On {TILES} images it has little power, and it knows nothing of strokes or what a digit
is: your eye may catch one wrong stroke it misses. It also sees what you may not: a spread a little too wide, grey
levels a shade off. On 2D clouds it compares every point of every tile (about a thousand), and is often the sharper.
"""


@dataclass(frozen=True)
class Table:
    """The round this page plays (kept in a ``gr.State``, on the server), with what its picture needs."""

    round: Round
    title: str
    bounds: Bounds | None  # the 2D data's window; None for images
    levels: int | None  # the images' grey levels; None for 2D points
    dealt: tuple[str, ClassRound] | None = None  # (follow code, round) when dealt to the run's followers too


@dataclass(frozen=True)
class GameView:
    """What the tab's handlers fill, by name: their answers are dicts keyed by these components."""

    table: Any  # the gr.State holding the round in play (None once scored)
    grid: Any
    marks: Any
    verdict: Any
    class_line: Any  # the class's answers, when the round was dealt to the run's followers too

    def all(self) -> list:
        return [getattr(self, field.name) for field in fields(self)]


def build_real_or_fake_tab(session: gr.State, tab: gr.Tab, boards: Boards) -> None:
    gr.Markdown(INTRO, elem_classes="hint")
    with gr.Row():
        run_id = run_picker("rof-run")
        new_btn = gr.Button("New round", variant="primary", elem_id="rof-new", min_width=80)
    grid = LivePlot(None, show_label=False, elem_id="rof-grid")
    marks = gr.CheckboxGroup(
        [(str(tile), tile) for tile in range(1, TILES + 1)], value=[], label="Which are real?", elem_id="rof-marks"
    )
    submit_btn = gr.Button("Submit", elem_id="rof-submit", min_width=80)
    verdict = gr.Markdown("Pick a run and press **New round**.", elem_id="rof-verdict", elem_classes="status")
    class_line = gr.Markdown("", elem_id="rof-class", elem_classes="status")
    gr.Markdown(HINT, elem_classes="hint")

    table = gr.State(None)  # this page's round in play: its truth stays here, on the server
    where = GameView(table, grid, marks, verdict, class_line)
    quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
    tab.select(tab_runs, [session, run_id], run_id, **quick)
    dealt = new_btn.click(partial(new_round, where, boards), [session, run_id], where.all(), **quick)
    submit_btn.click(partial(submit, where, boards), [table, marks], where.all(), **quick)

    async def class_stream(page: Session, played: Table | None) -> AsyncIterator[Any]:
        if played is not None and played.dealt is not None:
            async for line in class_answers(boards, page, *played.dealt):
                yield line

    dealt.then(class_stream, [session, table], class_line, **quick)


def new_round(where: GameView, boards: Boards, session: Session, run_id: Any) -> dict:
    """Deal a fresh round from the run's weights as they are now (drawn through ``Run.draw``: a training run is not
    disturbed), from a seed nobody chooses; to the run's followers too when this browser shares it."""
    view = session.find(run_id)
    if view is None:
        raise gr.Error(NO_RUN)
    data = view.data
    try:
        game = Round.deal(view.run.draw, data.test, data.spec.kind, seed=secrets.randbelow(2**31))
    except ValueError as error:
        raise gr.Error(str(error)) from None
    table = Table(game, f"{view.title}: which tiles are real?", view.bounds, data.spec.levels)
    figure = grid_figure(table)
    dealt = deal_to_followers(boards, session, view.id, game, figure.to_json())
    said = PROMPT
    if dealt is not None:
        code = boards.shares.code_of(session.token, view.id)
        table = replace(table, dealt=(code, dealt))
        said += (
            f"  \nThis run is shared (code {code}): its followers play this round too, in their Follow tab; their "
            "answers tally below, and your Submit reveals the answer key to them."
        )
    return {where.table: table, where.grid: figure, where.marks: [], where.verdict: said, where.class_line: ""}


def submit(where: GameView, boards: Boards, table: Table | None, marked: Any) -> dict:
    """Score the player's marks and reveal the answer; the round is over then (a new one is a click away). A
    malformed answer, or none to score, is refused with a message and changes nothing."""
    if table is None:
        raise gr.Error("Press New round first: each round is scored once.")
    try:
        verdict = table.round.score(marked)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    if table.dealt is not None:
        code, dealt = table.dealt
        boards.reveal(code, dealt.number, grid_figure(table, reveal=True).to_json())
    return {
        where.table: None,
        where.grid: grid_figure(table, verdict),
        where.marks: sorted(verdict.marked_real),
        where.verdict: f"{verdict.summary()}  \nGreen labels: judged right; red: judged wrong.",
    }


def grid_figure(table: Table, verdict: Verdict | None = None, reveal: bool = False) -> go.Figure:
    """The tiles as one picture, numbered in reading order; once scored (``verdict``), each number also says what the
    tile was, green where the player judged it right and red where not; with ``reveal`` (for a class), only what each
    tile was."""
    tiles = table.round.tiles.numpy()
    if table.levels is not None:
        scale = max(1, TILE_PX // tiles.shape[-1])
        picture = figures.image_grid(tiles, table.levels, columns=COLUMNS, scale=scale, gap=GAP_PX)
        side = scale * tiles.shape[-1]
    else:
        picture, side = _cloud_grid(tiles, table.bounds), TILE_PX
    figure = figures.picture_figure(picture, table.title, height=picture.shape[0] + 60)
    for i in range(len(tiles)):
        number = i + 1
        left, top = GAP_PX + (i % COLUMNS) * (side + GAP_PX), GAP_PX + (i // COLUMNS) * (side + GAP_PX)
        text, color = f"<b>{number}</b>", f"rgb{INK}"
        if reveal:
            text += " real" if number in table.round.real_tiles else " model"
        elif verdict is not None:
            real = number in verdict.real_tiles
            right = real == (number in verdict.marked_real)
            text += f" {'real' if real else 'model'} {'✓' if right else '✗'}"
            color = RIGHT if right else WRONG
        figure.add_annotation(
            x=left,
            y=picture.shape[0] - top,
            text=text,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 14, "color": color},
        )
    return figure


def _cloud_grid(clouds: np.ndarray, bounds: Bounds | None) -> np.ndarray:
    """2D tiles (n, points, 2) as one RGB picture: each cloud drawn in the data's window, gaps between."""
    rows = -(-len(clouds) // COLUMNS)
    step = TILE_PX + GAP_PX
    canvas = np.full((GAP_PX + rows * step, GAP_PX + COLUMNS * step, 3), 230, np.uint8)
    for i, cloud in enumerate(clouds):
        top, left = GAP_PX + (i // COLUMNS) * step, GAP_PX + (i % COLUMNS) * step
        tile = raster.points_picture(bounds, [Cloud(cloud, INK, 0.85, radius=2.0)], size=TILE_PX)
        canvas[top : top + TILE_PX, left : left + TILE_PX] = tile
    return canvas
