"""Training as a stream of events: the only training loop, driven alike by the UI, a CLI, tests and benchmarks.

    trainer = Trainer(model, data, TrainConfig(steps=500))
    for event in trainer.run():
        print(event.step, event.losses, event.scores)

``request_stop()`` ends a run at its next event and restores the weights to keep — best on validation, or the final
ones (``TrainConfig.keep``) — among those evaluated: on the busy clock's schedule (``eval_every_s``) the latest
evaluation is at most a few seconds of training old, so Stop answers at once and keeps weights that were evaluated
(the few steps since are dropped); the current weights are scored first only when nothing was evaluated yet, or on a
step schedule (``eval_every_steps``, for exact tests). The last event says which step was kept and by what score.
Closing the generator instead leaves the model as it is; ``run`` again continues where it stopped. A non-finite loss
stops the run and restores the last good weights.

Evaluation is cut into chunks of at most ``EVAL_CHUNK_VALUES`` numbers; between chunks the stream yields events with
no losses (``TrainEvent.losses == {}``), so whoever drives it never waits for a whole evaluation.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from dgm_core.data import Dataset
from dgm_core.learn.evaluation import Scores, mmd
from dgm_core.learn.packing import pack, unpack
from dgm_core.learn.seeding import EVAL_SEED, RandomStream
from dgm_core.learn.train_config import TrainConfig
from dgm_core.models.base import GenerativeModel

MMD_ITEMS = 500  # samples and validation items in the two-sample test at each evaluation …
MMD_VALUES = 128_000  # … as long as they hold at most this many numbers: all 500 for 2D points, 8×8 digits and
# 16×16 shapes; 163 for 28×28 MNIST, where an autoregressive sampler pays one network pass per pixel (MADE: 39 s for
# 500 digits on one core, an evaluation that held its worker and every run on it)
EVAL_SHARE, SAMPLE_SHARE = 19, 19  # evaluate after ≥ 19× its cost of training (≤ 1/20 of the time), sample ≤ 1/20
EARLY_EVAL_SHARE = 4  # while the step count doubles between evaluations: after ≥ 4× its cost (≤ 1/5 of the time)
EVAL_ITEMS = {"points2d": 5000, "image": 500}  # held-out items per split scored during training, by kind of data
TRACKED_ITEMS = 500  # test items for the extra bounds a model tracks (a VAE's IWAE, k = 64)
EVAL_CHUNK_VALUES = 8192  # numbers (items × dimensions) scored between two events


def mmd_items(dim: int, available: int) -> int:
    """Items on each side of an evaluation's two-sample test, for items of ``dim`` numbers with ``available``
    held-out ones (``MMD_ITEMS``, ``MMD_VALUES``)."""
    return min(MMD_ITEMS, available, MMD_VALUES // dim)


@dataclass
class TrainEvent:
    """What happened since the last event: one training step (``losses`` set), or a chunk of an evaluation
    (``losses`` empty); ``scores`` when an evaluation completed, ``done`` on the last event of a run."""

    step: int
    elapsed_s: float
    steps_per_s: float
    losses: dict[str, float]
    scores: Scores | None = None  # held-out scores, when an evaluation completed
    samples: Tensor | None = None  # fresh samples (CPU), when sampling ran
    message: str | None = None
    done: bool = False
    stopped: bool = False  # the run ended because ``request_stop`` was called


@dataclass(frozen=True)
class Snapshot:
    """Evaluated weights: the scores of their evaluation, and the weights themselves."""

    scores: Scores
    state: dict[str, Tensor] = field(repr=False)

    @property
    def step(self) -> int:
        return self.scores.step


class Trainer:
    def __init__(self, model: GenerativeModel, data: Dataset, config: TrainConfig, device: torch.device | None = None):
        config.check()
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device)
        self.data = data
        self.config = config
        items = config.max_eval_items or EVAL_ITEMS[data.spec.kind]
        self.train_x = data.train.to(self.device)
        self.val_x = data.val[:items].to(self.device)
        self.test_x = data.test[:items].to(self.device)
        self.train_y, self.val_y = _labels(model, data, self.device, items)  # None: unconditional
        self.optimizers = model.configure_optimizers(config.lr)
        self._budget: tuple[float, float] | None = None  # (training time at its start, seconds) of a timed run
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, self._lr_factor) for o in self.optimizers]
        self.step = 0
        self.elapsed_s = 0.0  # training time over all runs
        self.busy_s = 0.0  # time spent training, evaluating and sampling: the clock of the schedules, which stands
        # still while the run waits for its next slice among other runs
        self.history: list[Scores] = []  # one per evaluation
        self.best: Snapshot | None = None  # best on validation so far
        self.last: Snapshot | None = None  # the latest evaluation
        self._good_state: dict | None = None  # the last good weights, taken when ``run`` starts and at evaluations
        self._batches = RandomStream(config.seed, self.device)  # this trainer's own random stream
        self._stop_requested = False

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self, steps: int | None = None, max_seconds: float | None = None) -> Iterator[TrainEvent]:
        """Train ``steps`` more steps (default: the configured number), or until ``max_seconds`` more seconds of
        training (evaluation and sampling not counted) are spent, yielding an event after each step."""
        if steps is not None and steps < 1:
            raise ValueError("Train at least one step.")
        self._stop_requested = False  # now, not at the first event: a stop may be asked for before that
        return self._events(steps, max_seconds)

    def _events(self, steps: int | None, max_seconds: float | None) -> Iterator[TrainEvent]:
        config = self.config
        self._good_state = self._good_state or self._snapshot()
        target = self.step + (steps or config.steps)
        budget_end = math.inf if max_seconds is None else self.elapsed_s + max_seconds
        self._budget = None if max_seconds is None else (self.elapsed_s, max_seconds)
        last_eval = last_sample = -math.inf  # on the busy clock
        step_time = None  # moving average of one step's training time (evaluation excluded)
        eval_cost = sample_cost = 0.0  # the clock's schedules keep evaluation and sampling to ≤ 3/20 of the time
        while self.step < target and not self._stop_requested:
            step_start = time.perf_counter()
            losses = self._train_step()
            took = time.perf_counter() - step_start
            self.step += 1
            self.elapsed_s += took
            self.busy_s += took
            for scheduler in self.schedulers:
                scheduler.step()
            step_time = took if step_time is None else 0.95 * step_time + 0.05 * took
            if not all(math.isfinite(v) for v in losses.values()):
                self._restore(self._good_state)
                yield self._event(losses, 0.0, message=_divergence_message(self.step), done=True)
                return
            if self.elapsed_s >= budget_end:
                target = self.step
            rate = 1.0 / max(step_time, 1e-9)
            event = self._event(losses, rate)
            if self._eval_due(self.busy_s - last_eval, eval_cost) or self.step == target:
                yield event  # the step shows before its evaluation, which may take a slice or two of its own
                started = self.busy_s
                event = self._event({}, rate, scores=(yield from self._evaluation_events()))
                eval_cost, last_eval = self.busy_s - started, self.busy_s
            if config.sample_every_s is not None and self.busy_s - last_sample >= max(
                config.sample_every_s, SAMPLE_SHARE * sample_cost
            ):
                started = time.perf_counter()
                event.samples = self.samples(config.n_samples)
                sample_cost = time.perf_counter() - started
                self.busy_s += sample_cost
                last_sample = self.busy_s
            if self.step >= target:
                event.message, event.done = self.finish(), True
            yield event
        if not self._stop_requested:
            return
        if not self.stops_at_once:
            scores = yield from self._evaluation_events()  # nothing evaluated yet (or a step schedule): score now
            yield self._event({}, 0.0, scores=scores, message=self.finish(stopped=True), done=True, stopped=True)
        else:  # keep among the weights the clock's schedule evaluated: Stop answers at once
            yield self._event({}, 0.0, message=self.finish(stopped=True), done=True, stopped=True)

    def _lr_factor(self, step: int) -> float:
        """The learning rate as a fraction of ``lr`` after ``step`` steps: the config's schedule by steps, except that
        a cosine schedule of a run with a time budget follows that budget's training time, ½(1 + cos π t/T), as the
        benchmarks' loops do (``bench/bench_zuko.py``)."""
        if self._budget is None or self.config.lr_schedule != "cosine":
            return self.config.lr_factor(step)
        start, seconds = self._budget
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (self.elapsed_s - start) / seconds)))

    @property
    def stops_at_once(self) -> bool:
        """Whether a stop now keeps weights evaluated already: yes, unless the current weights are unscored and
        nothing was evaluated yet or evaluations follow a step schedule (then a stop scores them first)."""
        unscored = not (self.history and self.history[-1].step == self.step)
        return not (unscored and (not self.history or self.config.eval_every_s is None))

    def request_stop(self) -> None:
        """End the running ``run`` at its next event, keeping evaluated weights (``finish``; see the module)."""
        self._stop_requested = True

    def _train_step(self) -> dict[str, float]:
        """One optimisation step on a random batch, drawn from this trainer's own random stream so that runs are
        reproducible whatever else (evaluation, another session's trainer) uses the global generator in between."""
        with self._batches:
            index = torch.randint(len(self.train_x), (self.config.batch_size,), device=self.device)
            if not self.model.training:  # train() visits every submodule: ~0.1 ms a step for a flow
                self.model.train()
            if self.train_y is None:
                losses = self.model.train_step(self.train_x[index], self.optimizers)
            else:
                losses = self.model.train_step(self.train_x[index], self.optimizers, labels=self.train_y[index])
        return {name: value.item() for name, value in losses.items()}

    def _eval_due(self, since_s: float, cost_s: float) -> bool:
        """Every ``eval_every_steps`` steps; or by the busy clock, at most a twentieth of the time (the Train tab's step
        rate stays near a bare loop's); and, so that the weights kept are never far behind, whenever the step count
        has doubled since the last evaluation, provided that at least four evaluations' cost has passed since."""
        if self.config.eval_every_steps is not None:
            return self.step % self.config.eval_every_steps == 0
        if self.config.eval_every_s is None:
            return False
        last_step = self.history[-1].step if self.history else 0
        doubled = self.step >= 2 * last_step and since_s >= EARLY_EVAL_SHARE * cost_s
        return doubled or since_s >= max(self.config.eval_every_s, EVAL_SHARE * cost_s)

    def _event(self, losses: dict[str, float], steps_per_s: float, **fields) -> TrainEvent:
        return TrainEvent(self.step, self.elapsed_s, steps_per_s, losses, **fields)

    # --- evaluation and model selection ---------------------------------------------------------------------
    def evaluate(self) -> Scores:
        """Score the current weights at once (see ``_evaluation``); the stream uses ``_evaluation_events`` instead."""
        return _result(self._evaluation())

    def _evaluation_events(self) -> Iterator[TrainEvent]:
        """The evaluation as events without losses, one per chunk; returns its scores. Each chunk's time goes on
        the busy clock."""
        evaluation = self._evaluation()
        while True:
            started = time.perf_counter()
            try:
                next(evaluation)
            except StopIteration as finished:
                self.busy_s += time.perf_counter() - started
                return finished.value
            self.busy_s += time.perf_counter() - started
            yield self._event({}, 0.0)

    @torch.no_grad()
    def _evaluation(self, record: bool = True) -> Iterator[None]:
        """Held-out scores (``Scores``), yielding between chunks: NLL (or bound) in nats per item on validation and
        test, and on as many training items as validation items (the gap that overfitting opens); the model's other
        tracked bounds on test; MMD² on validation. Draws come from a stream seeded with ``EVAL_SEED``, so the same
        weights score the same.

        Remembers the weights that score best on validation (NLL, or MMD² for models without a likelihood), and the
        latest ones.
        """
        self.model.eval()
        spec = self.data.spec
        stream = RandomStream(EVAL_SEED, self.device)
        chunk = max(1, EVAL_CHUNK_VALUES // spec.dim)
        nll: dict[str, float] = {}
        bounds: dict[str, float] = {}
        if self.model.capabilities.likelihood != "none":
            train_x = self.train_x[: len(self.val_x)]
            for split, x in (("train", train_x), ("val", self.val_x), ("test", self.test_x)):
                total = 0.0
                for part in x.split(chunk):
                    with stream:
                        total += self.model.log_prob(part).double().sum().item()
                    yield
                nll[split] = -total / len(x)
            x = self.test_x[:TRACKED_ITEMS]
            for part in x.split(chunk):
                with stream:
                    for name, bound in self.model.tracked_bounds(part).items():
                        bounds[name] = bounds.get(name, 0.0) - bound.double().sum().item() / len(x)
                yield
        n = mmd_items(spec.dim, len(self.val_x))
        with stream:
            # a conditional model draws for the validation items' own labels, so both sides have the same class mix
            samples = self.model.sample(n) if self.val_y is None else self.model.sample(n, labels=self.val_y[:n])
            val_mmd = mmd(samples.float(), self.val_x[:n].float())
        scores = Scores(self.step, self.elapsed_s, spec.dim, val_mmd, nll, bounds)
        if record:
            self._record(scores)
        return scores

    def _score(self) -> Scores:
        """The current weights' scores, computed at once and not recorded."""
        return _result(self._evaluation(record=False))

    def _record(self, scores: Scores) -> None:
        if math.isfinite(scores.score):
            self._good_state = self._snapshot()
            self.last = Snapshot(scores, self._good_state["model"])
            if self.best is None or scores.score < self.best.scores.score:
                self.best = self.last
        self.history.append(scores)

    @torch.no_grad()
    def samples(self, n: int, label: int | None = None) -> Tensor:
        """n samples on the CPU (of class ``label``, for a conditional model)."""
        self.model.eval()
        with torch.random.fork_rng(devices=[] if self.device.type != "cuda" else [self.device]):
            if label is None:
                return self.model.sample(n).cpu()
            if not self.model.capabilities.conditional:
                raise ValueError("Only a conditional model draws samples of a chosen class.")
            return self.model.sample(n, torch.full((n,), label, device=self.device)).cpu()

    @property
    def kept(self) -> Snapshot | None:
        """The evaluated weights a run ends with: best on validation, or the latest (``TrainConfig.keep``)."""
        return self.best if self.config.keep == "best" else self.last

    def finish(self, stopped: bool = False) -> str:
        """Restore the weights to keep and say which step they come from and how they scored (``summary``)."""
        if self.kept is not None:
            self.model.load_state_dict(self.kept.state)
        return self.summary(stopped)

    def summary(self, stopped: bool = False) -> str:
        """Where training ended and the kept weights' scores, in words: "Stopped at step 812. Kept the weights of
        step 800 (best on validation): val NLL …"."""
        kept = self.kept
        head = f"Stopped at step {self.step}." if stopped else ""
        if kept is None:
            return head or f"Finished at step {self.step}."
        scores = kept.scores
        why = "best on validation" if self.config.keep == "best" else "the final weights"
        if scores.nll:
            test = scores.nll["test"]
            score = f"val NLL {scores.nll['val']:.3f} nats; test NLL {test:.3f} nats ({scores.bits(test):.3f} bits/dim)"
        else:
            score = f"validation MMD² {scores.val_mmd:.2e}"
        return " ".join(part for part in (head, f"Kept the weights of step {kept.step} ({why}): {score}.") if part)

    # --- the whole state, to save a run and continue it exactly ---------------------------------------------------
    def state(self) -> tuple[dict[str, Tensor], dict]:
        """Everything that continuing this run depends on, as named tensors (current, best and latest evaluated
        weights; optimizer moments; the batch stream's generator state) and a JSON-friendly rest."""
        tensors = {f"model.{name}": value for name, value in self.model.state_dict().items()}
        for label, snapshot in (("last", self.last), ("best", self.best)):
            if snapshot is not None and not (label == "best" and snapshot is self.last):
                tensors |= {f"{label}.{name}": value for name, value in snapshot.state.items()}
        optimizers = [pack(o.state_dict(), f"optimizer.{i}", tensors) for i, o in enumerate(self.optimizers)]
        tensors["rng.batches"] = self._batches.state[0]
        meta = {
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "history": [scores.to_json() for scores in self.history],
            "best_step": None if self.best is None else self.best.step,
            "last_step": None if self.last is None else self.last.step,
            "optimizers": optimizers,
            "schedulers": [{"last_epoch": s.last_epoch} for s in self.schedulers],
        }
        return tensors, meta

    def restore(self, tensors: dict[str, Tensor], meta: dict) -> None:
        """Undo ``state``: the model, history, best and latest weights, optimizers, schedule and batch stream come
        back as they were, so training continues exactly. A slim state (kept weights only: no ``model.*``, no
        optimizers) continues from the kept weights with fresh optimizers. ValueError (or KeyError) when the two
        do not fit."""

        def weights(label: str) -> dict[str, Tensor]:
            return {name[len(label) + 1 :]: value for name, value in tensors.items() if name.startswith(label + ".")}

        self.model.load_state_dict(weights("model") or weights("last"), strict=True)
        self.step, self.elapsed_s = int(meta["step"]), float(meta["elapsed_s"])
        self.history = [Scores.from_json(row) for row in meta["history"]]
        by_step = {scores.step: scores for scores in self.history}
        self.last = None if meta["last_step"] is None else Snapshot(by_step[meta["last_step"]], weights("last"))
        if meta["best_step"] is None:
            self.best = None
        elif meta["best_step"] == meta["last_step"]:
            self.best = self.last
        else:
            self.best = Snapshot(by_step[meta["best_step"]], weights("best"))
        if meta["optimizers"]:
            for optimizer, packed in zip(self.optimizers, meta["optimizers"], strict=True):
                optimizer.load_state_dict(unpack(packed, tensors))
        for scheduler, saved in zip(self.schedulers, meta["schedulers"] or [{}] * len(self.schedulers), strict=True):
            scheduler.last_epoch = int(saved.get("last_epoch", self.step))
            for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
        if "rng.batches" in tensors:
            stream = tensors["rng.batches"]
            if stream.dtype != torch.uint8 or stream.shape != self._batches.state[0].shape:
                raise ValueError("the batch stream's random state has the wrong size")
            self._batches.state = (stream.clone(), None)
        self._good_state = None

    def rescore(self, known: Mapping[int, Scores] | None = None) -> dict[int, Scores]:
        """Score the best and latest evaluated weights again, here, and put those scores in place of the ones
        recorded (in the snapshots and the history); the current weights are left as they were. ``known``: scores
        this process computed before for the same weights, by step (read-only shipped files are scored once).
        Returns the scores put in place, by step."""
        current = {name: value.clone() for name, value in self.model.state_dict().items()}
        step = self.step
        placed = {}
        for snapshot in {id(s): s for s in (self.best, self.last) if s is not None}.values():
            scores = (known or {}).get(snapshot.step)
            if scores is None:
                self.model.load_state_dict(snapshot.state)
                self.step = snapshot.step
                scores = replace(self._score(), elapsed_s=snapshot.scores.elapsed_s)
            fresh = placed[scores.step] = Snapshot(scores, snapshot.state)
            self.history = [fresh.scores if row.step == scores.step else row for row in self.history]
            self.best = fresh if self.best is snapshot else self.best
            self.last = fresh if self.last is snapshot else self.last
        self.model.load_state_dict(current)
        self.step = step
        return {key: snapshot.scores for key, snapshot in placed.items()}

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


def _result(generator: Iterator) -> object:
    """Run a generator to its end and return what it returns."""
    while True:
        try:
            next(generator)
        except StopIteration as finished:
            return finished.value


def _labels(
    model: GenerativeModel, data: Dataset, device: torch.device, max_eval_items: int
) -> tuple[Tensor | None, Tensor | None]:
    """Training and validation class labels for a conditional model; (None, None) for any other."""
    if not model.capabilities.conditional:
        return None, None
    if "train" not in data.labels:
        raise ValueError(f"{type(model).__name__} is conditional: it needs class labels; {data.spec.name} has none.")
    return data.labels["train"].to(device), data.labels["val"][:max_eval_items].to(device)


def _divergence_message(step: int) -> str:
    return (
        f"Training diverged at step {step} (the loss became NaN or infinite). "
        "The last good weights were restored; try a smaller learning rate."
    )
