"""What the page shows of a run: the status line, the curves and the samples, built from the run and its view."""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from app.draw import figures
from app.draw.figures import Reference, Series
from app.page.session import DATA_POINTS_SHOWN, SAMPLES_SHOWN, RunView, display_bounds
from dgm_core.data import Dataset
from dgm_core.inspect.modes import mode_coverage
from dgm_core.learn.device import describe
from dgm_core.learn.evaluation import Scores, bits_per_dim
from dgm_core.models.base import GenerativeModel
from dgm_core.runs.slices import PHASES as RUN_PHASES

PHASES = {phase: phase.capitalize() for phase in RUN_PHASES}  # as the status line and the Runs table say them


_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;"}
_MARKDOWN = set("\\`*_{}[]()#+-.!|~=:")


def plain(text: object) -> str:
    """Text from a user or a file (a file name, a CSV header, a value a checkpoint holds), shown literally inside
    Markdown: HTML's special characters become entities, Markdown's punctuation is escaped and line breaks become
    spaces, so that nothing in it can make an element, a link or a heading."""
    return "".join(_ENTITIES.get(c, "\\" + c if c in _MARKDOWN else " " if c in "\r\n" else c) for c in str(text))


def toast_text(text: object) -> str:
    """Text from a user or a file for a toast (``gr.Warning``), which shows HTML: its special characters escaped."""
    return "".join(_ENTITIES.get(c, c) for c in str(text))


def shown_file(path: object) -> dict:
    """A file output that takes room only once it holds a file (an empty box pushed figures below the fold)."""
    return gr.update(value=path, visible=path is not None)


def format_mmd(value: float) -> str:
    """MMD² for a table: "≈ 0" when the unbiased estimate is at or below zero (it scatters around 0 for a perfect
    model), else three significant digits."""
    return "≈ 0" if value <= 0 else f"{value:.2e}"


def status_markdown(view: RunView, waiting: int | None = None) -> str:
    """Step, speed, device, the latest held-out score and the references beside it, then any message.
    ``waiting``: the run's place in the line for a training slot, when every slot is taken."""
    run, spec = view.run, view.spec
    progress = f"**{PHASES[run.phase]}** · step **{run.step}** / {run.target}"
    if run.budget is not None:
        start, seconds = run.budget
        progress += f" · {min(run.elapsed_s - start, seconds):.1f} of {seconds:g} s of training"
    if waiting is not None:
        progress = f"**Waiting** for a free trainer: number {waiting} in line · step {run.step} / {run.target}"
    if run.steps_per_s:
        speed = f"{run.steps_per_s:.0f} steps/s"
    elif run.active:
        speed = "measuring speed…"
    else:  # a run that ended (or was loaded): its average over its training time
        speed = f"{run.step / run.elapsed_s:.0f} steps/s on average" if run.elapsed_s > 0 else "not trained yet"
    model = (
        f"#{view.id} {spec.model} on {spec.dataset}, {format_count(run.model.num_parameters())} parameters, "
        f"sampling: {run.model.sampling_cost}"
        + "".join(f", {name} = {value:g}" for name, value in spec.options.items())
    )
    lines = [f"{progress} · {speed} · {describe(run.device)} · {model}", _score_line(view)]
    if run.message:
        lines.append(run.message)
    advice = small_data_advice(view)
    if advice:
        lines.append(f"**{advice}**")
    if run.unsaved:
        lines.append(f"**{run.unsaved}**")
    return "  \n".join(lines)


def bound_name(view: RunView) -> str:
    """The kind of bound ("ELBO", "dequantization"), without a repeated "bound"."""
    return view.capabilities.likelihood_name.removesuffix(" bound")


def likelihood_label(view: RunView) -> str:
    return "exact" if view.capabilities.likelihood == "exact" else f"bound: {bound_name(view)}"


SMALL_DATA = 500  # training items below which a run's scores scatter and models overfit within seconds


def small_data_advice(view: RunView) -> str:
    """What to try when a run that ended kept weights no better than the baseline, or trains on very little data
    (the page must not say only "Done" then)."""
    run, scores = view.run, view.run.scores
    if run.active or scores is None:
        return ""
    n = len(view.data.train)
    few = f"only {n:,} training items" if n < SMALL_DATA else ""
    _, baseline = view.baseline
    if scores.nll and scores.nll["test"] >= baseline:
        why = f" ({few})" if few else ""
        return (
            f"The kept weights are no better than the baseline{why}: this model learned nothing a single Gaussian "
            "(or independent pixels) does not. Try a smaller hidden width, a lower learning rate, keep training, "
            "or use more data."
        )
    if few:
        return (
            f"Trained on {few}: scores on so little held-out data scatter, and models overfit within seconds — "
            "compare against the baseline, and prefer small models."
        )
    return ""


def _score_line(view: RunView) -> str:
    scores = view.run.scores
    name, nats = view.baseline
    baseline = f"baseline ({name}): {nats:.3f} nats ({bits_per_dim(nats, view.data_spec):.3f} bits/dim)"
    if view.capabilities.likelihood == "none":
        mmd = f"val MMD² **{format_mmd(scores.val_mmd)}**" if scores else "val MMD²: waiting for an evaluation"
        return f"No likelihood — compare by MMD² (lower is better) · {mmd} · for reference, {baseline}"
    if scores is None:
        score = "test NLL: waiting for the first evaluation"
    else:
        test = scores.nll["test"]
        score = (
            f"test NLL **{test:.3f} nats** ({scores.bits(test):.3f} bits/dim, {likelihood_label(view)}, "
            f"step {scores.step})"
        )
    entropy = view.data_spec.entropy_nats
    floor = f" · data entropy (floor): {entropy:.3f} nats" if entropy is not None else ""
    return f"{score} · {baseline}{floor}"


def reference_lines(view: RunView) -> list[Reference]:
    """The run's baseline (single Gaussian / independent pixels) and, where known, the data's entropy."""
    name, nats = view.baseline
    lines = [Reference(f"baseline: {name}", bits_per_dim(nats, view.data_spec))]
    if view.data_spec.entropy_nats is not None:
        lines.append(Reference("data entropy (floor)", bits_per_dim(view.data_spec.entropy_nats, view.data_spec)))
    return lines


def tracked_bounds(history: list[Scores]) -> list[str]:
    """The names of the extra bounds a run tracked over training (e.g. "IWAE (k=64)"), in a fixed order."""
    return sorted({name for scores in history for name in scores.bounds})


def loss_figure(view: RunView) -> go.Figure:
    names, losses = view.model.loss_names, view.run.losses
    series = [Series(names.get(name, name), losses.steps, values) for name, values in losses.terms.items()]
    note = "" if series else "the training loss appears here"
    return figures.curve_figure("Training loss", "loss", series, note=note)


def nll_figure(view: RunView) -> go.Figure:
    """Held-out NLL in bits/dim (dashed for bounds) with the baseline and the entropy floor; MMD for no likelihood."""
    history = view.run.history
    steps = [scores.step for scores in history]
    if view.capabilities.likelihood == "none":
        series = [Series("val MMD²", steps, [scores.val_mmd for scores in history])]
        return figures.curve_figure("No likelihood — compare by MMD² (validation)", "MMD²", series)
    bound = view.capabilities.likelihood == "bound"
    suffix = " (bound)" if bound else ""
    series = [
        Series(f"{split}{suffix}", steps, [s.bits(s.nll[split]) for s in history], dashed=bound)
        for split in ("val", "test")
    ]
    series += [
        Series(f"test, {name} bound", steps, [s.bits(s.bounds.get(name, math.nan)) for s in history], dashed=True)
        for name in tracked_bounds(history)
    ]
    title = "Held-out NLL" + (f" — {bound_name(view)} bound" if bound else "")
    note = "" if steps else "held-out scores appear after the first evaluation"
    return figures.curve_figure(title, "bits/dim", series, reference_lines(view), note=note)


def samples_title(view: RunView) -> str:
    """Which weights the samples come from: the current step, or the kept weights once a run ended."""
    run = view.run
    kept = run.kept
    if not run.active and kept is not None:
        why = "best on validation" if run.spec.keep == "best" else "final"
        return f"Samples from the kept weights (step {kept.step}, {why})"
    return f"Samples at step {run.step}"


def density_label(view: RunView) -> str:
    """What the heatmap under 2D samples shows: log p, or the model's bound on it."""
    return "log p" if view.capabilities.likelihood == "exact" else f"{bound_name(view)} ≤ log p"


def samples_figure(view: RunView) -> go.Figure:
    """What the run draws now: points over its density or field (2D data), or a grid of its images."""
    if view.bounds is None:
        return samples_picture(view)
    view.refresh_density()
    samples = view.samples()
    notes = []
    if samples is None:
        title = f"The data: {view.data_spec.name} (model samples appear here shortly)"
    elif view.log_density is None:
        title = samples_title(view)
    elif view.has_field:
        title = samples_title(view)
        notes.append(view.model.field_note)
    elif view.capabilities.likelihood == "exact":
        title = samples_title(view) + " over the model's log density"
    else:
        title = samples_title(view) + f" over its {bound_name(view)} (a lower bound on log p)"
    coverage = None if samples is None else mode_coverage(samples, view.data_spec.name)
    if coverage is not None:
        notes.append(f"{coverage.covered} of {coverage.modes} modes covered")
    if view.has_field:
        return _field_figure(view, title, " · ".join(notes), samples)
    return figures.scatter_figure(
        title,
        view.bounds,
        view.data_points,
        samples,
        view.log_density,
        density_label=density_label(view),
        subtitle=" · ".join(notes),
    )


def _field_figure(view: RunView, title: str, subtitle: str, samples: np.ndarray | None) -> go.Figure:
    return field_figure(
        view.model, title, subtitle, view.bounds, view.data_points, samples, view.log_density, view.arrows
    )


def field_figure(
    model: GenerativeModel,
    title: str,
    subtitle: str,
    bounds: tuple[float, float, float, float],
    data: np.ndarray,
    samples: np.ndarray | None,
    field: np.ndarray | None,
    arrows: tuple[np.ndarray, np.ndarray] | None,
) -> go.Figure:
    """A model's field over the plane (a GAN's discriminator, as in GAN Lab; an EBM's −E), the samples, and how the
    model moves them (``arrows``: points and directions)."""
    field_range = None if field is None else model.field_range or (float(field.min()), float(field.max()))
    figure = figures.scatter_figure(
        title,
        bounds,
        data,
        samples,
        field,
        density_label=model.field_name,
        density_range=field_range,
        subtitle=subtitle,
    )
    if arrows is not None:
        figures.add_arrows(figure, *arrows, bounds, name=model.arrows_name)
    return figure


def samples_picture(view: RunView) -> go.Figure:
    """Image samples as one picture: the model's (or, before it drew any, the training images')."""
    samples = view.samples()
    if samples is None:
        return data_preview(view.data)
    picture = figures.image_grid(samples, view.data_spec.levels or 256)
    height, width = view.data_spec.shape[-2:]
    return figures.picture_figure(picture, f"{samples_title(view)} · {height}×{width} images")


def data_preview(data: Dataset) -> go.Figure:
    """The data set itself, shown before training: a scatter for points, a grid of training images otherwise."""
    if data.spec.kind == "points2d":
        shown = data.test[:DATA_POINTS_SHOWN].numpy()
        title = f"The data: {data.spec.name} ({len(shown):,} test points)"
        return figures.scatter_figure(title, display_bounds(data), shown)
    images = data.train[: SAMPLES_SHOWN["image"]].numpy()
    title = f"The data: {data.spec.name} (training images)"
    return figures.picture_figure(figures.image_grid(images, data.spec.levels or 256), title)


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
