"""Real or fake? with the class: the owner of a shared run deals a round to its followers and watches their answers
tally live (HYPE-style human evaluation, Zhou et al. 2019).

The owner's side lives in the Real or fake? tab (``app.tabs.real_or_fake``): a round dealt on a run this browser
shares goes to the run's followers too (``Boards.deal``), and a line under the grid streams the class's verdict —
pooled accuracy and the per-tile majority's exact test (``dgm_core.inspect.real_or_fake.ClassVerdict``). The owner's
own Submit reveals the answer key to everyone. The followers' side is a section of the Follow tab: the round's grid,
the tiles to mark, one answer per browser. A follower learns how many tiles they got right, never which: the key is
the owner's to reveal.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.draw.live_plot import LivePlot
from app.page import views
from app.page.following import Boards, ClassRound
from app.page.session import Session
from app.page.streaming import HEARTBEAT_S
from dgm_core.inspect.real_or_fake import TILES, Round, Tally

LOOK_S = 0.5  # between two looks for a new round (a follower) or new answers (the owner)
WAITING = "When the run's owner deals a round of *Real or fake?*, it appears here."


@dataclass(frozen=True)
class ClassGameView:
    """The Follow tab's section for the class's round, keyed by name in its handlers' answers."""

    grid: Any
    seen: Any  # the number of the round the grid shows (hidden): an answer is for that round only
    marks: Any
    verdict: Any


def build_class_game(session: gr.State, boards: Boards) -> ClassGameView:
    """The followers' section: the round's grid, the tiles to mark, and Send."""
    with gr.Accordion("Real or fake? — the round the run's owner deals", open=True, elem_id="class-game"):
        grid = LivePlot(None, show_label=False, elem_id="class-grid")
        seen = gr.Number(0, visible=False, precision=0, elem_id="class-seen")
        tiles = [(str(tile), tile) for tile in range(1, TILES + 1)]
        marks = gr.CheckboxGroup(tiles, value=[], label="Which are real?", elem_id="class-marks")
        send = gr.Button("Send my answer", elem_id="class-send", min_width=80)
        verdict = gr.Markdown(WAITING, elem_id="class-verdict", elem_classes="status")
    where = ClassGameView(grid, seen, marks, verdict)

    def answered(page: Session, number: Any, marked: Any) -> dict:
        return answer(where, boards, page, number, marked)

    send.click(answered, [session, seen, marks], verdict, show_progress="hidden", api_visibility="private")
    return where


def answer(where: ClassGameView, boards: Boards, session: Session, number: Any, marked: Any) -> dict:
    """Count this browser's answer to the round its page shows, and say how many tiles it got right (not which);
    anything else — no round, a round since replaced or revealed, a second answer, a malformed one — is refused in
    words and counts for nothing."""
    dealt = None if session.following is None else boards.class_round(session.following[0])
    if dealt is None:
        return {where.verdict: "No round to answer: " + WAITING[0].lower() + WAITING[1:]}
    if dealt.number != number:
        return {where.verdict: "A new round was dealt since: answer that one."}
    if dealt.revealed:
        return {where.verdict: "This round is over: its answer key is shown."}
    if session.token is None:
        return {where.verdict: "This page does not know its browser yet: try again in a moment."}
    try:
        verdict = dealt.tally.add(session.token, marked)
    except ValueError as error:
        return {where.verdict: f"**Not counted:** {views.plain(error)}"}
    return {
        where.verdict: f"Counted. You got **{verdict.correct} of {verdict.tiles}** right: guessing does as well or "
        f"better with p = {verdict.binomial_p:.3g}. Which were real shows here when the owner reveals the round."
    }


async def follow_rounds(session: Session, boards: Boards, where: ClassGameView) -> AsyncIterator[dict]:
    """A follower's section, whenever the owner deals a new round or reveals one, while the page follows the run."""
    following = session.following
    if following is None:
        return
    shown: tuple[int, bool] | None = None
    heard = -math.inf
    session.watchers += 1
    try:
        while session.open and session.following == following:
            dealt = boards.class_round(following[0])
            now = None if dealt is None else (dealt.number, dealt.revealed)
            if dealt is not None and now != shown:
                shown, heard = now, time.monotonic()
                yield _section(where, dealt)
            elif time.monotonic() - heard >= HEARTBEAT_S:  # Gradio ends a stream whose browser left when it yields
                heard = time.monotonic()
                yield {where.verdict: gr.skip()}
            await asyncio.sleep(LOOK_S)
    finally:
        session.watchers -= 1


def _section(where: ClassGameView, dealt: ClassRound) -> dict:
    if dealt.revealed:
        said = f"Round {dealt.number} is over: each tile says what it was. {dealt.tally.result().summary()}"
        return {where.grid: dealt.grid, where.seen: dealt.number, where.verdict: said}
    said = f"Round {dealt.number}: mark the tiles you think are **real**, then **Send my answer** (one answer each)."
    return {where.grid: dealt.grid, where.seen: dealt.number, where.marks: [], where.verdict: said}


# --- the owner's side ----------------------------------------------------------------------------------------------


def deal_to_followers(boards: Boards, session: Session, run_id: int, game: Round, grid: str) -> ClassRound | None:
    """Deal ``game`` to the followers of the run, when this browser shares it; None otherwise."""
    if session.token is None:
        return None
    code = boards.shares.code_of(session.token, run_id)
    return None if code is None else boards.deal(code, Tally(game), grid)


async def class_answers(boards: Boards, session: Session, code: str, dealt: ClassRound) -> AsyncIterator[str]:
    """The owner's line under the grid: the class's verdict whenever an answer arrives, until another round is
    dealt to the same followers or the page closes."""
    players, heard = -1, -math.inf
    while session.open:
        now = boards.class_round(code)
        if now is None or now.number != dealt.number:
            return
        result = now.tally.result()
        if result.players != players:
            players, heard = result.players, time.monotonic()
            yield f"**The class** (followers of code {code}): {result.summary()}"
        elif time.monotonic() - heard >= HEARTBEAT_S:
            heard = time.monotonic()
            yield gr.skip()
        await asyncio.sleep(LOOK_S)
