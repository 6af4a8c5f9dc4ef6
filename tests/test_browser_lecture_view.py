"""The lecture view on a 1280×720 projector: every visible text on every tab is at least 16 px (Gradio's own theme
goes down to 9 px: a status line at 14 px and gallery card text at 11 px once), and Lecture 1's tables lose no
column."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.test_browser import open_app

pytestmark = pytest.mark.browser
TABS = ["Train", "Lecture gallery", "Lecture 1", "Compare", "Likelihood", "Latent explorer", "Runs"]

# every visible text node (HTML and SVG) whose computed font size is under 16 px: [size, its nearest id, the text]
SMALL_TEXTS = """() => {
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const element = walker.currentNode.parentElement;
    if (!text || !element || element.getClientRects().length === 0) continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let shown = true;
    for (let e = element; e && shown; e = e.parentElement) {
      const style = getComputedStyle(e);
      shown = style.display !== 'none' && style.visibility !== 'hidden';
    }
    const size = parseFloat(getComputedStyle(element).fontSize);
    if (shown && size < 16) small.push([size, element.closest('[id]')?.id || '', text.slice(0, 40)]);
  }
  return small;
}"""

# Lecture 1's tables: [id, the width their content needs, the width they have]
TABLE_WIDTHS = """() => [...document.querySelectorAll('#tab-lecture table')].filter((t) => t.offsetParent).map((t) => {
  let box = t.parentElement;
  while (box && !['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
  return [t.closest('[id]')?.id, box.scrollWidth, box.clientWidth];
})"""


def drawn(page: Page) -> None:
    """Until what a tab's opening sent for has come back and been drawn: no output waits on Gradio, the page idle."""
    page.wait_for_timeout(300)  # the tab's own events have started
    page.wait_for_function("() => !document.querySelector('.pending, .generating')", timeout=15_000)
    page.evaluate("() => new Promise(done => requestIdleCallback(done, {timeout: 3000}))")


def test_every_visible_text_is_at_least_16_px_and_lecture_1s_tables_keep_every_column(page: Page, app_url: str):
    page.set_viewport_size({"width": 1280, "height": 720})
    open_app(page, app_url + "?lecture=1")
    small = {}
    for tab in TABS:
        page.get_by_role("tab", name=tab).first.click()
        drawn(page)
        found = page.evaluate(SMALL_TEXTS)
        if found:
            small[tab] = found[:8]
        if tab == "Lecture 1":
            page.wait_for_function("() => document.querySelectorAll('#tab-lecture table').length >= 3")
            widths = page.evaluate(TABLE_WIDTHS)
            assert len(widths) >= 3 and all(needed <= has + 1 for _, needed, has in widths), widths
    assert small == {}, small
