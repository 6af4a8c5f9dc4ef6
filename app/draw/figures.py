"""Plotly figures and image arrays for the pages: pure functions of plain arrays, no model math.

Arrays go to plotly as float32 (plotly sends them base64-encoded, half the bytes of float64); figures use a small
template so that each streamed update stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.draw import raster
from app.draw.raster import Bounds, Cloud

HEIGHT = 330
SAMPLE_HEIGHT = 420
PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563"]
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "Inter, system-ui, sans-serif", "size": 13, "color": "#111827"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": PALETTE,
        "xaxis": {"gridcolor": "#e5e7eb", "zeroline": False, "linecolor": "#9ca3af", "ticks": "outside"},
        "yaxis": {"gridcolor": "#e5e7eb", "zeroline": False, "linecolor": "#9ca3af", "ticks": "outside"},
        # below the plot, never over the title
        "legend": {"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.0, "x": 0.0},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 100},
        # titles start at the left: plotly's toolbar appears at the top right (on hover) and once covered them
        "title": {"x": 0.0, "xref": "paper", "xanchor": "left"},
    }
)
MAX_CURVE_POINTS = 400
DATA_COLOR, SAMPLE_COLOR = (107, 114, 128), (234, 88, 12)
SAMPLE_OUTLINE = (17, 24, 39)  # samples are ringed, data are not: told apart without telling grey from orange
ARROW_COLOR = "rgb(17, 24, 39)"


@dataclass(frozen=True)
class Series:
    """One curve: its legend name, x and y values, and whether it is drawn dashed (bounds are)."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False


@dataclass(frozen=True)
class Reference:
    """A horizontal reference line with a label, e.g. a baseline or the data's entropy."""

    label: str
    value: float


def base_figure(title: str, x_title: str, y_title: str, height: int = HEIGHT) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.02, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=height,
        uirevision="keep",  # keep the user's zoom across streamed updates
    )
    return figure


def picture_figure(picture: np.ndarray, title: str, height: int = SAMPLE_HEIGHT) -> go.Figure:
    """A picture (uint8, H×W grey or H×W×3) as a figure, so that one component shows a plot or a picture: the picture
    fills the plot area at its own aspect ratio (pixels stay square), axes hidden, the title saying what it shows; the
    toolbar's camera downloads it."""
    return pictures_figure([picture], [""], title, height)


def pictures_figure(pictures: list[np.ndarray], titles: list[str], title: str, height: int = 360) -> go.Figure:
    """Pictures side by side, one panel each with its own title (``picture_figure``: one alone)."""
    figure = make_subplots(rows=1, cols=len(pictures), subplot_titles=titles) if len(pictures) > 1 else go.Figure()
    figure.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.02, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        height=height,
        margin={"l": 10, "r": 10, "t": 56 if len(pictures) > 1 else 44, "b": 10},
    )
    for panel, picture in enumerate(pictures, start=1):
        rows, columns = picture.shape[:2]
        suffix = "" if panel == 1 else str(panel)
        figure.update_layout(
            {
                f"xaxis{suffix}": {"range": [0, columns], "visible": False, "fixedrange": True},
                f"yaxis{suffix}": {
                    "range": [0, rows],
                    "visible": False,
                    "fixedrange": True,
                    "scaleanchor": f"x{suffix}",
                },
            }
        )
        figure.add_layout_image(
            source=raster.png_data_uri(picture),
            xref=f"x{suffix}",
            yref=f"y{suffix}",
            x=0,
            y=rows,
            sizex=columns,
            sizey=rows,
            sizing="stretch",
            layer="below",
        )
    return figure


def binned(x: Sequence[float], y: Sequence[float], max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Average consecutive points into at most ``max_points`` bins (a readable curve, a light update)."""
    xs, ys = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if len(xs) <= max_points:
        return xs, ys
    edges = np.linspace(0, len(xs), max_points + 1).astype(int)
    counts = np.diff(edges).astype(np.float32)
    return np.add.reduceat(xs, edges[:-1]) / counts, np.add.reduceat(ys, edges[:-1]) / counts


def _y_range(values: np.ndarray, references: Sequence[float]) -> list[float] | None:
    """A y range that shows the references and the bulk of the curve, not the first huge values."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    low = min([float(finite.min()), *references])
    high = max([float(np.percentile(finite, 90)), *references])
    pad = 0.08 * max(high - low, 1e-3)
    return [low - pad, high + pad]


def curve_figure(
    title: str,
    y_title: str,
    series: Sequence[Series],
    references: Sequence[Reference] = (),
    note: str = "",
    x_title: str = "training step",
) -> go.Figure:
    """Curves against training steps (or ``x_title``), with labelled horizontal reference lines."""
    figure = base_figure(title, x_title, y_title)
    for i, item in enumerate(series):
        x, y = binned(item.x, item.y)
        line = {"color": PALETTE[i % len(PALETTE)], "width": 2, "dash": "dash" if item.dashed else "solid"}
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=item.name, line=line))
    for reference in references:
        figure.add_hline(
            y=reference.value,
            line={"color": "#6b7280", "width": 1.5, "dash": "dot"},
            annotation_text=reference.label,
            annotation_position="bottom left",
            annotation_font={"size": 11, "color": "#4b5563"},
        )
    # name even a lone curve; a narrow figure stacks its legend, so leave room for one line per curve below the axis
    legend_room = 22 * len(series)
    figure.update_layout(showlegend=bool(series), height=HEIGHT + legend_room, margin_b=80 + legend_room)
    values = np.concatenate([np.asarray(s.y, dtype=np.float32) for s in series]) if series else np.zeros(0)
    figure.update_yaxes(range=_y_range(values, [r.value for r in references]))
    if not series:
        figure.update_xaxes(showticklabels=False, ticks="")
        figure.update_yaxes(showticklabels=False, ticks="")
    if note:
        figure.add_annotation(
            text=note, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 13, "color": "#6b7280"}
        )
    return figure


def scatter_figure(
    title: str,
    bounds: Bounds,
    data: np.ndarray,
    samples: np.ndarray | None = None,
    log_density: np.ndarray | None = None,
    density_label: str = "log p",
    density_range: tuple[float, float] | None = None,
    subtitle: str = "",
) -> go.Figure:
    """2D samples (if any) over faint data points, over the model's log density as a heatmap (if given)."""
    figure = base_figure(title, "x₁", "x₂", height=SAMPLE_HEIGHT)
    if subtitle:
        figure.update_layout(title_subtitle_text=subtitle, margin_t=72)
    add_points_panel(
        figure, bounds, data, samples, log_density, density_label=density_label, density_range=density_range
    )
    return figure


def add_points_panel(
    figure: go.Figure,
    bounds: Bounds,
    data: np.ndarray,
    samples: np.ndarray | None = None,
    log_density: np.ndarray | None = None,
    panel: int = 1,
    density_label: str = "log p",
    density_range: tuple[float, float] | None = None,
    colorbar: bool = True,
) -> None:
    """Draw data, samples and log density into the axes of subplot ``panel`` as one server-side picture, with
    legend entries and a colour bar (on the first panel, unless not ``colorbar``) so the picture keeps every label
    of a plotly scatter. The colours span ``density_range``, by default the 8 nats below the highest log density."""
    suffix = "" if panel == 1 else str(panel)
    x_min, x_max, y_min, y_max = bounds
    if log_density is None:
        density_range = None
    elif density_range is None and np.isfinite(log_density).any():
        top = float(np.nanmax(log_density[np.isfinite(log_density)]))
        density_range = (top - 8.0, top)
    clouds = [Cloud(data, DATA_COLOR, 0.35)]
    if samples is not None:
        clouds.append(Cloud(samples, SAMPLE_COLOR, 0.8, outline=SAMPLE_OUTLINE))
    picture = raster.points_picture(bounds, clouds, log_density, density_range)
    figure.add_layout_image(
        source=raster.png_data_uri(picture),
        xref=f"x{suffix}",
        yref=f"y{suffix}",
        x=x_min,
        y=y_max,
        sizex=x_max - x_min,
        sizey=y_max - y_min,
        sizing="stretch",
        layer="below",
    )
    legend = panel == 1
    if density_range is not None:
        low, high = density_range
        scale = {"title": {"text": density_label, "side": "right"}, "thickness": 12}
        marker = {"color": [low], "cmin": low, "cmax": high, "colorscale": raster.BLUES_SCALE}
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name="model log density",
                showlegend=False,
                marker=marker | {"showscale": legend and colorbar, "colorbar": scale},
                xaxis=f"x{suffix}",
                yaxis=f"y{suffix}",
            )
        )
    figure.add_trace(legend_entry("data", DATA_COLOR, legend, suffix))
    if samples is not None:
        figure.add_trace(legend_entry("model samples", SAMPLE_COLOR, legend, suffix, outline=SAMPLE_OUTLINE))
    figure.update_layout(
        {
            f"xaxis{suffix}": {"range": [x_min, x_max], "showgrid": False, "constrain": "domain"},
            f"yaxis{suffix}": {
                "range": [y_min, y_max],
                "showgrid": False,
                "scaleanchor": f"x{suffix}",
                "scaleratio": 1,
                "constrain": "domain",
            },
        }
    )


def legend_entry(
    name: str,
    color: tuple[int, int, int],
    shown: bool = True,
    axes: str = "",
    outline: tuple[int, int, int] | None = None,
) -> go.Scatter:
    """A legend item for points drawn in a picture (the trace itself draws nothing), ringed as they are."""
    ring = {"line": {"color": f"rgb{outline}", "width": 1.5}} if outline is not None else {}
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=name,
        showlegend=shown,
        marker={"size": 9, "color": f"rgb{color}"} | ring,
        xaxis=f"x{axes}",
        yaxis=f"y{axes}",
    )


def points_trace(points: np.ndarray, name: str, color: str, opacity: float) -> go.Scatter:
    points = np.asarray(points, dtype=np.float32)
    return go.Scatter(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        name=name,
        marker={"size": 3, "color": color, "opacity": opacity},
        hoverinfo="skip",
    )


HIDDEN_RGB = (250, 200, 120)  # hidden (missing) pixels, painted amber: never mistaken for white paper


def masked_grid(images: np.ndarray, hidden: np.ndarray, levels: int, columns: int = 8, scale: int = 5) -> np.ndarray:
    """``image_grid`` in colour, with the pixels where ``hidden`` (a bool array of the images' shape) painted
    amber: what a model was not shown."""
    grid = image_grid(images, levels, columns=columns, scale=scale)
    mask = image_grid(hidden.astype(np.float32) * (levels - 1), levels, columns=columns, scale=scale) < 128
    picture = np.repeat(grid[:, :, None], 3, axis=2)
    picture[mask] = HIDDEN_RGB
    return picture


def image_grid(images: np.ndarray, levels: int, columns: int = 8, scale: int = 5, gap: int = 2) -> np.ndarray:
    """Images of integer levels (N, C, H, W) as one uint8 picture: dark ink on white paper, upscaled, with gaps."""
    images = np.asarray(images, dtype=np.float32)
    count, channels, height, width = images.shape
    rows = -(-count // columns)
    ink = 255.0 * (1.0 - np.clip(images, 0, levels - 1) / max(levels - 1, 1))
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full((rows * (cell_h + gap) + gap, columns * (cell_w + gap) + gap, channels), 230.0, np.float32)
    for i, image in enumerate(ink):
        top, left = gap + (i // columns) * (cell_h + gap), gap + (i % columns) * (cell_w + gap)
        big = image.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)
        canvas[top : top + cell_h, left : left + cell_w] = big
    picture = canvas.round().astype(np.uint8)
    return picture[:, :, 0] if channels == 1 else picture


def add_arrows(
    figure: go.Figure, starts: np.ndarray, directions: np.ndarray, bounds: Bounds, name: str, **subplot: int
) -> None:
    """A segment from each start point (N, 2) along its direction, the longest 7 % of the window's width (in the
    ``subplot``'s axes, given as row=…, col=…, when the figure has several)."""
    x_min, x_max = bounds[:2]
    scale = 0.07 * (x_max - x_min) / max(float(np.linalg.norm(directions, axis=1).max(initial=0.0)), 1e-12)
    ends = starts + scale * directions
    gaps = np.full(len(starts), np.nan)
    figure.add_scatter(
        x=np.column_stack([starts[:, 0], ends[:, 0], gaps]).ravel(),
        y=np.column_stack([starts[:, 1], ends[:, 1], gaps]).ravel(),
        mode="lines",
        line={"color": ARROW_COLOR, "width": 1.3},
        name=name,
        hoverinfo="skip",
        **subplot,
    )
    figure.add_scatter(
        x=ends[:, 0],
        y=ends[:, 1],
        mode="markers",
        marker={"color": ARROW_COLOR, "size": 3},
        showlegend=False,
        hoverinfo="skip",
        **subplot,
    )
