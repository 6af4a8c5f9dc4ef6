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


def test_an_image_is_drawn_pixel_by_pixel_in_the_models_order(page: Page, app_url: str, output_dir: Path) -> None:
    page.goto(app_url + "?preset=sampling-digits")
    expect(page.locator("#status")).to_contain_text("PixelCNN on digits", timeout=20_000)
    page.locator("#how-pixels").get_by_text("pixel by pixel").click()
    page.locator("#pixels-start").click()
    titles = page.locator("#pixels-plot .annotation-text")
    expect(titles.first).to_contain_text("0 of 64 pixels", timeout=10_000)
    page.locator("#pixels-next").click()
    expect(titles.first).to_contain_text("1 of 64 pixels", timeout=10_000)
    page.locator("#pixels-play").click()
    expect(titles.first).to_contain_text("64 of 64 pixels", timeout=20_000)
    page.locator("#pixels-gif").click()
    expect(page.locator("#pixels-gif-file")).to_contain_text(".gif", timeout=10_000)
    page.locator("#how-pixels").screenshot(path=output_dir / "how_it_works_pixels.png")


def test_a_gans_players_are_stepped_one_at_a_time(page: Page, app_url: str, output_dir: Path) -> None:
    page.goto(app_url + "?preset=gan-modes")
    expect(page.locator("#status")).to_contain_text("GAN on 8gaussians", timeout=20_000)
    page.locator("#how-players").get_by_text("two players").click()
    page.locator("#players-copy").click()
    expect(page.locator("#players-note")).to_contain_text("Copied the players", timeout=10_000)
    page.locator("#players-d").click()
    expect(page.locator("#players-note")).to_contain_text("After 10 D steps and 0 G steps", timeout=10_000)
    page.locator("#players-g").click()
    expect(page.locator("#players-plot .gtitle")).to_contain_text("10 D steps and 10 G steps", timeout=10_000)
    page.locator("#how-players").screenshot(path=output_dir / "how_it_works_gan_players.png")


def test_an_energy_based_models_chains_are_played(page: Page, app_url: str, output_dir: Path) -> None:
    page.goto(app_url + "?preset=energy-based")
    expect(page.locator("#status")).to_contain_text("EBM on moons", timeout=20_000)
    page.locator("#how-energy").get_by_text("chains").click()
    page.locator("#energy-show").click()
    expect(page.locator("#energy-note")).to_contain_text("mean E(data)", timeout=10_000)
    titles = page.locator("#energy-plot .annotation-text")
    page.locator("#energy-play").click()
    expect(titles.first).to_contain_text("after 0 steps", timeout=10_000)
    expect(titles.first).to_contain_text("after 20 steps", timeout=20_000)
    page.locator("#how-energy").screenshot(path=output_dir / "how_it_works_energy.png")


def test_a_vaes_posteriors_on_digits_are_shown(page: Page, app_url: str, output_dir: Path) -> None:
    page.goto(app_url + "?preset=latent-walk")
    expect(page.locator("#status")).to_contain_text("VAE on digits", timeout=20_000)
    page.get_by_role("tab", name="Train").click()  # the card opens the Latent explorer
    page.locator("#how-posteriors").get_by_text("a VAE's posteriors").click()
    page.locator("#post-show").click()
    expect(page.locator("#post-note")).to_contain_text("latent dimensions active", timeout=10_000)
    expect(page.locator("#post-plot .gtitle")).to_contain_text("E[x | z = μ]")
    page.locator("#how-posteriors").screenshot(path=output_dir / "how_it_works_posteriors.png")
