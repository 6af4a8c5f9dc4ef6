"""What the page shows of a training run: the status line, the curves and the samples, built from plain data."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from app import figures
from app.compare import format_mmd
from app.figures import Reference, Series
from app.session import DATA_POINTS_SHOWN, SAMPLES_SHOWN, TrainingRun, display_bounds
from dgm_core.data import Dataset
from dgm_core.evaluation import bits_per_dim

PHASES = {
    "ready": "Ready",
    "training": "Training",
    "stopping": "Stopping — scoring the last weights",
    "done": "Done",
    "stopped": "Stopped",
    "diverged": "Diverged",
    "failed": "Failed",
}


def status_markdown(run: TrainingRun) -> str:
    """Step, speed, device, the latest held-out score and the references beside it, then any message."""
    progress = f"**{PHASES[run.phase]}** · step **{run.step}** / {run.target}"
    speed = f"{run.steps_per_s:.0f} steps/s" if run.steps_per_s else "measuring speed…"
    model = (
        f"#{run.run_id} {run.settings.model} on {run.settings.dataset}, {format_count(run.num_parameters)} parameters, "
        f"sampling: {run.model.sampling_cost}"
        + "".join(f", {name} = {value:g}" for name, value in run.settings.options.items())
    )
    lines = [f"{progress} · {speed} · {run.device_label} · {model}", _score_line(run)]
    if run.message:
        lines.append(run.message)
    return "  \n".join(lines)


def bound_name(run: TrainingRun) -> str:
    """The kind of bound ("ELBO", "dequantization"), without a repeated "bound"."""
    return run.capabilities.likelihood_name.removesuffix(" bound")


def _likelihood_label(run: TrainingRun) -> str:
    return "exact" if run.capabilities.likelihood == "exact" else f"bound: {bound_name(run)}"


def _score_line(run: TrainingRun) -> str:
    metrics = run.latest_metrics()
    name, nats = run.baseline
    baseline = f"baseline ({name}): {nats:.3f} nats ({bits_per_dim(nats, run.spec):.3f} bits/dim)"
    if run.capabilities.likelihood == "none":
        mmd = f"val MMD² **{format_mmd(metrics['val_mmd'])}**" if metrics else "val MMD²: waiting for an evaluation"
        return f"No likelihood — compare by MMD² (lower is better) · {mmd} · for reference, {baseline}"
    if metrics is None:
        score = "test NLL: waiting for the first evaluation"
    else:
        score = (
            f"test NLL **{metrics['test_nll']:.3f} nats** ({metrics['test_bpd']:.3f} bits/dim, "
            f"{_likelihood_label(run)}, step {metrics['step']:.0f})"
        )
    entropy = run.spec.entropy_nats
    floor = f" · data entropy (floor): {entropy:.3f} nats" if entropy is not None else ""
    return f"{score} · {baseline}{floor}"


def reference_lines(run: TrainingRun) -> list[Reference]:
    """The run's baseline (single Gaussian / independent pixels) and, where known, the data's entropy."""
    name, nats = run.baseline
    lines = [Reference(f"baseline: {name}", bits_per_dim(nats, run.spec))]
    if run.spec.entropy_nats is not None:
        lines.append(Reference("data entropy (floor)", bits_per_dim(run.spec.entropy_nats, run.spec)))
    return lines


def tracked_bounds(run: TrainingRun) -> dict[str, str]:
    """Display name → history key of the extra bounds the model tracks over training (``tracked_bounds``)."""
    keys = sorted({key for row in run.history for key in row if key.startswith("test_bpd ")})
    return {key.removeprefix("test_bpd "): key for key in keys}


def loss_figure(run: TrainingRun) -> go.Figure:
    names = run.model.loss_names
    series = [Series(names.get(name, name), run.loss_steps, values) for name, values in run.loss_terms.items()]
    note = "" if series else "the training loss appears here"
    return figures.curve_figure("Training loss", "loss", series, note=note)


def nll_figure(run: TrainingRun) -> go.Figure:
    """Held-out NLL in bits/dim (dashed for bounds) with the baseline and the entropy floor; MMD for no likelihood."""
    steps = [row["step"] for row in run.history]
    if run.capabilities.likelihood == "none":
        series = [Series("val MMD", steps, [row["val_mmd"] for row in run.history])]
        return figures.curve_figure("No likelihood — compare by MMD (validation)", "MMD²", series)
    bound = run.capabilities.likelihood == "bound"
    suffix = " (bound)" if bound else ""
    series = [
        Series(f"{split}{suffix}", steps, [row[f"{split}_bpd"] for row in run.history], dashed=bound)
        for split in ("val", "test")
    ]
    series += [
        Series(f"test, {name} bound", steps, [row[key] for row in run.history], dashed=True)
        for name, key in tracked_bounds(run).items()
    ]
    references = reference_lines(run)
    title = "Held-out NLL" + (f" — {bound_name(run)} bound" if bound else "")
    note = "" if steps else "held-out scores appear after the first evaluation"
    return figures.curve_figure(title, "bits/dim", series, references, note=note)


def samples_label(spec) -> str:
    """ "Samples from the model (8×8 images)", with the data's own image size."""
    return f"Samples from the model ({spec.shape[-2]}×{spec.shape[-1]} images)"


def samples_title(run: TrainingRun) -> str:
    """Which weights the samples come from: the current step, or the kept (best) weights once a run ended."""
    best = run.trainer.best
    if run.phase in ("stopped", "done") and best is not None:
        return f"Samples from the kept weights (step {best.step}, best on validation)"
    return f"Samples at step {run.step}"


def density_label(run: TrainingRun) -> str:
    """What the heatmap under 2D samples shows: log p, or the model's bound on it."""
    return "log p" if run.capabilities.likelihood == "exact" else f"{bound_name(run)} ≤ log p"


def samples_figure(run: TrainingRun) -> go.Figure:
    if run.samples is None:
        title = f"The data: {run.spec.name} (model samples appear here shortly)"
    elif run.log_density is None:
        title = samples_title(run)
    elif run.capabilities.likelihood == "exact":
        title = samples_title(run) + " over the model's log density"
    else:
        title = samples_title(run) + f" over its {bound_name(run)} (a lower bound on log p)"
    return figures.scatter_figure(
        title, run.bounds, run.data_points, run.samples, run.log_density, density_label=density_label(run)
    )


def samples_picture(run: TrainingRun) -> np.ndarray | None:
    if run.samples is None:
        return None
    return figures.image_grid(run.samples, run.spec.levels or 256)


def data_preview(data: Dataset) -> tuple[go.Figure | None, np.ndarray | None]:
    """The data set itself, shown before training: a scatter for points, a grid of training images otherwise."""
    if data.spec.kind == "points2d":
        title = f"The data: {data.spec.name} ({DATA_POINTS_SHOWN:,} test points)"
        return figures.scatter_figure(title, display_bounds(data), data.test[:DATA_POINTS_SHOWN].numpy()), None
    images = data.train[: SAMPLES_SHOWN["image"]].numpy()
    return None, figures.image_grid(images, data.spec.levels or 256)


def empty_curves(message: str) -> tuple[go.Figure, go.Figure]:
    loss = figures.curve_figure("Training loss", "loss", [], note=message)
    nll = figures.curve_figure("Held-out NLL", "bits/dim", [], note=message)
    return loss, nll


def format_count(n: int) -> str:
    """1234567 -> '1.23 M' (parameter counts in the model card)."""
    if n < 1000:
        return str(n)
    power = min(int(math.log10(n)) // 3, 3)
    return f"{n / 1000**power:.3g} {' kMG'[power]}"
