"""A page that outlives its server: it says so the moment the server is gone, and comes back by itself.

Every page asks ``ALIVE_PATH`` every ``EVERY_MS`` for the server's identity (``SERVER_ID``, drawn when this process
started), which the page carries from the server that sent it: a page that learnt it from its first answer instead
took a restarted server's identity for its own when the server went down before that answer (3 s after the page
loaded), and never reloaded. When the answer fails, a banner says the server is unreachable and that the page will
come back; when it answers with another identity (the server restarted: Gradio forgot every page's session), the
page reloads itself, and its browser's runs come back from the store — those that were training show "Interrupted"
and continue from where they were saved. Without this, a page left open across a restart looked alive and did
nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

SERVER_ID = secrets.token_hex(8)
ALIVE_PATH = "/dgm-alive"
EVERY_MS = 3000


class AliveRoute:
    """ASGI middleware answering ``GET …/dgm-alive`` with this server's identity (a few bytes, never cached)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(ALIVE_PATH):
            return await self.app(scope, receive, send)
        body = SERVER_ID.encode()
        headers = [
            (b"content-type", b"text/plain"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


LOST = "The server cannot be reached (it may be restarting): this page comes back by itself when it answers again."
RESTARTED = "The server restarted: reloading this page to bring back your runs…"

WATCH_SERVER = f"""() => {{
  if (window.__dgmServerWatch) return [];
  const url = window.location.pathname.replace(/\\/$/, '') + '{ALIVE_PATH}';
  const banner = document.createElement('div');
  banner.id = 'server-banner';
  banner.setAttribute('role', 'alert');
  banner.hidden = true;
  document.body.appendChild(banner);
  const say = (text) => {{ banner.textContent = text; banner.hidden = !text; }};
  const known = {SERVER_ID!r};  // the identity of the server that sent this page, known before the first answer
  window.__dgmServerWatch = setInterval(async () => {{
    let id = null;
    try {{
      const answer = await fetch(url, {{cache: 'no-store'}});
      if (answer.ok) id = await answer.text();
    }} catch (error) {{}}
    if (id === null) return say({LOST!r});
    if (id === known) return say('');
    clearInterval(window.__dgmServerWatch);
    say({RESTARTED!r});
    setTimeout(() => window.location.reload(), 800);
  }}, {EVERY_MS});
  return [];
}}"""
