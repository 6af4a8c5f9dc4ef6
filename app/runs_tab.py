"""The Runs tab: every model of the session with its settings and scores; open, delete, download, upload.

A checkpoint is one ``.dgm.zip`` file (safetensors weights + JSON config, see ``dgm_core.checkpoints``): never pickle.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from app import streaming
from app.compare import format_mmd
from app.pickers import refresh_runs, run_picker
from app.session import Session, Settings, TrainingRun
from app.views import format_count
from dgm_core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from dgm_core.models.registry import MODELS
from dgm_core.training import BestRecord

DOWNLOADS = Path(tempfile.gettempdir()) / "dgm-playground-checkpoints"
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
]


def build_runs_tab(device: torch.device, session: gr.State, tab: gr.Tab, train_outputs: list) -> None:
    gr.Markdown(
        "Every model trained in this tab's session — on the Train tab, in a comparison, or uploaded — is a run. "
        "Scores are for the weights each run holds (best on validation once it stopped). Checkpoints are one "
        "`.dgm.zip` file: safetensors weights and a JSON config; pickled files are never opened.",
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
    with gr.Row():
        checkpoint = gr.File(label="Checkpoint", interactive=False, elem_id="runs-file")
        upload = gr.File(label="Upload a checkpoint (.dgm.zip)", file_types=[".zip"], elem_id="runs-upload")
    message = gr.Markdown("", elem_id="runs-message", elem_classes="status")

    quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
    tab.select(refresh, [session, run_id], [table, run_id], **quick)
    delete_btn.click(delete, [session, run_id], [table, run_id, message], **quick)
    export_btn.click(export, [session, run_id], [checkpoint, message], api_name="export_checkpoint")
    upload.upload(
        partial_upload(device),
        [session, upload, run_id],
        [table, run_id, message, upload],
        api_name="upload_checkpoint",
    )
    open_btn.click(open_in_train, [session, run_id], [message, *train_outputs], **quick)


def rows(session: Session) -> list[list[Any]]:
    return [_row(run) for run in reversed(session.runs.values())]


def _row(run: TrainingRun) -> list[Any]:
    metrics = run.kept_metrics() or {}
    caps = run.capabilities
    nll = metrics.get("test_bpd")
    kind = "none" if caps.likelihood == "none" else ("exact" if caps.likelihood == "exact" else caps.likelihood_name)
    mmd = metrics.get("val_mmd")
    return [
        run.run_id,
        run.settings.model,
        MODELS[run.settings.model].family,
        run.settings.dataset,
        run.phase,
        run.step,
        round(run.trainer.elapsed_s, 1),
        round(run.steps_per_s, 1),
        format_count(run.num_parameters),
        "—" if nll is None else round(nll, 4),
        kind,
        "—" if mmd is None else format_mmd(mmd),
    ]


def refresh(session: Session, current: Any) -> tuple[Any, Any]:
    return rows(session), refresh_runs(session, current)


def delete(session: Session, run_id: Any) -> tuple[Any, Any, str]:
    run = session.delete(run_id)
    said = "Pick a run to delete." if run is None else f"Deleted run #{run.run_id} ({run.settings.model})."
    return rows(session), refresh_runs(session, None), said


def export(session: Session, run_id: Any) -> tuple[Any, str]:
    """Write the run's weights and settings to a checkpoint file offered for download."""
    run = session.find(run_id)
    if run is None:
        return None, "Pick a run to download."
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=DOWNLOADS))  # one folder per download: sessions never overwrite each other
    with session.lock:
        path = save_checkpoint(
            folder / f"{run.settings.model}-{run.settings.dataset}-run{run.run_id}.dgm.zip",
            model_name=run.settings.model,
            dataset=run.settings.dataset,
            hidden=run.settings.hidden,
            seed=run.settings.seed,
            model=run.model,
            extra={
                "training": dataclasses.asdict(run.settings),
                "model_kwargs": run.settings.options,
                "step": run.step,
                "elapsed_s": run.trainer.elapsed_s,
                "metrics": run.kept_metrics() or {},
                "history": run.history,
            },
        )
    return str(path), f"Checkpoint of run #{run.run_id} ready: {path.name} ({path.stat().st_size / 1e3:.0f} kB)."


def partial_upload(device: torch.device):
    def upload(session: Session, file: Any, current: Any) -> tuple[Any, Any, str, Any]:
        if file is None:
            return gr.skip(), gr.skip(), "", gr.skip()
        try:
            run = run_from_checkpoint(Path(file), device)
        except CheckpointError as error:
            return rows(session), refresh_runs(session, current), f"**Not loaded:** {error}", None
        session.keep(run)
        said = f"Loaded {run.settings.model} on {run.settings.dataset} as run #{run.run_id} (step {run.step})."
        return rows(session), refresh_runs(session, run.run_id), said, None

    return upload


def run_from_checkpoint(path: Path, device: torch.device) -> TrainingRun:
    """A finished run rebuilt from a checkpoint: its weights, settings, scores and curves."""
    model, record = load_checkpoint(path)
    try:
        settings = Settings(**record.training)
        run = TrainingRun(settings, device, model=model)
        trainer = run.trainer
        trainer.step, trainer.elapsed_s = int(record.extra["step"]), float(record.extra["elapsed_s"])
        trainer.history = [dict(row) for row in record.history]
        metrics = dict(record.metrics)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"The checkpoint's run settings are incomplete ({error}).") from None
    if metrics:
        score = metrics.get("val_nll", metrics.get("val_mmd", float("nan")))
        state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        trainer.best = BestRecord(int(metrics.get("step", trainer.step)), score, metrics, state)
    run.phase, run.message = "done", f"Loaded from {path.name}."
    run.refresh_samples()
    return run


def open_in_train(session: Session, run_id: Any) -> tuple[Any, ...]:
    """Make a run the Train tab's, so that Continue trains it further."""
    run = session.find(run_id)
    if run is None:
        return "Pick a run to open.", *(gr.skip(),) * 5
    with session.lock:
        if session.run is not None and session.run.phase == "training":
            session.stop()
        session.run = run
        if run.samples is None:
            run.refresh_samples()
        status, loss, nll, *_ = streaming.full_update(run)
        plot, picture = streaming.samples_update(run)
    points = run.bounds is not None
    return (
        f"Run #{run.run_id} is open in the Train tab: press Continue there to train it further.",
        status,
        loss,
        nll,
        gr.update(value=plot if points else None, visible=points),
        gr.update(value=None if points else picture, visible=not points),
    )
