"""The Compare tab's table: one row per model of a comparison (``dgm_core.serve.comparison``), in words and numbers
a class reads off a projector."""

from __future__ import annotations

from app.page.views import format_mmd
from dgm_core.models.registry import MODELS
from dgm_core.serve.comparison import PERMUTATIONS, TEST_ITEMS, Comparison, Entry

KERNEL_NOTE = (
    f"MMD² between as many model samples as test items (up to {TEST_ITEMS}), averaged over Gaussian kernels "
    "exp(−|a − b|² / 2h²) at seven bandwidths h, from 4× down to 1/16× the median pairwise distance (one bandwidth "
    "alone cannot tell a Gaussian blob from two moons). Lower is better; the estimate is unbiased, so a model as good "
    "as the data scatters around 0 and can come out slightly negative: shown as ≈ 0. p is a permutation test of "
    f'"same distribution" ({PERMUTATIONS} relabellings) on the largest standardised MMD² over the bandwidths: '
    "p < 0.05 says the samples can be told apart from real data."
)


def rows(comparison: Comparison) -> list[list]:
    return [row(entry) for entry in comparison.entries]


def verdict(p_value: float) -> str:
    return "told apart from data" if p_value < 0.05 else "not told apart"


def row(entry: Entry) -> list:
    run = entry.run
    caps = run.model.capabilities
    scores = run.scores
    if caps.likelihood == "none":
        nll = "—"
    else:  # the latest evaluation's while it trains; none while it stops; then the kept's
        pending = scores is None or entry.state == "stopping"
        nll = "…" if pending else round(scores.bits(scores.nll["test"]), 4)
    speed = run.step / run.elapsed_s if run.elapsed_s > 0 else 0.0
    return [
        run.spec.model,
        MODELS[run.spec.model].family,
        entry.state + (f" ({entry.note})" if entry.note else ""),
        nll,
        caps.likelihood_label,
        "…" if entry.mmd is None else format_mmd(entry.mmd),
        "…" if entry.p_value is None else f"{entry.p_value:.3f}",
        "…" if entry.p_value is None else verdict(entry.p_value),
        round(run.elapsed_s, 1),
        run.step,
        round(speed, 1),
        run.model.num_parameters(),
        run.model.sampling_cost,
    ]


COLUMNS = [
    "model",
    "family",
    "state",
    "test NLL (bits/dim)",
    "likelihood",
    "test MMD²",
    "MMD p-value",
    "at 5 %",
    "train s",
    "steps",
    "steps/s",
    "params",
    "sampling cost",
]
