"""The lecture gallery: one card per topic of the course, in its order. **Open** brings the topic's shipped run into
this browser's runs (loaded and scored again, in about a second) and shows the view that makes its point; **Train it
live** starts the same settings from scratch on the Train tab, so the class can watch it learn.

A link opens a card directly: ``?preset=<key>`` (with ``&lecture=1`` for the projector view) clicks that card's Open
button once the page is ready. What each card shows and why lives in ``lecture.presets``; here are only the cards
and where each view is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import torch

from app.page import views
from app.page.session import RunView, Session
from app.page.streaming import TrainOutputs
from app.tabs import item_scores
from app.tabs.lecture import LectureOutputs, first_views
from app.tabs.likelihood import score_items
from app.tabs.train import fill_form, train_spec
from dgm_core.lecture.presets import PRESETS, Preset, open_preset, recorded_scores, run_key
from dgm_core.runs.checkpoints import CheckpointError

TAB_OF_VIEW = {"samples": "train", "latent": "latent", "likelihood": "likelihood"}
LECTURE_VIEWS = ("inference", "classifiers", "conditional")  # shown on the Lecture 1 tab, from shared shipped runs
# once the tab has drawn its content (a tab not shown has none), bring the section to the top of the window
SCROLL_TO = """() => { let tries = 30; const go = () => { const section = document.getElementById('KEY');
  if (section && section.offsetParent) section.scrollIntoView({block: 'start'});
  else if (tries-- > 0) setTimeout(go, 100); }; setTimeout(go, 100); return []; }"""


@dataclass(frozen=True)
class Views:
    """Where a preset's run is shown: the tabs, the Train tab's outputs, the pickers of the tabs that show one run,
    the Likelihood tab's item-by-item figures, and the gallery's own message."""

    tabs: gr.Tabs
    train: TrainOutputs
    latent_picker: gr.Dropdown
    likelihood_picker: gr.Dropdown
    scored_items: list  # what likelihood_tab.score_items fills
    lecture: LectureOutputs
    message: gr.Markdown | None = None

    def outputs(self, view: str) -> list:
        """What opening a preset with this ``view`` changes."""
        if view in LECTURE_VIEWS:
            return [self.tabs, self.message, *self.lecture.everything()]
        shown = {
            "samples": [],
            "latent": [self.latent_picker],
            "likelihood": [self.likelihood_picker, *self.scored_items],
        }
        return [self.tabs, self.train.status, self.message, *self.train.form, *shown[view]]


def build_gallery(session: gr.State, where: Views) -> None:
    """The cards. Each Open button updates only what its view shows: Gradio 6.31 rebuilds every output a handler
    leaves out (and a rebuilt plot loses its settings)."""
    gr.Markdown(
        "Demos for a course on deep generative models, one card per topic. **Open** shows a model trained "
        "beforehand (its scores are computed again here); **Train it live** trains the same settings from scratch "
        "so you can watch it learn. Copy a card's link to open it directly; add `&lecture=1` for a projector.",
        elem_classes="hint",
    )
    message = gr.Markdown("", elem_id="gallery-message")
    where = replace(where, message=message)
    quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "concurrency_limit": None}
    with gr.Row(elem_id="gallery-grid"):  # cards in the course's order, as many per line as the width allows
        for preset in PRESETS.values():
            _card(preset, session, where, quick)


def _card(preset: Preset, session: gr.State, where: Views, quick: dict[str, Any]) -> None:
    """One card: what it shows, and its Open and Train-it-live buttons."""
    message = where.message
    with gr.Column(elem_classes="preset-card", elem_id=f"preset-{preset.key}", min_width=320):
        gr.Markdown(
            f"<small>{preset.topic}</small>  \n**{preset.title}** · {preset.model} on {preset.dataset}  \n"
            f"{preset.look_for}  \n<small>link: `?preset={preset.key}`</small>",
            elem_classes="card",
        )
        with gr.Row():
            open_btn = gr.Button("Open", variant="primary", size="sm", elem_id=f"open-{preset.key}")
            live_btn = gr.Button("Train it live", size="sm", elem_id=f"live-{preset.key}")

    def opened(page: Session) -> dict:
        return open_in(page, preset, where)

    shown = open_btn.click(opened, session, where.outputs(preset.view), **(quick | {"show_progress": "minimal"}))
    # the view at the top of the window (a lecture section may be far down its tab)
    key = f"lecture-{preset.view}" if preset.view in LECTURE_VIEWS else "main-tabs"
    shown.then(None, None, None, js=SCROLL_TO.replace("KEY", key))

    def to_train(page: Session) -> dict:
        page.opened_spec = preset.spec
        return {
            where.tabs: gr.Tabs(selected="train"),
            message: f"Training **{preset.title}** from scratch.",
            **fill_form(where.train, preset.spec),
        }

    def live(page: Session) -> Iterator[str]:
        yield from train_spec(page, preset.spec)

    # two events: a stream that left the tabs out of its updates would rebuild them (and switch back) each time
    moved = live_btn.click(to_train, session, [where.tabs, message, *where.train.form], **quick)
    moved.then(live, session, where.train.status, **quick)


def warm_up(device: torch.device) -> None:
    """Score every card's shipped run once (``app.py`` calls it behind the served page): later Opens reuse this
    process's scores and take a tenth of a second."""
    for preset in PRESETS.values():
        if preset.view not in LECTURE_VIEWS:
            run = open_preset(preset, device)
            if preset.view == "likelihood":  # its Open scores every test item: once per process
                item_scores.item_scores(RunView(run), pin=True)


def open_in(session: Session, preset: Preset, where: Views) -> dict:
    """Bring ``preset``'s shipped run into ``session`` as a new run and point the preset's view at it (on the
    Likelihood tab, its items are scored at once). Lecture 1's views show runs shared by every page instead."""
    if preset.view in LECTURE_VIEWS:
        return _open_lecture_view(preset, where)
    view = _opened_before(session, preset)
    if view is None:
        try:
            view = session.keep(open_preset(preset, session.backend.device))
        except (CheckpointError, OSError, KeyError) as error:
            return {where.message: f"**Could not open {preset.title}:** {views.plain(error)}"}
    session.current = view  # the Train tab shows it (its figures follow); Continue trains it further
    session.opened_spec = view.spec  # … and its form shows its settings: Train trains what it shows
    picked = gr.update(choices=session.choices(), value=view.id)
    updates: dict = {
        where.tabs: gr.Tabs(selected=TAB_OF_VIEW[preset.view]),
        where.train.status: views.status_markdown(view),
        where.message: f"Opened **{preset.title}** as run #{view.id}: {preset.look_for}",
        **fill_form(where.train, view.spec),
    }
    if preset.view == "latent":
        updates[where.latent_picker] = picked
    if preset.view == "likelihood":
        updates[where.likelihood_picker] = picked
        updates.update(zip(where.scored_items, score_items(session, view.id)))
    return updates


def _open_lecture_view(preset: Preset, where: Views) -> dict:
    try:
        shown = dict(zip(where.lecture.everything(), first_views()))
    except (CheckpointError, OSError, KeyError) as error:
        return {where.message: f"**Could not open {preset.title}:** {views.plain(error)}"}
    return {where.tabs: gr.Tabs(selected="lecture"), where.message: f"**{preset.title}**: {preset.look_for}", **shown}


def _opened_before(session: Session, preset: Preset) -> RunView | None:
    """The preset's run if this browser opened it already and has not trained it since (a reload of a ?preset= link
    shows it again instead of adding a copy)."""
    kept_step = recorded_scores()[run_key(preset)]["step"]
    for view in reversed(session.views.values()):
        run = view.run
        untouched = run.phase == "done" and run.step == preset.spec.steps and run.scores.step == kept_step
        if view.spec == preset.spec and untouched:
            return view
    return None
