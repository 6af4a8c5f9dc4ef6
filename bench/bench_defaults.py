"""Train every registered model with its default settings, exactly as the app's Train button does; print a table.

    python -m bench.bench_defaults                                  # moons, 8gaussians, digits, shapes; one thread
    python -m bench.bench_defaults --models VAE IWAE --data digits
    python -m bench.bench_defaults --models VAE --data digits --steps 6000 --lr 3e-4 --curves vae.json  # try settings

Each run is ``defaults_for(model, data)`` (steps, lr, batch size, hidden width) with the app's ``TrainConfig``
(weights kept: best on validation), except that it evaluates every 5 % of the run instead of by the clock, so the
curve is deterministic. Training alone never depends on the evaluation schedule (batches and evaluation draws come
from separate seeded streams), so a longer run's curve (``--curves``) shows what any shorter one would have done.

Columns: the defaults (steps, lr, batch, hidden), steps/s (training time only), the step whose weights scored best
on validation and that score (NLL in nats per item, or MMD² for models without a likelihood), the test bits/dim of
those kept weights and of the final evaluation, the baseline's test bits/dim (single Gaussian or independent pixels)
and the wall time of the run (evaluation included). Flags:

    WORSE THAN BASELINE  the kept weights' test bits/dim exceed the baseline's
    EARLY BEST           the best validation score came before 60 % of the steps (wasted time, overfitting)
    STILL IMPROVING      the best score is the last evaluation and it improved by more than 1 % over the last 20 % of
                         the run: of |score| for an NLL; for MMD², which falls to ≈ 0, of the first evaluation's,
                         and never once the best MMD² is ≤ 0 (the samples then already pass for data)
    CUT                  the run passed --max-seconds of wall time and was stopped (its weights scored, then kept)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import Scores, baseline_nll, bits_per_dim
from dgm_core.learn.train_config import TrainConfig
from dgm_core.learn.training import Trainer
from dgm_core.models.registry import MODELS, TrainingDefaults, build_model, defaults_for, supports

DATA = ["moons", "8gaussians", "digits", "shapes"]
EARLY = 0.6  # a best step before this fraction of the run is an early best
TAIL = 0.2  # the last fraction of the run in which a still-improving score is measured…
STILL = 0.01  # …and by how much (relative) it must improve there


def bench(model_name: str, data_name: str, overrides: dict, max_seconds: float) -> dict:
    """Train ``model_name`` on ``data_name`` with its defaults (some replaced by ``overrides``); the run's numbers."""
    data = load_dataset(data_name)
    d = TrainingDefaults(**{**vars(defaults_for(model_name, data.spec)), **overrides})
    model = build_model(model_name, data.spec, hidden=d.hidden, seed=0)
    config = TrainConfig(
        steps=d.steps,
        lr=d.lr,
        batch_size=d.batch_size,
        seed=0,
        lr_schedule=d.schedule,
        eval_every_s=None,
        eval_every_steps=max(1, d.steps // 20),
        sample_every_s=None,
    )
    trainer = Trainer(model, data, config)
    start = time.perf_counter()
    cut = False
    for _ in trainer.run():
        if not cut and time.perf_counter() - start > max_seconds:
            trainer.request_stop()
            cut = True
    wall = time.perf_counter() - start
    best, history = trainer.best, [_flat(scores) for scores in trainer.history]
    likelihood = model.capabilities.likelihood != "none"
    key = "val_nll" if likelihood else "val_mmd"
    base_bpd = bits_per_dim(baseline_nll(data)[1], data.spec)
    kept_bpd = _flat(best.scores).get("test_bpd") if best else None
    final_bpd = history[-1].get("test_bpd") if history else None
    flags = []
    if kept_bpd is not None and kept_bpd > base_bpd:
        flags.append("WORSE THAN BASELINE")
    if best is not None and best.step < EARLY * d.steps:
        flags.append("EARLY BEST")
    if best is not None and history and best.step == history[-1]["step"]:
        earlier = [row for row in history if row["step"] <= (1 - TAIL) * trainer.step]
        if earlier:
            scale = abs(earlier[-1][key]) if likelihood else abs(history[0][key])
            settled = not likelihood and best.scores.score <= 0  # MMD² ≈ 0: samples pass for data; nothing to gain
            if earlier[-1][key] - best.scores.score > STILL * scale and not settled:
                flags.append("STILL IMPROVING")
    if cut:
        flags.append(f"CUT at step {trainer.step} (> {max_seconds:.0f} s)")
    return {
        "data": data_name,
        "model": model_name,
        "defaults": vars(d),
        "steps_per_s": trainer.step / trainer.elapsed_s,
        "best_step": best.step if best else None,
        "best_score": best.scores.score if best else None,
        "score": key,
        "kept_test_bpd": kept_bpd,
        "final_test_bpd": final_bpd,
        "baseline_bpd": base_bpd,
        "wall_s": wall,
        "flags": flags,
        "history": history,
    }


HEADER = (
    f"{'data':<11}{'model':<20}{'steps':>7}{'lr':>8}{'batch':>6}{'hidden':>7}{'steps/s':>8}{'best':>7}"
    f"{'best val':>11}{'kept bpd':>9}{'final bpd':>10}{'base bpd':>9}{'wall s':>7}  flags"
)


def row(r: dict) -> str:
    d = r["defaults"]
    score = r["best_score"]
    score_text = "—" if score is None else (f"{score:.3f}" if r["score"] == "val_nll" else f"{score:.2e}")
    return (
        f"{r['data']:<11}{r['model']:<20}{d['steps']:>7}{d['lr']:>8.0e}{d['batch_size']:>6}{d['hidden']:>7}"
        f"{r['steps_per_s']:>8.0f}{_num(r['best_step'], 0):>7}{score_text:>11}{_num(r['kept_test_bpd'], 3):>9}"
        f"{_num(r['final_test_bpd'], 3):>10}{r['baseline_bpd']:>9.3f}{r['wall_s']:>7.0f}  {', '.join(r['flags'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=DATA)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=180.0, help="stop a run after this much wall time")
    parser.add_argument("--steps", type=int, help="replace the default step count (to try settings)")
    parser.add_argument("--lr", type=float, help="replace the default learning rate")
    parser.add_argument("--batch-size", type=int, help="replace the default batch size")
    parser.add_argument("--hidden", type=int, help="replace the default hidden width")
    parser.add_argument("--schedule", choices=["constant", "cosine"], help="replace the default schedule")
    parser.add_argument("--curves", help="write every run's numbers and evaluation history to this JSON file")
    args = parser.parse_args()
    for name in args.models:
        if name not in MODELS:
            parser.error(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    given = {
        "steps": args.steps,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "hidden": args.hidden,
        "schedule": args.schedule,
    }
    overrides = {key: value for key, value in given.items() if value is not None}
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); evaluation every 5 % of the run; weights kept: best")
    print(HEADER, flush=True)
    results = []
    start = time.perf_counter()
    for data_name in args.data:
        data = load_dataset(data_name)
        for model_name in args.models:
            if not supports(model_name, data):
                continue
            results.append(bench(model_name, data_name, overrides, args.max_seconds))
            print(row(results[-1]), flush=True)
            if args.curves:
                with open(args.curves, "w") as f:
                    json.dump(results, f, indent=1)
    print(f"total wall time {time.perf_counter() - start:.0f} s")


def _flat(scores: Scores) -> dict[str, float]:
    """One evaluation as a flat row: step, val_mmd and, with a likelihood, {split}_nll (nats) and {split}_bpd."""
    row = {"step": scores.step, "elapsed_s": scores.elapsed_s, "val_mmd": scores.val_mmd}
    for split, nats in scores.nll.items():
        row[f"{split}_nll"], row[f"{split}_bpd"] = nats, scores.bits(nats)
    return row


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
