"""A page that opens brings back its browser's runs and shows one on the Train tab: the one training, else the
newest that trained — and the Train form shows that run's settings, so that Train and Continue do what it shows."""

from __future__ import annotations

import threading
import time
from dataclasses import fields
from types import SimpleNamespace

import pytest
import torch

from app.layout import restore_runs
from app.page.pickers import tab_runs
from app.page.session import Backend, Session
from app.page.streaming import TrainForm, TrainOutputs
from app.tabs import likelihood as likelihood_tab
from app.tabs import runs as runs_tab
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.runs.store import RunStore
from dgm_core.serve.scheduler import Scheduler

ALICE = "a" * 32
RUNS_TAB = runs_tab.RunsView(*(field.name for field in fields(runs_tab.RunsView)))
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


TABS_LISTING_RUNS = {  # each tab's select handler → the run ids it offers
    "Runs": lambda page: [row[0] for row in runs_tab.on_tab(RUNS_TAB, page, None)["table"]],
    "Likelihood": lambda page: [rid for _, rid in likelihood_tab.on_tab(page, None, None)[0]["choices"]],
    "Latent explorer": lambda page: [rid for _, rid in tab_runs(page, None)["choices"]],
}


@pytest.mark.parametrize("tab", TABS_LISTING_RUNS)
def test_a_tab_shown_before_the_restore_ends_lists_the_runs_it_brings_back(tmp_path, tab):
    """After a restart the server takes seconds to restore a page: a student who opens the Runs, Likelihood or
    Latent tab meanwhile must see the runs the status line says came back (the tab's event answers once only)."""
    backend = Backend(torch.device("cpu"), Scheduler(1), RunStore(tmp_path))
    first = Session(backend)
    first.attach(ALICE)
    first.keep(Run(RunSpec.defaults("MADE", "8gaussians", hidden=16, steps=3)))
    page = Session(backend)
    offered: list = []
    shown = threading.Thread(target=lambda: offered.extend(TABS_LISTING_RUNS[tab](page)))
    shown.start()  # the tab's event, before the page's restore
    time.sleep(0.2)
    outputs = TrainOutputs("status", None, None, None, FORM)
    restore_runs(page, ALICE, SimpleNamespace(session_hash="page"), "token", outputs)
    shown.join(timeout=5)
    assert offered == [1]
