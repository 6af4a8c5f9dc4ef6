"""Is every family recognisable within 20 s? Each family's representative, trained as the Train tab trains it, then
put to the powered sample test.

    python -m bench.bench_recognisable [--seconds 20] [--data moons 8gaussians] [--seeds 0 1 2 3 4]

For each family's representative (the registry's ``representative`` models, and flow matching) on each set: a
``Run`` with the registry's defaults and a time budget of ``--seconds`` of training, the weights best on validation
kept; then 500 samples against 500 held-out test points through ``mmd_test`` (multi-bandwidth, 200 permutations).
p ≥ 0.05: the test cannot tell the samples from the data. Target (issue "ten seconds is the lecture budget"): every
family passes on moons and 8gaussians within 20 s in at least 4 of 5 seeds — or the README says which do not.
"""

from __future__ import annotations

import argparse
import time

import torch

from dgm_core.learn.evaluation import mmd_test
from dgm_core.models.registry import MODELS
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec

N = 500


def recognisable(model: str, data: str, seconds: float, **changes) -> tuple[int, float, float]:
    """Steps taken, MMD² and the p-value of the sample test after ``seconds`` of training (``changes`` to the
    registry's defaults, e.g. a schedule)."""
    run = Run(RunSpec.defaults(model, data, steps=1_000_000, **changes), n_samples=600)
    run.start(max_seconds=seconds)
    while run.active:
        run.advance(0.1)
    samples = run.draw(N, seed=0)
    return run.step, *mmd_test(samples, run.data.test[:N])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--data", nargs="+", default=["moons", "8gaussians"])
    parser.add_argument("--models", nargs="+", default=None, help="default: each family's representative")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="the runs' seeds (the target: 4 of 5 pass)")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default=None, help="default: the registry's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = args.models or [info.name for info in MODELS.values() if info.representative] + ["Flow matching"]
    changes = {} if args.schedule is None else {"lr_schedule": args.schedule}
    print(f"{args.seconds:.0f} s of training each, one thread; {N} samples against {N} test points")
    print(f"{'data':<12}{'model':<15}{'family':<15}{'seed':>5}{'steps':>7}{'MMD²':>10}{'p':>7}  verdict")
    passed: dict[tuple[str, str], int] = {}
    for data in args.data:
        for model in models:
            for seed in args.seeds:
                started = time.perf_counter()
                steps, distance, p = recognisable(model, data, args.seconds, seed=seed, **changes)
                passed[data, model] = passed.get((data, model), 0) + (p >= 0.05)
                verdict = "indistinguishable" if p >= 0.05 else "told apart"
                print(
                    f"{data:<12}{model:<15}{MODELS[model].family:<15}{seed:>5}{steps:>7}{distance:>10.5f}{p:>7.3f}"
                    f"  {verdict}  ({time.perf_counter() - started:.0f} s wall)",
                    flush=True,
                )
    print(f"passed (p ≥ 0.05) of {len(args.seeds)} seeds:")
    for (data, model), count in passed.items():
        print(f"  {data:<12}{model:<15}{count}/{len(args.seeds)}")


if __name__ == "__main__":
    main()
