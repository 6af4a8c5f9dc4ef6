"""Figures and exported files for the latent explorer: pure functions of plain arrays."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from app.draw import raster
from app.draw.figures import DATA_COLOR, PALETTE, SAMPLE_COLOR, SAMPLE_HEIGHT, base_figure, points_trace

EXPORTS = Path(tempfile.gettempdir()) / "dgm-playground-exports"
GIF_FRAMES = 25


def path_figure(
    bounds: tuple[float, float, float, float], data: np.ndarray, path: np.ndarray, strip: np.ndarray, here: np.ndarray
) -> go.Figure:
    """2D data: the decoded path through data space, its evenly spaced steps, and the point at the slider."""
    x_min, x_max, y_min, y_max = bounds
    figure = base_figure("The path, decoded into data space", "x₁", "x₂", height=SAMPLE_HEIGHT)
    figure.add_trace(points_trace(data, "test data", "#6b7280", 0.25))
    figure.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines", name="path", line={"color": PALETTE[1]}))
    figure.add_trace(
        go.Scatter(x=strip[:, 0], y=strip[:, 1], mode="markers", name="steps", marker={"color": PALETTE[1], "size": 7})
    )
    figure.add_trace(
        go.Scatter(x=here[:, 0], y=here[:, 1], mode="markers", name="slider", marker={"color": PALETTE[4], "size": 14})
    )
    figure.update_xaxes(range=[x_min, x_max], showgrid=False, constrain="domain")
    figure.update_yaxes(range=[y_min, y_max], showgrid=False, scaleanchor="x", scaleratio=1, constrain="domain")
    return figure


def warped_grid_figure(
    title: str, bounds: tuple[float, float, float, float], data: np.ndarray, grid: np.ndarray, side: int
) -> go.Figure:
    """2D data: a square grid of latents decoded into data space, drawn as its (warped) grid lines."""
    x_min, x_max, y_min, y_max = bounds
    figure = base_figure(title, "x₁", "x₂", height=SAMPLE_HEIGHT)
    figure.add_trace(points_trace(data, "test data", "#6b7280", 0.25))
    cells = grid.reshape(side, side, 2)
    for lines, name in ((cells, "rows of the latent grid"), (cells.transpose(1, 0, 2), "columns")):
        xs = np.concatenate([np.append(line[:, 0], np.nan) for line in lines])
        ys = np.concatenate([np.append(line[:, 1], np.nan) for line in lines])
        color = PALETTE[0] if name.startswith("rows") else PALETTE[1]
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, line={"color": color, "width": 1}))
    figure.update_xaxes(range=[x_min, x_max], showgrid=False, constrain="domain")
    figure.update_yaxes(range=[y_min, y_max], showgrid=False, scaleanchor="x", scaleratio=1, constrain="domain")
    return figure


def overlay_figure(
    coords: np.ndarray, labels: np.ndarray | None, label_name: str, extent: Sequence[float], axes: tuple[str, str]
) -> go.Figure:
    """The encoded test set in the map's coordinates, coloured by a label or factor; the map's window outlined."""
    figure = base_figure("Encoded test items, in the map's coordinates", *axes, height=SAMPLE_HEIGHT)
    marker: dict = {"size": 4, "opacity": 0.7}
    if labels is not None:
        marker |= {"color": labels.astype(np.float32), "colorscale": "Turbo", "showscale": True}
        marker["colorbar"] = {"title": {"text": label_name}, "thickness": 12}
    figure.add_trace(
        go.Scatter(x=coords[:, 0], y=coords[:, 1], mode="markers", marker=marker, name="test items", showlegend=False)
    )
    u0, u1, v0, v1 = extent
    figure.add_shape(type="rect", x0=u0, x1=u1, y0=v0, y1=v1, line={"color": "#6b7280", "dash": "dot"})
    figure.update_yaxes(scaleanchor="x", scaleratio=1)
    return figure


def correlation_figure(table: np.ndarray, factors: list[str]) -> go.Figure:
    """|Spearman correlation| of each latent dimension (rows) with each generative factor (columns)."""
    figure = base_figure(
        "Which latent dimension tracks which factor (|rank correlation|)", "factor", "latent dimension"
    )
    figure.add_trace(
        go.Heatmap(
            z=table.astype(np.float32),
            x=factors,
            y=[f"z{i + 1}" for i in range(len(table))],
            zmin=0,
            zmax=1,
            colorscale="Blues",
            texttemplate="%{z:.2f}",
            hovertemplate="%{y} ~ %{x}: %{z:.2f}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    return figure


def points_picture(
    bounds: tuple[float, float, float, float], data: np.ndarray, path: np.ndarray, here: np.ndarray, size: int = 360
) -> np.ndarray:
    """A raster frame for 2D data (for GIF export): data in grey, the path in orange, the current point in red."""
    x_min, x_max, y_min, y_max = bounds
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)

    def pixel(points: np.ndarray) -> list[tuple[float, float]]:
        u = (points[:, 0] - x_min) / (x_max - x_min) * (size - 1)
        v = (y_max - points[:, 1]) / (y_max - y_min) * (size - 1)
        return list(zip(u.tolist(), v.tolist()))

    for u, v in pixel(data):
        draw.point((u, v), fill=(170, 170, 170))
    draw.line(pixel(path), fill=(234, 88, 12), width=2)
    for u, v in pixel(here):
        draw.ellipse((u - 6, v - 6, u + 6, v + 6), fill=(220, 38, 38))
    return np.asarray(image)


def save_gif(frames: Sequence[np.ndarray], name: str, seconds: float = 3.0) -> Path:
    """Frames (uint8 arrays) as an animated GIF that goes there and back, looping."""
    pictures = [Image.fromarray(frame) for frame in frames]
    loop = pictures + pictures[-2:0:-1]
    path = _export_path(name, ".gif")
    duration = max(20, int(1000 * seconds / len(loop)))
    loop[0].save(path, save_all=True, append_images=loop[1:], duration=duration, loop=0)
    return path


def points_gif(bounds: raster.Bounds, data: np.ndarray, stages: Sequence[np.ndarray], name: str) -> Path:
    """Points moving over stages (chains from noise to data, say) as a GIF over the data in grey: at most
    ``GIF_FRAMES`` evenly spaced stages, the first and last among them."""
    background = raster.Cloud(data, DATA_COLOR, 0.3, 1.2)
    chosen = np.linspace(0, len(stages) - 1, min(len(stages), GIF_FRAMES)).round().astype(int)
    frames = [
        raster.points_picture(bounds, [background, raster.Cloud(stages[i], SAMPLE_COLOR, 0.9, 2.2)], size=360)
        for i in chosen
    ]
    return save_gif(frames, name, seconds=0.25 * len(frames))


def save_png(picture: np.ndarray, name: str) -> Path:
    path = _export_path(name, ".png")
    Image.fromarray(picture).save(path)
    return path


def _export_path(name: str, suffix: str) -> Path:
    EXPORTS.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkstemp(prefix=f"{name}-", suffix=suffix, dir=EXPORTS)[1])
