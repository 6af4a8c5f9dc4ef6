"""MNIST (5,000 digits, 28×28) on the Train tab's path: test NLL per family, and whether samples are recognisable.

    python -m bench.bench_mnist                                  # the default table below, 60 s per run, one thread
    python -m bench.bench_mnist --data mnist-binary --models PixelCNN VAE --seconds 20

Each run is ``Run`` with the registry's defaults for 28×28 and a time budget (cosine schedules follow the clock),
weights best on validation; those weights are scored again on the whole test split (1,000 digits): nats per image
and bits/dim, beside independent pixels (the baseline every model must beat). Published figures train on 60,000
digits, so these land higher: on binarised MNIST a VAE's bound is near 85–90 nats and PixelCNN's NLL near 80.
The figures of one run are in the README (section "MNIST, offline").

Recognisable samples: a small CNN trained here on the data set's own training split (best of its epochs on the
validation split) reads 500 samples of each model; for an unconditional model the share it assigns to some class
with probability ≥ 0.9, for a conditional one the share read as the class asked for (50 of each). The same figures
for real test digits come first: the most any model can be expected to reach with this reader. For a VAE the last
column also reads its decoder's means E[x | z] (z from its prior), the pictures papers usually show, where its
samples add pixel noise.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from dgm_core.data import Dataset, load_dataset
from dgm_core.learn.evaluation import baseline_nll, bits_per_dim, mean_log_prob
from dgm_core.models.registry import supports
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec

CONFIDENT = 0.9
N_SAMPLES = 500
DEFAULT_MODELS = {
    "mnist-binary": ["PixelCNN", "NADE", "MADE", "FVSBN", "VAE"],
    "mnist": ["VAE", "CVAE", "cMADE", "PixelCNN", "RealNVP", "VDM"],
}


def reader(data: Dataset, epochs: int = 12, seed: int = 0) -> nn.Module:
    """p(y | x): two convolutions and a linear layer, trained with Adam on the training split (pixels in [0, 1]);
    the epoch best on the validation split is kept."""
    torch.manual_seed(seed)
    classifier = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(classifier.parameters(), 1e-3, weight_decay=1e-4)
    x, y = _scaled(data.train, data), data.labels["train"]
    best, best_state = -1.0, None
    for _ in range(epochs):
        classifier.train()
        for batch in torch.randperm(len(x)).split(64):
            loss = nn.functional.cross_entropy(classifier(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = float((_probabilities(classifier, data.val, data).argmax(1) == data.labels["val"]).float().mean())
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in classifier.state_dict().items()}
    classifier.load_state_dict(best_state)
    return classifier.eval()


def _scaled(x: torch.Tensor, data: Dataset) -> torch.Tensor:
    return x.float() / (data.spec.levels - 1)


@torch.no_grad()
def _probabilities(classifier: nn.Module, x: torch.Tensor, data: Dataset) -> torch.Tensor:
    classifier.eval()
    return classifier(_scaled(x, data)).softmax(1)


def recognised(classifier: nn.Module, x: torch.Tensor, data: Dataset, asked: torch.Tensor | None) -> float:
    """Share of ``x`` read as some class with confidence ≥ 0.9, or (``asked``) as the class asked for."""
    p = _probabilities(classifier, x, data)
    if asked is None:
        return float((p.max(1).values >= CONFIDENT).float().mean())
    return float((p.argmax(1) == asked).float().mean())


def train(model: str, dataset: str, seconds: float, seed: int = 0) -> Run:
    """A run with the registry's defaults, trained for ``seconds`` of training time the way the app trains it."""
    run = Run(RunSpec.defaults(model, dataset, steps=1_000_000, seed=seed), sample_every_s=None)
    run.start(max_seconds=seconds)
    while run.active:
        run.advance(1.0)
    run.model.load_state_dict(run.kept.state)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--models", nargs="+", default=None, help="default: DEFAULT_MODELS of each data set")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="a run of each model per seed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.seconds:.0f} s of training per run")
    for dataset in args.data:
        data = load_dataset(dataset)
        start = time.perf_counter()
        classifier = reader(data)
        test_y = data.labels["test"]
        accuracy = float((_probabilities(classifier, data.test, data).argmax(1) == test_y).float().mean())
        real = recognised(classifier, data.test, data, None)
        base_name, base = baseline_nll(data)
        print(
            f"\n{dataset}: reader's test accuracy {accuracy:.1%} ({time.perf_counter() - start:.1f} s to fit); "
            f"real test digits confident ≥ {CONFIDENT}: {real:.1%}; "
            f"{base_name}: {base:.1f} nats, {bits_per_dim(base, data.spec):.3f} bits/dim"
        )
        header = f"{'model':<10}{'seed':>4} {'kind':<7}{'steps':>7}{'test nats':>11}{'bits/dim':>10}{'vs baseline':>13}"
        print(f"{header}{'recognised':>12}")
        models = [m for m in args.models or DEFAULT_MODELS[dataset] if supports(m, data)]
        for model, seed in [(model, seed) for model in models for seed in args.seeds]:
            run = train(model, dataset, args.seconds, seed)
            kind = run.model.capabilities.likelihood
            means = None
            with run.inspecting(seed=0) as fitted:
                nll = -mean_log_prob(fitted, data.test) if kind != "none" else None
                if fitted.capabilities.conditional:
                    asked = torch.arange(N_SAMPLES) % data.spec.n_classes
                    drawn = fitted.sample(N_SAMPLES, labels=asked)
                else:
                    asked, drawn = None, fitted.sample(N_SAMPLES)
                    if fitted.capabilities.posterior:  # a VAE: its decoder's means as well as its samples
                        means = fitted.decode(fitted.draw_latents(N_SAMPLES).to(fitted.device))
            share = recognised(classifier, drawn, data, asked)
            what = "as asked" if asked is not None else f"p ≥ {CONFIDENT}"
            if means is not None:
                what += f" (decoder means {recognised(classifier, means, data, None):.1%})"
            row = f"{model:<10}{seed:>4} {kind:<7}{run.step:>7}"
            row += f"{nll:>11.1f}{bits_per_dim(nll, data.spec):>10.4f}{nll - base:>+13.1f}" if nll else " " * 34
            print(f"{row}{share:>7.1%} {what}", flush=True)


if __name__ == "__main__":
    main()
