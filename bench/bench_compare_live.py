"""The Compare tab live: how soon every panel has samples, and how soon Stop answers.

    python -m bench.bench_compare_live [--data moons] [--seconds 5] [--stop-after 3] [--repeats 3]

Drives a comparison of the data set's default models (one per family, ``default_models``) exactly as the app does:
one job for ``Scheduler(2, processes=True)``, its runs trained in the job's training process. For each repeat it
prints, from the submission, when each entry first has samples (``run.samples``: what its panel draws); then, from
``comparison.stop()`` (called ``--stop-after`` seconds after the submission), when no entry is in training any
more (the status says "Stopped"), when the last training step was seen (the slice under way at the Stop), when every
run has ended with its stopped-at weights scored and its chosen ones kept, and when the comparison is no longer
active (every two-sample test in). The training processes are started, and have
imported torch and built the data set (as the app's have once they trained a run on it: the first run of a data set
in a process builds it, 2.6 s for moons here, and the bench prints that once), before the clock starts.

Targets: every panel shows samples within 3 s of the click; Stop → "Stopped" ≤ 1 s.
"""

from __future__ import annotations

import argparse
import time

import torch

from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.comparison import TRAINING, Comparison, default_models
from dgm_core.serve.scheduler import FIRST_SLICE_S, Scheduler

LOOK_S = 0.005  # how often the bench looks at the comparison


def first_samples(comparison: Comparison, submitted: float, give_up: float) -> list[float | None]:
    """Seconds from the submission until each entry's run first has samples (None: not before ``give_up``)."""
    seen: list[float | None] = [None] * len(comparison.entries)
    while None in seen and time.perf_counter() < give_up:
        for i, entry in enumerate(comparison.entries):
            if seen[i] is None and entry.run.samples is not None:
                seen[i] = time.perf_counter() - submitted
        time.sleep(LOOK_S)
    return seen


def stop_latencies(comparison: Comparison) -> tuple[float, float, float, float, float]:
    """Seconds that ``stop()`` itself took, then from its call until no entry is in training (the status says
    "Stopped"), until the last training step seen (the slice under way when Stop came), until every run has ended,
    and until the comparison is no longer active."""
    called = time.perf_counter()
    comparison.stop()
    returned = time.perf_counter() - called
    halted = ended = None
    steps, last_step = sum(entry.run.step for entry in comparison.entries), 0.0
    while comparison.active:
        now = time.perf_counter() - called
        if halted is None and all(entry.state not in TRAINING for entry in comparison.entries):
            halted = now
        if ended is None and not any(entry.run.active for entry in comparison.entries):
            ended = now
        if sum(entry.run.step for entry in comparison.entries) != steps:
            steps, last_step = sum(entry.run.step for entry in comparison.entries), now
        time.sleep(LOOK_S)
    inactive = time.perf_counter() - called
    return returned, halted or inactive, last_step, ended or inactive, inactive


def warm(scheduler: Scheduler, dataset: str, model: str) -> list[float]:
    """Each training process builds ``dataset``, as its first run on it does; the seconds that first slice took."""
    took = []
    for process in scheduler.processes:
        process.call("drop", 0)  # answered once the process has imported torch and the core
        run = Run(RunSpec.defaults(model, dataset, steps=10), torch.device("cpu"))
        run.start()
        started = time.perf_counter()
        run.advance(FIRST_SLICE_S, process)
        took.append(time.perf_counter() - started)
        run.abandon()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="moons")
    parser.add_argument("--seconds", type=float, default=5.0, help="training seconds per model (the tab's default)")
    parser.add_argument("--stop-after", type=float, default=3.0, help="seconds after the submission to press Stop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scheduler = Scheduler(2, processes=True)
    models = default_models(args.data)
    cold = warm(scheduler, args.data, models[0])
    print(f"{args.data}: {', '.join(models)}; {args.seconds:g} s of training each; Stop {args.stop_after:g} s in")
    print(f"(a training process's first run on {args.data}: " + ", ".join(f"{s:.2f} s" for s in cold) + ")\n")
    print(
        "| repeat | first samples per panel (s) | slowest "
        "| stop() | → Stopped | → last step | → runs ended | → tests in |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for repeat in range(1, args.repeats + 1):
        comparison = Comparison(args.data, models, "seconds", args.seconds, torch.device("cpu"))
        submitted = time.perf_counter()
        scheduler.submit(comparison)
        seen = first_samples(comparison, submitted, submitted + args.stop_after)
        time.sleep(max(0.0, submitted + args.stop_after - time.perf_counter()))
        returned, halted, last_step, ended, inactive = stop_latencies(comparison)
        late = f"> {args.stop_after:g}"  # no samples before the Stop
        shown = ", ".join(f"{name} {late if s is None else f'{s:.2f}'}" for name, s in zip(models, seen))
        slowest = late if None in seen else f"{max(s for s in seen if s is not None):.2f}"
        states = "/".join(sorted({entry.state for entry in comparison.entries}))
        print(
            f"| {repeat} | {shown} | {slowest} | {returned:.2f} | {halted:.2f} | {last_step:.2f} | {ended:.2f} "
            f"| {inactive:.2f} ({states}) |"
        )
    print("\nTargets: every panel's first samples ≤ 3 s after the click; Stop → Stopped ≤ 1 s.")


if __name__ == "__main__":
    main()
