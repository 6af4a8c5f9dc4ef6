"""Command-line training: the same event stream the web UI draws, printed as text.

python -m dgm_core --data digits --model VAE --steps 2000
"""

from __future__ import annotations

import argparse

from dgm_core.data import dataset_names, load_dataset
from dgm_core.device import describe, pick_device
from dgm_core.models.registry import MODELS, build_model, defaults_for
from dgm_core.training import TrainConfig, Trainer


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
    args = parser.parse_args()

    data = load_dataset(args.data)
    defaults = defaults_for(args.model, data.spec)
    device = pick_device(args.device)
    model = build_model(args.model, data.spec, hidden=args.hidden or defaults.hidden, seed=args.seed)
    config = TrainConfig(
        steps=args.steps or defaults.steps,
        lr=args.lr or defaults.lr,
        batch_size=args.batch_size or defaults.batch_size,
        seed=args.seed,
        sample_every_s=None,
    )
    print(f"{args.model} on {args.data}: {model.num_parameters():,} parameters, {describe(device)}")
    for event in Trainer(model, data, config, device).run():
        if event.metrics:
            scores = "  ".join(f"{name} {value:.4f}" for name, value in event.metrics.items())
            print(f"step {event.step:>6}  {event.steps_per_s:6.1f} steps/s  {scores}")
        if event.message:
            print(event.message)


if __name__ == "__main__":
    main()
