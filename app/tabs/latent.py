"""The Latent explorer tab: interpolate between two latents, traverse each dimension, map the decoded manifold.

Works for any run whose model has a latent space (flows, VAEs, GANs ...); others get a sentence saying why not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import gradio as gr
import numpy as np

from app.draw import figures, latent_figures
from app.draw.live_plot import LivePlot
from app.page import views
from app.page.inputs import whole
from app.page.pickers import run_picker, tab_runs
from app.page.session import DATA_POINTS_SHOWN, RunView, Session
from app.tabs import latent_explorer
from app.tabs.latent_explorer import Endpoints, LatentState

PATH_POINTS = 64  # decoded points drawing a path through 2D data space
GIF_FRAMES = 24
ITEM_SCALE = 224  # screen pixels across one decoded item
NO_RUN = "Train a model first (Train or Compare tab), then pick it here."


def build_latent_tab(session: gr.State, tab: gr.Tab) -> gr.Dropdown:
    """The tab; returns its run picker (setting it draws that run)."""
    state = gr.State(LatentState())  # this page's path through the latent space (deep-copied for each page)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            run_id = run_picker("latent-run")
            info = gr.Markdown(NO_RUN, elem_id="latent-info", elem_classes="card")
            source = gr.Radio(
                ["random latents", "two test items"],
                value="random latents",
                label="Endpoints",
                elem_id="latent-source",
                info="Two prior draws, or two real test items mapped into the latent space.",
            )
            with gr.Row():
                first = gr.Number(0, label="Item A", precision=0, minimum=0, elem_id="latent-a")
                second = gr.Number(1, label="Item B", precision=0, minimum=0, elem_id="latent-b")
                seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="latent-seed")
            path = gr.Radio(["slerp", "linear"], value="slerp", label="Path", elem_id="latent-path")
            count = gr.Slider(3, 16, value=8, step=1, label="Steps in the strip", elem_id="latent-count")
            klass = gr.Dropdown(
                [],
                label="Class",
                visible=False,
                elem_id="latent-class",
                info="A conditional model decodes every latent for this one class.",
            )
            set_btn = gr.Button("Set endpoints", variant="primary", elem_id="latent-set")
            gr.Markdown(latent_explorer.SLERP_NOTE, elem_classes="hint")
        with gr.Column(scale=2, min_width=480):
            note = gr.Markdown("", elem_id="latent-note", elem_classes="status")
            slider = gr.Slider(
                0, 1, value=0.5, step=0.01, label="Position along the path (0 = A, 1 = B)", elem_id="latent-slider"
            )
            here = LivePlot(None, show_label=False, elem_id="latent-image")  # the decoded item, or the 2D path
            strip = gr.Image(
                None,
                elem_classes="picture",
                label="Evenly spaced steps from A to B",
                alt_text="A strip of decoded items at evenly spaced steps along the path from A to B",
                image_mode="L",
                interactive=False,
                elem_id="latent-strip",
                buttons=["download"],
            )
            with gr.Row():
                gif_btn = gr.Button("Export GIF", elem_id="latent-gif", min_width=80)
                png_btn = gr.Button("Export PNG strip", elem_id="latent-png", min_width=80)
            exported = gr.File(
                label="Exported file", elem_id="latent-file", interactive=False, height=90, visible=False
            )
    with gr.Accordion("Traverse: vary each latent dimension around point A", open=False):
        with gr.Row():
            values = gr.Slider(3, 11, value=7, step=1, label="Values per dimension")
            spread = gr.Slider(
                0.5,
                4,
                value=2.5,
                step=0.5,
                label="Spread (± in latent units)",
                info="1 is one standard deviation of a N(0, I) prior.",
            )
            traverse_btn = gr.Button("Traverse", elem_id="latent-traverse-btn")
        traversed = LivePlot(None, show_label=False, elem_id="latent-traverse")
    with gr.Accordion("Map: the decoded manifold, and where the test set lands", open=False):
        gr.Markdown(
            "A 2-dimensional latent is mapped on a grid holding 99 % of its prior's draws (±3 for N(0, I)); a "
            "larger one on the plane through the latents of three test items (C, D, E). Beside it, the encoded "
            "test items in the same coordinates, coloured by a label or generative factor.",
            elem_classes="hint",
        )
        with gr.Row():
            corners = [gr.Number(i, label=f"Item {name}", precision=0, minimum=0) for i, name in enumerate("CDE")]
            colour = gr.Dropdown([], label="Colour by", elem_id="latent-colour")
            map_btn = gr.Button("Map", elem_id="latent-map-btn")
        with gr.Row():
            mapped = LivePlot(None, show_label=False, elem_id="latent-map")
            overlay_plot = LivePlot(None, show_label=False)
        factor_plot = LivePlot(None, show_label=False, visible=False, elem_id="latent-factors")

    quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
    where = LatentView(info, colour, klass, note, here, strip, traversed, mapped, overlay_plot, factor_plot)
    view = [note, here, strip]
    tab.select(tab_runs, [session, run_id], run_id, **quick)
    run_id.change(partial(on_run, where), [session, state, run_id], where.all(), **quick)
    klass.input(partial(set_class, where), [session, state, run_id, klass, path, count, slider], view, **quick)
    set_btn.click(
        partial(set_endpoints, where),
        [session, state, run_id, source, first, second, seed, path, count, slider, klass],
        [*view, klass],
        api_name="latent_endpoints",
    )
    for control in (path, count):
        control.change(partial(redraw, where), [session, state, run_id, path, count, slider], view, **quick)
    slider.input(
        move,
        [session, state, run_id, path, slider],
        here,
        api_name="latent_move",
        trigger_mode="always_last",
        concurrency_limit=None,
        show_progress="hidden",
    )

    def gif(*inputs: Any) -> dict:
        return views.shown_file(export_gif(*inputs))

    def png(*inputs: Any) -> dict:
        return views.shown_file(export_png(*inputs))

    gif_btn.click(gif, [session, state, run_id, path], exported, api_visibility="private")
    png_btn.click(png, [session, state, run_id, path, count], exported, api_visibility="private")
    traverse_btn.click(traverse, [session, state, run_id, values, spread], traversed, api_visibility="private")
    map_btn.click(
        draw_map,
        [session, state, run_id, *corners, colour],
        [mapped, overlay_plot, factor_plot],
        api_visibility="private",
    )

    # --- events -------------------------------------------------------------------------------------------------------
    return run_id


@dataclass(frozen=True)
class LatentView:
    """What the Latent explorer's handlers fill, by name: their answers are dicts keyed by these components."""

    info: Any  # what the run's latent space is
    colour: Any  # the map's "colour by" picker
    klass: Any  # a conditional model's class
    note: Any
    here: Any  # the point at the slider: its decoded item, or the 2D path figure
    strip: Any  # evenly spaced steps from A to B (images)
    traversed: Any
    mapped: Any
    overlay: Any
    factors: Any

    def all(self) -> list:
        return [getattr(self, field.name) for field in fields(self)]


def _run(session: Session, run_id: Any) -> RunView:
    run = session.find(run_id)
    if run is None:
        raise gr.Error(NO_RUN)
    if not latent_explorer.has_latent(run):
        raise gr.Error(latent_explorer.explains(run).replace("**", ""))
    return run


def on_run(where: LatentView, session: Session, state: LatentState, run_id: Any) -> dict:
    """A new run picked: explain its latent space, start from two random latents, and clear the previous run's
    traversal and map."""
    run = session.find(run_id)
    cleared = dict.fromkeys((where.traversed, where.mapped, where.overlay, where.factors), gr.update(value=None))
    blank = {where.note: "", where.here: None, where.strip: gr.update(value=None, visible=True)}
    if run is None:
        no_class = gr.update(visible=False)
        return (
            {where.info: NO_RUN, where.colour: gr.update(choices=[], value=None), where.klass: no_class}
            | blank
            | cleared
        )
    labels = latent_explorer.label_options(run)
    classes = latent_explorer.class_choices(run)
    shown = {
        where.info: latent_explorer.explains(run),
        where.colour: gr.update(choices=labels, value=labels[0] if labels else None),
        where.klass: gr.update(choices=classes, value=classes[0][1] if classes else None, visible=bool(classes)),
    }
    if not latent_explorer.has_latent(run):
        return shown | blank | cleared
    with run.run.lock:
        state.endpoints = latent_explorer.choose_endpoints(run, "random latents", 0, 1, seed=0)
        return shown | _view(where, state, run, "slerp", 8, 0.5) | cleared


def set_class(
    where: LatentView, session: Session, state: LatentState, run_id: Any, label: Any, path: str, count: Any, t: float
) -> dict:
    """A conditional model's class changed: decode the same path for the new class."""
    run = session.find(run_id)
    ends = _ends(state, run) if latent_explorer.has_latent(run) else None
    if ends is None or label is None:
        return {}
    with run.run.lock:
        ends.label = int(label)
        return _view(where, state, run, path, int(count), t)


def set_endpoints(
    where: LatentView,
    session: Session,
    state: LatentState,
    run_id: Any,
    source: str,
    first: Any,
    second: Any,
    seed: Any,
    path: str,
    count: Any,
    t: float,
    label: Any,
) -> dict:
    """New endpoints; a conditional model keeps the picked class for prior draws and takes item A's for items."""
    run = _run(session, run_id)
    try:
        a, b, s = whole(first, "Item A"), whole(second, "Item B"), whole(seed, "The seed")
        with run.run.lock:
            ends = state.endpoints = latent_explorer.choose_endpoints(run, source, a, b, s)
            if ends.label is not None and source == "random latents" and label is not None:
                ends.label = int(label)
            klass = {} if ends.label is None else {where.klass: ends.label}
            return _view(where, state, run, path, int(count), t) | klass
    except ValueError as error:
        raise gr.Error(str(error)) from None


def redraw(
    where: LatentView, session: Session, state: LatentState, run_id: Any, path: str, count: Any, t: float
) -> dict:
    run = session.find(run_id)
    if not latent_explorer.has_latent(run) or _ends(state, run) is None:
        return {}
    with run.run.lock:
        return _view(where, state, run, path, int(count), t)


def move(session: Session, state: LatentState, run_id: Any, path: str, t: float) -> Any:
    """The slider moved: decode the one point there (and, for 2D data, redraw the path figure)."""
    run = session.find(run_id)
    ends = _ends(state, run) if latent_explorer.has_latent(run) else None
    if ends is None:
        return gr.skip()
    with run.run.lock:
        return _at(run, ends, path, t, count=8)


def _ends(state: LatentState, run: RunView | None) -> Endpoints | None:
    ends = state.endpoints
    return ends if run is not None and ends is not None and ends.run_id == run.id else None


def _view(where: LatentView, state: LatentState, run: RunView, path: str, count: int, t: float) -> dict:
    """The note, the point at ``t`` and (for images) the strip of evenly spaced steps from A to B."""
    ends = state.endpoints
    shown = {where.note: f"From A to B: {ends.note}. Path: {path}.", where.here: _at(run, ends, path, t, count)}
    if run.data_spec.kind == "points2d":  # the path figure shows the steps too: no strip
        return shown | {where.strip: gr.update(value=None, visible=False)}
    strip = latent_explorer.picture(run, latent_explorer.decoded_path(run, ends, count, path), columns=count)
    return shown | {where.strip: gr.update(value=strip, visible=True)}


def _at(run: RunView, ends: Endpoints, path: str, t: float, count: int) -> Any:
    """The point at ``t``: its decoded image, or for 2D data the path figure with the point on it."""
    point = latent_explorer.latent_tools.path_point(ends.start, ends.end, float(t), path)
    if run.data_spec.kind != "points2d":
        item = latent_explorer.decode(run, point, ends.label)
        picture = latent_explorer.picture(run, item, columns=1, scale=ITEM_SCALE)
        return figures.picture_figure(picture, f"Decoded at {float(t):.2f} of the way from A to B", height=280)
    line, steps = (
        latent_explorer.decoded_path(run, ends, PATH_POINTS, path),
        latent_explorer.decoded_path(run, ends, count, path),
    )
    figure = latent_figures.path_figure(
        run.bounds, _data(run), line, steps, latent_explorer.decode(run, point, ends.label)
    )
    return figure


def _data(run: RunView) -> np.ndarray:
    return run.data.test[:DATA_POINTS_SHOWN].numpy()


def export_gif(session: Session, state: LatentState, run_id: Any, path: str) -> str:
    """The path as an animated GIF (A → B → A), one frame per evenly spaced step."""
    run = _run(session, run_id)
    with run.run.lock:
        ends = _require_ends(state, run)
        items = latent_explorer.decode(run, latent_explorer.path_latents(ends, GIF_FRAMES, path), ends.label)
        if run.data_spec.kind == "points2d":
            line = latent_explorer.decode(run, latent_explorer.path_latents(ends, PATH_POINTS, path), ends.label)
            frames = [latent_figures.points_picture(run.bounds, _data(run), line, item[None]) for item in items]
        else:
            frames = [latent_explorer.picture(run, item[None], columns=1, scale=ITEM_SCALE) for item in items]
    return str(latent_figures.save_gif(frames, f"interpolation-run{run.id}"))


def export_png(session: Session, state: LatentState, run_id: Any, path: str, count: Any) -> str:
    run = _run(session, run_id)
    with run.run.lock:
        ends = _require_ends(state, run)
        items = latent_explorer.decode(run, latent_explorer.path_latents(ends, int(count), path), ends.label)
    if run.data_spec.kind == "points2d":
        line = latent_explorer.decode(run, latent_explorer.path_latents(ends, PATH_POINTS, path), ends.label)
        picture = latent_figures.points_picture(run.bounds, _data(run), line, items)
    else:
        picture = latent_explorer.picture(run, items, columns=int(count))
    return str(latent_figures.save_png(picture, f"interpolation-run{run.id}"))


def _require_ends(state: LatentState, run: RunView) -> Endpoints:
    ends = _ends(state, run)
    if ends is None:
        raise gr.Error("Set the endpoints first.")
    return ends


def traverse(session: Session, state: LatentState, run_id: Any, values: Any, spread: float) -> Any:
    run = _run(session, run_id)
    with run.run.lock:
        ends = _require_ends(state, run)
        latents, dims = latent_explorer.traversal(run, ends, int(values), float(spread))
        items = latent_explorer.decode(run, latents, ends.label)
    if run.data_spec.kind == "points2d":
        grid = items.reshape(len(dims), int(values), 2)
        figure = latent_figures.path_figure(run.bounds, _data(run), grid.reshape(-1, 2), grid[:, 0], grid[:, -1])
        figure.update_layout(title_text="Each latent dimension varied around A (path: one dimension, then the next)")
        return figure
    picture = latent_explorer.picture(run, items, columns=int(values))
    return figures.picture_figure(picture, "Rows: latent dimensions; columns: values")


def draw_map(
    session: Session, state: LatentState, run_id: Any, c: Any, d: Any, e: Any, colour: str | None
) -> tuple[Any, ...]:
    run = _run(session, run_id)
    try:
        corners = (whole(c, "Item C"), whole(d, "Item D"), whole(e, "Item E"))
        if len(set(corners)) < 3 or not all(0 <= i < len(run.data.test) for i in corners):
            raise ValueError(f"Pick three different test items, numbered 0 to {len(run.data.test) - 1}.")
        with run.run.lock:
            encoded = latent_explorer.encoded_test(run)
            grid = latent_explorer.latent_map(run, corners, colour, encoded)
            ends = state.endpoints
            items = latent_explorer.decode(run, grid.latents, ends.label if ends is not None else None)
            factors = latent_explorer.factor_table(run, encoded)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    side = latent_explorer.MAP_SIDE
    if run.data_spec.kind == "points2d":
        title = "The latent grid, decoded into data space"
        figure = latent_figures.warped_grid_figure(title, run.bounds, _data(run), items, side)
    else:
        upright = items.reshape(side, side, *items.shape[1:])[::-1].reshape(items.shape)  # second axis points up
        picture = latent_explorer.picture(run, upright, columns=side)
        figure = figures.picture_figure(picture, "The latent grid, decoded")
    overlay = (
        gr.update(value=None, visible=False)
        if grid.overlay is None
        else gr.update(
            value=latent_figures.overlay_figure(grid.overlay, grid.labels, grid.label_name, grid.extent, grid.axes),
            visible=True,
        )
    )
    table = (
        gr.update(visible=False)
        if factors is None
        else gr.update(value=latent_figures.correlation_figure(*factors), visible=True)
    )
    return figure, overlay, table
