"""Follow the lecturer: a run shared by a short code, watched read-only on any screen.

The owner shares the Train tab's run (``build_share_row``, on the Train tab): a code and a link ``?follow=<code>``.
A follower's page opened with that link (or with the code typed in the Follow tab) streams the run's status line and
figures from the run's board (``app.page.following``: drawn once for every follower), and may copy the run into its
own runs to continue it. A follower never reaches the run itself, nor the owner's other runs: a code names one run,
and the owner's browser token never leaves the server. Stop sharing ends every follower's view at its next look.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app.draw import figures
from app.draw.live_plot import LivePlot
from app.page import views
from app.page.following import Board, Boards
from app.page.session import Session
from app.page.streaming import FIGURES, HEARTBEAT_S, Figure
from app.tabs.class_game import ClassGameView, build_class_game, follow_rounds
from dgm_core.runs.run import Run
from dgm_core.runs.sharing import CODE_LENGTH

FOLLOWER_TICK_S = 0.5  # between two looks at the board: a follower lags the owner's page by at most ~1.5 s more
FIND_EVERY_S = 1.0  # between two looks for the board (the run may have left memory, or stopped being shared)
QUICK: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "concurrency_limit": None}


@dataclass(frozen=True)
class FollowView:
    """The Follow tab's components, keyed by name in its handlers' answers."""

    code: Any
    message: Any
    status: Any
    samples: Any
    loss: Any
    nll: Any
    game: ClassGameView  # the class's round of Real or fake?, when the run's owner deals one

    def figure(self, name: str) -> Any:
        return getattr(self, name)


def build_follow_tab(session: gr.State, boards: Boards) -> FollowView:
    """The Follow tab's controls and streams; ``follow_links`` makes a ``?follow=`` link follow once the page opened."""
    gr.Markdown(
        "Watch someone else's run live, read-only — the lecturer's, say. Type the code they share (Train tab, **Share "
        "this run**) or open their link. You see their run as it trains; **Copy to my runs** makes it your own to "
        "continue or explore.",
        elem_classes="hint",
    )
    with gr.Row(equal_height=True):
        code = gr.Textbox(
            label="Follow code",
            placeholder="e.g. k7m2qx",
            max_length=CODE_LENGTH + 10,
            elem_id="follow-code",
            scale=2,
        )
        follow_btn = gr.Button("Follow", variant="primary", elem_id="follow-start", min_width=80)
        copy_btn = gr.Button("Copy to my runs", elem_id="follow-copy", min_width=80)
    message = gr.Markdown("", elem_id="follow-message", elem_classes="status")
    status = gr.Markdown("", elem_id="follow-status", elem_classes="status")
    samples = LivePlot(height=figures.SAMPLE_HEIGHT, label="Samples", show_label=False, elem_id="follow-samples")
    with gr.Row():
        loss = LivePlot(label="Training loss", show_label=False, elem_id="follow-loss")
        nll = LivePlot(label="Held-out NLL", show_label=False, elem_id="follow-nll")
    where = FollowView(code, message, status, samples, loss, nll, build_class_game(session, boards))

    def follow(page: Session, typed: Any) -> dict:
        return start_following(where, boards, page, typed)

    def copy(page: Session) -> dict:
        return copy_to_my_runs(where, boards, page)

    clicked = follow_btn.click(follow, [session, code], [message, status], **QUICK)
    submitted = code.submit(follow, [session, code], [message, status], **QUICK)
    copy_btn.click(copy, session, message, **QUICK)
    for started in (clicked, submitted):
        _stream(started, session, where, boards)
    return where


def follow_links(opened: Any, session: gr.State, tabs: gr.Tabs, where: FollowView, boards: Boards) -> None:
    """A page opened with ``?follow=<code>`` shows the Follow tab following that code, once its restore ended
    (``opened``)."""

    def linked_page(page: Session, request: gr.Request) -> dict:
        return from_link(where, boards, tabs, page, request.query_params.get("follow"))

    linked = opened.then(linked_page, session, [where.message, where.status, where.code, tabs], **QUICK)
    _stream(linked, session, where, boards)


def from_link(where: FollowView, boards: Boards, tabs: Any, session: Session, typed: str | None) -> dict:
    """The page's answer to its own address: with ``?follow=<code>``, the Follow tab shown, following that code
    (or saying why it cannot); without, nothing changes (Gradio takes an empty dict for one value, and fails)."""
    if typed is None:
        return {where.code: gr.skip()}
    return {**start_following(where, boards, session, typed), where.code: typed[:20], tabs: gr.Tabs(selected="follow")}


def start_following(where: FollowView, boards: Boards, session: Session, typed: Any) -> dict:
    """Follow the run shared under ``typed`` (the page's figure streams then show it), or say why not."""
    board = boards.board(typed)
    if board is None:
        session.following = None
        shown = views.plain(str(typed)[:20]) if isinstance(typed, str) and typed.strip() else "that code"
        return {
            where.message: f"No run is shared under {shown}: check the code (six letters and digits), or ask its "
            "owner to share it again.",
            where.status: "",
        }
    code = str(typed).strip().lower()
    previous = session.following
    session.following = (code, previous[1] + 1 if previous else 1)
    return {
        where.message: f"Following **{board.title}** (code {code}): read-only, live.",
        where.status: board.status_line(),
    }


def copy_to_my_runs(where: FollowView, boards: Boards, session: Session) -> dict:
    """The followed run, copied into this browser's runs as it stands (its owner's run is not touched)."""
    board = None if session.following is None else boards.board(session.following[0])
    if board is None:
        return {where.message: "Follow a shared run first (type its code, then Follow)."}
    spec = board.view.spec
    if not session.can_use(spec.dataset):
        return {where.message: "This run trains on its owner's own data set, which stays theirs: it cannot be copied."}
    copy = Run.copy_of(board.view.run, session.backend.device)
    mine = session.keep(copy)
    return {
        where.message: f"Copied as your run **#{mine.id}** ({spec.model} on {spec.dataset}, step {copy.step}): open "
        "it from the Runs tab to continue it."
    }


def _stream(started: Any, session: gr.State, where: FollowView, boards: Boards) -> None:
    """After ``started`` (a follow), one stream for the status line and one per figure, until the page follows
    something else, closes, or the run stops being shared."""

    async def status_stream(page: Session) -> AsyncIterator[Any]:
        async for update in _watch(page, boards, None):
            yield update

    started.then(status_stream, session, where.status, show_progress="hidden", api_visibility="private")
    for name, figure in FIGURES.items():

        async def figure_stream(page: Session, figure: Figure = figure) -> AsyncIterator[Any]:
            async for update in _watch(page, boards, figure):
                yield update

        started.then(figure_stream, session, where.figure(name), show_progress="hidden", api_visibility="private")

    async def rounds_stream(page: Session) -> AsyncIterator[Any]:
        async for update in follow_rounds(page, boards, where.game):
            yield update

    game = [where.game.grid, where.game.seen, where.game.marks, where.game.verdict]
    started.then(rounds_stream, session, game, show_progress="hidden", api_visibility="private")


async def _watch(session: Session, boards: Boards, figure: Figure | None) -> AsyncIterator[Any]:
    """What one component of a follower's page shows (``figure``, or the status line for None) whenever the board's
    drawing of it changes. Ends when the page follows another code, closes, or the code shares nothing any more
    (the status line says so). Only a look that draws, or finds the board, leaves the event loop: thirty followers
    look four times a second each."""
    following = session.following
    if following is None:
        return
    last: Any = None
    heard = found = -math.inf
    board: Board | None = None
    session.watchers += 1  # a page with watchers is open in a browser (``app.page.pages``)
    try:
        while session.open and session.following == following:
            if time.monotonic() - found >= FIND_EVERY_S:
                board, found = await asyncio.to_thread(boards.board, following[0]), time.monotonic()
            if board is None:
                if figure is None:
                    yield "**No longer shared**: its owner stopped sharing this run (or deleted it)."
                return
            if figure is None:
                shown = board.status_line()
            elif board.due(figure):
                shown = (await asyncio.to_thread(board.drawing, figure))[1]
            else:
                shown = board.drawing(figure)[1]
            if shown is not last and shown != last:
                last, heard = shown, time.monotonic()
                yield shown
            elif time.monotonic() - heard >= HEARTBEAT_S:  # Gradio ends a stream whose browser left only when it
                yield gr.skip()  # yields
                heard = time.monotonic()
            await asyncio.sleep(FOLLOWER_TICK_S)
    finally:
        session.watchers -= 1


def build_share_row(session: gr.State) -> None:
    """On the Train tab: share its run by a follow code, or stop sharing it."""
    with gr.Row(equal_height=True, elem_id="share-row"):
        share_btn = gr.Button("Share this run", elem_id="share-start", min_width=80, scale=0)
        unshare_btn = gr.Button("Stop sharing", elem_id="share-stop", min_width=80, scale=0)
        said = gr.Markdown("", elem_id="share-message", elem_classes="hint")
    share_btn.click(share, session, said, **QUICK)
    unshare_btn.click(unshare, session, said, **QUICK)


def share(session: Session) -> str:
    """A follow code for the Train tab's run, and the link that opens it."""
    view, shares = session.current, session.backend.shares
    if view is None:
        return "Train or open a run first: then share it."
    if session.backend.store is None or session.token is None:
        return "Sharing needs the server's run store (this server keeps runs in memory only)."
    try:
        code = shares.share(session.token, view.id)
    except ValueError as error:
        return str(error)
    return (
        f"Run #{view.id} is shared: follow code **{code}**. Others open [this page with ?follow={code}]"
        f"(?follow={code}) or type the code in their **Follow** tab, and see it live, read-only. **Stop sharing** "
        "ends their view."
    )


def unshare(session: Session) -> str:
    view = session.current
    if view is None or session.token is None or not session.backend.shares.unshare(session.token, view.id):
        return "The Train tab's run is not shared."
    return f"Run #{view.id} is no longer shared: its followers' views end."
