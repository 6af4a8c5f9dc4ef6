"""The run picker every tab shares: choose any run of the session (trained, compared or uploaded)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.page.session import Session


def run_picker(elem_id: str, label: str = "Run", multiselect: bool = False) -> gr.Dropdown:
    return gr.Dropdown(
        [],
        value=[] if multiselect else None,
        label=label,
        multiselect=multiselect,
        allow_custom_value=True,  # run ids come and go per session; handlers look them up and say when one is gone
        elem_id=elem_id,
        info="Every model trained, compared or uploaded in this session.",
    )


def refresh_runs(session: Session, current: Any) -> Any:
    """The run picker's choices, keeping the current pick if it still exists (else the newest run)."""
    choices = session.choices()
    ids = [run_id for _, run_id in choices]
    value = current if current in ids else (ids[0] if ids else None)
    return gr.update(choices=choices, value=value)


def tab_runs(session: Session, current: Any) -> Any:
    """The run picker of a tab just shown: in the page's first moments, once its restore listed the runs
    (``Session.wait_known``)."""
    session.wait_known()
    return refresh_runs(session, current)
