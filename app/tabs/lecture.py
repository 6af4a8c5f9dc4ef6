"""The Lecture 1 tab: the first lecture's points, each on a model trained beforehand (shipped in assets/pretrained).

- *Generation and inference*: factor sliders render a shape ("graphics"); a trained encoder reads the factors back
  from its pixels ("vision as inverse graphics"); a β-VAE's latents set against the true factors.
- *Discriminative vs generative*: logistic regression p(y | x) against Bayes' rule on the CVAE's p(x | y) p(y) on the
  test digits, as a growing share of their pixels is hidden.
- *Conditional generation*: the class picker drives two conditional models' samples.

The shipped runs are opened once per server process and only read, never trained, so every page shares them; their
scores are not shown here, so they are not computed again on load (the Gallery's other cards do that). The
math lives in ``dgm_core.lecture``'s ``classifiers`` and ``inverse_graphics``; here are the controls and the pictures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps
from typing import TypeVar

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from app.draw.figures import PALETTE, base_figure, image_grid, masked_grid
from app.draw.live_plot import LivePlot
from dgm_core.data import load_dataset
from dgm_core.data.shapes import FACTOR_NAMES, INTENSITY_RANGE, KINDS, SIZE_RANGE, render
from dgm_core.lecture.classifiers import (
    LogisticRegression,
    MissingPixelCurve,
    accuracy,
    accuracy_vs_missing,
    bayes_probs,
    fit_logistic,
    fit_naive_bayes,
    hide_pixels,
)
from dgm_core.lecture.inverse_graphics import (
    FactorReader,
    ReadingErrors,
    factor_errors,
    latents_against_factors,
    load_reader,
)
from dgm_core.lecture.presets import PRESETS, open_companions, open_preset
from dgm_core.runs.run import Run

FRACTIONS = (0.0, 0.25, 0.5, 0.75, 0.9)  # shares of pixels hidden on the accuracy curve
EXAMPLES = 10  # test digits shown with half their pixels hidden
PER_CLASS = 16  # samples drawn of the chosen class, per model
UNITS = {"size": "image widths", "x": "image widths", "y": "image widths", "intensity": "grey levels"}
FIRST_FACTORS = ("circle", 0.55, 0.45, 0.5, 14)  # kind, size, x, y, intensity when the page opens
FIRST_CLASS = "3"
CONDITIONAL_MODELS = (PRESETS["conditional-generation"].model, *PRESETS["conditional-generation"].companions)


T = TypeVar("T")
_opening = threading.RLock()  # one shared value may ask for another


def shared(make: Callable[[], T]) -> Callable[[], T]:
    """``make()`` once per process, whichever page (or the warm-up at start) asks first; the others wait for it."""
    made = cache(make)

    @wraps(make)
    def get() -> T:
        with _opening:
            return made()

    return get


def warm_up() -> None:
    """Open the shared runs and compute what they show, so that the first click is quick (``app.py`` starts this)."""
    inverse_graphics(), classifiers(), conditional_runs()


@shared
def inverse_graphics() -> tuple[FactorReader, ReadingErrors, dict[str, tuple[int, float]]]:
    """The shipped factor reader, its errors on the held-out shapes, and the β-VAE's latents against the factors."""
    reader = load_reader()
    vae = open_preset(PRESETS["generation-and-inference"], rescore=False).model
    return reader, factor_errors(reader), latents_against_factors(vae)


@shared
def classifiers() -> tuple[LogisticRegression, Run, MissingPixelCurve, float]:
    """Logistic regression fitted here, the shipped CVAE, the accuracy of both and of naive Bayes (fitted here) against
    pixels hidden, and the accuracy on whole digits of Bayes' rule on the conditional model whose p(x | y) is exact (it
    cannot marginalise)."""
    digits = load_dataset("digits")
    logistic, cvae = fit_logistic(digits), open_preset(PRESETS["discriminative-vs-generative"], rescore=False)
    naive = fit_naive_bayes(digits)
    curve = accuracy_vs_missing(cvae.model.eval(), logistic, naive, digits.test, digits.labels["test"], FRACTIONS)
    exact = next(run.model for run in conditional_runs() if run.model.capabilities.likelihood == "exact")
    exact_accuracy = accuracy(bayes_probs(exact.eval(), digits.test.to(exact.device)).cpu(), digits.labels["test"])
    return logistic, cvae, curve, exact_accuracy


@shared
def conditional_runs() -> list[Run]:
    preset = PRESETS["conditional-generation"]
    return [open_preset(preset, rescore=False), *open_companions(preset, rescore=False)]


@dataclass(frozen=True)
class LectureOutputs:
    """What each section shows (for the gallery's Open buttons), and the controls that choose it."""

    inference: list
    classifiers: list
    conditional: list
    sliders: list
    label: gr.Radio

    def everything(self) -> list:
        """Every output and control of the tab, in the order ``first_views`` fills them."""
        return [*self.sliders, *self.inference, *self.classifiers, *self.conditional]


def build_lecture_tab(tab: gr.Tab) -> LectureOutputs:
    gr.Markdown(
        "The first lecture's points, on models trained beforehand. A generative model is a distribution p(x) you "
        "can **sample** (generation) and **evaluate**; inference runs the other way, from an item to its causes.",
        elem_classes="hint",
    )
    sliders, inference = _inference_section()
    classifier_outputs = _classifier_section()
    label, conditional = _conditional_section()
    outputs = LectureOutputs(inference, classifier_outputs, conditional, sliders, label)
    shown = [*inference, *classifier_outputs, *conditional[1:]]
    tab.select(show_all, [*sliders, label], shown, show_progress="hidden", api_visibility="private")
    return outputs


# --- generation and inference ---------------------------------------------------------------------------------------
def _inference_section() -> tuple[list, list]:
    gr.Markdown("## Generation and inference: graphics, and vision as inverse graphics", elem_id="lecture-inference")
    with gr.Row():
        with gr.Column(scale=2):
            first = dict(zip(("kind", "size", "x", "y", "intensity"), FIRST_FACTORS))
            kind = gr.Radio(list(KINDS), value=first["kind"], label="kind", elem_id="factor-kind")
            size = gr.Slider(*SIZE_RANGE, value=first["size"], step=0.01, label="size (image widths)")
            x = gr.Slider(0.3, 0.7, value=first["x"], step=0.01, label="x of the centre", elem_id="factor-x")
            y = gr.Slider(0.3, 0.7, value=first["y"], step=0.01, label="y of the centre (down)")
            intensity = gr.Slider(*INTENSITY_RANGE, value=first["intensity"], step=1, label="intensity (level)")
        picture = gr.Image(
            None,
            label="Graphics: the image the factors render",
            alt_text="The 16×16 shape drawn from the factors set on the left",
            image_mode="L",
            interactive=False,
            elem_classes="picture",
            elem_id="rendered-shape",
            buttons=["download"],
            scale=1,
        )
        read_back = gr.Dataframe(
            headers=["factor", "set", "read from the pixels", "error"],
            value=[],
            interactive=False,
            label="Inference: what a trained encoder reads back",
            elem_id="read-factors",
            scale=2,
            wrap=True,
            elem_classes="fit-table",
        )
    reader_note = gr.Markdown("", elem_id="reader-errors")
    sliders = [kind, size, x, y, intensity]
    gr.on(
        [s.input for s in sliders],
        render_and_read,
        sliders,
        [picture, read_back],
        show_progress="hidden",
        api_visibility="private",
        trigger_mode="always_last",
    )
    return sliders, [picture, read_back, reader_note]


def render_and_read(kind: str, size: float, x: float, y: float, intensity: float) -> tuple[np.ndarray, list]:
    image = render(kind, size, x, y, intensity)
    reader, _, _ = inverse_graphics()
    read_kind, read = reader.read(image[None])
    rows = [["kind", kind, KINDS[int(read_kind)], "right" if KINDS[int(read_kind)] == kind else "wrong"]]
    for name, value in zip(FACTOR_NAMES, (size, x, y, intensity)):
        got = float(read[name])
        rows.append([name, f"{value:.3f}", f"{got:.3f}", f"{abs(got - value):.3f}"])
    return image_grid(image[None].numpy(), 17, columns=1, scale=14), rows


def reader_summary() -> str:
    _, errors, latents = inverse_graphics()
    per_factor = ", ".join(f"{name} {errors.mean_absolute[name]:.3f} {UNITS[name]}" for name in FACTOR_NAMES)
    found = ", ".join(f"{name} → z{dim} ({strength:.2f})" for name, (dim, strength) in latents.items())
    return (
        f"On {errors.items:,} held-out shapes the encoder's mean error per factor: {per_factor}; kind right "
        f"{100 * errors.kind_accuracy:.1f} %. It was trained *with* the factors (supervised).  \n"
        f"A β-VAE never told the factors: the latent that follows each best (strength 0–1: |Spearman ρ|, η for the "
        f"kind): {found}. See the β-VAE card for its traversals."
    )


# --- discriminative vs generative -----------------------------------------------------------------------------------
def _classifier_section() -> list:
    gr.Markdown(
        "## Discriminative p(y | x) against generative p(x, y), with pixels missing", elem_id="lecture-classifiers"
    )
    gr.Markdown(
        "**Discriminative**: logistic regression, p(y | x) = softmax(Wx + b), fitted to whole digits; a hidden pixel "
        "must be imputed (here with its training mean). **Generative**: Bayes' rule on a CVAE, "
        "p(y | x) ∝ p(x | y) p(y); a hidden pixel is *marginalised*, p(x_obs | y) = Σ p(x_obs, x_hid | y), which the "
        "CVAE does by leaving it out of p(x | z, y) (a 24-sample importance-weighted estimate over z, half drawn from "
        "the encoder, half from the prior). A class-"
        "conditional MADE gives p(x | y) exactly, so its Bayes classifier is exact too — but an autoregressive model "
        "cannot sum out pixels scattered anywhere in its order, so it has no curve. **Naive Bayes**, the shallowest "
        "generative classifier, makes every pixel independent given the class, p(x | y) = Π_d p(x_d | y), and so "
        "sums out hidden pixels exactly: the baseline a deep generative model has to beat.",
        elem_classes="hint",
    )
    with gr.Row():
        curve_plot = LivePlot(None, show_label=False, elem_id="classifier-curve")
        table = gr.Dataframe(
            headers=[
                "pixels hidden",
                "discriminative (imputes)",
                "generative: CVAE (marginalises)",
                "naive Bayes (marginalises exactly)",
                "generative, exact",
            ],
            value=[],
            interactive=False,
            label="Accuracy on the 359 test digits",
            elem_id="classifier-table",
            wrap=True,
            elem_classes="fit-table",
        )
    examples = gr.Image(
        None,
        label="Ten test digits with half their pixels hidden (amber)",
        alt_text="Ten 8×8 test digits, half of each one's pixels hidden and shown in amber",
        interactive=False,
        elem_classes="picture",
        elem_id="classifier-examples",
        buttons=["download"],
    )
    predictions = gr.Dataframe(
        headers=["test digit", *(f"#{i + 1}" for i in range(EXAMPLES))],
        value=[],
        interactive=False,
        label="What each classifier says of them",
        elem_id="classifier-predictions",
        wrap=True,
        elem_classes="fit-table",
    )
    return [curve_plot, table, examples, predictions]


def classifier_views() -> list:
    logistic, cvae, curve, exact = classifiers()
    rows = [
        [f"{100 * f:.0f} %", *(f"{100 * a:.1f} %" for a in (d, g, n)), f"{100 * exact:.1f} %" if f == 0 else "—"]
        for f, d, g, n in zip(curve.fractions, curve.discriminative, curve.generative, curve.naive_bayes)
    ]
    digits = load_dataset("digits")
    items, labels = digits.test[:EXAMPLES], digits.labels["test"][:EXAMPLES]
    observed = hide_pixels(EXAMPLES, items[0].numel(), 0.5, seed=0)
    said = logistic.probs(items, observed).argmax(1).tolist()
    bayes = bayes_probs(cvae.model, items.to(cvae.device), observed.to(cvae.device)).argmax(1).cpu().tolist()
    predictions = [
        ["true class", *labels.tolist()],
        ["discriminative says", *said],
        ["generative says", *bayes],
    ]
    return [_curve_figure(curve, exact), rows, _masked_grid(items, observed), predictions]


def _curve_figure(curve: MissingPixelCurve, exact: float) -> go.Figure:
    figure = base_figure("Accuracy as pixels go missing", "share of pixels hidden at random", "test accuracy")
    percent = [100 * f for f in curve.fractions]
    for name, values, color in (
        ("discriminative: logistic regression, imputes", curve.discriminative, PALETTE[0]),
        ("generative: Bayes' rule on the CVAE, marginalises", curve.generative, PALETTE[1]),
        ("naive Bayes: pixels independent given the class, marginalises exactly", curve.naive_bayes, PALETTE[3]),
    ):
        figure.add_scatter(x=percent, y=[100 * v for v in values], name=name, mode="lines+markers", line_color=color)
    figure.add_scatter(
        x=[0],
        y=[100 * exact],
        name="generative, exact: Bayes' rule on the cMADE (whole digits only)",
        mode="markers",
        marker={"symbol": "diamond", "size": 11, "color": PALETTE[2]},
    )
    figure.add_hline(y=10, line_dash="dot", line_color="grey", annotation_text="chance")
    figure.update_layout(yaxis_range=[0, 100], xaxis_ticksuffix=" %", yaxis_ticksuffix=" %")
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)  # the lecture view's larger fonts need more room
    return figure


def _masked_grid(items: torch.Tensor, observed: torch.Tensor) -> np.ndarray:
    """The digits as ink on paper with their hidden pixels painted amber."""
    hidden = ~observed.reshape(items.shape).numpy().astype(bool)
    return masked_grid(items.numpy(), hidden, 17, columns=len(items), scale=10)


# --- conditional generation -----------------------------------------------------------------------------------------
def _conditional_section() -> tuple[gr.Radio, list]:
    gr.Markdown("## Conditional generation: p(x | y) for the class you pick", elem_id="lecture-conditional")
    with gr.Row():
        label = gr.Radio(
            [str(d) for d in range(10)], value=FIRST_CLASS, label="class y", elem_id="class-picker", scale=2
        )
        gr.Markdown(
            "A classifier p(y | x) is the simplest conditional generative model — of y given x. These three model "
            "the other way round, x given y: a conditional VAE (latent variable), a conditional GAN (implicit) and a "
            "class-conditional MADE (autoregressive, drawn pixel by pixel).",
            elem_classes="hint",
        )
    with gr.Row():
        pictures = [
            gr.Image(
                None,
                label=f"{run_name} samples of the class",
                alt_text=f"A grid of 8×8 digits that the {run_name} drew for the chosen class",
                image_mode="L",
                interactive=False,
                elem_classes="picture",
                elem_id=f"class-samples-{i}",
                buttons=["download"],
            )
            for i, run_name in enumerate(CONDITIONAL_MODELS)
        ]
    label.change(class_samples, label, pictures, show_progress="hidden", api_visibility="private")
    return label, [label, *pictures]


def class_samples(label: str = FIRST_CLASS) -> list[np.ndarray]:
    return [image_grid(run.draw(PER_CLASS, seed=0, label=int(label)).numpy(), 17) for run in conditional_runs()]


def inference_views(*factors) -> list:
    return [*render_and_read(*(factors or FIRST_FACTORS)), reader_summary()]


def show_all(kind: str, size: float, x: float, y: float, intensity: float, label: str) -> list:
    return [*inference_views(kind, size, x, y, intensity), *classifier_views(), *class_samples(label)]


def first_views() -> list:
    """The whole tab as a page first shows it, controls at their first values (``LectureOutputs.everything``)."""
    return [*FIRST_FACTORS, *inference_views(), *classifier_views(), FIRST_CLASS, *class_samples()]
