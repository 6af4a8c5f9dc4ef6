"""How it works in Chromium: a flow's layers, shown, stepped with the slider and played."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_a_flows_layers_are_shown_and_played(page: Page, app_url: str, output_dir: Path) -> None:
    page.goto(app_url + "?preset=flows-on-rings")
    expect(page.locator("#status")).to_contain_text("NSF on rings", timeout=20_000)
    page.locator("#how-it-works").get_by_text("a flow, layer by layer").click()
    page.locator("#how-show").click()
    title = page.locator("#how-plot .gtitle")
    expect(title).to_contain_text("the samples x", timeout=10_000)
    expect(page.locator("#how-note")).to_contain_text("Change of variables")
    page.locator("#how-play").click()
    expect(title).to_contain_text("the base Gaussian", timeout=5_000)
    expect(title).to_contain_text("the samples x", timeout=15_000)
    page.locator("#how-it-works").screenshot(path=output_dir / "how_it_works_flow.png")


def test_an_autoregressive_models_conditionals_are_shown_and_drawn(page: Page, app_url: str, output_dir: Path) -> None:
    page.goto(app_url + "?preset=autoregressive-masks")
    expect(page.locator("#status")).to_contain_text("MADE on 8gaussians", timeout=20_000)
    page.locator("#how-conditionals").get_by_text("one conditional at a time").click()
    page.locator("#cond-show").click()
    expect(page.locator("#cond-note")).to_contain_text("x₁ first", timeout=10_000)
    expect(page.locator("#cond-plot .legendtext").first).to_be_visible()
    page.locator("#cond-draw").click()
    expect(page.locator("#cond-note")).to_contain_text("the sample is the black cross", timeout=10_000)
    expect(page.locator("#cond-plot .legendtext", has_text="the drawn sample")).to_be_visible()
    page.locator("#how-conditionals").screenshot(path=output_dir / "how_it_works_autoregressive.png")


def test_a_diffusion_models_reverse_process_plays_from_noise_to_data(
    page: Page, app_url: str, output_dir: Path
) -> None:
    page.goto(app_url + "?preset=diffusion")
    expect(page.locator("#status")).to_contain_text("DDPM on moons", timeout=20_000)
    page.locator("#how-diffusion").get_by_text("diffusion, forward and reverse").click()
    page.locator("#diff-show").click()
    expect(page.locator("#diff-note")).to_contain_text("T = 100 steps", timeout=10_000)
    titles = page.locator("#diff-plot .annotation-text")
    expect(titles.first).to_contain_text("noised to step 100;")
    page.locator("#diff-play").click()
    expect(titles.first).to_contain_text("noised to step 0;", timeout=20_000)
    page.locator("#how-diffusion").screenshot(path=output_dir / "how_it_works_diffusion.png")
