"""Command-line training: the same event stream the web UI draws, printed as text.

python -m dgm_core --data digits --model VAE --steps 2000 [--save vae.dgm.zip]
"""

from __future__ import annotations

import argparse

from dgm_core.data import dataset_names
from dgm_core.learn.device import describe, pick_device
from dgm_core.models.registry import MODELS
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec


def main() -> None:
    parser = argparse.ArgumentParser(description="Train one generative model and print held-out scores.")
    parser.add_argument("--data", default="moons", choices=dataset_names())
    parser.add_argument("--model", default="RealNVP", choices=list(MODELS))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    parser.add_argument("--save", default=None, help="write the run to this .dgm.zip file when it ends")
    args = parser.parse_args()

    changes = {"seed": args.seed}
    for name in ("steps", "lr", "batch_size", "hidden"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    device = pick_device(args.device)
    try:
        run = Run(RunSpec.defaults(args.model, args.data, **changes), device, sample_every_s=None)
    except ValueError as error:
        parser.error(str(error))
    print(f"{args.model} on {args.data}: {run.model.num_parameters():,} parameters, {describe(device)}")
    run.start()
    shown = 0
    while run.active:
        run.advance(1.0)
        for scores in run.history[shown:]:
            nll = "  ".join(f"{split} NLL {nats:.4f}" for split, nats in scores.nll.items())
            print(f"step {scores.step:>6}  {run.steps_per_s:6.1f} steps/s  {nll}  val MMD² {scores.val_mmd:.2e}")
        shown = len(run.history)
    print(run.message)
    if args.save:
        print(f"saved to {run.save(args.save)}")


if __name__ == "__main__":
    main()
