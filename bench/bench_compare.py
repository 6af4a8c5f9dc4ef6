"""The Compare tab's comparison from the command line: several families, one data set, one budget, one table.

    python -m bench.bench_compare [--data moons digits] [--models MADE RealNVP VAE GAN] [--seconds 20]

Runs exactly what the tab runs (``serve.comparison.Comparison``: its models side by side, a slice each in turn), in one
thread, and prints its table as Markdown. ``bench_compare_live`` times the tab's live path through the scheduler.
"""

from __future__ import annotations

import argparse

import torch

from app.tabs.compare_table import COLUMNS, KERNEL_NOTE, rows
from dgm_core.serve.comparison import Comparison

FOUR_FAMILIES = ["MADE", "RealNVP", "VAE", "GAN"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["moons", "digits"])
    parser.add_argument("--models", nargs="+", default=FOUR_FAMILIES)
    parser.add_argument("--seconds", type=float, default=20.0, help="training seconds per model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for dataset in args.data:
        comparison = Comparison(dataset, args.models, "seconds", args.seconds, torch.device("cpu"))
        while comparison.active:
            comparison.advance(1.0)
        print(f"\n### {dataset}: {args.seconds:g} s of training per model, side by side on one thread\n")
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for row in rows(comparison):
            print("| " + " | ".join(str(value) for value in row) + " |")
    print(f"\n{KERNEL_NOTE}")


if __name__ == "__main__":
    main()
