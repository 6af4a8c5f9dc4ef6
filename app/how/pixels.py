"""How it works for an autoregressive model on images: one pixel at a time, in the model's order.

p(x) = Π_k p(x_σ(k) | x_σ(<k)). **Start an image** draws one image exactly as ``sample`` does, keeping the
conditional each pixel was drawn from, a categorical over the L grey levels; **Next pixel** and **Play** then show
it pixel by pixel: the image so far, that pixel's conditional as bars (the level drawn in orange), and the order as a
map (the step at which each pixel is drawn). **Export GIF** saves the image filling in. Every autoregressive run of
this browser on the same images draws side by side, each in its own order — MADE with the natural order against
MADE with a random one, or against PixelCNN's raster scan.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.draw.figures import PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, TEMPLATE, image_grid
from app.draw.latent_figures import save_gif
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, HowView, accordion, gif_button
from app.page.session import RunView, Session

MAX_LANES = 3  # runs drawn side by side
PLAY_FRAMES = 32  # frames of Play, however many pixels the image has
PLAY_S = 0.12
INK = [[0.0, "rgb(255, 255, 255)"], [1.0, "rgb(17, 24, 39)"]]  # level 0 white paper, the top level black ink


@dataclass(frozen=True)
class Lane:
    """One run's image, drawn whole when the page starts (as ``sample`` draws it) and shown a pixel at a time: the
    levels (D,), the conditional each pixel was drawn from (D, L), and the order."""

    view: RunView
    image: np.ndarray
    conditionals: np.ndarray
    order: list[int]

    def so_far(self, drawn: int) -> np.ndarray:
        """The image with only its first ``drawn`` pixels of the order (NaN elsewhere)."""
        shown = np.full_like(self.image, np.nan)
        shown[self.order[:drawn]] = self.image[self.order[:drawn]]
        return shown


@dataclass(frozen=True)
class Drawing:
    """What the page shows: the lanes and how many pixels each has drawn so far."""

    lanes: tuple[Lane, ...]
    drawn: int

    @property
    def pixels(self) -> int:
        return len(self.lanes[0].image)


HOW = HowView(
    key="pixels",
    title="an autoregressive model, pixel by pixel",
    intro="For an autoregressive model on images (PixelCNN, MADE, NADE, the transformer): press **Start an image**, "
    "then **Next pixel** or **Play**.",
    fits=lambda view: view.data_spec.kind == "image" and view.capabilities.conditionals,
    unfit="Train or open an **autoregressive model on images** first (e.g. the gallery's *New digits from p(x)*).",
    accordion_id="how-pixels",
)


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        with gr.Row():
            start = gr.Button("Start an image", variant="primary", elem_id="pixels-start", scale=0)
            step = gr.Button("Next pixel", elem_id="pixels-next", scale=0)
            play = gr.Button("Play", elem_id="pixels-play", scale=0)
            gif_button("pixels", "The image filling in (GIF)", export_gif, [frame.state])
        plot = LivePlot(None, height=SAMPLE_HEIGHT + 60, show_label=False, elem_id="pixels-plot")
    drawing = frame.state
    start.click(start_image, session, [drawing, frame.note, plot], **QUIET)
    step.click(next_pixel, drawing, [drawing, plot], **QUIET)
    play.click(play_pixels, drawing, [drawing, plot], **QUIET)


def start_image(page: Session) -> tuple:
    view = HOW.current(page)
    if view is None:
        return None, HOW.unfit, gr.skip()
    others = [
        other
        for other in reversed(page.views.values())
        if other is not view and other.capabilities.conditionals and other.spec.dataset == view.spec.dataset
    ]
    drawing = Drawing(tuple(_lane(v) for v in [view, *others][:MAX_LANES]), drawn=0)
    if len(drawing.lanes) == 1:
        said = (
            f"{view.title} draws its {drawing.pixels} pixels in the order on the map. Train another autoregressive "
            "model on the same images (MADE with *order* > 0 draws in a random order) to see orders side by side."
        )
    else:
        said = f"{len(drawing.lanes)} runs on {view.spec.dataset}, each drawing in its own order (the maps below)."
    return drawing, said, figure(drawing)


def _lane(view: RunView) -> Lane:
    with view.run.inspecting() as model:
        image, conditionals = model.sample_step_by_step()
    return Lane(view, image.cpu().numpy(), conditionals.cpu().numpy(), view.model.order.tolist())


def next_pixel(drawing: Drawing | None) -> tuple:
    if drawing is None or drawing.drawn >= drawing.pixels:
        return gr.skip(), gr.skip()
    drawing = replace(drawing, drawn=drawing.drawn + 1)
    return drawing, figure(drawing)


def play_pixels(drawing: Drawing | None) -> Iterator[tuple]:
    if drawing is None:
        return
    per_frame = max(1, -(-(drawing.pixels - drawing.drawn) // PLAY_FRAMES))
    while drawing.drawn < drawing.pixels:
        drawing = replace(drawing, drawn=min(drawing.drawn + per_frame, drawing.pixels))
        yield drawing, figure(drawing)
        time.sleep(PLAY_S)


def export_gif(drawing: Drawing | None) -> str | None:
    """The lanes' images filling in side by side, in 24 frames."""
    if drawing is None:
        return None
    spec = drawing.lanes[0].view.data_spec
    frames = []
    for drawn in np.linspace(0, drawing.pixels, 25).round().astype(int)[1:]:
        images = np.stack([np.nan_to_num(lane.so_far(drawn)).reshape(spec.shape) for lane in drawing.lanes])
        grey = image_grid(images, spec.levels, columns=len(images), scale=24, gap=6)
        frames.append(np.repeat(grey[..., None], 3, axis=2))
    return str(save_gif(frames, "pixel-by-pixel"))


def figure(drawing: Drawing) -> go.Figure:
    lanes = drawing.lanes
    _, height, width = lanes[0].view.data_spec.shape
    levels = lanes[0].view.data_spec.levels
    columns = len(lanes) + 1
    titles = [f"#{lane.view.id} {lane.view.spec.model}: {drawing.drawn} of {drawing.pixels} pixels" for lane in lanes]
    titles += [f"#{lanes[0].view.id}: p(last pixel drawn = v | the pixels before it)"] + [
        f"#{lane.view.id}'s order" for lane in lanes
    ]
    specs = [[{} for _ in lanes] + [{"rowspan": 2}], [{} for _ in lanes] + [None]]
    fig = make_subplots(
        rows=2,
        cols=columns,
        specs=specs,
        subplot_titles=titles,
        vertical_spacing=0.12,
        horizontal_spacing=0.05,
        column_widths=[1.0] * len(lanes) + [0.9],
    )
    for col, lane in enumerate(lanes, start=1):
        order = np.empty(drawing.pixels, dtype=np.int64)
        order[lane.order] = np.arange(drawing.pixels)
        next_d = lane.order[drawing.drawn] if drawing.drawn < drawing.pixels else None
        fig.add_heatmap(
            z=lane.so_far(drawing.drawn).reshape(height, width),
            zmin=0,
            zmax=levels - 1,
            colorscale=INK,
            showscale=False,
            hovertemplate="level %{z}<extra></extra>",
            row=1,
            col=col,
        )
        fig.add_heatmap(
            z=order.reshape(height, width),
            colorscale="Viridis",
            showscale=False,
            texttemplate="%{z}" if drawing.pixels <= 64 else None,
            textfont={"size": 9},
            hovertemplate="drawn at step %{z}<extra></extra>",
            row=2,
            col=col,
        )
        if next_d is not None:
            for row in (1, 2):
                _outline(fig, divmod(next_d, width), row, col)
    if drawing.drawn > 0:
        first = lanes[0]
        last = first.order[drawing.drawn - 1]
        colors = [f"rgb{SAMPLE_COLOR}" if v == first.image[last] else PALETTE[0] for v in range(levels)]
        fig.add_bar(
            x=list(range(levels)),
            y=first.conditionals[last],
            marker={"color": colors},
            name="conditional",
            hovertemplate="level %{x}: %{y:.3f}<extra></extra>",
            row=1,
            col=columns,
        )
    fig.update_layout(
        template=TEMPLATE,
        height=SAMPLE_HEIGHT + 60,
        showlegend=False,
        margin={"t": 60},
        title={
            "text": "Drawn pixels are grey levels; the outlined pixel comes next (orange bar: the level drawn last)",
            "x": 0.02,
            "font": {"size": 13},
        },
    )
    for col in range(1, columns):
        for row in (1, 2):
            fig.update_xaxes(showticklabels=False, showgrid=False, row=row, col=col)
            fig.update_yaxes(
                showticklabels=False,
                showgrid=False,
                autorange="reversed",
                scaleanchor=_axis(row, col, columns),
                row=row,
                col=col,
            )
    fig.update_xaxes(title_text="grey level v", row=1, col=columns)
    fig.update_yaxes(title_text="probability", range=[0, 1], row=1, col=columns)
    return fig


def _axis(row: int, col: int, columns: int) -> str:
    """The x axis of subplot (row, col), as plotly names it (the bar chart takes row 1's last cell)."""
    index = (row - 1) * columns + col
    return "x" if index == 1 else f"x{index}"


def _outline(fig: go.Figure, pixel: tuple[int, int], row: int, col: int) -> None:
    r, c = pixel
    fig.add_shape(
        type="rect",
        x0=c - 0.5,
        x1=c + 0.5,
        y0=r - 0.5,
        y1=r + 0.5,
        line={"color": f"rgb{SAMPLE_COLOR}", "width": 3},
        row=row,
        col=col,
    )
