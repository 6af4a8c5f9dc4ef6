"""Shared runs as their followers see them: one board per follow code, drawn once for all its followers.

A follower's page streams the shared run's status line and figures (``app.tabs.follow``). Thirty students following
the lecturer's run must not cost thirty times the drawing: the board holds one ``RunView`` of the run (its density
picture computed once) and the latest drawing of each figure as plotly JSON, made by whichever follower first asks
after the figure's data changed (and its pace allows); every other follower gets that very string. Followers never
touch the run's training: they read it under its lock, as the owner's own page does.

The run itself is found by its code each time (``dgm_core.runs.sharing``): the owner's run in memory while it is
there (training, perhaps), else a copy read from its file, read again whenever the file is written anew — behind a
load balancer the owner's run may train in another process of the same store, which saves it every few seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from app.page import views
from app.page.session import RunView
from app.page.streaming import EVERY_S, Figure
from dgm_core.inspect.real_or_fake import Tally
from dgm_core.runs.sharing import Shares
from dgm_core.runs.store import RunStore

STATUS_EVERY_S = 1.0  # the least time between two status lines of one board (its followers look every tick)
FIGURE_PACE = 2.0  # a board redraws a figure at most this many times less often than a lone page (EVERY_S): each
# drawing goes to every follower, and 30 followers at a lone page's pace cost the server 0.14 cores (bench_follow)
MAX_BOARDS = 64  # boards kept at once, the most recently looked at (a board is cheap to make again)


class Board:
    """One shared run, its followers' ``RunView`` and the latest drawing of each figure and of its status line."""

    def __init__(self, owner: tuple[str, int], view: RunView, written_at: int | None = None) -> None:
        self.owner = owner  # (token, run id): whose run it is
        self.view = view
        self.written_at = written_at  # for a run read from its file: when that file was written (None: live here)
        self._drawn: dict[str, tuple[Hashable, float, str]] = {}  # figure → (its data's key, when drawn, JSON)
        self._status: tuple[float, str] = (-float("inf"), "")
        self._lock = threading.Lock()

    @property
    def title(self) -> str:
        return f"{self.view.spec.model} on {self.view.spec.dataset}"

    def due(self, figure: Figure) -> bool:
        """Whether ``drawing`` would draw now (else it answers at once with the drawing it holds)."""
        last = self._drawn.get(figure.name)
        if last is None:
            return True
        key = figure.changed(self.view)
        return key != last[0] and (
            key[1] != last[0][1] or time.monotonic() - last[1] >= FIGURE_PACE * EVERY_S[figure.name]
        )

    def drawing(self, figure: Figure) -> tuple[Hashable, str]:
        """The figure's latest drawing (plotly JSON) and the key of the data it shows: drawn again only when that
        data changed and the figure's pace allows, or at once when the run's phase changed (it ended, stopped)."""
        with self._lock:  # the followers who ask meanwhile wait for this drawing instead of making their own
            if self.due(figure):
                key = figure.changed(self.view)
                with self.view.run.lock:
                    drawn = figure.draw(self.view).to_json()
                self._drawn[figure.name] = (key, time.monotonic(), drawn)
            key, _, drawn = self._drawn[figure.name]
            return key, drawn

    def status_line(self) -> str:
        """The run's status line, at most ``STATUS_EVERY_S`` old."""
        with self._lock:
            made, line = self._status
            if time.monotonic() - made >= STATUS_EVERY_S:
                line = views.status_markdown(self.view)
                self._status = (time.monotonic(), line)
            return line


@dataclass(frozen=True)
class ClassRound:
    """A "Real or fake?" round the owner of a shared run dealt to its followers: their answers go to ``tally``.
    ``grid`` is the tiles' picture (plotly JSON) as the followers see it: the answer key hidden until ``revealed``."""

    number: int
    tally: Tally
    grid: str
    revealed: bool = False


class Boards:
    """The boards of the codes being followed, made on demand from the server's shares and run store, and the
    class rounds dealt to each code's followers."""

    def __init__(self, shares: Shares, store: RunStore | None) -> None:
        self.shares, self.store = shares, store
        self._boards: OrderedDict[str, Board] = OrderedDict()
        self._rounds: OrderedDict[str, ClassRound] = OrderedDict()
        self._dealt = 0
        self._lock = threading.Lock()

    def deal(self, code: str, tally: Tally, grid: str) -> ClassRound:
        """Make ``tally``'s round the one the followers of ``code`` play (it replaces their previous round)."""
        with self._lock:
            self._dealt += 1
            dealt = self._rounds[code] = ClassRound(self._dealt, tally, grid)
            self._rounds.move_to_end(code)
            while len(self._rounds) > MAX_BOARDS:
                self._rounds.popitem(last=False)
            return dealt

    def reveal(self, code: str, number: int, grid: str) -> None:
        """The owner scored round ``number``: its followers see the answer key (``grid``) and answer no more."""
        with self._lock:
            dealt = self._rounds.get(code)
            if dealt is not None and dealt.number == number:
                self._rounds[code] = ClassRound(number, dealt.tally, grid, revealed=True)

    def class_round(self, code: object) -> ClassRound | None:
        """The round the followers of ``code`` play now, if its run is still shared."""
        if self.shares.lookup(code) is None:
            return None
        with self._lock:
            return self._rounds.get(str(code).strip().lower())

    def board(self, code: object) -> Board | None:
        """The board of a shared run, or None when ``code`` shares nothing (malformed, unknown, no longer shared,
        or its run deleted)."""
        owner = self.shares.lookup(code)
        if owner is None or self.store is None:
            return None
        code = str(code).strip().lower()
        live = self.store.find(*owner, live_only=True)
        written_at = None if live is not None else self.store.written_at(*owner)
        with self._lock:
            board = self._boards.get(code)
            if board is not None and board.owner == owner and board.view.run is (live or board.view.run):
                if live is not None or (board.written_at is not None and board.written_at == written_at):
                    self._boards.move_to_end(code)
                    return board
        run = live or self.store.find(*owner)  # reading a file (trained elsewhere, or gone from memory): unlocked
        if run is None:
            return None
        with self._lock:
            board = self._boards[code] = Board(owner, RunView(run), written_at)
            while len(self._boards) > MAX_BOARDS:
                self._boards.popitem(last=False)
            return board
