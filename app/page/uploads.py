"""Uploads that cannot pile up on the server's disk.

Gradio's upload route (``POST /gradio_api/upload``) takes files from anyone who reaches the port, with no page and no
event after them, and keeps them until its cache is swept an hour later. ``UploadGuard`` sits in front of it:

- a client (by address) may hold at most ``CLIENT_CAP_BYTES`` of uploads at any moment; past that, the route answers
  413 with a sentence saying why, before a byte reaches the disk;
- an upload that no event used within ``UNCLAIMED_S`` is deleted (the app's handlers delete what they read at once,
  used or refused), and so is an upload that broke off (a partial file left at the top of the upload folder).

    launch(app_kwargs={"middleware": [Middleware(UploadGuard)]})
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gradio.utils import get_upload_folder

CLIENT_CAP_BYTES = 200 * 2**20
UNCLAIMED_S = 60.0
SWEEP_EVERY_S = 10.0
REFUSED = (
    "Your uploads already hold {held:.0f} MB on this server, and a client may hold {cap:.0f} MB at a time: use or "
    "remove them (unused uploads are deleted after a minute), then upload again."
)

Scope = dict[str, Any]
Message = dict[str, Any]


class UploadLedger:
    """What every client holds on the upload route, and the sweep of what no event used: one per process (the apps
    it serves share Gradio's upload folder)."""

    def __init__(self) -> None:
        self.folder = Path(get_upload_folder())
        self.held: dict[str, dict[Path, float]] = {}  # client → its uploaded files → when each arrived
        self.lock = threading.Lock()
        self._sweeping = False

    def holding(self, client: str) -> int:
        """Bytes of the client's uploads still on disk."""
        with self.lock:
            files = self.held.get(client, {})
            return sum(path.stat().st_size for path in list(files) if path.exists())

    def note(self, client: str, body: bytes) -> None:
        """Remember the files a successful upload wrote (the route answers with their paths)."""
        try:
            paths = [Path(p) for p in json.loads(body) if isinstance(p, str)]
        except (ValueError, TypeError):
            return  # a refusal (its text) or another answer: nothing was kept
        now = time.time()
        with self.lock:
            files = self.held.setdefault(client, {})
            for path in paths:
                if path.is_relative_to(self.folder):
                    files[path] = now

    def sweep(self, older_than_s: float | None = None) -> int:
        """Delete every upload older than ``older_than_s`` (default ``UNCLAIMED_S``) that no event used (and took
        away), and every partial upload as old; returns how many files went."""
        cutoff, gone = time.time() - (UNCLAIMED_S if older_than_s is None else older_than_s), 0
        with self.lock:
            for client, files in list(self.held.items()):
                for path, arrived in list(files.items()):
                    if arrived < cutoff or not path.exists():
                        gone += _delete(path)
                        del files[path]
                if not files:
                    del self.held[client]
        for path in self.folder.glob("*") if self.folder.exists() else []:  # partial uploads (Gradio's temp files)
            if path.is_file() and path.stat().st_mtime < cutoff:
                gone += _delete(path)
        return gone

    def start_sweeping(self) -> None:
        with self.lock:
            if self._sweeping:
                return
            self._sweeping = True
        threading.Thread(target=self._sweep_loop, daemon=True, name="upload-sweeper").start()

    def _sweep_loop(self) -> None:
        while True:
            time.sleep(SWEEP_EVERY_S)
            self.sweep()


LEDGER = UploadLedger()


class UploadGuard:
    """ASGI middleware: caps what each client holds on Gradio's upload route (``LEDGER``, swept as it goes)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        LEDGER.start_sweeping()

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown",))[0]
        headers = dict(scope.get("headers") or [])
        declared = int(headers.get(b"content-length", b"0") or 0)
        held = LEDGER.holding(client)
        if held + declared > CLIENT_CAP_BYTES:
            return await _answer(send, 413, REFUSED.format(held=held / 2**20, cap=CLIENT_CAP_BYTES / 2**20))
        body = bytearray()

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    LEDGER.note(client, bytes(body))
            await send(message)

        await self.app(scope, receive, send_and_note)


def _delete(path: Path) -> int:
    try:
        path.unlink()
    except OSError:
        return 0
    try:
        path.parent.rmdir()  # Gradio keeps each upload in a folder of its own (named by its hash)
    except OSError:
        pass
    return 1


async def _answer(send: Callable, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
