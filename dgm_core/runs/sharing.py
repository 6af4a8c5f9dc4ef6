"""Follow codes: a short code that names one run of one browser, so that others can watch it, read-only.

    shares = Shares(Path("runs/shares.json"))
    code = shares.share(token, run_id)      # "k7m2qx": the same code every time for the same run
    shares.lookup("k7m2qx")                 # (token, run_id), or None for an unknown or malformed code
    shares.unshare(token, run_id)           # followers see "no longer shared" at their next look

Several app processes behind one load balancer share the run store, and so this file: each change re-reads it under
an exclusive lock (``fcntl.flock``, where there is one) and writes the merge, and a code one process does not know is
looked up again in the file, so that a link shared through one process works through every other.

A code is ``CODE_LENGTH`` characters from an alphabet without look-alikes (no 0/o, 1/l/i), chosen at random: 31⁶ ≈ 9
× 10⁸ codes, so guessing one among ``MAX_CODES`` shared runs takes about a million tries. A code gives nothing but
that one run's view: the browser's token never leaves the server. Codes are kept in one JSON file beside the run
store (written atomically), so that a class's links work again after a server restart.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: one process per run store
    fcntl = None

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_LENGTH = 6
CODE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
MAX_CODES = 10_000  # shared runs on one server
MAX_CODES_PER_BROWSER = 16
SHARES_FILE = "shares.json"  # in the run store's folder


class Shares:
    """Which runs are shared, by code. Thread-safe; ``path`` (optional) keeps them across restarts and shares them
    with the other processes of the same run store."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._runs: dict[str, tuple[str, int]] = {}  # code → (token, run id)
        self._read_at: int | None = -1  # the file's modification time (ns) when last read; None: it had none
        self._lock = threading.Lock()
        with self._lock:
            self._refresh()

    def share(self, token: str, run_id: int) -> str:
        """The run's follow code (a new one the first time). ValueError past the caps."""
        with self._changing():
            known = self._code_of(token, run_id)
            if known is not None:
                return known
            if sum(owner == token for owner, _ in self._runs.values()) >= MAX_CODES_PER_BROWSER:
                raise ValueError(
                    f"You share {MAX_CODES_PER_BROWSER} runs already: stop sharing one (Follow, Stop sharing) first."
                )
            if len(self._runs) >= MAX_CODES:
                raise ValueError("This server shares as many runs as it can: try again later.")
            code = _new_code(self._runs)
            self._runs[code] = (token, int(run_id))
            return code

    def unshare(self, token: str, run_id: int) -> bool:
        """Stop sharing the run; False when it was not shared."""
        with self._changing():
            code = self._code_of(token, run_id)
            if code is not None:
                del self._runs[code]
            return code is not None

    def code_of(self, token: str, run_id: int) -> str | None:
        with self._lock:
            self._refresh()
            return self._code_of(token, run_id)

    def lookup(self, code: object) -> tuple[str, int] | None:
        """The shared run's (token, id); None for a code that is malformed, unknown or no longer shared."""
        if not isinstance(code, str) or not CODE.fullmatch(code.strip().lower()):
            return None
        with self._lock:
            self._refresh()
            return self._runs.get(code.strip().lower())

    def _code_of(self, token: str, run_id: int) -> str | None:
        return next((code for code, shared in self._runs.items() if shared == (token, int(run_id))), None)

    def _refresh(self) -> None:
        """Read the file again if another process changed it since (one ``stat`` when it did not)."""
        if self.path is None:
            return
        try:
            changed = self.path.stat().st_mtime_ns
        except OSError:
            changed = None
        if changed != self._read_at:
            self._runs, self._read_at = _read(self.path), changed

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Change the codes as the file has them now, then write them, with no other process in between."""
        with self._lock, self._file_lock():
            self._read_at = -1  # read it now, whatever its time says
            self._refresh()
            yield
            self._write()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self.path is None or fcntl is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            yield

    def _write(self) -> None:
        if self.path is None:
            return
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({code: [token, run_id] for code, (token, run_id) in self._runs.items()}))
        os.replace(partial, self.path)
        self._read_at = self.path.stat().st_mtime_ns


def _new_code(taken: dict[str, tuple[str, int]]) -> str:
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code


def _read(path: Path) -> dict[str, tuple[str, int]]:
    """The codes kept in ``path``; entries that are malformed are dropped (a damaged file shares nothing)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    kept = {}
    for code, shared in list(raw.items())[:MAX_CODES]:
        if (
            CODE.fullmatch(str(code))
            and isinstance(shared, list)
            and len(shared) == 2
            and isinstance(shared[0], str)
            and re.fullmatch(r"[0-9a-f]{32}", shared[0])
            and isinstance(shared[1], int)
            and 0 < shared[1] < 10**6
        ):
            kept[code] = (shared[0], shared[1])
    return kept
