"""A plotly figure that lives in one persistent ``<div>`` and is updated in place with ``Plotly.react``.

Why not ``gr.Plot``: it re-creates its plot on every update, and plotly.js leaks on re-creation. Streaming a figure
into ``gr.Plot`` at 2 Hz for 30 s left ~97 k DOM nodes and ~3.9 k listeners after garbage collection (see
``bench/bench_live.py``). Here the page holds one ``<div>`` per figure for its whole life; a new value is a figure's
JSON, drawn by ``Plotly.react`` (which diffs against what is drawn), at most once per animation frame.

The plotly.js bundle (``assets/vendor``, the cartesian build, 1.5 MB) loads once, deferred, so the rest of the page
is usable before it arrives; a figure that comes earlier waits for it. In the lecture view (``body.lecture``) every
font is enlarged to at least 16 px when drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go

VENDOR = Path(__file__).resolve().parent.parent / "assets" / "vendor"
PLOTLY_JS = VENDOR / "plotly-cartesian.min.js"
gr.set_static_paths([str(VENDOR)])  # served from /gradio_api/file=… with browser caching

HEAD = f'<script src="/gradio_api/file={PLOTLY_JS}" defer></script>'

# The height is written into the template, not read from a prop: an update that only shows or hides the component
# (gr.update(visible=...)) reaches the template without its props, and "${height}" then stopped the figure for good
# ("ReferenceError: height is not defined", tests/test_browser_switch.py).
TEMPLATE = '<div class="live-plot" style="min-height: {height}px"></div>'

# Runs once per component, with `element`, `props` and `watch` from gr.HTML.
SCRIPT = """
const div = element.querySelector('.live-plot');
const plots = (window.__livePlots = window.__livePlots || new Set());
plots.add(div);
const config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['select2d', 'lasso2d'],
                toImageButtonOptions: {format: 'png', scale: 2}};
const enlarge = (node, key = '') => {
  if (Array.isArray(node)) return node.map((item) => enlarge(item));
  if (node === null || typeof node !== 'object') return node;
  const copy = {};
  for (const [name, value] of Object.entries(node)) copy[name] = enlarge(value, name);
  if (/font$/i.test(key) && typeof copy.size === 'number') copy.size = Math.max(16, 1.35 * copy.size);
  return copy;
};
const forLecture = (layout) => {
  if (!document.body.classList.contains('lecture')) return layout;
  const big = enlarge(layout);
  big.font = Object.assign({}, big.font, {size: Math.max(17, (big.font || {}).size || 0), color: '#000'});
  const room = window.innerHeight - (div.getBoundingClientRect().top + window.scrollY) - 12;
  if (big.height && room >= 320) big.height = Math.min(big.height, room);  // a figure in the first screen fits in it
  return big;
};
let scheduled = false;
const draw = () => {
  scheduled = false;
  if (!window.Plotly) { schedule(100); return; }
  const value = props.value;
  if (!value) { Plotly.purge(div); return; }
  const figure = typeof value === 'string' ? JSON.parse(value) : value;
  Plotly.react(div, figure.data || [], forLecture(figure.layout || {}), config);
};
const schedule = (delay) => {
  if (scheduled) return;
  scheduled = true;
  delay ? setTimeout(() => requestAnimationFrame(draw), delay) : requestAnimationFrame(draw);
};
div.redraw = () => schedule(0);
new ResizeObserver(() => { if (window.Plotly && div._fullLayout && div.offsetWidth) Plotly.Plots.resize(div); })
  .observe(div);
watch('value', () => schedule(0));
schedule(0);
"""

from gradio.events import Dependency

class LivePlot(gr.HTML):
    """Shows a plotly figure; give it a ``go.Figure`` (or its JSON) like a ``gr.Plot``, as often as you like."""

    def __init__(self, value: go.Figure | None = None, *, height: int = 330, **kwargs: Any) -> None:
        super().__init__(
            value,
            html_template=TEMPLATE.format(height=height),
            js_on_load=SCRIPT,
            head=HEAD,
            **kwargs,
        )

    def postprocess(self, value: Any) -> str | None:  # type: ignore[override]
        """A figure as plotly JSON (typed arrays base64-encoded); None clears the plot."""
        if value is None:
            return None
        if isinstance(value, go.Figure):
            return value.to_json()
        if isinstance(value, dict):
            return json.dumps(value)
        if isinstance(value, str):
            return value
        raise TypeError(f"LivePlot shows plotly figures, not {type(value).__name__}")
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component