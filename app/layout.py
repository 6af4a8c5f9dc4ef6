"""The whole page: a short introduction, the tabs, and an About section. ``build`` makes it; ``launch_options``
gives the theme and style sheet, which Gradio 6 takes at launch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import torch

from app.compare_tab import build_compare_tab
from app.latent_tab import build_latent_tab
from app.likelihood_tab import build_likelihood_tab
from app.runs_tab import build_runs_tab
from app.session import Session
from app.train_tab import build_train_tab

STYLE = Path(__file__).resolve().parent.parent / "assets" / "style.css"

TITLE = "# DGM Playground"
INTRO = """
Train small deep generative models — autoregressive, flows, latent-variable, adversarial, diffusion, energy-based —
on toy 2D densities, 8×8 digits and 16×16 shapes, and watch them learn: live samples, the model's density, and honest
held-out likelihoods. Then compare families, inspect likelihoods item by item, and walk latent spaces.
"""

ABOUT = """
**What you see while training**

- **Samples** — for 2D data, orange dots are fresh samples from the model, grey dots are held-out data, and the
  blue heatmap is the model's log density log p(x) (only for models that have a likelihood). For digits, a grid
  of 64 sampled images.
- **Training loss** — the objective the model minimises on training batches (for likelihood models, nats per
  dimension; a GAN shows both players' losses).
- **Held-out NLL** — the negative log-likelihood of validation and test data in bits per dimension: lower is
  better. Dashed curves marked *(bound)* are upper bounds on the NLL (an ELBO, or a dequantization bound), so the
  true NLL is at most that. The dotted *baseline* is the simplest honest model (one Gaussian for points,
  independent pixels for images); a model should beat it. For 2D data, *data entropy (floor)* is the entropy of
  the process that generated the data: no honest test NLL can go below it.
- **GANs** have no likelihood: they are compared by MMD, a two-sample test between samples and held-out data
  (lower is better).
- **Stop** keeps the weights that scored best on validation; **Continue** trains the same model further; **Train**
  always starts a fresh model. If training diverges (the loss becomes NaN), the last good weights are kept.

**The other tabs** work on every model trained in this browser tab (its *runs*): **Compare** trains several
families under one budget and scores all of them by MMD (and by likelihood where they have one); **Likelihood**
overlays the curves of all runs and scores single items, including out-of-distribution ones; **Latent explorer**
walks a model's latent space (flows, VAEs, GANs) and completes partly hidden items (autoregressive models); **Runs**
reopens, deletes, downloads and uploads them.

bits/dim = NLL in nats / (number of dimensions × ln 2). Everything runs on your own server; each browser tab has
its own model.
"""


def build(device: torch.device) -> gr.Blocks:
    """The app's Blocks, training on ``device``."""
    with gr.Blocks(title="DGM Playground", analytics_enabled=False) as demo:
        with gr.Row(elem_id="header", equal_height=True):
            gr.Markdown(TITLE, elem_id="title")
            lecture = gr.Checkbox(
                False,
                label="Lecture view",
                info="Large text for a projector; or open the page with ?lecture=1",
                elem_id="lecture-toggle",
                container=False,
                scale=0,
                min_width=240,
            )
        gr.Markdown(INTRO, elem_id="intro")
        session = gr.State(Session)  # a factory: Gradio makes one Session per browser tab, shared by all the tabs
        with gr.Tabs():
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                train_outputs = build_train_tab(device, session)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as tab:
                build_compare_tab(device, session, tab)
            with gr.Tab("Likelihood", id="likelihood", elem_id="tab-likelihood") as tab:
                build_likelihood_tab(session, tab)
            with gr.Tab("Latent explorer", id="latent", elem_id="tab-latent") as tab:
                build_latent_tab(session, tab)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as tab:
                build_runs_tab(device, session, tab, train_outputs)
        with gr.Accordion("About: what am I looking at?", open=False, elem_id="about"):
            gr.Markdown(ABOUT)
        lecture.change(None, lecture, None, js=LECTURE_JS)
        demo.load(None, None, lecture, js=LECTURE_FROM_URL)
    return demo


# The lecture view is a class on <body>: the style sheet enlarges text and hides what a projector does not need, and
# every LivePlot redraws with fonts of at least 16 px.
LECTURE_JS = """(on) => {
  document.body.classList.toggle('lecture', Boolean(on));
  const plots = window.__livePlots || new Set();
  plots.forEach((plot) => (plot.isConnected ? plot.redraw() : plots.delete(plot)));
  return [];
}"""
LECTURE_FROM_URL = "() => new URLSearchParams(window.location.search).get('lecture') === '1'"


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: theme, style sheet, and no per-browser run history (each streamed
    figure would be stored)."""
    return {
        "theme": gr.themes.Soft(primary_hue="blue", neutral_hue="slate"),
        "css_paths": [STYLE],
        "run_history": False,
    }
