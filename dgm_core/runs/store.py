"""Runs that survive a page reload and a server restart: one checkpoint file per run, in a folder per browser.

    store = RunStore(Path("~/.cache/dgm-playground/runs").expanduser())
    store.add(token, run)        # numbers the run for this browser, saves it now and whenever it keeps new weights
    store.runs(token)            # that browser's newest runs: the ones in memory, the rest loaded from disk

A browser is known by a random token it keeps (in its localStorage, in the app); its folder holds ``run-<id>.dgm.zip``
files written by ``Run.save`` (atomically: a crash never leaves half a file). A run found on disk in a training phase
was training when the server died: it comes back "interrupted", holding the last weights it kept, and can continue.
The store has a size cap per browser and in total; past it, runs stay in memory and the page says why. Pages
``attach`` to their browser's token and ``detach`` when they close; a browser with no page for ``GRACE_S`` seconds (a
reload takes less) is let go: its training runs stop, keeping their weights, and its runs leave memory. A browser
that stays keeps its newest ``KEEP_IN_MEMORY`` runs in memory (and any that train): the server's memory is bounded
by the browsers it serves, not by how long they stay.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dgm_core.data import user
from dgm_core.data.upload import DataError, UserData
from dgm_core.runs.checkpoints import CheckpointError
from dgm_core.runs.run import Run

TOKEN = re.compile(r"[0-9a-f]{32}")
FILE = re.compile(r"^run-(\d{1,6})\.dgm\.zip$")
SAVE_EVERY_S = 5.0  # while training, save at most this often (and at every end); with the training state at most
# STATE_EVERY_S (dgm_core.serve.worker_loop) old, a crash loses less than 10 s of training
GRACE_S = 30.0  # a browser with no page open for this long is let go: its runs stop and leave memory
MAX_BYTES_PER_BROWSER = 500 * 2**20
MAX_BYTES = 20 * 2**30
KEEP_IN_MEMORY = 24  # a browser's runs held in memory: its newest this many, and every one that trains


class StoreFull(RuntimeError):
    """Saving would pass a size cap; the message says which and what to do."""


def default_root() -> Path:
    """``$XDG_CACHE_HOME/dgm-playground/runs`` (``~/.cache/...`` by default)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dgm-playground" / "runs"


class RunStore:
    def __init__(self, root: Path, max_bytes_per_browser: int = MAX_BYTES_PER_BROWSER, max_bytes: int = MAX_BYTES):
        self.root = root
        self.max_bytes_per_browser, self.max_bytes = max_bytes_per_browser, max_bytes
        self._live: dict[str, dict[int, Run]] = {}  # token → run id → run, for runs in memory
        self._saved_at: dict[int, float] = {}  # id(run) → when it was last saved
        self.on_let_go: Callable[[], None] | None = None  # called after browsers were let go (to free memory)
        self._pages: dict[str, int] = {}  # token → pages open
        self._left_at: dict[str, float] = {}  # token → when its last page closed
        self._lock = threading.RLock()
        threading.Thread(target=self._let_go_loop, daemon=True, name="store-janitor").start()

    # --- pages that come and go -----------------------------------------------------------------------------------
    def attach(self, token: str) -> None:
        with self._lock:
            self._folder(token)  # checks the token
            self._pages[token] = self._pages.get(token, 0) + 1
            self._left_at.pop(token, None)

    def detach(self, token: str) -> None:
        with self._lock:
            self._pages[token] = max(0, self._pages.get(token, 0) - 1)
            if self._pages[token] == 0:
                self._left_at[token] = time.monotonic()

    def let_go(self, older_than_s: float = GRACE_S) -> list[str]:
        """Forget every browser whose last page closed more than ``older_than_s`` ago; returns their tokens."""
        now = time.monotonic()
        with self._lock:
            gone = [token for token, left in self._left_at.items() if now - left >= older_than_s]
            for token in gone:
                del self._left_at[token]
                self._pages.pop(token, None)
        for token in gone:
            self.forget(token)
        if gone and self.on_let_go is not None:
            self.on_let_go()
        return gone

    def _let_go_loop(self) -> None:
        while True:
            time.sleep(GRACE_S / 3)
            self.let_go()

    # --- the data sets a browser made -----------------------------------------------------------------------------
    def add_data(self, token: str, name: str, data: UserData) -> str:
        """Keep a browser's own data set beside its runs; returns "" once saved, or why it could not be (past a size
        cap: the set is then usable until the server restarts)."""
        path = self._folder(token) / "data" / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                self._check_room(token, path)
            user.save(data, path)
        except (StoreFull, OSError) as error:
            return str(error)
        return ""

    def delete_data(self, token: str, name: str) -> bool:
        """Delete one of the browser's own data sets (its runs stay; they load again once it is added back)."""
        path = self._folder(token) / "data" / f"{name}.npz"
        if path.parent != self._folder(token) / "data" or not path.exists():
            return False
        path.unlink()
        return True

    def usage(self, token: str) -> tuple[int, int]:
        """Bytes the browser's runs and data sets take on disk, and the most it may keep."""
        return _size(self._folder(token)), self.max_bytes_per_browser

    def datasets(self, token: str) -> dict[str, str]:
        """The browser's own data sets by name, with what each is (registered, so that its runs load; a file that
        cannot be read is skipped)."""
        found = {}
        folder = self._folder(token) / "data"
        for path in sorted(folder.glob("*.npz")) if folder.exists() else []:
            try:
                data = user.load(path)
                user.register(data, path.stem)
            except DataError:
                continue
            found[path.stem] = data.note
        return found

    # --- which runs a browser has ---------------------------------------------------------------------------------
    def runs(self, token: str) -> list[Run]:
        """The browser's newest ``KEEP_IN_MEMORY`` runs (and any older one that trains), oldest first: those in
        memory, the others loaded from disk now (a file that cannot be read is skipped). Its own data sets are
        registered first, for the runs trained on them. Files are read outside the store's lock: after a restart,
        every browser reloads its runs at once, and one browser's reading must not hold up another's Train."""
        self.datasets(token)
        with self._lock:
            live = self._live.setdefault(token, {})
            missing = [key for key in sorted({*live, *self._ids_on_disk(token)})[-KEEP_IN_MEMORY:] if key not in live]
        loaded = {}
        for run_id in missing:
            try:
                loaded[run_id] = Run.load(self._path(token, run_id), rescore=False)  # the server wrote it: its scores
            except CheckpointError:
                continue
        with self._lock:
            live = self._live.setdefault(token, {})
            for run_id, run in loaded.items():
                if run_id not in live and self._path(token, run_id).exists():  # not deleted, not loaded meanwhile
                    run.id = run_id
                    live[run_id] = self._watched(token, run)
            self._trim(token)
            return [live[key] for key in sorted(live)]

    def find(self, token: str, run_id: int, live_only: bool = False) -> Run | None:
        """The browser's run ``run_id`` for someone who only looks at it (a follower): the run in memory (it may be
        training), else — unless ``live_only`` — a copy read from its file and not kept here, so that a look never
        holds a gone browser's runs in memory. None when there is no such run (or its file cannot be read)."""
        if not TOKEN.fullmatch(token):
            return None
        with self._lock:
            run = self._live.get(token, {}).get(run_id)
        if run is not None or live_only or not self._path(token, run_id).exists():
            return run
        try:
            copy = Run.load(self._path(token, run_id), rescore=False)
        except CheckpointError:
            return None
        copy.id = run_id
        return copy

    def written_at(self, token: str, run_id: int) -> int | None:
        """When the run's file was last written (ns since the epoch), None when it has none: another process of the
        same store may be training it (behind a load balancer), and what this one reads of it is that old."""
        try:
            return self._path(token, run_id).stat().st_mtime_ns if TOKEN.fullmatch(token) else None
        except OSError:
            return None

    def add(self, token: str, run: Run) -> Run:
        """Number ``run`` for this browser and save it (now, and from then on as it keeps new weights)."""
        with self._lock:
            live = self._live.setdefault(token, {})
            run.id = max([0, *live, *self._ids_on_disk(token)]) + 1
            live[run.id] = self._watched(token, run)
            self._trim(token)
        self.save(token, run)
        return run

    def _ids_on_disk(self, token: str) -> list[int]:
        folder = self._folder(token)
        return [int(m[1]) for path in folder.glob("run-*") if (m := FILE.match(path.name))] if folder.exists() else []

    def _trim(self, token: str) -> None:
        """Let the oldest runs that do not train leave memory, past the newest ``KEEP_IN_MEMORY`` (they are saved;
        one that a page still shows goes on being saved when it changes, and comes back here if it trains again)."""
        live = self._live.get(token, {})
        newest = set(sorted(live)[-KEEP_IN_MEMORY:])
        for run_id in [key for key, run in live.items() if key not in newest and not run.active]:
            del live[run_id]

    def delete(self, token: str, run_id: int) -> None:
        with self._lock:
            run = self._live.get(token, {}).pop(run_id, None)
        if run is not None:
            run.on_change = None
            run.abandon()
        self._path(token, run_id).unlink(missing_ok=True)

    def forget(self, token: str) -> None:
        """Drop a browser's runs from memory (they stay on disk); its training runs stop, keeping their weights."""
        with self._lock:
            runs = self._live.pop(token, {})
        for run in runs.values():
            run.on_change = None
            run.abandon()
            self.save(token, run)

    # --- saving ---------------------------------------------------------------------------------------------------
    def save(self, token: str, run: Run) -> bool:
        """Write the run's file now; False (and ``run.unsaved`` says why, for its page to show) when a size cap or the
        disk stands in the way."""
        path = self._path(token, run.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                self._check_room(token, path)
            run.save(path)
        except (StoreFull, OSError) as error:
            run.unsaved = f"Not saved: {error}"
            return False
        self._saved_at[id(run)] = time.monotonic()
        run.unsaved = ""
        return True

    def save_all(self) -> int:
        """Save every run in memory now, those that train with their whole current training state (fetched from the
        process that trains each): a server that stops loses nothing. Returns how many were saved."""
        with self._lock:
            live = [(token, run) for token, runs in self._live.items() for run in runs.values()]
        saved = 0
        for token, run in live:
            run.checkpoint()
            saved += self.save(token, run)
        return saved

    def _watched(self, token: str, run: Run) -> Run:
        """Save the run as it trains (at most every SAVE_EVERY_S, whenever it holds its whole current training
        state) and when it ends."""

        def changed(run: Run, ended: bool) -> None:
            with self._lock:
                self._live.setdefault(token, {}).setdefault(run.id, run)  # trained again after it left memory
            if ended or time.monotonic() - self._saved_at.get(id(run), 0.0) >= SAVE_EVERY_S:
                self.save(token, run)

        run.on_change = changed
        return run

    def _check_room(self, token: str, path: Path) -> None:
        old = path.stat().st_size if path.exists() else 0
        mine = _size(self._folder(token)) - old
        if mine > self.max_bytes_per_browser:
            raise StoreFull(
                f"your saved runs and data sets take {mine / 2**20:.0f} MB, more than the "
                f"{self.max_bytes_per_browser / 2**20:.0f} MB a browser may keep: delete old runs or data sets in the "
                "Runs tab so that new ones are saved too."
            )
        if _size(self.root) - old > self.max_bytes:
            raise StoreFull(
                "the server's run store is full: new runs and data sets are not saved (they are lost when the server "
                "restarts) until its administrator frees space, or you delete old runs in the Runs tab."
            )

    def _folder(self, token: str) -> Path:
        if not TOKEN.fullmatch(token):
            raise ValueError("A browser token is 32 hexadecimal digits.")
        return self.root / token

    def _path(self, token: str, run_id: int) -> Path:
        return self._folder(token) / f"run-{run_id}.dgm.zip"

    def clear(self) -> None:
        """Delete every stored run (tests)."""
        with self._lock:
            self._live.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.exists() else 0
