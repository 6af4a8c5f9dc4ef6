"""Train the lecture presets' runs and ship them: ``assets/pretrained/<key>.dgm.zip`` and ``manifest.json``.

    python -m dgm_core.lecture.pretrain            # every shipped run and the shapes' factor reader (minutes, one core)
    python -m dgm_core.lecture.pretrain --only latent-walk factor-reader

Each run is its preset's default settings, trained on one thread and evaluated at fixed steps (every 5 % of the run),
so the same command makes the same weights on the same software. A file holds only the kept weights (no optimizer
state): small, and "Continue" starts a fresh optimizer from them. The manifest records the scores each file gets
when it is loaded back (``Run.load`` scores it again): a test checks that the shipped files still score so.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dgm_core.lecture.inverse_graphics import READER_FILE, factor_errors, load_reader, save_reader, train_reader
from dgm_core.lecture.presets import MANIFEST, PRETRAINED, shipped_path, shipped_runs
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec

READER = "factor-reader"  # the encoder of lecture 1's inverse graphics (dgm_core.lecture.inverse_graphics), not a run


def pretrain(key: str, spec: RunSpec) -> dict:
    """Train ``spec`` to the end, save its kept weights as ``key``, and return what loading them back scores."""
    run = Run(spec, eval_every_s=None, eval_every_steps=max(1, spec.steps // 20), sample_every_s=None)
    run.start()
    while run.active:
        run.advance(10.0)
    path = run.save(shipped_path(key), training_state=False)
    scores = Run.load(path).scores
    return {
        "spec": spec.to_json(),
        "step": scores.step,
        "test_nll": scores.nll.get("test"),
        "val_mmd": scores.val_mmd,
        "bytes": path.stat().st_size,
    }


def pretrain_reader() -> dict:
    """Train and save the factor reader; return its errors on the test shapes as loaded back."""
    save_reader(train_reader())
    errors = factor_errors(load_reader())
    return {
        "mean_absolute": errors.mean_absolute,
        "kind_accuracy": errors.kind_accuracy,
        "bytes": READER_FILE.stat().st_size,
    }


def main() -> None:
    runs = shipped_runs()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=[*runs, READER], help="make only these")
    args = parser.parse_args()
    torch.set_num_threads(1)
    PRETRAINED.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest = {key: entry for key, entry in manifest.items() if key in runs or key == READER}
    if args.only is None or READER in args.only:
        manifest[READER] = pretrain_reader()
        MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        print(f"{READER}: mean absolute errors {manifest[READER]['mean_absolute']}", flush=True)
    for key in [key for key in args.only or runs if key != READER]:
        started = time.perf_counter()
        manifest[key] = pretrain(key, runs[key])
        MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        entry = manifest[key]
        nll = "—" if entry["test_nll"] is None else f"{entry['test_nll']:.3f} nats"
        print(
            f"{key:<28} {runs[key].model:>9} on {runs[key].dataset:<10} kept step {entry['step']:>5}  "
            f"test NLL {nll:>12}  val MMD² {entry['val_mmd']:.2e}  {entry['bytes'] / 1e3:6.0f} kB  "
            f"{time.perf_counter() - started:4.0f} s",
            flush=True,
        )
    total = sum(entry["bytes"] for entry in manifest.values())
    print(f"{len(manifest)} files, {total / 1e6:.1f} MB in {PRETRAINED}")


if __name__ == "__main__":
    main()
