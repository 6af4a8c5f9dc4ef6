"""What the "how it works" views cost: server time per redraw, and the live ones' share of training throughput.

    python -m bench.bench_views

Issue targets (this 2-core CPU): each view redraws in ≤ 200 ms on 2D data; the live views (a GAN's or an EBM's
field, redrawn with the samples every DENSITY_EVERY_S) cost ≤ 15 % of training throughput. Redraws are timed on the
shipped gallery runs; the throughput of a run training in one thread (with the Train tab's evaluation and sampling
schedule) is measured with and without a field redraw every DENSITY_EVERY_S seconds on a second thread, as the page's
watcher does. One torch thread each.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import torch

from app import how_conditionals, how_diffusion, how_it_works, views
from app.session import DENSITY_EVERY_S, SAMPLES_SHOWN, RunView
from dgm_core.presets import PRESETS, open_preset
from dgm_core.runs import Run, RunSpec

REDRAW_TARGET_S, COST_TARGET = 0.2, 0.15
TRAIN_S = 15.0
REPEATS = 3  # bare and live runs alternate; medians are compared (single runs vary by ±10 % on this machine)


class _Page:
    def __init__(self, view: RunView) -> None:
        self.current = view


def _median_s(draw: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        draw()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def redraws() -> float:
    """Print the server time of each view's redraw; return the slowest."""
    shown = {}
    gan = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    ebm = RunView(open_preset(PRESETS["energy-based"], rescore=False))
    for name, view in (("GAN field + arrows", gan), ("EBM landscape + drift", ebm)):
        shown[name] = _median_s(lambda v=view: (v.refresh_density(force=True), views.samples_figure(v)))
    flow = _Page(RunView(open_preset(PRESETS["flows-on-rings"], rescore=False)))
    passes = how_it_works.show_layers(flow)[0]
    shown["flow: show the layers"] = _median_s(lambda: how_it_works.show_layers(flow))
    shown["flow: one layer (slider)"] = _median_s(lambda: how_it_works.stage_figure(passes, 2))
    made = _Page(RunView(open_preset(PRESETS["autoregressive-masks"], rescore=False)))
    steps = how_conditionals.show_conditionals(made)[0]
    shown["MADE: show the conditionals"] = _median_s(lambda: how_conditionals.show_conditionals(made))
    shown["MADE: move v (slider)"] = _median_s(lambda: how_conditionals.figure(steps, 0.5))
    shown["MADE: draw step by step"] = _median_s(lambda: how_conditionals.draw_step_by_step(steps))
    ddpm = _Page(RunView(open_preset(PRESETS["diffusion"], rescore=False)))
    process = how_diffusion.show_process(ddpm)[0]
    shown["DDPM: show the process"] = _median_s(lambda: how_diffusion.show_process(ddpm))
    shown["DDPM: one step (slider)"] = _median_s(lambda: how_diffusion.figure(process, 40))
    for name, seconds in shown.items():
        print(f"  {name:<32}{1000 * seconds:7.1f} ms")
    return max(shown.values())


def steps_per_s(spec: RunSpec, with_field: bool) -> float:
    """Training steps per second of ``spec`` for TRAIN_S seconds, with or without the page's field redraws."""
    run = Run(spec, n_samples=SAMPLES_SHOWN["points2d"])  # the Train tab's own schedule of evaluation and samples
    run.start(steps=1_000_000)
    view, stop = RunView(run), threading.Event()

    def watcher() -> None:
        torch.set_num_threads(1)
        while not stop.wait(DENSITY_EVERY_S):
            view.refresh_density(force=True)
            views.samples_figure(view)

    thread = threading.Thread(target=watcher, daemon=True)
    if with_field:
        thread.start()
    started, first = time.perf_counter(), run.step
    while time.perf_counter() - started < TRAIN_S:
        run.advance(0.1)
    rate = (run.step - first) / (time.perf_counter() - started)
    stop.set()
    if with_field:
        thread.join()
    run.abandon()
    return rate


def main() -> None:
    torch.set_num_threads(1)
    print("Server time per redraw (median of 5):")
    slowest = redraws()
    print(f"slowest redraw {1000 * slowest:.0f} ms  [{'met' if slowest <= REDRAW_TARGET_S else 'MISSED'}] ≤ 200 ms")
    print(
        f"\nTraining steps/s (median of {REPEATS} runs of {TRAIN_S:.0f} s), without and with the live field redrawn "
        f"every {DENSITY_EVERY_S} s:"
    )
    for model, dataset in (("GAN", "8gaussians"), ("EBM", "moons")):
        spec = RunSpec.defaults(model, dataset)
        pairs = [(steps_per_s(spec, False), steps_per_s(spec, True)) for _ in range(REPEATS)]
        bare, live = (statistics.median(rates) for rates in zip(*pairs))
        cost = 1 - live / bare
        verdict = "met" if cost <= COST_TARGET else "MISSED"
        print(
            f"  {model} on {dataset:<11}{bare:7.1f} → {live:7.1f} steps/s: cost {100 * cost:4.1f} %  [{verdict}] ≤ 15 %"
        )


if __name__ == "__main__":
    main()
