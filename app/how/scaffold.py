"""One scaffold for the How-it-works views under the Train tab's figures.

Each view shows the Train tab's current run from the inside, when that run can be seen so — asked of its
capabilities, never of its name (``HowView.fits``): an accordion "How it works — …", a note that says what to press
(or what to train or open first), the view's own controls and figure, and one state its events share. Views that
step through something (a flow's layers, Langevin steps, a diffusion's steps, pixels) **Play** it (``play``) and
export it as a GIF (``gif_button``). Handlers answer with dicts keyed by component: a view that does not fit only
writes its note.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from app.page import views
from app.page.session import RunView, Session

REDUCED_MOTION_COOKIE = "dgm-reduced-motion"  # "1" when the page's browser prefers reduced motion
QUIET: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "concurrency_limit": None}


@dataclass(frozen=True)
class HowView:
    """What a How-it-works view is about and which runs it can show.

    Arguments:
        key: its components' elem ids start with it ("{key}-note", …).
        title: the accordion's, after "How it works — ".
        intro: the note before anything is shown: what to press.
        fits: whether it can show a run (asked of the run's capabilities and kind of data).
        unfit: what to train or open first, when the current run does not fit.
        accordion_id: the accordion's elem id.
    """

    key: str
    title: str
    intro: str
    fits: Callable[[RunView], bool]
    unfit: str
    accordion_id: str

    def current(self, page: Session) -> RunView | None:
        """The Train tab's run, if this view can show it."""
        view = page.current
        return view if view is not None and self.fits(view) else None


@dataclass(frozen=True)
class Frame:
    """What the scaffold builds for every view: its note, and the state its events share (what was shown last)."""

    note: gr.Markdown
    state: gr.State


@contextmanager
def accordion(how: HowView) -> Iterator[Frame]:
    """The view's accordion with its note; the view adds its controls and figure inside."""
    with gr.Accordion(f"How it works — {how.title}", open=False, elem_id=how.accordion_id):
        yield Frame(gr.Markdown(how.intro, elem_id=f"{how.key}-note"), gr.State(None))


def play(frames: Iterable[int], draw: Callable[[int], Any], seconds: float) -> Iterator[tuple[int, Any]]:
    """The ``frames`` (slider values) in turn, ``seconds`` apart: each with what ``draw`` makes of it. For a browser
    that asks for reduced motion, only the last: where the animation ends, at once (the slider still steps)."""
    frames = list(frames)
    if frames and prefers_reduced_motion():
        frames = frames[-1:]
    for k in frames:
        yield k, draw(k)
        time.sleep(seconds)


def prefers_reduced_motion() -> bool:
    """Whether the browser that sent the event in progress asks for reduced motion (``prefers-reduced-motion``): its
    page keeps a cookie that says so (``app.layout.A11Y_HEAD``). The request is Gradio's for the running handler,
    which it holds in a context variable: so every view's Play honours it without handing the request down."""
    request = LocalContext.request.get(None)
    return request is not None and request.cookies.get(REDUCED_MOTION_COOKIE) == "1"


def gif_button(key: str, label: str, export: Callable[..., str | None], inputs: list) -> None:
    """**Export GIF** and the file it offers (hidden until there is one)."""
    button = gr.Button("Export GIF", elem_id=f"{key}-gif", scale=0)
    file = gr.File(label=label, elem_id=f"{key}-gif-file", scale=0, visible=False)
    button.click(lambda *values: views.shown_file(export(*values)), inputs, file, **QUIET)
