"""Switching the Train tab's data between images and 2D points, back and forth, draws the main figure each time,
with no error in the page's console."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.test_browser import choose, open_app

pytestmark = pytest.mark.browser


def test_switching_between_images_and_points_keeps_the_main_figure_drawn(page: Page, app_url: str) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_app(page, app_url)
    for dataset in ("digits", "moons", "shapes", "8gaussians"):
        choose(page, "#dataset", dataset)
        if dataset in ("digits", "shapes"):
            expect(page.locator("#samples-image img")).to_be_visible(timeout=20_000)
            expect(page.locator("#samples-plot")).to_be_hidden()
        else:
            expect(page.locator("#samples-plot .main-svg").first).to_be_visible(timeout=20_000)
            expect(page.locator("#samples-plot")).to_contain_text(dataset, timeout=20_000)
    assert errors == [], errors
