"""Our flows against zuko's of the same size, on the same data, batches, optimiser and wall-clock budget.

    pip install -r requirements-bench.txt
    python -m bench.bench_zuko --data moons rings --seconds 10 60
    python -m bench.bench_zuko --models NSF --seconds 60           # all eight 2D sets

For each 2D set and each of RealNVP, MAF and NSF, our registered model (its points2d defaults) and zuko's twin
(``zuko.flows.RealNVP`` / ``MAF`` / ``NSF`` with as many transforms, the same hidden widths and depth, the same bins)
train in ONE loop that alternates single steps between them, so both see the same machine load at the same moments.
Each side: the same seeded batches, Adam at the same learning rate and schedule, ``-log p(x)`` averaged over the batch,
its own clock counting only its training steps. Every second of its training time it scores the 10,000 validation
points and keeps the best weights; at the end those weights score the 50,000 test points. zuko sees the data
standardised with the training split's mean and std (as our flows do inside) and its density is mapped back to
data units, so both NLLs are nats per point of the same data.

Columns: entropy (the floor), each side's test NLL, ours − zuko (negative: ours is better), our gap to the entropy,
steps/s of each and their ratio, parameters of each.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dgm_core.data import load_dataset, toy2d
from dgm_core.models.flows import FlowModel, Reverse
from dgm_core.models.registry import build_model, defaults_for

EVAL_EVERY_S = 1.0  # validation scoring, by each side's own training time


def import_zuko():
    try:
        import zuko
    except ImportError as error:
        raise SystemExit(
            "bench_zuko compares against zuko, which the playground itself does not need.\n"
            "Install it with:  pip install -r requirements-bench.txt"
        ) from error
    return zuko


def zuko_twin(name: str, ours: FlowModel) -> nn.Module:
    """zuko's flow of the same kind and size as ``ours``: transforms, hidden widths and depth, spline bins."""
    zuko = import_zuko()
    layers = [layer for layer in ours.layers if not isinstance(layer, Reverse)]
    linears = [m for m in layers[0].net.modules() if isinstance(m, nn.Linear)]
    size = {"transforms": len(layers), "hidden_features": [m.out_features for m in linears[:-1]]}
    if name == "RealNVP":
        return zuko.flows.RealNVP(ours.spec.dim, **size)
    if name == "MAF":
        return zuko.flows.MAF(ours.spec.dim, **size)
    if name == "NSF":
        free = len(layers[0].free)
        bins = (linears[-1].out_features // free + 1) // 3
        return zuko.flows.NSF(ours.spec.dim, bins=bins, **size)
    raise ValueError(f"No zuko twin for {name}")


@dataclass
class Contestant:
    """One side of a race: a model, how it scores data (nats per point), its optimiser, batches and clock."""

    label: str
    model: nn.Module
    log_prob: Callable[[Tensor], Tensor]
    optimizer: torch.optim.Optimizer
    batches: torch.Generator
    train_s: float = 0.0
    steps: int = 0
    next_eval_s: float = EVAL_EVERY_S
    best_val: float = math.inf
    best_state: dict = field(default_factory=dict, repr=False)

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def make_contestant(label: str, model: nn.Module, log_prob, lr: float, seed: int) -> Contestant:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return Contestant(label, model, log_prob, optimizer, torch.Generator().manual_seed(seed))


def train_step(c: Contestant, train: Tensor, batch_size: int, lr: float, budget_s: float, schedule: str) -> None:
    start = time.perf_counter()
    fraction = min(c.train_s / budget_s, 1.0)
    factor = 0.5 * (1 + math.cos(math.pi * fraction)) if schedule == "cosine" else 1.0
    for group in c.optimizer.param_groups:
        group["lr"] = lr * factor
    batch = train[torch.randint(len(train), (batch_size,), generator=c.batches)]
    loss = -c.log_prob(batch).mean()
    c.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    c.optimizer.step()
    c.train_s += time.perf_counter() - start
    c.steps += 1


@torch.no_grad()
def nll(c: Contestant, x: Tensor) -> float:
    return -torch.cat([c.log_prob(chunk) for chunk in x.split(5000)]).double().mean().item()


def race(contestants: list[Contestant], data, seconds: float, batch_size: int, lr: float, schedule: str) -> None:
    """Alternate single steps until every side has trained ``seconds``; then score best-on-validation weights."""
    while any(c.train_s < seconds for c in contestants):
        for c in contestants:
            if c.train_s >= seconds:
                continue
            train_step(c, data.train, batch_size, lr, seconds, schedule)
            if c.train_s >= c.next_eval_s or c.train_s >= seconds:
                c.next_eval_s += EVAL_EVERY_S
                val = nll(c, data.val)
                if val < c.best_val:
                    c.best_val, c.best_state = val, copy.deepcopy(c.model.state_dict())
    for c in contestants:
        c.model.load_state_dict(c.best_state)


def contestants_for(name: str, data, lr: float, seed: int) -> list[Contestant]:
    ours = build_model(name, data.spec, seed=seed)
    torch.manual_seed(seed)
    theirs = zuko_twin(name, ours)
    mean, std = torch.tensor(data.spec.mean), torch.tensor(data.spec.std)

    def zuko_log_prob(x: Tensor) -> Tensor:
        return theirs().log_prob((x - mean) / std) - std.log().sum()

    return [
        make_contestant(f"ours {name}", ours, ours.log_prob, lr, seed),
        make_contestant(f"zuko {name}", theirs, zuko_log_prob, lr, seed),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=list(toy2d.ENTROPY_NATS))
    parser.add_argument("--models", nargs="+", default=["RealNVP", "MAF", "NSF"], choices=["RealNVP", "MAF", "NSF"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[10.0], help="one table per training budget")
    parser.add_argument("--schedule", choices=["cosine", "constant"], default="cosine", help="the same for both")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    zuko = import_zuko()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, zuko {zuko.__version__}, {args.threads} thread(s), {args.schedule} schedule")
    header = f"{'data':<13}{'model':<9}{'entropy':>8}{'ours':>8}{'zuko':>8}{'diff':>8}{'gap':>7}"
    header += f"{'steps/s':>9}{'zuko':>7}{'ratio':>7}{'params':>8}{'zuko':>8}"
    for seconds in args.seconds:
        test_points = toy2d.SPLIT_SIZES["test"]
        print(f"\n{seconds:.0f} s of training each; test NLL in nats per point ({test_points:,} test points)")
        print(header)
        for data_name in args.data:
            data = load_dataset(data_name)
            for name in args.models:
                defaults = defaults_for(name, data.spec)
                ours, theirs = contestants_for(name, data, defaults.lr, args.seed)
                race([ours, theirs], data, seconds, defaults.batch_size, defaults.lr, args.schedule)
                ours_nll, zuko_nll = nll(ours, data.test), nll(theirs, data.test)
                rate, zuko_rate = ours.steps / ours.train_s, theirs.steps / theirs.train_s
                entropy = data.spec.entropy_nats
                row = f"{data_name:<13}{name:<9}{entropy:>8.3f}{ours_nll:>8.3f}{zuko_nll:>8.3f}"
                row += f"{ours_nll - zuko_nll:>+8.3f}{ours_nll - entropy:>7.3f}{rate:>9.1f}{zuko_rate:>7.1f}"
                row += f"{rate / zuko_rate:>7.2f}{ours.params():>8,}{theirs.params():>8,}"
                print(row, flush=True)


if __name__ == "__main__":
    main()
