"""The Runs tab: every run of this browser with its settings and scores; open, delete, download, upload.

A checkpoint is one ``.dgm.zip`` file (safetensors weights + JSON config: ``runs.checkpoints``): never pickle.
Uploads are checked field by field and their scores recomputed here; the uploaded file is deleted once read, and
downloads older than ``DOWNLOAD_LIFETIME_S`` are swept away at the next download (``app.page.downloads``). A run
also downloads as code: a notebook or a script that trains it again with ``dgm_core`` (``runs.export``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from app.page import views
from app.page.downloads import CODE, download_folder, write_code
from app.page.pickers import refresh_runs, run_picker
from app.page.session import RunView, Session
from app.page.streaming import TrainOutputs
from app.page.views import PHASES, format_count, format_mmd
from app.tabs.train import fill_form
from dgm_core.models.registry import MODELS
from dgm_core.runs.checkpoints import CheckpointError
from dgm_core.runs.export import ExportError
from dgm_core.runs.run import Run

COLUMNS = [
    "run",
    "model",
    "family",
    "data",
    "state",
    "steps",
    "train s",
    "steps/s",
    "params",
    "test NLL (bits/dim)",
    "likelihood",
    "val MMD²",
    "saved",
]


@dataclass(frozen=True)
class RunsView:
    """What the Runs tab's handlers fill, by name: their answers are dicts keyed by these components."""

    table: Any
    picker: Any  # the run picker
    space: Any  # space used on the server
    own_data: Any  # the picker of this browser's own data sets
    message: Any
    upload: Any

    def all(self) -> list:
        return [self.table, self.picker, self.space, self.own_data, self.message, self.upload]


@dataclass(frozen=True)
class DownloadView:
    """What a download fills: the file, the message, and the lines that load a checkpoint in Python."""

    file: Any
    message: Any
    hint: Any

    def all(self) -> list:
        return [self.file, self.message, self.hint]


def build_runs_tab(session: gr.State, tab: gr.Tab, train: TrainOutputs) -> None:
    gr.Markdown(
        "Every model trained in this browser — on the Train tab, in a comparison, or uploaded — is a run, saved on "
        "the server as it trains: a reload or a restart brings it back. Scores are for the weights each run holds "
        "(best on validation, or the final ones, once it stopped). Checkpoints are one `.dgm.zip` file: safetensors "
        "weights and a JSON config; pickled files are never opened, and an uploaded run is scored again here.",
        elem_classes="hint",
    )
    table = gr.Dataframe(
        headers=COLUMNS, value=[], interactive=False, elem_id="runs-table", elem_classes="wide-table", wrap=False
    )
    with gr.Row():
        run_id = run_picker("runs-run")
        open_btn = gr.Button("Open in the Train tab", elem_id="runs-open", min_width=80)
        delete_btn = gr.Button("Delete", variant="stop", elem_id="runs-delete", min_width=80)
        export_btn = gr.Button("Download checkpoint", elem_id="runs-export", min_width=80)
        code_buttons = {kind: gr.Button(f"Download {kind}", elem_id=f"runs-{kind}", min_width=80) for kind in CODE}
    with gr.Row():
        with gr.Column():
            checkpoint = gr.File(label="Download", interactive=False, elem_id="runs-file")
            hint = gr.Markdown("", elem_id="runs-load-hint", elem_classes="hint")
        upload = gr.File(label="Upload a checkpoint (.dgm.zip)", file_types=[".zip"], elem_id="runs-upload")
    message = gr.Markdown("", elem_id="runs-message", elem_classes="status")
    space = gr.Markdown("", elem_id="runs-space", elem_classes="hint")
    with gr.Row():
        own_data = gr.Dropdown(
            [], label="Your data sets", info="Deleting one frees its space; runs on it stay listed", elem_id="runs-data"
        )
        delete_data_btn = gr.Button("Delete data set", variant="stop", elem_id="runs-delete-data", min_width=80)

    quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
    where = RunsView(table, run_id, space, own_data, message, upload)
    shown = where.all()
    tab.select(partial(on_tab, where), [session, run_id], shown, **quick)
    delete_btn.click(partial(delete, where), [session, run_id], shown, **quick)
    delete_data_btn.click(partial(delete_data, where), [session, own_data, run_id], shown, **quick)
    downloaded = DownloadView(checkpoint, message, hint)
    export_btn.click(
        partial(download_checkpoint, downloaded), [session, run_id], downloaded.all(), api_name="export_checkpoint"
    )
    for kind, button in code_buttons.items():
        button.click(
            partial(download_code, kind, downloaded), [session, run_id], downloaded.all(), api_name=f"export_{kind}"
        )
    upload.upload(partial(upload_run, where), [session, upload, run_id], shown, api_name="upload_checkpoint")

    def opened(page: Session, chosen: Any) -> dict:
        return open_in_train(page, chosen, train, message)

    open_btn.click(opened, [session, run_id], [message, train.status, *train.form], **quick)


def rows(session: Session) -> list[list[Any]]:
    return [_row(view) for view in reversed(session.views.values())]


def _row(view: RunView) -> list[Any]:
    run, caps = view.run, view.capabilities
    scores = run.scores
    nll = None if scores is None or not scores.nll else scores.bits(scores.nll["test"])
    return [
        view.id,
        view.spec.model,
        MODELS[view.spec.model].family,
        view.spec.dataset,
        PHASES[run.phase],
        run.step,
        round(run.elapsed_s, 1),
        round(run.step / run.elapsed_s, 1) if run.elapsed_s > 0 else 0.0,
        format_count(run.model.num_parameters()),
        "—" if nll is None else round(nll, 4),
        caps.likelihood_label,
        "—" if scores is None else format_mmd(scores.val_mmd),
        "NOT SAVED" if run.unsaved else "yes",
    ]


def on_tab(where: RunsView, session: Session, current: Any) -> dict:
    """The tab shown: in the page's first moments, once its restore listed the runs (``Session.wait_known``)."""
    session.wait_known()
    return refresh(where, session, current)


def refresh(where: RunsView, session: Session, current: Any) -> dict:
    """The table, the run picker, the space used on the server and the picker of this browser's own data sets."""
    store, token = session.backend.store, session.token
    if store is None or token is None:
        space = "Runs live in this page's memory only (the server keeps no store)."
    else:
        used, cap = store.usage(token)
        space = f"Saved on the server for this browser: {used / 2**20:.1f} MB of {cap / 2**20:.0f} MB (runs and data)."
    unsaved = [view for view in session.views.values() if view.run.unsaved]
    if unsaved:
        counted = f"{len(unsaved)} run{'s are' if len(unsaved) > 1 else ' is'} not saved"
        space += f"  \n**{counted}:** {views.plain(unsaved[-1].run.unsaved)}"
    return {
        where.table: rows(session),
        where.picker: refresh_runs(session, current),
        where.space: space,
        where.own_data: gr.update(choices=list(session.datasets), value=None),
    }


def delete(where: RunsView, session: Session, run_id: Any) -> dict:
    view = session.delete(run_id)
    said = "Pick a run to delete." if view is None else f"Deleted run #{view.id} ({view.spec.model})."
    return {**refresh(where, session, None), where.message: said}


def delete_data(where: RunsView, session: Session, name: Any, current: Any) -> dict:
    deleted = isinstance(name, str) and session.delete_data(name)
    said = f"Deleted your data set **{views.plain(name)}**." if deleted else "Pick one of your data sets to delete."
    return {**refresh(where, session, current), where.message: said}


def export(session: Session, run_id: Any) -> tuple[Any, str]:
    """Write the run (weights, optimizer and random state, curves) to a checkpoint file offered for download."""
    view = session.find(run_id)
    if view is None:
        return None, "Pick a run to download."
    path = view.run.save(download_folder() / f"{view.spec.model}-{view.spec.dataset}-run{view.id}.dgm.zip")
    return str(path), f"Checkpoint of run #{view.id} ready: {path.name} ({path.stat().st_size / 1e3:.0f} kB)."


def download_checkpoint(shown: DownloadView, session: Session, run_id: Any) -> dict:
    """The checkpoint (``export``), with the two lines that load it in Python."""
    path, said = export(session, run_id)
    return {shown.file: path, shown.message: said, shown.hint: load_hint(path)}


def load_hint(path: str | None) -> str:
    """Two lines of Python that load the checkpoint at ``path``, saved in the repository root."""
    if path is None:
        return ""
    load = f"from dgm_core.runs.run import Run\nrun = Run.load({json.dumps(Path(path).name)})"
    return f"Load this checkpoint in Python, from the repository root with the file there:\n\n```python\n{load}\n```"


def download_code(kind: str, shown: DownloadView, session: Session, run_id: Any) -> dict:
    """The run as a notebook or a script that trains it again with ``dgm_core`` (``train.write_code``)."""
    view = session.find(run_id)
    if view is None:
        return {shown.file: None, shown.message: f"Pick a run to download as a {kind}.", shown.hint: ""}
    try:
        path = write_code(view, kind)
    except ExportError as error:
        return {shown.file: None, shown.message: f"**Not exported:** {views.plain(error)}", shown.hint: ""}
    said = (
        f"The {kind} of run #{view.id} is ready: {path.name} ({path.stat().st_size / 1e3:.0f} kB). It trains the run "
        "again with `dgm_core` and compares its scores with the run's."
    )
    return {shown.file: str(path), shown.message: said, shown.hint: ""}


def upload_run(where: RunsView, session: Session, file: Any, current: Any) -> dict:
    """A checkpoint becomes a run of this browser, or a message says why not and nothing changes. The uploaded file
    is deleted either way (and the upload box cleared)."""
    if file is None:
        return {where.message: ""}
    path = Path(file)
    try:
        run = Run.load(path, session.backend.device)
    except CheckpointError as error:
        return {
            **refresh(where, session, current),
            where.message: f"**Not loaded:** {views.plain(error)}",
            where.upload: None,
        }
    finally:
        path.unlink(missing_ok=True)
    view = session.keep(run)
    scores = run.scores
    scored = "" if scores is None else f"; its kept weights (step {scores.step}) were scored again here"
    said = f"Loaded {view.spec.model} on {view.spec.dataset} as run #{view.id} (step {run.step}){scored}."
    return {**refresh(where, session, view.id), where.message: said, where.upload: None}


def open_in_train(session: Session, run_id: Any, train: TrainOutputs, message: gr.Markdown) -> dict:
    """Make a run the Train tab's (its figures follow), so that Continue trains it further."""
    view = session.find(run_id)
    if view is None:
        return {message: "Pick a run to open."}
    session.current = view
    session.opened_spec = view.spec
    return {
        message: f"Run #{view.id} is open in the Train tab (its settings fill the form): press Continue there to "
        "train it further.",
        train.status: views.status_markdown(view),
        **fill_form(train, view.spec),
    }
