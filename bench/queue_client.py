"""A page without a browser: one session that sends what the app's page sends, built from the app's ``/config``.

    config = AppConfig(http_get_json(url + "config"))
    page = QueuePage(http, url, config)           # http: an httpx.AsyncClient
    await page.open()                              # load events (restore with this browser's token, then its streams)
    page.set("dataset", "digits")                  # a user's change: fires the component's change listeners
    train = page.click("train-btn")[0]             # an Event: its outputs as they stream
    await train.until(lambda e: "step" in (e.outputs[0] or ""), timeout=30)
    await page.close()                             # the page goes away: its heartbeat ends, Gradio unloads it

Most of the page's events are private (no API name), so this does what Gradio's own front end does: POST
``/gradio_api/queue/join`` with the inputs' current values (a ``gr.State`` is sent as null), read every event of the
session from one server-sent-event stream (``/gradio_api/queue/data``, opened again when a new event comes after it
closed), apply streamed diffs, write outputs back into the component values, fire ``change`` listeners of outputs
whose value changed and ``.then`` listeners when an event ends, and keep ``/gradio_api/heartbeat/<session>`` open
while the page lives. JS-only listeners are skipped; the one JS step that matters, the load's token read from
localStorage, is done here by keeping the token between sessions.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from pathlib import Path
from typing import Any

import httpx
from gradio_client.utils import apply_diff

LAYOUT = {"row", "column", "form", "tabs", "tabitem", "accordion", "group", "tab", "html_layout"}


class AppConfig:
    """The parts of Gradio's ``/config`` a page acts on: components, their elem_ids, and the event listeners."""

    def __init__(self, config: dict) -> None:
        self.prefix = config.get("api_prefix", "/gradio_api")
        self.components = {c["id"]: c for c in config["components"]}
        self.deps = {d["id"]: d for d in config["dependencies"]}
        self.by_elem = {c["props"].get("elem_id"): i for i, c in self.components.items() if c["props"].get("elem_id")}
        self.tab_index: dict[int, int] = {}  # a tab's place among its Tabs' (as its select event says)
        self.tab_of: dict[tuple[int, str], int] = {}  # (Tabs, a tab's id) → the tab
        nodes = [config["layout"]]
        while nodes:
            node = nodes.pop()
            children = node.get("children", [])
            if self.components.get(node["id"], {}).get("type") == "tabs":
                for n, child in enumerate(children):
                    self.tab_index[child["id"]] = n
                    self.tab_of[node["id"], self.components[child["id"]]["props"].get("id")] = child["id"]
            nodes.extend(children)
        self.states = {i for i, c in self.components.items() if c["type"] == "state"}

    def id(self, elem_id: str) -> int:
        return self.by_elem[elem_id]

    def initial(self) -> dict[int, Any]:
        return {i: c["props"].get("value") for i, c in self.components.items() if c["type"] not in LAYOUT}

    def listeners(self, component: int | None, event: str) -> list[dict]:
        return [d for d in self.deps.values() if [component, event] in d["targets"] and d["trigger_after"] is None]

    def then(self, dep_id: int, success: bool) -> list[dict]:
        return [
            d
            for d in self.deps.values()
            if d["trigger_after"] == dep_id and (success or not d["trigger_only_on_success"])
        ]


class Event:
    """One queued event of a page: when it was sent, its outputs as they stream, when it ended and how."""

    def __init__(self, dep: dict) -> None:
        self.dep = dep
        self.fn = dep["id"]
        self.sent = time.perf_counter()
        self.first: float | None = None  # seconds from the send to the first output
        self.ended: float | None = None  # seconds from the send to the end
        self.outputs: list[Any] = [None] * len(dep["outputs"])
        self.error: str | None = None
        self.event_id: str | None = None
        self._generating = False
        self._tick = asyncio.Event()

    @property
    def done(self) -> bool:
        return self.ended is not None

    def _changed(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def until(self, predicate, timeout: float, since: float | None = None) -> float | None:
        """Wait until ``predicate(self)`` holds; returns the seconds from ``since`` (a ``perf_counter`` time; the
        send by default) to then. None: not in time, or the event ended without it."""
        deadline = time.perf_counter() + timeout
        while True:
            tick = self._tick
            if predicate(self):
                return time.perf_counter() - (self.sent if since is None else since)
            remaining = deadline - time.perf_counter()
            if self.done or remaining <= 0:
                return None
            try:
                await asyncio.wait_for(tick.wait(), remaining)
            except TimeoutError:
                pass

    async def finished(self, timeout: float) -> float | None:
        return await self.until(lambda e: e.done, timeout)


class QueuePage:
    """One browser tab's session, driven through Gradio's queue as its front end drives it."""

    def __init__(self, http: httpx.AsyncClient, url: str, config: AppConfig, token: str = "") -> None:
        self.http, self.base, self.config = http, url.rstrip("/") + config.prefix, config
        self.token = token  # this browser's localStorage token ("" until the server gives one)
        self.on_send = lambda fn: None  # told each fn index as it is sent (to compare with what a real page sends)
        self.session = ""
        self.closed = True
        self._tasks: list[asyncio.Task] = []

    # --- life ------------------------------------------------------------------------------------------------------
    async def open(self, timeout: float = 60.0) -> Event:
        """A fresh page: new session, heartbeat, the load events (restore, then the status and figure streams)."""
        await self.close()
        self.session = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(11))
        self.values = self.config.initial()
        self.events: dict[str, Event] = {}  # event id → event, while it runs
        self.pending: set[int] = set()  # fn indices running (a "once" listener is not sent twice)
        self.early: dict[str, list[dict]] = {}  # messages of events whose join has not answered yet
        self.gone: set[str] = set()  # events that ended here (a late message of theirs is dropped)
        self._reader: asyncio.Task | None = None
        self.closed = False
        self._tasks = [asyncio.create_task(self._heartbeat())]
        token_box = self.config.id("browser-token")
        self.values[token_box] = self.token
        loads = [d for d in self.config.listeners(0, "load") if d["backend_fn"]]
        opened = [self.fire(d) for d in loads if token_box in d["inputs"]]
        for dep in loads:
            if token_box not in dep["inputs"]:
                self.fire(dep)
        restore = opened[0]
        await restore.finished(timeout)
        self.token = self.values.get(token_box) or self.token
        return restore

    async def close(self) -> None:
        """The tab closes: its streams and heartbeat disconnect (Gradio then runs the page's unload)."""
        self.closed = True
        for task in [*self._tasks, getattr(self, "_reader", None)]:
            if task is not None and not task.done():
                task.cancel()
        for task in [*self._tasks, getattr(self, "_reader", None)]:
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._tasks, self._reader = [], None
        for event in list(getattr(self, "events", {}).values()):
            self._end(event, "page closed")

    # --- what a user does ------------------------------------------------------------------------------------------
    def set(self, elem_id: str, value: Any) -> list[Event]:
        """The user changes a component's value: its change (and input) listeners fire, as on the page."""
        component = self.config.id(elem_id)
        if self.values.get(component) == value:
            return []
        self.values[component] = value
        deps = self.config.listeners(component, "change") + self.config.listeners(component, "input")
        return [event for event in (self.fire(d) for d in deps) if event is not None]

    def click(self, elem_id: str) -> list[Event]:
        deps = self.config.listeners(self.config.id(elem_id), "click")
        return [event for event in (self.fire(d) for d in deps) if event is not None]

    def select_tab(self, tab: str | int) -> list[Event]:
        """Select a tab (its elem_id, or its component): its select listeners get its label and index, as the
        page sends them."""
        tab = self.config.id(tab) if isinstance(tab, str) else tab
        data = {"value": self.config.components[tab]["props"].get("label"), "index": self.config.tab_index[tab]}
        deps = self.config.listeners(tab, "select")
        return [event for event in (self.fire(d, data) for d in deps) if event is not None]

    def value(self, elem_id: str) -> Any:
        return self.values.get(self.config.id(elem_id))

    async def upload(self, elem_id: str, path: Path) -> None:
        """Upload a file as the page's file input does (POST /upload), and put it in the component."""
        upload_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        with path.open("rb") as file:
            response = await self.http.post(
                f"{self.base}/upload", params={"upload_id": upload_id}, files={"files": (path.name, file, "text/csv")}
            )
        response.raise_for_status()
        (stored,) = response.json()
        data = {
            "path": stored,
            "url": f"{self.base}/file={stored}",
            "orig_name": path.name,
            "size": path.stat().st_size,
            "mime_type": "text/csv",
            "meta": {"_type": "gradio.FileData"},
        }
        self.values[self.config.id(elem_id)] = [data]

    # --- the queue -------------------------------------------------------------------------------------------------
    def fire(self, dep: dict, event_data: Any = None) -> Event | None:
        """Send one listener's event with the current values of its inputs (JS-only listeners: nothing to send,
        their ``.then`` listeners follow at once)."""
        if not dep["backend_fn"]:
            for after in self.config.then(dep["id"], True):
                self.fire(after)
            return None
        if self.closed or dep["trigger_mode"] == "once" and dep["id"] in self.pending:
            return None
        event = Event(dep)
        data = [None if i in self.config.states else self.values.get(i) for i in dep["inputs"]]
        body = {
            "data": data,
            "event_data": event_data,
            "fn_index": dep["id"],
            "trigger_id": None,
            "session_hash": self.session,
        }
        targets = [t for t in dep["targets"] if t[0] is not None]
        body["trigger_id"] = targets[0][0] if targets else None
        self.pending.add(dep["id"])
        self.on_send(dep["id"])
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.create_task(self._join(event, body)))
        return event

    async def _join(self, event: Event, body: dict) -> None:
        try:
            response = await self.http.post(f"{self.base}/queue/join", json=body)
            response.raise_for_status()
            event.event_id = response.json()["event_id"]
        except Exception as error:
            self._end(event, f"join failed: {error!r}"[:300])
            return
        self.events[event.event_id] = event
        for message in self.early.pop(event.event_id, []):  # what the stream brought before the join answered
            self._message(message)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """The session's stream: every event's messages; opened again while events are pending."""
        while self.events:
            try:
                async with self.http.stream(
                    "GET", f"{self.base}/queue/data", params={"session_hash": self.session}, timeout=None
                ) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            if self._message(json.loads(line[5:])):
                                break
            except Exception as error:  # a lost connection, or a message this client could not read
                for event in list(self.events.values()):
                    self._end(event, f"stream failed: {error!r}"[:300])
                return

    def _message(self, message: dict) -> bool:
        """Handle one message; True when the server closes the stream."""
        kind = message.get("msg")
        if kind == "close_stream":
            return True
        event_id = message.get("event_id")
        event = self.events.get(event_id)
        if event is None and event_id and event_id not in self.gone:
            self.early.setdefault(event_id, []).append(message)  # its join has not answered yet: kept for then
            return False
        if event is None:
            if kind == "unexpected_error":
                for pending in list(self.events.values()):
                    self._end(pending, message.get("message") or "unexpected error")
            return False
        if kind in ("process_generating", "process_completed"):
            output = message.get("output") or {}
            if message.get("success") is False or "error" in output and output.get("error"):
                self._end(event, str(output.get("error") or "error"))
                return False
            data = output.get("data")
            if data is not None:
                self._outputs(event, data, diffs=kind == "process_generating" and event._generating)
                event._generating = event._generating or kind == "process_generating"
            if kind == "process_completed":
                self._end(event, None)
        return False

    def _outputs(self, event: Event, data: list, diffs: bool) -> None:
        now = time.perf_counter()
        event.first = event.first or now - event.sent
        for n, (component, value) in enumerate(zip(event.dep["outputs"], data)):
            if diffs:
                value = apply_diff(event.outputs[n], value)
            event.outputs[n] = value
            shown = value.get("value") if _is_update(value) else value
            if _is_update(value) and "selected" in value:  # a tab chosen by the server: the page fires its select
                tab = self.config.tab_of.get((component, value["selected"]))
                if tab is not None:
                    self.select_tab(tab)
            if _is_update(value) and "value" not in value:
                continue
            if component in self.config.states or self.values.get(component) == shown:
                continue
            self.values[component] = shown
            for dep in self.config.listeners(component, "change"):
                self.fire(dep)
        event._changed()

    def _end(self, event: Event, error: str | None) -> None:
        if event.done:
            return
        event.ended, event.error = time.perf_counter() - event.sent, error
        self.events.pop(event.event_id, None)
        self.gone.add(event.event_id)
        self.pending.discard(event.fn)
        event._changed()
        if not self.closed:
            for dep in self.config.then(event.fn, error is None):
                self.fire(dep)

    async def _heartbeat(self) -> None:
        try:
            async with self.http.stream("GET", f"{self.base}/heartbeat/{self.session}", timeout=None) as response:
                async for _ in response.aiter_lines():
                    pass
        except httpx.HTTPError:
            pass


def _is_update(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update"
