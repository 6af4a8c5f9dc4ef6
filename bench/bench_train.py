"""Train every registered model on a 2D set and on digits under a wall-clock budget; print a table.

    python -m bench.bench_train                       # moons 10 s, digits 60 s, one thread (as the app trains)
    python -m bench.bench_train --data moons rings --seconds 10 --models RealNVP
    python -m bench.bench_train --data all            # the eight 2D sets (10 s each) and digits (60 s)

Columns: steps/s (training time only), steps taken, test NLL in nats per item and bits/dim of the weights best on
validation, what that number is (exact / bound / none), the baseline (single Gaussian or independent pixels) and,
for 2D sets, the generator's entropy (the floor) and the gap to it. GANs report validation MMD instead.
"""

from __future__ import annotations

import argparse
import time

import torch

from dgm_core.data import load_dataset, toy2d
from dgm_core.learn.evaluation import baseline_nll, bits_per_dim
from dgm_core.models.registry import MODELS, supports
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec


def bench(model_name: str, data_name: str, seconds: float) -> dict:
    """A run with the registry's defaults, trained for ``seconds`` of training time the way the app trains it."""
    run = Run(RunSpec.defaults(model_name, data_name, steps=1_000_000), sample_every_s=None)
    start = time.perf_counter()
    run.start(max_seconds=seconds)
    while run.active:
        run.advance(1.0)
    wall = time.perf_counter() - start
    kept = run.kept.scores if run.kept else None
    return {
        "steps": run.step,
        "steps_per_s": run.step / run.elapsed_s,
        "wall_s": wall,
        "test_nll": kept.nll.get("test") if kept else None,
        "val_mmd": kept.val_mmd if kept else None,
        "kind": run.model.capabilities.likelihood,
        "params": run.model.num_parameters(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["moons", "digits"], help='data set names, or "all"')
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seconds", type=float, default=None, help="budget per run (default: 10 for 2D, 60 images)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    data_names = [*toy2d.ENTROPY_NATS, "digits"] if args.data == ["all"] else args.data
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    header = f"{'data':<13}{'model':<20}{'kind':<6}{'params':>9}{'steps/s':>9}{'steps':>7}"
    header += f"{'test nats':>11}{'bits/dim':>10}{'baseline':>10}{'entropy':>9}{'gap':>8}{'MMD':>9}"
    for data_name in data_names:
        data = load_dataset(data_name)
        seconds = args.seconds or (10.0 if data.spec.kind == "points2d" else 60.0)
        base_name, base_nats = baseline_nll(data)
        print(
            f"\n{data_name}: {seconds:.0f} s per model; baseline = {base_name} "
            f"{base_nats:.3f} nats ({bits_per_dim(base_nats, data.spec):.3f} bits/dim)"
        )
        print(header)
        for model_name in args.models:
            if not supports(model_name, data):
                continue  # e.g. image-only or conditional models on 2D points
            r = bench(model_name, data_name, seconds)
            nll = r["test_nll"]
            entropy = data.spec.entropy_nats
            row = (
                f"{data_name:<13}{model_name:<20}{r['kind']:<6}{r['params']:>9,}{r['steps_per_s']:>9.1f}{r['steps']:>7}"
            )
            row += f"{_num(nll, 3):>11}{_num(nll and bits_per_dim(nll, data.spec), 3):>10}{base_nats:>10.3f}"
            row += f"{_num(entropy, 3):>9}{_num(nll and entropy and nll - entropy, 3):>8}{_num(r['val_mmd'], 4):>9}"
            print(row, flush=True)


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
