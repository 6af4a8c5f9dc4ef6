"""A lecturer's journey through the page, in one Chromium tab: data switched between images, 2D points and an
uploaded file; a gallery card into the Latent explorer; items scored on the Likelihood tab; a comparison; a reload.
It fails on any console error, any main figure not drawn, and any Train form that disagrees with the run shown.
(``test_browser_presets`` walks every gallery card; ``test_browser_how_it_works`` every How-it-works view.)"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.test_browser import choose, open_app, set_number

pytestmark = pytest.mark.browser
RUN = re.compile(r"#\d+ (\S+) on (\S+),")


def _main_figure_shows(page: Page, dataset: str, image: bool) -> None:
    if image:
        expect(page.locator("#samples-plot .gtitle")).to_contain_text("images", timeout=20_000)
        expect(page.locator("#samples-plot image").first).to_be_visible()
    else:
        expect(page.locator("#samples-plot .main-svg").first).to_be_visible(timeout=20_000)
        expect(page.locator("#samples-plot")).to_contain_text(dataset, timeout=20_000)


def _form_agrees_with_the_status(page: Page) -> None:
    model, dataset = RUN.search(page.locator("#status").inner_text()).groups()
    expect(page.locator("#dataset input")).to_have_value(dataset)
    expect(page.locator("#model input")).to_have_value(re.compile("^" + re.escape(model)))


def test_a_lecturers_journey_has_no_console_error_and_every_view_agrees(page: Page, app_url: str, tmp_path: Path):
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_app(page, app_url)

    for dataset in ("digits", "moons", "shapes", "8gaussians"):  # images and points, back and forth
        choose(page, "#dataset", dataset)
        _main_figure_shows(page, dataset, image=dataset in ("digits", "shapes"))
    points = np.random.default_rng(0).standard_normal((300, 2)) * [2.0, 0.5]
    csv = tmp_path / "ellipse.csv"
    csv.write_text("x,y\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in points))
    page.locator("#your-data").get_by_text("Your own data").first.click()
    page.locator("#data-files input[type=file]").set_input_files(csv)
    expect(page.locator("#data-files")).to_contain_text("ellipse.csv", timeout=10_000)
    page.locator("#data-use-files").click()
    expect(page.locator("#data-said")).to_contain_text("Added", timeout=20_000)
    _main_figure_shows(page, "ellipse-", image=False)

    page.get_by_role("tab", name="Lecture gallery").click()
    page.locator("#open-latent-walk").click()
    expect(page.locator("#latent-info")).to_contain_text("VAE", timeout=20_000)
    expect(page.locator("#latent-strip img, #latent-image .main-svg").first).to_be_visible(timeout=20_000)
    _form_agrees_with_the_status(page)

    page.get_by_role("tab", name="Likelihood").click()
    page.locator("#lik-score").click()
    expect(page.locator("#lik-hist")).to_contain_text("per-item", timeout=30_000)

    page.get_by_role("tab", name="Compare").click()
    choose(page, "#compare-data", "moons")
    page.locator("#compare-budget").get_by_text("steps").click()
    set_number(page, "#compare-amount", "30")
    page.locator("#compare-btn").click()
    expect(page.locator("#compare-status")).to_contain_text("Done", timeout=120_000)
    expect(page.locator("#compare-samples .main-svg").first).to_be_visible()

    page.reload()
    expect(page.locator("#status")).to_contain_text("Welcome back", timeout=30_000)
    _form_agrees_with_the_status(page)
    assert errors == [], errors
