"""What the Likelihood tab computes for a run, without Gradio: per-item scores on test data and on out-of-distribution
items of the same format, the most and least likely test items, and how the importance-weighted bound tightens with k.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from app.page.session import RunView
from dgm_core.data import ood
from dgm_core.learn.evaluation import item_log_probs
from dgm_core.models.abilities import ImportanceWeighted, ability

OOD_ITEMS = 200
SCORED_ITEMS = 5_000  # test items scored and drawn (the 2D sets hold 50,000; a browser draws 10,000 points smoothly)
EXTREMES = 8
IWAE_ITEMS = 300
IWAE_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class ItemScores:
    """Per-item bits/dim of the test set and of other sets of the same format (lower = more likely)."""

    unit: str  # "bits/dim"
    items: torch.Tensor  # the scored test items
    test: np.ndarray
    others: dict[str, np.ndarray]
    most_likely: np.ndarray  # indices into the test split
    least_likely: np.ndarray


def bits(log_probs: torch.Tensor, dim: int) -> np.ndarray:
    return (-log_probs / (dim * math.log(2))).numpy()


_SCORED: OrderedDict[tuple, Future[ItemScores]] = OrderedDict()  # by model, data and weights: most recent last
SCORED_KEPT = 32  # besides the pinned ones (the gallery's shipped runs, scored at start)
_PINNED: set[tuple] = set()
_SOON = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-soon")  # runs chosen: one at a time, all pages
_SCORED_LOCK = threading.Lock()


def item_scores(run: RunView, pin: bool = False) -> ItemScores:
    """Score the test items (the first SCORED_ITEMS) and, for a model of the digits' format, each
    out-of-distribution set — once per set of weights in this process: a card a whole class opens (the same shipped
    weights in forty browsers) is scored once, and a run chosen a moment before (``score_soon``) is ready or under
    way. Scores not begun yet are made at once in the caller's thread: a click never waits behind other pages'
    choices. ``pin``: kept for the life of the process. Call it without holding the run's lock."""
    key = _key(run)
    with _SCORED_LOCK:
        scoring, mine = _claim(key)
        if pin:
            _PINNED.add(key)
    if mine:
        _fill(scoring, run)
    return scoring.result()


def score_soon(run: RunView) -> None:
    """Start scoring a run a user just chose, so that its Score click finds the answer ready: only a run that no
    longer trains (its weights will not change meanwhile)."""
    if run.run.active:
        return
    key = _key(run)
    with _SCORED_LOCK:
        scoring, mine = _claim(key)
    if mine:
        _SOON.submit(_fill, scoring, run)


def _key(run: RunView) -> tuple:
    with run.run.lock:
        return run.spec.model, run.spec.dataset, _fingerprint(run.model.state_dict())


def _claim(key: tuple) -> tuple[Future[ItemScores], bool]:
    """The scores of ``key`` made or under way, or a new promise of them that the caller must fill (True)."""
    scoring = _SCORED.get(key)
    mine = scoring is None or (scoring.done() and scoring.exception() is not None)  # a failure is tried again
    if mine:
        scoring = _SCORED[key] = Future()
        unpinned = [old for old in _SCORED if old not in _PINNED]
        for old in unpinned[: max(0, len(unpinned) - SCORED_KEPT)]:
            del _SCORED[old]
    _SCORED.move_to_end(key)
    return scoring, mine


def _fill(scoring: Future[ItemScores], run: RunView) -> None:
    try:
        scoring.set_result(_score_held(run))
    except Exception as error:  # whoever waits for these scores gets the error
        scoring.set_exception(error)


def _score_held(run: RunView) -> ItemScores:
    with run.run.lock:  # the weights stay those fingerprinted (a Continue waits for the scores)
        return _score(run)


def _fingerprint(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _score(run: RunView) -> ItemScores:
    model, spec = run.model, run.data_spec
    test_items = run.data.test[:SCORED_ITEMS]
    test = bits(item_log_probs(model, test_items), spec.dim)
    others = {}
    if ood.has_ood_sets(spec):
        for name, items in ood.ood_sets(run.data, OOD_ITEMS, seed=0).items():
            others[name] = bits(item_log_probs(model, items), spec.dim)
    order = np.argsort(test)
    return ItemScores("bits/dim", test_items, test, others, order[:EXTREMES], order[::-1][:EXTREMES])


def ood_table(scores: ItemScores) -> list[list]:
    """Mean bits/dim per set and the share of its items scored as more likely than the median test item."""
    median = float(np.median(scores.test))
    rows = [["test data (in distribution)", round(float(scores.test.mean()), 3), "50%", "the data it was trained for"]]
    for name, values in scores.others.items():
        above = f"{100 * float((values < median).mean()):.0f}%"
        rows.append([name, round(float(values.mean()), 3), above, ood.DESCRIPTIONS[name]])
    return rows


def histogram_range(sets: dict[str, np.ndarray]) -> tuple[float, float]:
    """A bits/dim range for histograms of per-item scores that shows the test data (the first set) in detail: from
    the lowest score of any set to the highest within twice the test data's 1–99% spread above its 99th percentile
    (an autoregressive model can put noise at 1,000+ bits/dim, which would squash everything else)."""
    test = next(iter(sets.values()))
    low = float(min(np.min(values) for values in sets.values()))
    p1, p99 = np.percentile(test, [1, 99])
    cap = float(p99 + 2 * (p99 - p1))
    high = max(float(np.max(values[values <= cap])) if (values <= cap).any() else low for values in sets.values())
    return low, max(high, low + 1e-3)


OOD_COLUMNS = ["items", "mean bits/dim", "more likely than the median test digit", "what they are"]


def iwae_curve(run: RunView, k_max: int) -> tuple[list[int], list[float]]:
    """Test bound in bits/dim (lower is tighter) for k = 1 (the ELBO) up to ``k_max`` importance samples."""
    x = run.data.test[:IWAE_ITEMS].to(run.device)
    ks = [k for k in IWAE_KS if k <= k_max]
    values = []
    with run.run.inspecting(seed=0) as model:
        weighted = ability(model, ImportanceWeighted)
        for k in ks:
            bound = torch.cat([weighted.iwae_bound(chunk, k) for chunk in x.split(max(1, 20_000 // k))])
            values.append(float(bits(bound.mean().cpu().reshape(1), run.data_spec.dim)[0]))
    return ks, values
