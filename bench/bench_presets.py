"""How long each card of the lecture gallery takes to open, as the server does it (issue target: < 3 s each).

    python -m bench.bench_presets

For each preset, in a fresh session: load its shipped run (every field checked, scores recomputed), keep it, and
draw what its view shows — the Train tab's figures (samples, loss, held-out NLL), the Latent explorer's first view,
the Likelihood tab's item-by-item scores, or the Lecture 1 tab (whose shipped runs are shared by every page and opened
once, when the server starts: timed first). One torch thread, as the app's workers use.
"""

from __future__ import annotations

import time

import torch

from app.page.session import Backend, Session
from app.page.streaming import FIGURES, _draw
from app.tabs.gallery import LECTURE_VIEWS, open_in
from app.tabs.latent import LatentState, on_run
from app.tabs.lecture import warm_up
from dgm_core.lecture.presets import PRESETS
from dgm_core.serve.scheduler import Scheduler

TARGET_S = 3.0


class _Where:
    """Stand-ins for the page's components: ``open_in`` only uses them as dictionary keys."""

    def __init__(self) -> None:
        self.tabs, self.message, self.latent_picker, self.likelihood_picker = "tabs", "message", "latent", "lik"
        self.scored_items = ["hist", "extremes", "extremes_plot", "ood"]
        self.train = type("Train", (), {"status": "status"})()
        self.lecture = type("Lecture", (), {"everything": staticmethod(lambda: [f"lecture-{i}" for i in range(20)])})()


def main() -> None:
    torch.set_num_threads(1)
    backend = Backend(torch.device("cpu"), Scheduler(1), None)
    started = time.perf_counter()
    warm_up()
    print(f"the Lecture 1 tab's shared runs, opened once at server start: {time.perf_counter() - started:.2f} s")
    print(f"{'preset':<28}{'model':>10} {'data':<11}{'view':<11}{'load s':>7}{'draw s':>7}{'total s':>8}")
    worst = 0.0
    for preset in PRESETS.values():
        session = Session(backend)
        started = time.perf_counter()
        updates = open_in(session, preset, _Where())
        loaded = time.perf_counter()
        view = session.current
        if preset.view == "samples":
            for figure in FIGURES.values():
                _draw(view, figure)
        elif preset.view == "latent":
            on_run(session, LatentState(), view.id)
        elif preset.view in LECTURE_VIEWS:
            assert "lecture-0" in updates  # the tab was drawn while opening
        else:
            assert "hist" in updates  # opening scored every test and out-of-distribution item already
        drawn = time.perf_counter()
        total = drawn - started
        worst = max(worst, total)
        print(
            f"{preset.key:<28}{preset.model:>10} {preset.dataset:<11}{preset.view:<11}"
            f"{loaded - started:>7.2f}{drawn - loaded:>7.2f}{total:>8.2f}"
        )
    print(f"slowest preset: {worst:.2f} s  [{'met' if worst < TARGET_S else 'MISSED'}] every preset opens in < 3 s")


if __name__ == "__main__":
    main()
