"""The Trainer: one loop that streams events, can be stopped and resumed, guards against divergence and keeps the
weights that score best on validation.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import Scores
from dgm_core.learn.train_config import TrainConfig
from dgm_core.learn.training import Trainer
from dgm_core.models.registry import MODELS, build_model
from tests.core_helpers import home_dataset

torch.set_num_threads(1)


def _config(steps: int = 10, every: int | None = 5, **kwargs) -> TrainConfig:
    base = dict(
        steps=steps,
        lr=3e-3,
        batch_size=64,
        eval_every_s=None,
        eval_every_steps=every,
        sample_every_s=None,
        n_samples=50,
        max_eval_items=500,
    )
    return TrainConfig(**{**base, **kwargs})


def _trainer(config: TrainConfig, name: str = "MADE", dataset: str = "moons", seed: int = 0) -> Trainer:
    data = load_dataset(dataset)
    return Trainer(build_model(name, data.spec, hidden=32, seed=seed), data, config)


def _steps(events) -> list:
    """The events of training steps (the others report chunks of an evaluation)."""
    return [e for e in events if e.losses]


def _losses(events) -> list[float]:
    return [e.losses["loss"] for e in _steps(events)]


def _timeless(scores: Scores) -> Scores:
    """Scores without the wall-clock time they were taken at (the one thing that differs between equal runs)."""
    return dataclasses.replace(scores, elapsed_s=0.0)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _fail_from_step(model, step: int, how: str = "nan") -> None:
    """From training step ``step`` on, the model's loss becomes NaN ("nan") or is maximised instead ("ascend")."""
    original, calls = model.loss, [0]

    def loss(x):
        calls[0] += 1
        terms = original(x)
        if calls[0] >= step:
            terms["loss"] = terms["loss"] * float("nan") if how == "nan" else -terms["loss"]
        return terms

    model.loss = loss


# --- the stream of events ---------------------------------------------------------------------------------------------


def test_events_count_steps_and_end_with_a_report():
    """One event per step, shown before that step's evaluation; the scores follow in an event of their own (at the
    same step, without losses), and the last one ends the run with a report."""
    everything = list(_trainer(_config(steps=12, every=5)).run())
    events = _steps(everything)
    assert [e.step for e in events] == list(range(1, 13))
    assert not any(e.done or e.scores for e in events)
    scored = [e for e in everything if e.scores is not None]
    assert [e.step for e in scored] == [5, 10, 12]  # every 5 steps, and at the end
    assert all(everything.index(e) > everything.index(events[e.step - 1]) for e in scored)
    assert [e.done for e in everything].count(True) == 1 and everything[-1] is scored[-1]
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(events, events[1:]))
    assert all(e.steps_per_s > 0 and math.isfinite(e.losses["loss"]) for e in events)
    assert all(e.samples is None for e in everything)
    last = everything[-1]
    assert last.message.startswith("Kept the weights of step") and "test NLL" in last.message
    assert set(last.scores.nll) == {"train", "val", "test"} and last.scores.bounds == {}
    assert last.scores.bits(last.scores.nll["val"]) == pytest.approx(last.scores.nll["val"] / (2 * math.log(2)))
    assert last.scores.score == last.scores.nll["val"] and math.isfinite(last.scores.val_mmd)


def test_samples_stream_when_asked_and_change_nothing():
    """Drawing display samples and evaluating use forked random streams: the training losses are unaffected."""
    quiet = list(_trainer(_config(steps=8, every=None)).run())
    busy = list(_trainer(_config(steps=8, every=1, sample_every_s=0.0)).run())
    drawn = [e for e in busy if e.samples is not None]
    assert drawn[0].step == 1 and all(e.samples.shape == (50, 2) for e in drawn)
    assert [e.step for e in busy if e.scores is not None] == list(range(1, 9))
    assert _losses(busy) == _losses(quiet)


def test_max_seconds_ends_the_run_early():
    events = list(_trainer(_config(steps=1000)).run(max_seconds=0.0))
    assert len(_steps(events)) == 1 and events[-1].done and events[-1].scores is not None


# --- reproducibility and resuming -------------------------------------------------------------------------------------


def test_same_seed_same_losses_other_seed_other_losses():
    a = list(_trainer(_config(seed=0)).run())
    b = list(_trainer(_config(seed=0)).run())
    c = list(_trainer(_config(seed=1)).run())
    assert _losses(a) == _losses(b) and _timeless(a[-1].scores) == _timeless(b[-1].scores)
    assert _losses(a) != _losses(c)


def test_stop_then_run_again_continues_where_it_stopped():
    """Closing the generator after 5 steps then running 5 more gives the losses of one uninterrupted 10-step run."""
    straight = list(_trainer(_config(steps=10)).run())
    trainer = _trainer(_config(steps=10))
    first = []
    stream = trainer.run()
    for event in stream:
        first.append(event)
        if event.scores and event.step == 5:
            stream.close()  # after step 5 and its evaluation: leaves the model as it is
    assert trainer.step == 5 and not first[-1].done
    second = list(trainer.run(steps=5))
    assert [e.step for e in _steps(second)] == list(range(6, 11))
    assert _losses(first + second) == _losses(straight)
    assert [scores.step for scores in trainer.history] == [5, 10]


def test_two_trainers_stepped_in_turn_each_reproduce_their_solo_run():
    """Two sessions training at once (their steps interleaved) see the same losses as when each trains alone."""
    solo_a = _losses(_trainer(_config(seed=0), name="VAE").run())
    solo_b = _losses(_trainer(_config(seed=1), name="VAE").run())
    a, b = _trainer(_config(seed=0), name="VAE").run(), _trainer(_config(seed=1), name="VAE").run()
    a, b = (e for e in a if e.losses), (e for e in b if e.losses)
    interleaved = [(ea.losses["loss"], eb.losses["loss"]) for ea, eb in zip(a, b)]
    assert [x for x, _ in interleaved] == solo_a and [y for _, y in interleaved] == solo_b


# --- the divergence guard ---------------------------------------------------------------------------------------------


def test_nan_loss_stops_and_restores_the_last_good_weights():
    """NaN at step 8 with evaluations every 5 steps: the run ends at 8 with the (finite) weights of step 5."""
    trainer = _trainer(_config(steps=20, every=5))
    _fail_from_step(trainer.model, 8)
    events, snapshots = [], {}
    for event in trainer.run():
        events.append(event)
        if event.scores is not None:
            snapshots[event.step] = _weights(trainer.model)
    last = events[-1]
    assert [e.step for e in _steps(events)] == list(range(1, 9))
    assert last.done and "diverged at step 8" in last.message and math.isnan(last.losses["loss"])
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
    assert _same(_weights(trainer.model), snapshots[5])


def test_nan_before_any_evaluation_restores_the_initial_weights():
    trainer = _trainer(_config(steps=20, every=10))
    initial = _weights(trainer.model)
    _fail_from_step(trainer.model, 3)
    events = list(trainer.run())
    assert events[-1].step == 3 and "diverged" in events[-1].message
    assert _same(_weights(trainer.model), initial)


@pytest.mark.parametrize("name", list(MODELS))
def test_huge_learning_rate_never_leaves_non_finite_weights(name):
    """lr = 1: either training survives with finite weights, or the guard stops it and restores the last good ones."""
    trainer = _trainer(_config(steps=30, every=10, lr=1.0), name=name, dataset=home_dataset(name))
    events = list(trainer.run())
    assert events[-1].done
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
    diverged = not all(math.isfinite(v) for v in events[-1].losses.values())
    assert diverged == ("diverged" in events[-1].message)


# --- model selection --------------------------------------------------------------------------------------------------


def test_best_validation_weights_are_restored_at_the_end():
    """Descend for 20 steps, then ascend: the last evaluations are worse, and the run ends on the best weights."""
    trainer = _trainer(_config(steps=40, every=5))
    _fail_from_step(trainer.model, 21, how="ascend")
    events = list(trainer.run())
    scores = {row.step: row.nll["val"] for row in trainer.history}
    best_step = min(scores, key=scores.get)
    assert 5 < best_step <= 25 and scores[40] > scores[best_step] + 0.5
    assert trainer.best.step == best_step and trainer.best.scores.score == scores[best_step]
    assert f"step {best_step}" in events[-1].message
    assert _same(_weights(trainer.model), trainer.best.state)
    assert trainer.evaluate().nll["val"] == pytest.approx(scores[best_step], abs=1e-9)  # evaluation is deterministic


def test_models_without_likelihood_are_selected_by_mmd():
    trainer = _trainer(_config(steps=10, every=5), name="GAN")
    events = list(trainer.run())
    assert events[-1].scores.nll == {} and events[-1].scores.score == events[-1].scores.val_mmd
    assert trainer.best.scores.score == min(row.val_mmd for row in trainer.history)
    assert "validation MMD" in events[-1].message


def _stop_at(trainer, step: int) -> list:
    """Run, asking to stop once the step event of ``step`` has been seen; returns every event."""
    events = []
    for event in trainer.run():
        events.append(event)
        if event.losses and event.step == step:
            trainer.request_stop()
    return events


def test_a_stop_asked_for_before_the_first_step_is_not_lost():
    """A run stopped between its start and its first slice (a comparison's Stop, a worker's first slice) stops."""
    trainer = _trainer(_config(steps=300))
    stream = trainer.run()
    trainer.request_stop()
    events = list(stream)
    assert events[-1].done and events[-1].stopped and trainer.step <= 1


def test_stop_scores_the_weights_it_stops_at_before_keeping_any():
    """Stopped at step 7, last evaluated at 5: step 7 is evaluated too, and the kept weights are evaluated ones."""
    trainer = _trainer(_config(steps=100, every=5))
    events = _stop_at(trainer, 7)
    assert trainer.step == 7 and events[-1].done and events[-1].scores is not None
    assert [row.step for row in trainer.history] == [5, 7]
    assert trainer.kept.step in (5, 7) and events[-1].message.startswith("Stopped at step 7. Kept the weights of step")
    assert _same(_weights(trainer.model), trainer.kept.state)


def test_keep_final_ends_on_the_final_evaluated_weights():
    """Descend, then ascend: "best" keeps an early step, "final" the last one, each saying which."""
    finals = {}
    for keep in ("best", "final"):
        trainer = _trainer(_config(steps=40, every=5, keep=keep))
        _fail_from_step(trainer.model, 21, how="ascend")
        finals[keep] = (list(trainer.run())[-1].message, trainer)
    best_message, best = finals["best"]
    final_message, final = finals["final"]
    assert best.kept.step < 40 and "(best on validation)" in best_message
    assert final.kept.step == 40 and "step 40 (the final weights)" in final_message
    assert _same(_weights(final.model), final.last.state) and final.last.step == 40


def test_an_evaluation_streams_in_chunks_without_losses():
    """Scoring 500 validation items of digits (64 dimensions) takes several chunks: events with no losses, at the
    evaluated step, after the step's own event and before the one that carries the scores."""
    events = list(_trainer(_config(steps=2, every=2), name="MADE", dataset="digits").run())
    chunks = [e for e in events if not e.losses and not e.done]
    assert len(chunks) >= 3 and all(e.step == 2 and e.scores is None for e in chunks)
    assert events.index(_steps(events)[-1]) < events.index(chunks[0])
    assert events[-1].scores is not None and events[-1].step == 2


@pytest.mark.parametrize("dataset, drawn", [("digits", 179), ("shapes", 500), ("mnist", 163)])  # digits: all 179
def test_an_evaluation_draws_fewer_samples_of_larger_images(dataset, drawn, monkeypatch):
    """An autoregressive sampler pays one network pass per pixel: 500 MNIST digits from MADE took 39 s, an evaluation
    that held its training process (and every run on it) for that long."""
    trainer = _trainer(_config(steps=1, every=1), name="NADE", dataset=dataset)
    sizes = []
    sample = trainer.model.sample
    monkeypatch.setattr(trainer.model, "sample", lambda n, **kw: sizes.append(n) or sample(n, **kw))
    list(trainer.run())
    assert sizes == [drawn]


def test_evaluations_by_clock_also_come_whenever_the_step_count_doubles():
    """With a wall-clock schedule, a step count twice the last evaluated one calls for an evaluation once at least
    four evaluations' cost has passed, so the weights kept are never from far behind."""
    trainer = _trainer(_config(every=None, eval_every_s=60.0))
    trainer.step, trainer.history = 1, []
    assert trainer._eval_due(since_s=0.0, cost_s=0.0)  # the first evaluation comes at once
    trainer.history = [Scores(step=100, elapsed_s=1.0, dim=2, val_mmd=0.0)]
    for step, since, due in [(150, 30.0, False), (200, 1.5, False), (200, 1.7, True), (150, 61.0, True)]:
        trainer.step = step
        assert trainer._eval_due(since_s=since, cost_s=0.4) == due, (step, since)


def test_evaluation_takes_at_most_a_twentieth_of_the_training_time():
    """However short the clock's interval, an evaluation that costs c waits for 19 c of training since the last."""
    trainer = _trainer(_config(every=None, eval_every_s=0.5))
    trainer.history = [Scores(step=100, elapsed_s=1.0, dim=2, val_mmd=0.0)]
    trainer.step = 150  # not doubled
    assert not trainer._eval_due(since_s=7.5, cost_s=0.4)
    assert trainer._eval_due(since_s=7.7, cost_s=0.4)
    assert trainer._eval_due(since_s=0.5, cost_s=0.01)  # a cheap evaluation follows the clock


# --- settings ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dict(steps=0),
        dict(steps=1_000_001),
        dict(lr=0.0),
        dict(lr=-1e-3),
        dict(lr=1.5),
        dict(lr=float("nan")),
        dict(lr=float("inf")),
        dict(batch_size=1),
        dict(batch_size=100_000),
        dict(eval_every_steps=0),
        dict(n_samples=0),
        dict(max_eval_items=1),
        dict(keep="worst"),
    ],
)
def test_check_rejects_settings_that_cannot_train(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad).check()
    with pytest.raises(ValueError):
        _trainer(TrainConfig(**bad))


def test_check_accepts_the_edges():
    TrainConfig(steps=1, lr=1.0, batch_size=2).check()
    TrainConfig(steps=1_000_000, lr=1e-8, batch_size=65_536, eval_every_steps=1, n_samples=1, max_eval_items=2).check()


# --- every model ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_trains_reproducibly_from_its_seed(name):
    runs = [list(_trainer(_config(steps=4, every=4), name=name, dataset=home_dataset(name)).run()) for _ in range(2)]
    assert _losses(runs[0]) == _losses(runs[1])
    assert _timeless(runs[0][-1].scores) == _timeless(runs[1][-1].scores)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_stops_on_a_nan_and_gets_its_last_good_weights_back(name):
    """Whatever its training step does (one player or two), a step that leaves NaN weights and a NaN loss ends the
    run, and the weights of the last evaluation come back."""
    trainer = _trainer(_config(steps=10, every=3), name=name, dataset=home_dataset(name))
    original, calls = trainer.model.train_step, [0]

    def poisoned_step(*args, **kwargs):
        calls[0] += 1
        losses = original(*args, **kwargs)
        if calls[0] >= 5:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))
            losses = {key: value * float("nan") for key, value in losses.items()}
        return losses

    trainer.model.train_step = poisoned_step
    snapshots = {}
    for event in trainer.run():
        if event.scores is not None:
            snapshots[event.step] = _weights(trainer.model)
    assert trainer.step == 5 and "diverged at step 5" in event.message
    assert _same(_weights(trainer.model), snapshots[3])
