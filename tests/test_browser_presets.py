"""The lecture gallery in Chromium: a card's Open button and a ?preset= link each bring up a shipped run in the view
that makes its point, with no training first. Screenshots go to ``tests/output/presets/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.test_browser import open_app

pytestmark = pytest.mark.browser


@pytest.fixture
def shots(output_dir: Path) -> Path:
    folder = output_dir / "presets"
    folder.mkdir(exist_ok=True)
    return folder


def test_open_a_card_from_the_gallery_shows_its_trained_samples(page: Page, app_url: str, shots: Path) -> None:
    open_app(page, app_url)
    page.get_by_role("tab", name="Lecture gallery").click()
    page.screenshot(path=shots / "gallery.png", full_page=True)
    page.locator("#open-what-is-a-generative-model").click()
    expect(page.get_by_role("tab", name="Train")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#status")).to_contain_text("Kept the weights of step", timeout=10_000)
    expect(page.locator("#samples-plot .legendtext").first).to_be_visible(timeout=10_000)
    page.screenshot(path=shots / "what-is-a-generative-model.png")


def test_a_preset_link_opens_the_latent_explorer_on_a_trained_vae(page: Page, app_url: str, shots: Path) -> None:
    page.goto(app_url + "?preset=latent-walk")
    expect(page.get_by_role("tab", name="Latent explorer")).to_have_attribute("aria-selected", "true", timeout=20_000)
    expect(page.locator("#latent-info")).to_contain_text("VAE", timeout=10_000)
    expect(page.locator("#latent-image img")).to_be_visible(timeout=10_000)
    page.screenshot(path=shots / "latent-walk.png")


def test_a_preset_link_scores_items_on_the_likelihood_tab(page: Page, app_url: str, shots: Path) -> None:
    page.goto(app_url + "?preset=likelihood-surprise&lecture=1")
    expect(page.get_by_role("tab", name="Likelihood")).to_have_attribute("aria-selected", "true", timeout=20_000)
    expect(page.locator("#lik-ood")).to_be_visible(timeout=15_000)
    expect(page.locator("#lik-hist .main-svg").first).to_be_visible()
    page.screenshot(path=shots / "likelihood-surprise.png")
