"""The lecture gallery in Chromium: every card's Open button and a ?preset= link each bring up a shipped run in the
view that makes its point, with no training first; the Lecture 1 tab answers its controls. Screenshots go to
``tests/output/presets/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.tabs.gallery import TAB_OF_VIEW
from dgm_core.lecture.presets import PRESETS
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
    expect(page.locator("#latent-image image").first).to_be_visible(timeout=10_000)
    page.screenshot(path=shots / "latent-walk.png")


def test_a_preset_link_scores_items_on_the_likelihood_tab(page: Page, app_url: str, shots: Path) -> None:
    page.goto(app_url + "?preset=likelihood-surprise&lecture=1")
    expect(page.get_by_role("tab", name="Likelihood")).to_have_attribute("aria-selected", "true", timeout=20_000)
    expect(page.locator("#lik-ood")).to_be_visible(timeout=15_000)
    expect(page.locator("#lik-hist .main-svg").first).to_be_visible()
    page.screenshot(path=shots / "likelihood-surprise.png")


def test_generation_and_inference_reads_back_the_factors_the_sliders_set(page: Page, app_url: str, shots: Path) -> None:
    page.goto(app_url + "?preset=generation-and-inference")
    expect(page.get_by_role("tab", name="Lecture 1")).to_have_attribute("aria-selected", "true", timeout=20_000)
    expect(page.locator("#rendered-shape img")).to_be_visible(timeout=10_000)
    expect(page.locator("#read-factors")).to_contain_text("circle", timeout=10_000)
    expect(page.locator("#reader-errors")).to_contain_text("mean error per factor")
    page.locator("#factor-kind").get_by_text("square").click()
    expect(page.locator("#read-factors")).to_contain_text("square", timeout=10_000)
    page.screenshot(path=shots / "generation-and-inference.png")


def test_discriminative_vs_generative_plots_accuracy_against_missing_pixels(
    page: Page, app_url: str, shots: Path
) -> None:
    page.goto(app_url + "?preset=discriminative-vs-generative&lecture=1")
    expect(page.get_by_role("tab", name="Lecture 1")).to_have_attribute("aria-selected", "true", timeout=20_000)
    expect(page.locator("#classifier-curve .main-svg").first).to_be_visible(timeout=15_000)
    expect(page.locator("#classifier-table")).to_contain_text("50 %")
    expect(page.locator("#classifier-examples img")).to_be_visible()
    page.screenshot(path=shots / "discriminative-vs-generative.png")


def test_the_class_picker_changes_the_conditional_samples(page: Page, app_url: str, shots: Path) -> None:
    page.goto(app_url + "?preset=conditional-generation")
    samples = page.locator("#class-samples-0 img")
    expect(samples).to_be_visible(timeout=20_000)
    before = samples.get_attribute("src")
    page.locator("#class-picker").get_by_text("7", exact=True).click()
    expect(samples).not_to_have_attribute("src", before, timeout=10_000)
    expect(page.locator("#class-samples-1 img")).to_be_visible()
    page.screenshot(path=shots / "conditional-generation.png")


TAB_NAMES = {"train": "Train", "latent": "Latent explorer", "likelihood": "Likelihood", "lecture": "Lecture 1"}


def test_every_card_opens_its_view_with_its_model_and_the_form_agrees(page: Page, app_url: str, shots: Path) -> None:
    """A lecturer's walk through the gallery: each card in turn, its view, the Train form showing the run shown, and
    not one error in the console (``bench/bench_presets.py`` times each card)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_app(page, app_url)
    pictured: set[str] = set()
    for preset in PRESETS.values():
        page.get_by_role("tab", name="Lecture gallery").click()
        page.locator(f"#open-{preset.key}").click()
        tab = TAB_OF_VIEW.get(preset.view, "lecture")
        expect(page.get_by_role("tab", name=TAB_NAMES[tab])).to_have_attribute("aria-selected", "true", timeout=10_000)
        shown = {
            "train": page.locator("#status"),
            "latent": page.locator("#latent-info"),
            "likelihood": page.locator("#lik-ood"),
            "lecture": page.locator(f"#lecture-{preset.view}"),
        }[tab]
        expect(shown).to_contain_text(preset.model if tab in ("train", "latent") else "", timeout=10_000)
        expect(shown).to_be_visible()
        if tab != "lecture":  # the Train form shows the opened run: Train and Continue do what it shows
            expect(page.locator("#dataset input")).to_have_value(preset.dataset)
            expect(page.locator("#model input")).to_have_value(re.compile("^" + re.escape(preset.model)))
        if preset.view not in pictured:  # one picture of each view (each takes half a second)
            pictured.add(preset.view)
            shown.scroll_into_view_if_needed()
            page.screenshot(path=shots / f"card-{preset.key}.png")
    assert errors == [], errors
