"""A page that opens brings back its browser's runs and shows one on the Train tab: the one training, else the
newest that trained — and the Train form shows that run's settings, so that Train and Continue do what it shows."""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace

import torch

from app.layout import restore_runs
from app.page.session import Backend, Session
from app.page.streaming import TrainForm, TrainOutputs
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import RunStore
from dgm_core.serve.scheduler import Scheduler

ALICE = "a" * 32
FORM = TrainForm(*(field.name for field in fields(TrainForm)))  # components stand in by name


def test_a_comparisons_model_that_never_started_is_not_what_a_reload_shows(tmp_path):
    backend = Backend(torch.device("cpu"), Scheduler(1), RunStore(tmp_path))
    first = Session(backend)
    first.attach(ALICE)
    trained = Run(RunSpec.defaults("MADE", "8gaussians", hidden=16, steps=3, lr=2e-3))
    trained.start()
    while trained.active:
        trained.advance(1.0)
    first.keep(trained)
    first.keep(Run(RunSpec.defaults("GAN", "moons", steps=50)))  # listed by a comparison, never trained
    outputs = TrainOutputs("status", None, None, None, FORM)
    page = Session(backend)
    shown = restore_runs(page, ALICE, SimpleNamespace(session_hash="page"), "token", outputs)
    assert page.current.run.spec.model == "MADE" and "#1 MADE on 8gaussians" in shown["status"]
    assert shown["dataset"]["value"] == "8gaussians" and shown["model"]["value"] == "MADE" and shown["lr"] == 2e-3
