"""Accessible to every student (WCAG 2.1 AA), in a real Chromium: axe-core finds no serious or critical violation on
any tab, plain or in the lecture view; Train, Stop, Continue and a gallery card work from the keyboard alone, with a
focus ring that shows; the live figures say in words what they draw; a browser that asks for reduced motion gets
How it works' Play without the animation; in the 2D figures samples differ from data by shape, not by hue alone.

axe-core (MPL-2.0) is vendored in ``tests/vendor/`` (``npm pack axe-core@4``); what it finds on each tab is written
to ``tests/output/accessibility.txt``.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gradio.context import LocalContext
from PIL import Image
from playwright.sync_api import Page, expect

from app.draw.figures import scatter_figure
from app.how.scaffold import REDUCED_MOTION_COOKIE, play
from tests.test_browser import open_app, step, wait_for_step

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOWN_NODES = 4  # selectors shown per rule when a check fails

# the serious and critical violations on the page as it is shown: [rule, impact, count, the first selectors]
AXE_RUN = """async (shown) => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => [v.id, v.impact, v.nodes.length, v.nodes.slice(0, shown).map((node) => node.target.join(' '))]);
}"""

# the focused element's outline, once any transition has settled: [id, style, width in px, colour]
FOCUS_RING = """() => { const e = document.activeElement, s = getComputedStyle(e);
  return [e.id, s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor]; }"""


@pytest.mark.browser
def test_no_tab_has_a_serious_or_critical_axe_violation_plain_or_in_the_lecture_view(
    page: Page, app_url: str, output_dir: Path
) -> None:
    open_app(page, app_url + "?lecture=1")  # the lecture view from the link, then the plain one from its toggle
    page.add_script_tag(path=AXE)
    tabs = page.locator("#main-tabs button[role=tab]")
    names = tabs.all_inner_texts()
    assert {"Train", "Lecture gallery", "Lecture 1", "Real or fake?", "Follow"} <= set(names), names
    body, lecture = page.locator("body"), re.compile(r"\blecture\b")
    expect(body).to_have_class(lecture)
    found: dict[str, list] = {}
    for view in ("lecture", "plain"):
        if view == "plain":
            page.locator("#lecture-toggle input").uncheck()  # the page's own toggle
            expect(body).not_to_have_class(lecture)
        for name in names:
            tab = tabs.filter(has_text=name).first
            tab.click()
            expect(tab).to_have_attribute("aria-selected", "true")
            page.evaluate("() => new Promise((done) => requestIdleCallback(done, {timeout: 2000}))")  # tab drawn
            found[f"{view} / {name}"] = page.evaluate(AXE_RUN, SHOWN_NODES)
    lines = [
        f"{where}: {rule} ({impact}) x{count}: {', '.join(nodes)}"
        for where, violations in found.items()
        for rule, impact, count, nodes in violations
    ]
    counts = [f"{where}: {sum(count for _, _, count, _ in violations)}" for where, violations in found.items()]
    (output_dir / "accessibility.txt").write_text("\n".join(["serious or critical, per tab:", *counts, *lines]) + "\n")
    assert not lines, "axe-core, serious or critical:\n" + "\n".join(lines)


def tab_to(page: Page, selector: str, key: str = "Tab", most: int = 60) -> None:
    """Press Tab (or ``key``) until the element at ``selector`` has the focus, as a keyboard user would."""
    for _ in range(most):
        if page.evaluate("(selector) => document.activeElement?.matches(selector)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{selector} not reached in {most} presses of {key}")


def expect_focus_ring(page: Page, element_id: str) -> None:
    """The focused element shows a solid outline at least 2 px wide, in a colour other than the page's white."""
    page.wait_for_function(
        f"() => {{ const [id, style, width, colour] = ({FOCUS_RING})();"
        " return id && style !== 'none' && width >= 2 && colour !== 'rgb(255, 255, 255)'; }"
    )
    assert page.evaluate(FOCUS_RING)[0] == element_id


@pytest.mark.browser
def test_train_stop_continue_and_a_gallery_card_work_from_the_keyboard_alone(page: Page, app_url: str) -> None:
    page.emulate_media(reduced_motion="reduce")
    open_app(page, app_url)
    assert f"{REDUCED_MOTION_COOKIE}=1" in page.evaluate("document.cookie")  # the server learns the preference
    status = page.locator("#status")

    tab_to(page, "#train-btn")
    expect_focus_ring(page, "train-btn")
    page.keyboard.press("Enter")
    wait_for_step(page, 1)
    # the samples figure says in words what it draws, step included
    expect(page.locator("#samples-plot figcaption")).to_contain_text("step")
    expect(page.locator("#samples-plot figcaption")).to_have_attribute("aria-live", "polite")
    tab_to(page, "#stop-btn")
    expect_focus_ring(page, "stop-btn")
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Stopped", timeout=5_000)
    stopped_at = step(page)

    tab_to(page, "#continue-btn")
    expect_focus_ring(page, "continue-btn")
    page.keyboard.press("Enter")
    wait_for_step(page, stopped_at + 1)
    tab_to(page, "#stop-btn", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Stopped", timeout=5_000)

    tab_to(page, "#tab-gallery-button", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#tab-gallery-button")).to_have_attribute("aria-selected", "true")
    tab_to(page, "#open-what-is-a-generative-model")
    expect_focus_ring(page, "open-what-is-a-generative-model")
    page.keyboard.press("Enter")
    expect(page.get_by_role("tab", name="Train")).to_have_attribute("aria-selected", "true")
    expect(status).to_contain_text("Kept the weights of step", timeout=10_000)


@pytest.mark.parametrize(("cookie", "shown"), [("1", [3]), ("0", [0, 1, 2, 3])])
def test_play_shows_only_where_it_ends_for_a_browser_that_prefers_reduced_motion(cookie: str, shown: list) -> None:
    request = LocalContext.request.set(SimpleNamespace(cookies={REDUCED_MOTION_COOKIE: cookie}))
    try:
        frames = [k for k, _ in play(range(4), lambda k: f"frame {k}", seconds=0)]
    finally:
        LocalContext.request.reset(request)
    assert frames == shown


def test_samples_are_ringed_and_data_are_not_so_that_hue_alone_does_not_tell_them_apart() -> None:
    def just_beside_a_point(**clouds: np.ndarray) -> np.ndarray:
        """The 400-pixel picture of the window [-1, 1]² with one point at its centre: the pixel 2 px to its right."""
        figure = scatter_figure("one point", (-1.0, 1.0, -1.0, 1.0), **clouds)
        source = figure.layout.images[0].source.removeprefix("data:image/png;base64,")
        picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(source))).convert("RGB"), dtype=int)
        return picture[200, 202]

    one, none = np.zeros((1, 2), np.float32), np.zeros((0, 2), np.float32)
    assert (just_beside_a_point(data=one) > 240).all()  # a data point: a faint dot, nothing around it
    assert (just_beside_a_point(data=none, samples=one) < 100).all()  # a sample: a dark ring around its dot
    legend = {trace.name: trace.marker for trace in scatter_figure("", (-1, 1, -1, 1), none, samples=one).data}
    assert legend["model samples"].line.width and not legend["data"].line.width  # the legend shows the ring too
