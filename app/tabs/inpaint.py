"""Inpainting: complete a partly observed test item with a model that can (``capabilities.inpainting``).

Autoregressive models draw the hidden pixels in their order; the completion is an exact draw from p(hidden | observed)
when the observed pixels come first in that order (the top rows in raster order), an approximation otherwise.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from app.draw import figures
from app.draw.live_plot import LivePlot
from app.page import views
from app.page.inputs import whole
from app.page.session import RunView, Session
from dgm_core.models.abilities import Inpainter, ability

IMAGE_MASKS = ("top half observed", "left half observed", "centre hidden", "every other pixel observed")
POINT_MASKS = ("x₁ observed",)
COMPLETIONS = 15
SCALE = 10  # screen pixels per pixel of an item: an 8×8 digit is 80 px wide


def observed_mask(kind: str, shape: tuple[int, ...]) -> Tensor:
    """A bool mask of one item's shape: True where the pixel (or coordinate) is observed."""
    if len(shape) == 1:
        return torch.tensor([True] + [False] * (shape[0] - 1))
    height, width = shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    masks = {
        "top half observed": rows < height // 2,
        "left half observed": cols < width // 2,
        "centre hidden": ~((abs(rows - (height - 1) / 2) < height / 4) & (abs(cols - (width - 1) / 2) < width / 4)),
        "every other pixel observed": (rows + cols) % 2 == 0,
    }
    return masks[kind].expand(shape)


def build_inpaint_section(session: gr.State, run_id: gr.Dropdown) -> None:
    """An accordion: pick a test item and which part is observed; see the model's completions."""
    with gr.Accordion("Missing data: complete a partly observed test item (inpainting)", open=False):
        gr.Markdown(
            "For models that can (autoregressive ones): hidden pixels are drawn in the model's order given what came "
            "before. Exact given a prefix of the order (the top half in raster order); with other masks the observed "
            "pixels later in the order are kept but not conditioned on. First the item, then what the model sees "
            "(hidden pixels in amber), then its completions.",
            elem_classes="hint",
        )
        with gr.Row():
            item = gr.Number(0, label="Test item", precision=0, minimum=0, elem_id="inpaint-item")
            mask = gr.Dropdown(list(IMAGE_MASKS + POINT_MASKS), value=IMAGE_MASKS[0], label="Observed part")
            seed = gr.Number(0, label="Seed", precision=0, minimum=0)
            button = gr.Button("Complete", elem_id="inpaint-btn")
        note = gr.Markdown("", elem_id="inpaint-note", elem_classes="hint")
        completions = LivePlot(None, show_label=False, elem_id="inpaint-image")  # a picture, or points for 2D data
    button.click(complete, [session, run_id, item, mask, seed], [completions, note], api_visibility="private")


def complete(session: Session, run_id: Any, item: Any, mask: str, seed: Any) -> tuple[Any, str]:
    """(figure, note): the completions, or only a note saying why there are none (nothing else changes)."""
    run = session.find(run_id)
    try:
        if run is None:
            raise ValueError("Train a model first, then pick it above.")
        if not run.capabilities.inpainting:
            raise ValueError(
                f"{run.spec.model} cannot complete partly observed items: its likelihood does not factor "
                "into conditionals of one part given another. Try an autoregressive model (MADE, PixelCNN …)."
            )
        index, seed = whole(item, "The test item"), whole(seed, "The seed")
        if not 0 <= index < len(run.data.test):
            raise ValueError(f"Test items are numbered 0 to {len(run.data.test) - 1}.")
    except ValueError as error:
        return gr.skip(), f"**Cannot complete:** {views.plain(error)}"
    points = run.data_spec.kind == "points2d"
    kind = POINT_MASKS[0] if points else (mask if mask in IMAGE_MASKS else IMAGE_MASKS[0])
    x = run.data.test[index : index + 1]
    observed = observed_mask(kind, run.data_spec.shape)
    with run.run.inspecting(seed) as model:
        completer = ability(model, Inpainter)
        filled = completer.inpaint(
            x.repeat(COMPLETIONS, *[1] * (x.dim() - 1)).to(run.device),
            observed.expand(COMPLETIONS, *run.data_spec.shape).to(run.device),
        ).cpu()
    said = f"Test item {index}, {COMPLETIONS} completions by #{run.id} {run.spec.model} (seed {seed})."
    if points:
        return _points_figure(run, x, filled), said
    shown = torch.cat([x, x, filled]).numpy()  # the item; what the model sees (hidden pixels amber); completions
    hidden = np.zeros(shown.shape, dtype=bool)
    hidden[1] = ~observed.numpy()
    picture = figures.masked_grid(shown, hidden, run.data_spec.levels or 256, columns=6, scale=SCALE)
    return figures.picture_figure(picture, "Item · observed (hidden pixels amber) · completions", height=240), said


def _points_figure(run: RunView, x: Tensor, filled: Tensor) -> go.Figure:
    data = run.data.test[:800].numpy()
    figure = figures.scatter_figure("x₂ drawn given the observed x₁", run.bounds, data, filled.numpy())
    figure.add_vline(x=float(x[0, 0]), line={"color": "#dc2626", "dash": "dot"})
    figure.add_scatter(
        x=x[:, 0].numpy(),
        y=x[:, 1].numpy(),
        mode="markers",
        name="the item",
        marker={"size": 12, "color": "#dc2626", "symbol": "x"},
    )
    return figure
