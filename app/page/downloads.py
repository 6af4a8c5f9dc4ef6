"""Files a page offers for download — a run's checkpoint (the Runs tab), its notebook or script (the Runs and Train
tabs) — each in a fresh folder of its own, swept once older than ``DOWNLOAD_LIFETIME_S``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from app.page.session import RunView
from dgm_core.runs.export import ExportError, write_notebook, write_script

DOWNLOADS = Path(tempfile.gettempdir()) / "dgm-playground-checkpoints"  # one folder per download, swept
DOWNLOAD_LIFETIME_S = 600
CODE = {"notebook": (".ipynb", write_notebook), "script": (".py", write_script)}  # the run as code


def download_folder() -> Path:
    """A fresh folder for one download, so that pages never overwrite each other's files; downloads older than
    ``DOWNLOAD_LIFETIME_S`` are swept away first (Gradio keeps its own copy of what it served)."""
    cutoff = time.time() - DOWNLOAD_LIFETIME_S
    for path in DOWNLOADS.glob("*/*") if DOWNLOADS.exists() else []:
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=DOWNLOADS))


def write_code(view: RunView, kind: str) -> Path:
    """``view``'s run as a notebook or a script (``dgm_core.runs.export``) in a fresh download folder; ExportError
    (and no folder left behind) when it cannot be exported."""
    suffix, write = CODE[kind]
    folder = download_folder()
    try:
        return write(view.run, folder / f"{view.spec.model}-{view.spec.dataset}-run{view.id}{suffix}")
    except ExportError:
        folder.rmdir()
        raise
