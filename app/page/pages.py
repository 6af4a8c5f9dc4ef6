"""The pages the server serves now, and letting go of those that left.

A page leaves by its unload event. Many never send one: API clients, a laptop closed mid-lecture, a browser that
crashed. Each page costs memory while it is known: its ``Session`` (its runs: models, optimizers, samples) and
Gradio's own per-session state (every component's config, ≈ 0.6 MB for this app, which Gradio keeps for its last
10,000 sessions, unloaded or not). So a page is let go when it unloads, and also when it has been idle for
``idle_s``: no event, no figure watcher alive (a page open in a browser keeps its watchers; Gradio ends them once the
browser is gone) and no run training. Letting go closes its session (its runs go back to the store, which unloads
them) and, a little later (Gradio may still touch it while the unload event ends), drops Gradio's state of it
(``forget_state``, set by the layout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from dgm_core.serve.memory import release_memory, trim_memory

IDLE_S = 600.0  # a page without events, watchers or training for this long is let go
SWEEP_EVERY_S = 15.0  # how often idle pages are looked for, the state of pages that left dropped, and free heap
# pages handed back to the system


class Page(Protocol):
    """What ``Pages`` needs of a page's session (``app.page.session.Session``)."""

    last_seen: float
    watchers: int  # figure streams open now

    def training(self) -> bool: ...

    def close(self) -> None: ...


class Pages:
    """Pages by Gradio's session hash: ``seen`` at their events, ``left`` when they unload; a thread ``sweep``s
    every ``SWEEP_EVERY_S``."""

    def __init__(self, idle_s: float = IDLE_S, sweep_every_s: float | None = SWEEP_EVERY_S) -> None:
        self.idle_s = idle_s
        self.forget_state: Callable[[str], None] = lambda page_id: None
        self._pages: dict[str, Page] = {}
        self._gone: list[str] = []  # pages let go whose Gradio state is dropped at the next sweep
        self._lock = threading.Lock()
        if sweep_every_s is not None:
            threading.Thread(target=self._sweep_loop, args=(sweep_every_s,), daemon=True, name="pages").start()

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, page_id: str) -> bool:
        return page_id in self._pages

    def seen(self, page_id: str, session: Page) -> None:
        """An event of this page (or API client): remember it, and now as its last sign of life."""
        session.last_seen = time.monotonic()
        with self._lock:
            self._pages[page_id] = session

    def left(self, page_id: str) -> None:
        """The page is gone: let go of its runs (and soon of Gradio's state of it)."""
        if self._let_go(page_id):
            release_memory()

    def sweep(self) -> list[str]:
        """Drop Gradio's state of the pages let go before, then let go of every page idle for ``idle_s``; returns
        the ids of those."""
        with self._lock:
            gone, self._gone = self._gone, []
        for page_id in gone:
            self.forget_state(page_id)
        now = time.monotonic()
        with self._lock:
            idle = [
                page_id
                for page_id, session in self._pages.items()
                if now - session.last_seen >= self.idle_s and session.watchers == 0 and not session.training()
            ]
        if sum([self._let_go(page_id) for page_id in idle]) or gone:
            release_memory()
        else:
            trim_memory()  # what the allocator freed while pages streamed and runs trained
        return idle

    def _let_go(self, page_id: str) -> bool:
        with self._lock:
            session = self._pages.pop(page_id, None)
            self._gone.append(page_id)
        if session is not None:
            session.close()
        return session is not None

    def _sweep_loop(self, every_s: float) -> None:
        while True:
            time.sleep(every_s)
            self.sweep()
