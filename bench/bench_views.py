"""What the "how it works" views cost: server time per redraw, and the live ones' share of training throughput.

    python -m bench.bench_views

Issue targets (this 2-core CPU): each view redraws in ≤ 200 ms on 2D data and ≤ 300 ms on images; the live views
(a GAN's or an EBM's field, redrawn with the samples every DENSITY_EVERY_S) cost ≤ 15 % of training throughput.
Redraws are timed on the shipped gallery runs (showing a view computes it once and is printed too); the throughput of
a run training in one thread (with the Train tab's evaluation and sampling schedule) is measured with and without a
field redraw every DENSITY_EVERY_S seconds on a second thread, as the page's watcher does. One torch thread each.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import torch

from app import (
    how_conditionals,
    how_diffusion,
    how_energy,
    how_it_works,
    how_pixels,
    how_players,
    how_posteriors,
    views,
)
from app.page.session import DENSITY_EVERY_S, SAMPLES_SHOWN, RunView
from dgm_core.lecture.presets import PRESETS, open_preset
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec

REDRAW_TARGET_S, IMAGE_REDRAW_TARGET_S, COST_TARGET = 0.2, 0.3, 0.15
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


def redraws() -> tuple[float, float]:
    """Print the server time of each view's first showing and of its redraws; return the slowest redraw on 2D
    points and on images (the targets apply to redraws: a slider move, a step; showing a view computes it once)."""
    shown: dict[tuple[str, str, str], float] = {}  # (kind, action, name) -> seconds
    gan = RunView(open_preset(PRESETS["gan-modes"], rescore=False))
    ebm = RunView(open_preset(PRESETS["energy-based"], rescore=False))
    for name, view in (("GAN field + arrows (live)", gan), ("EBM landscape + drift (live)", ebm)):
        shown["2D", "redraw", name] = _median_s(lambda v=view: (v.refresh_density(force=True), views.samples_figure(v)))
    flow = _Page(RunView(open_preset(PRESETS["flows-on-rings"], rescore=False)))
    passes = how_it_works.show_layers(flow)[0]
    shown["2D", "show", "flow: the layers, both ways"] = _median_s(lambda: how_it_works.show_layers(flow))
    shown["2D", "redraw", "flow: one layer (slider)"] = _median_s(lambda: how_it_works.stage_figure(passes, 2))
    made = _Page(RunView(open_preset(PRESETS["autoregressive-masks"], rescore=False)))
    steps = how_conditionals.show_conditionals(made)[0]
    shown["2D", "show", "MADE: the conditionals"] = _median_s(lambda: how_conditionals.show_conditionals(made))
    shown["2D", "redraw", "MADE: move v (slider)"] = _median_s(lambda: how_conditionals.figure(steps, 0.5))
    shown["2D", "redraw", "MADE: draw step by step"] = _median_s(lambda: how_conditionals.draw_step_by_step(steps))
    ddpm = _Page(RunView(open_preset(PRESETS["diffusion"], rescore=False)))
    process = how_diffusion.show_process(ddpm)[0]
    shown["2D", "show", "DDPM: the process"] = _median_s(lambda: how_diffusion.show_process(ddpm))
    shown["2D", "redraw", "DDPM: one step (slider)"] = _median_s(lambda: how_diffusion.figure(process, 40))
    shown["2D", "redraw", "DDPM: 10 sampler passes"] = _median_s(lambda: how_diffusion.redraw_chains(process, 10, 40))
    shown["2D", "show", "DDPM: sample test per passes"] = _median_s(lambda: how_diffusion.measure_sample_test(ddpm), 1)
    arena = _Page(gan)
    match = how_players.copy_players(arena)[0]
    shown["2D", "show", "GAN: copy the players"] = _median_s(lambda: how_players.copy_players(arena))
    step_d = _median_s(lambda: how_players.play(match, "discriminator", 10))
    shown["2D", "redraw", "GAN: step D ×10 and redraw"] = step_d
    chains = _Page(ebm)
    landscape = how_energy.show_chains(chains)[0]
    shown["2D", "show", "EBM: the chains"] = _median_s(lambda: how_energy.show_chains(chains))
    shown["2D", "redraw", "EBM: one Langevin step (slider)"] = _median_s(lambda: how_energy.figure(landscape, 10))
    pixelcnn = RunView(open_preset(PRESETS["sampling-digits"], rescore=False))
    pixels = _Page(pixelcnn)
    pixels.views = {pixelcnn.id: pixelcnn}
    drawing = how_pixels.start_image(pixels)[0]
    shown["image", "show", "PixelCNN: start an image"] = _median_s(lambda: how_pixels.start_image(pixels))
    shown["image", "redraw", "PixelCNN: next pixel"] = _median_s(lambda: how_pixels.next_pixel(drawing))
    vae = _Page(RunView(open_preset(PRESETS["latent-walk"], rescore=False)))
    shown["image", "show", "VAE: posteriors on digits"] = _median_s(lambda: how_posteriors.show_posteriors(vae))
    for (kind, action, name), seconds in shown.items():
        print(f"  {kind:<6}{action:<7}{name:<36}{1000 * seconds:7.1f} ms")
    redraw = [(kind, seconds) for (kind, action, _), seconds in shown.items() if action == "redraw"]
    return max(t for k, t in redraw if k == "2D"), max(t for k, t in redraw if k == "image")


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
    print("Server time per view (median of 5):")
    points, images = redraws()
    for kind, slowest, target in (("2D", points, REDRAW_TARGET_S), ("image", images, IMAGE_REDRAW_TARGET_S)):
        verdict = "met" if slowest <= target else "MISSED"
        print(f"slowest {kind} redraw {1000 * slowest:.0f} ms  [{verdict}] ≤ {1000 * target:.0f} ms")
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
