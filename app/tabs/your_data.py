"""Your own data, on the Train tab: upload a file or draw a shape, and it becomes a data set of this browser.

The reading, checking and splitting are the core's (``dgm_core.data.upload``, ``drawing``, ``user``); this module
lays out the accordion, passes the files and the canvas to the core, deletes the uploaded files, and puts the new
data set in this browser's pickers (the Train tab's and Compare's), chosen at once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr

from app.page.session import Session
from app.page.views import plain
from dgm_core.data.drawing import paint_weights, points_from_paint
from dgm_core.data.upload import points_from_drawing, read_upload
from dgm_core.data.upload_rules import (
    IMAGE_SIZES,
    MAX_FILE_BYTES,
    MAX_IMAGES,
    MAX_POINTS,
    MIN_IMAGES,
    MIN_POINTS,
    SUFFIXES,
    DataError,
)

FORMATS = f"""
**Upload** a CSV or TSV of two numeric columns x, y (header optional; `,` `;` tab `|` or spaces), a NumPy `.npy` /
`.npz` of points (n, 2) or images (n, h, w), or PNG/JPEG images — several files or one `.zip`, with one folder per
class for labels. Images become grey, {" or ".join(f"{s}×{s}" for s in IMAGE_SIZES)}, 17 levels. {MIN_POINTS:,}–
{MAX_POINTS:,} points or {MIN_IMAGES}–{MAX_IMAGES:,} images, {MAX_FILE_BYTES // 10**6} MB per file. **Draw** paints a
density: where you paint, points are drawn (a broad brush for a broad cloud). Your data stays on this server, for this
browser only, and is split 70 / 10 / 20 into training, validation and test sets.
"""
DRAWN_POINTS = 2000


def build_your_data(session: gr.State, dataset: gr.Dropdown) -> None:
    """The accordion under the data set picker; a new data set is added to ``dataset``'s choices and chosen."""
    with gr.Accordion("Your own data — upload or draw", open=False, elem_id="your-data"):
        gr.Markdown(FORMATS, elem_classes="hint")
        with gr.Tab("Upload"):
            files = gr.File(file_count="multiple", file_types=list(SUFFIXES), label="Data files", elem_id="data-files")
            size = gr.Radio(list(IMAGE_SIZES), value=IMAGE_SIZES[0], label="Images become", elem_id="data-size")
            use_files = gr.Button("Use these files", variant="primary", elem_id="data-use-files")
        with gr.Tab("Draw"):
            gr.Markdown(
                "Pick the brush (left of the canvas), paint, then press **Use the drawing**.", elem_classes="hint"
            )
            canvas = gr.Sketchpad(
                label="Paint a density",
                canvas_size=(400, 400),
                type="numpy",
                layers=False,
                brush=gr.Brush(default_size=24, colors=["#111827"], color_mode="fixed"),
                elem_id="data-canvas",
            )
            count = gr.Slider(200, 5000, value=DRAWN_POINTS, step=100, label="Points to draw", elem_id="data-count")
            use_drawing = gr.Button("Use the drawing", variant="primary", elem_id="data-use-drawing")
        said = gr.Markdown(elem_id="data-said")
    quiet: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "concurrency_limit": None}
    use_files.click(add_files, [session, files, size], [said, dataset, files], **quiet)
    use_drawing.click(add_drawing, [session, canvas, count], [said, dataset], **quiet)


GONE = "the uploaded file is gone: uploads no one uses within a minute are deleted. Choose the file again."


def add_files(page: Session, files: Any, size: Any) -> tuple:
    """The uploaded files as a data set of this browser, or a message saying why not (nothing changes then). The
    uploaded files are deleted either way."""
    paths = [Path(str(file)) for file in files or []]
    if not paths:
        return "Choose one or more files first.", gr.skip(), gr.skip()
    if not all(path.exists() for path in paths):
        return f"**Not used:** {GONE}", gr.skip(), None
    started = time.perf_counter()
    try:
        data = read_upload(paths, int(size))
    except DataError as error:
        return f"**Not used:** {plain(error)}", gr.skip(), None
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    name, unsaved = page.add_data(data, paths[0].name)
    return _added(name, data.note, time.perf_counter() - started, unsaved), _chosen(page, name), None


def add_drawing(page: Session, canvas: Any, count: Any) -> tuple:
    """The painted density as a data set of ``count`` points, or a message saying why not."""
    started = time.perf_counter()
    picture = canvas.get("composite") if isinstance(canvas, dict) else None
    try:
        if picture is None:
            raise DataError("Nothing is drawn yet: paint a shape on the canvas first.")
        data = points_from_drawing(points_from_paint(paint_weights(picture), int(count or DRAWN_POINTS)))
    except DataError as error:
        return f"**Not used:** {plain(error)}", gr.skip()
    name, unsaved = page.add_data(data, "drawing")
    return _added(name, data.note, time.perf_counter() - started, unsaved), _chosen(page, name)


def _added(name: str, note: str, seconds: float, unsaved: str) -> str:
    said = (
        f"Added **{name}**: {plain(note)} ({seconds:.2f} s). It is chosen above; pick a model and press **Train**. "
        "It is also in Compare, and every run on it appears in the other tabs."
    )
    return said if not unsaved else f"{said}  \n**Not saved** (it is gone when the server restarts): {plain(unsaved)}"


def _chosen(page: Session, name: str) -> Any:
    return gr.update(choices=page.dataset_choices(), value=name)
