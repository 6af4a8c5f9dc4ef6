"""What the app's tests share: a fresh page's session on an in-memory backend, a run trained to its end, and the
picture a figure shows."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from app.page.session import Backend, RunView
from app.page.session import Session as Session_
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import Scheduler

CPU = torch.device("cpu")
BACKEND = Backend(CPU, Scheduler(1))  # no store: runs live in memory only


def Session() -> Session_:  # noqa: N802 — a fresh page's session, as Gradio's factory makes it
    return Session_(BACKEND)


def picture_in(figure) -> np.ndarray:
    """The picture a figure shows (``figures.picture_figure``), as pixels."""
    source = figure.layout.images[0].source
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))


def trained(session, dataset: str, model: str, steps: int = 60, hidden: int = 32) -> RunView:
    """A run trained to its end (here, not by the scheduler) and kept by the session."""
    run = Run(RunSpec(dataset, model, steps, 3e-3, 128, hidden), CPU)
    run.start()
    while run.active:
        run.advance(1.0)
    return session.keep(run)
