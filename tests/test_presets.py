"""The lecture presets: every card opens a shipped run that loads, scores as it did when it was made, and holds the
settings the card promises; the files stay small (``python -m dgm_core.lecture.pretrain`` makes them)."""

from __future__ import annotations

import math
import threading

import pytest

from dgm_core.data import load_dataset
from dgm_core.lecture.presets import (
    PRESETS,
    PRETRAINED,
    open_preset,
    recorded_scores,
    run_key,
    shipped_path,
    shipped_runs,
)
from dgm_core.lecture.pretrain import READER
from dgm_core.models.registry import MODELS, supports
from dgm_core.runs.run import Run

MAX_SHIPPED_BYTES = 30 * 2**20


def test_every_shipped_run_is_in_the_manifest_and_nothing_else_is() -> None:
    files = {path.name.removesuffix(".dgm.zip") for path in PRETRAINED.glob("*.dgm.zip")}
    assert files == set(shipped_runs()) == set(recorded_scores()) - {READER}


def test_the_shipped_runs_fit_the_budget() -> None:
    assert sum(path.stat().st_size for path in PRETRAINED.iterdir()) <= MAX_SHIPPED_BYTES


@pytest.mark.parametrize("preset", PRESETS.values(), ids=list(PRESETS))
def test_a_preset_names_a_model_that_fits_its_data(preset) -> None:
    assert preset.model in MODELS and supports(preset.model, load_dataset(preset.dataset))
    assert preset.title and preset.look_for.endswith(".")


@pytest.mark.parametrize("key", list(shipped_runs()))
def test_a_shipped_run_loads_with_its_settings_and_scores_as_recorded(key: str) -> None:
    recorded = recorded_scores()[key]
    run = Run.load(shipped_path(key))
    assert run.spec == shipped_runs()[key], "stale settings: python -m dgm_core.lecture.pretrain"
    assert run.phase == "done" and run.scores.step == recorded["step"]
    if recorded["test_nll"] is None:
        assert not run.scores.nll
    else:  # stale weights (a model changed since the file was made) score differently: remake them
        assert math.isclose(run.scores.nll["test"], recorded["test_nll"], rel_tol=1e-3, abs_tol=1e-3)
    assert math.isclose(run.scores.val_mmd, recorded["val_mmd"], abs_tol=2e-3)


def test_presets_with_the_same_model_and_data_share_one_file() -> None:
    for preset in PRESETS.values():
        shared = PRESETS[run_key(preset)]
        assert (shared.model, shared.dataset) == (preset.model, preset.dataset)


def test_opening_a_card_never_waits_for_another_cards_scoring(monkeypatch) -> None:
    """After a restart the warm-up scores every card behind the page: a student's Open of one card must not queue
    behind the scoring of the others."""
    first, second = (PRESETS[key] for key in list(dict.fromkeys(map(run_key, PRESETS.values())))[:2])
    scoring_first, finish_first, first_scored = threading.Event(), threading.Event(), threading.Event()
    rescore = Run.rescore

    def slow_for_the_first(run: Run, known=None):
        if run.spec == first.spec:
            scoring_first.set()
            finish_first.wait(10)
            first_scored.set()
        return rescore(run, known)

    monkeypatch.setattr(Run, "rescore", slow_for_the_first)
    warm_up = threading.Thread(target=open_preset, args=(first,))
    warm_up.start()
    assert scoring_first.wait(30)
    opened = open_preset(second)  # while the first card is still being scored
    assert not first_scored.is_set() and opened.spec == second.spec and opened.scores is not None
    finish_first.set()
    warm_up.join(30)
