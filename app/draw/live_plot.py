"""A plotly figure that lives in one persistent ``<div>`` and is updated in place with ``Plotly.react``.

Why not ``gr.Plot``: it re-creates its plot on every update, and plotly.js leaks on re-creation. Streaming a figure
into ``gr.Plot`` at 2 Hz for 30 s left ~97 k DOM nodes and ~3.9 k listeners after garbage collection (see
``bench/bench_live.py``). Here the page holds one ``<div>`` per figure for its whole life; a new value is a figure's
JSON, drawn by ``Plotly.react`` (which diffs against what is drawn), at most once per animation frame.

The plotly.js bundle (``assets/vendor``, the cartesian build, 1.5 MB) loads once, deferred, so the rest of the page
is usable before it arrives; a figure that comes earlier waits for it. In the lecture view (``body.lecture``) every
font is enlarged to at least 16 px when drawn.

A picture says nothing to a screen reader, so each figure is a ``<figure>`` whose caption, visually hidden, says in
words what is drawn: the title (with its step), what is plotted against what, and the names of its series. The
drawing itself (tick labels, hover layers: noise read aloud) is hidden from assistive technology; plotly's toolbar
(zoom, download as PNG) is not: its buttons are named and reached by keyboard. The caption is a polite live region,
but a streamed figure changes 2–4 times a second: a caption whose words stay the same but for its numbers is told at
most once every 10 s (the latest then), one with new words at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go

VENDOR = Path(__file__).resolve().parents[2] / "assets" / "vendor"
PLOTLY_JS = VENDOR / "plotly-cartesian.min.js"
gr.set_static_paths([str(VENDOR)])  # served from /gradio_api/file=… with browser caching

HEAD = f'<script src="/gradio_api/file={PLOTLY_JS}" defer></script>'

# The height is written into the template, not read from a prop: an update that only shows or hides the component
# (gr.update(visible=...)) reaches the template without its props, and "${height}" then stopped the figure for good
# ("ReferenceError: height is not defined", tests/test_browser_switch.py).
TEMPLATE = (
    '<figure class="live-plot-figure" style="margin: 0; position: relative">'
    '<div class="live-plot" style="min-height: {height}px"></div>'
    '<figcaption class="live-plot-text" aria-live="polite" style="position: absolute; width: 1px; height: 1px; '
    'overflow: hidden; clip-path: inset(50%); white-space: nowrap"></figcaption></figure>'
)

# Runs once per component, with `element`, `props` and `watch` from gr.HTML.
SCRIPT = r"""
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
const caption = element.querySelector('.live-plot-text');
const words = (text) => String(text ?? '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
const titleOf = (title) => words(title !== null && typeof title === 'object' ? title.text : title);
const describe = (figure) => {  // "Samples at step 40. x₂ against x₁. Shows model samples, held-out data."
  const layout = figure.layout || {};
  const said = [titleOf(layout.title) || 'A figure', titleOf(layout.title?.subtitle)];
  const x = titleOf(layout.xaxis?.title), y = titleOf(layout.yaxis?.title);
  if (x && y) said.push(`${y} against ${x}`);
  const names = [...new Set((figure.data || []).map((trace) => words(trace.name)).filter(Boolean))];
  if (names.length) said.push('Shows ' + names.slice(0, 8).join(', '));
  return said.filter(Boolean).join('. ') + '.';
};
let told = {gist: null, at: -Infinity}, later = null;
const tell = (text) => {
  clearTimeout(later);
  const gist = text.replace(/\d[\d.,]*/g, '#');
  const wait = gist === told.gist ? told.at + 10000 - performance.now() : 0;
  if (wait > 0) { later = setTimeout(() => tell(text), wait); return; }
  if (caption.textContent !== text) caption.textContent = text;
  told = {gist, at: performance.now()};
};
let scheduled = false;
const draw = () => {
  scheduled = false;
  if (!window.Plotly) { schedule(100); return; }
  const value = props.value;
  if (!value) { Plotly.purge(div); tell(''); return; }
  const figure = typeof value === 'string' ? JSON.parse(value) : value;
  Plotly.react(div, figure.data || [], forLecture(figure.layout || {}), config).then(() => {
    div.querySelectorAll('svg.main-svg:not([aria-hidden])').forEach((svg) => svg.setAttribute('aria-hidden', 'true'));
  });
  tell(describe(figure));
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
