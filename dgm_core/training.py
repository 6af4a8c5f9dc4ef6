"""Training as a stream of events: the only training loop, driven alike by the UI, a CLI, tests and benchmarks.

    trainer = Trainer(model, data, TrainConfig(steps=500))
    for event in trainer.run():
        print(event.step, event.losses, event.metrics)

Stopping early (closing the generator) keeps the model; ``run`` again continues where it stopped. Weights that score
best on the validation split are remembered and restored when a run ends; a non-finite loss stops the run and restores
the last good weights.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from dgm_core.data import Dataset
from dgm_core.evaluation import bits_per_dim, mean_log_prob, mmd
from dgm_core.models.base import GenerativeModel

MMD_ITEMS = 500  # samples and validation items in the two-sample test at each evaluation
EVAL_SEED = 1234  # evaluation draws (dequantization noise, VAE samples) are fixed so scores compare across steps


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    batch_size: int = 256
    seed: int = 0
    eval_every_s: float | None = 1.0  # evaluate on validation and test by wall clock...
    eval_every_steps: int | None = None  # ...or every so many steps (deterministic, for tests)
    sample_every_s: float | None = 0.3  # fresh samples for display
    n_samples: int = 1000
    max_eval_items: int = 5000  # evaluate on at most this many validation / test items
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: lr · ½(1 + cos π t), t = step / steps, restarting

    def check(self) -> None:
        """Raise ValueError with a readable message for settings that cannot train."""
        if not 1 <= self.steps <= 1_000_000:
            raise ValueError("Steps must be between 1 and 1,000,000.")
        if not (0 < self.lr <= 1.0) or not math.isfinite(self.lr):
            raise ValueError("The learning rate must be a number in (0, 1]; try 1e-3.")
        if not 2 <= self.batch_size <= 65_536:
            raise ValueError("The batch size must be between 2 and 65,536.")
        if self.eval_every_steps is not None and self.eval_every_steps < 1:
            raise ValueError("Evaluate every 1 or more steps (or set eval_every_steps to None).")
        if self.n_samples < 1 or self.max_eval_items < 2:
            raise ValueError("Draw at least 1 sample and evaluate on at least 2 items.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError("The learning-rate schedule must be 'constant' or 'cosine'.")

    def lr_factor(self, step: int) -> float:
        """The learning rate after ``step`` steps as a fraction of ``lr``: 1 throughout, or a cosine from 1 down to 0
        over ``steps`` steps that restarts when training continues past them (Loshchilov & Hutter, 2017)."""
        if self.lr_schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step % self.steps) / self.steps))


@dataclass
class TrainEvent:
    step: int
    elapsed_s: float
    steps_per_s: float
    losses: dict[str, float]
    metrics: dict[str, float] | None = None  # val/test NLL (nats, bits/dim) and MMD, when an evaluation ran
    samples: Tensor | None = None  # fresh samples (CPU), when sampling ran
    message: str | None = None
    done: bool = False


@dataclass
class BestRecord:
    step: int
    score: float
    metrics: dict[str, float]
    state: dict[str, Tensor] = field(repr=False)


class Trainer:
    def __init__(self, model: GenerativeModel, data: Dataset, config: TrainConfig, device: torch.device | None = None):
        config.check()
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device)
        self.data = data
        self.config = config
        self.train_x = data.train.to(self.device)
        self.val_x = data.val[: config.max_eval_items].to(self.device)
        self.test_x = data.test[: config.max_eval_items].to(self.device)
        self.train_y, self.val_y = _labels(model, data, self.device, config.max_eval_items)  # None: unconditional
        self.optimizers = model.configure_optimizers(config.lr)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, config.lr_factor) for o in self.optimizers]
        self.step = 0
        self.elapsed_s = 0.0  # training time over all runs
        self.history: list[dict[str, float]] = []  # one row per evaluation: step, elapsed_s and metrics
        self.best: BestRecord | None = None
        self._good_state = self._snapshot()
        self._rng_state = _seeded_rng_state(config.seed, self.device)  # this trainer's own random stream

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self, steps: int | None = None, max_seconds: float | None = None) -> Iterator[TrainEvent]:
        """Train ``steps`` more steps (default: the configured number), yielding an event after each one."""
        config = self.config
        if steps is not None and steps < 1:
            raise ValueError("Train at least one step.")
        target = self.step + (steps or config.steps)
        start, last_eval, last_sample = time.perf_counter(), -math.inf, -math.inf
        step_time = None  # moving average of one step's training time (evaluation excluded)
        eval_cost = sample_cost = 0.0  # wall-clock schedules keep evaluation and sampling to ≤ 1/5 of the time
        while self.step < target:
            step_start = time.perf_counter()
            losses = self._train_step()
            now = time.perf_counter()
            self.step += 1
            for scheduler in self.schedulers:
                scheduler.step()
            self.elapsed_s += now - step_start
            step_time = now - step_start if step_time is None else 0.95 * step_time + 0.05 * (now - step_start)
            if not all(math.isfinite(v) for v in losses.values()):
                self._restore(self._good_state)
                yield self._event(losses, 0.0, message=_divergence_message(self.step), done=True)
                return
            if max_seconds is not None and now - start >= max_seconds:
                target = self.step
            event = self._event(losses, 1.0 / max(step_time, 1e-9))
            if self._eval_due(now - last_eval, eval_cost) or self.step == target:
                event.metrics = self.evaluate()
                last_eval = time.perf_counter()
                eval_cost = last_eval - now
            if config.sample_every_s is not None and now - last_sample >= max(config.sample_every_s, 4 * sample_cost):
                event.samples = self.samples(config.n_samples)
                last_sample = time.perf_counter()
                sample_cost = last_sample - max(now, last_eval)
            if self.step >= target:
                event.message, event.done = self.finish(), True
            yield event

    def _train_step(self) -> dict[str, float]:
        """One optimisation step on a random batch, drawn from this trainer's own random stream so that runs are
        reproducible whatever else (evaluation, another session's trainer) uses the global generator in between."""
        _set_rng_state(self._rng_state, self.device)
        index = torch.randint(len(self.train_x), (self.config.batch_size,), device=self.device)
        self.model.train()
        if self.train_y is None:
            losses = self.model.train_step(self.train_x[index], self.optimizers)
        else:
            losses = self.model.train_step(self.train_x[index], self.optimizers, labels=self.train_y[index])
        self._rng_state = _get_rng_state(self.device)
        return {name: value.item() for name, value in losses.items()}

    def _eval_due(self, since_s: float, cost_s: float) -> bool:
        if self.config.eval_every_steps is not None:
            return self.step % self.config.eval_every_steps == 0
        return self.config.eval_every_s is not None and since_s >= max(self.config.eval_every_s, 4 * cost_s)

    def _event(self, losses: dict[str, float], steps_per_s: float, **fields) -> TrainEvent:
        return TrainEvent(self.step, self.elapsed_s, steps_per_s, losses, **fields)

    # --- evaluation and model selection ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out scores: NLL (or bound) in nats per item and bits/dim on validation and test, and MMD on validation.
        The same NLL on as many training items as there are validation items shows the gap that overfitting opens.

        Remembers the weights that score best on validation (NLL, or MMD for models without a likelihood).
        """
        self.model.eval()
        spec = self.data.spec
        with torch.random.fork_rng(devices=[] if self.device.type != "cuda" else [self.device]):
            torch.manual_seed(EVAL_SEED)
            metrics: dict[str, float] = {}
            if self.model.capabilities.likelihood != "none":
                train_x = self.train_x[: len(self.val_x)]
                for split, x in (("train", train_x), ("val", self.val_x), ("test", self.test_x)):
                    nll = -mean_log_prob(self.model, x)
                    metrics[f"{split}_nll"] = nll
                    metrics[f"{split}_bpd"] = bits_per_dim(nll, spec)
                for name, nll in self._tracked_nlls(self.test_x).items():
                    metrics[f"test_nll {name}"], metrics[f"test_bpd {name}"] = nll, bits_per_dim(nll, spec)
            n = min(MMD_ITEMS, len(self.val_x))
            # a conditional model draws for the validation items' own labels, so both sides have the same class mix
            samples = self.model.sample(n) if self.val_y is None else self.model.sample(n, labels=self.val_y[:n])
            metrics["val_mmd"] = mmd(samples.float(), self.val_x[:n].float())
        score = metrics.get("val_nll", metrics["val_mmd"])
        if math.isfinite(score):
            self._good_state = self._snapshot()
            if self.best is None or score < self.best.score:
                self.best = BestRecord(self.step, score, metrics, self._good_state["model"])
        self.history.append({"step": self.step, "elapsed_s": self.elapsed_s, **metrics})
        return metrics

    def _tracked_nlls(self, x: Tensor, batch_size: int = 1024) -> dict[str, float]:
        """Mean negative of each of the model's ``tracked_bounds`` on x, in nats per item."""
        totals: dict[str, float] = {}
        for chunk in x.split(batch_size):
            for name, bound in self.model.tracked_bounds(chunk).items():
                totals[name] = totals.get(name, 0.0) - bound.double().sum().item()
        return {name: total / len(x) for name, total in totals.items()}

    @torch.no_grad()
    def samples(self, n: int) -> Tensor:
        self.model.eval()
        with torch.random.fork_rng(devices=[] if self.device.type != "cuda" else [self.device]):
            return self.model.sample(n).cpu()

    def finish(self) -> str:
        """Restore the weights best on validation and say what was kept."""
        if self.best is None:
            return f"Stopped at step {self.step}."
        self.model.load_state_dict(self.best.state)
        test = self.best.metrics.get("test_nll")
        score = (
            f"test NLL {test:.3f} nats ({self.best.metrics['test_bpd']:.3f} bits/dim)"
            if test is not None
            else (f"validation MMD {self.best.metrics['val_mmd']:.4f}")
        )
        return f"Kept the weights of step {self.best.step} (best on validation): {score}."

    # --- snapshots for the divergence guard -----------------------------------------------------------------------
    def _snapshot(self) -> dict:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizers": [copy.deepcopy(o.state_dict()) for o in self.optimizers],
        }

    def _restore(self, snapshot: dict) -> None:
        self.model.load_state_dict(snapshot["model"])
        for optimizer, state in zip(self.optimizers, snapshot["optimizers"]):
            optimizer.load_state_dict(state)


def _labels(
    model: GenerativeModel, data: Dataset, device: torch.device, max_eval_items: int
) -> tuple[Tensor | None, Tensor | None]:
    """Training and validation class labels for a conditional model; (None, None) for any other."""
    if not model.capabilities.conditional:
        return None, None
    if "train" not in data.labels:
        raise ValueError(f"{type(model).__name__} is conditional: it needs class labels; {data.spec.name} has none.")
    return data.labels["train"].to(device), data.labels["val"][:max_eval_items].to(device)


def _seeded_rng_state(seed: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _get_rng_state(device)


def _get_rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple[Tensor, Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _divergence_message(step: int) -> str:
    return (
        f"Training diverged at step {step} (the loss became NaN or infinite). "
        "The last good weights were restored; try a smaller learning rate."
    )
