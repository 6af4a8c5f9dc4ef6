"""How it works in Chromium, as a lecturer walks through it on one page: a gallery card opened, then its family's
view shown, stepped and played — a flow's layers, an autoregressive model's conditionals, diffusion, an image drawn
pixel by pixel, a GAN's two players, an EBM's chains and a VAE's posteriors, one after another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.test_browser import choose, open_app, set_number

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser: Browser, browser_context_args: dict, app_url: str) -> Iterator[Page]:
    """One page for the whole walk (the tests run in order on it, each opening its card from the gallery)."""
    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    open_app(page, app_url)
    yield page
    context.close()


def open_card(page: Page, key: str, shown: str) -> None:
    """Open the gallery's card ``key`` and wait for the Train tab's status to show its run (``shown``)."""
    page.get_by_role("tab", name="Lecture gallery").click()
    page.locator(f"#open-{key}").click()
    expect(page.locator("#status")).to_contain_text(shown, timeout=20_000)


def test_a_flows_layers_are_shown_and_played(page: Page, output_dir: Path) -> None:
    open_card(page, "flows-on-rings", "NSF on rings")
    page.locator("#how-it-works").get_by_text("a flow, layer by layer").click()
    page.locator("#how-show").click()
    title = page.locator("#how-plot .gtitle")
    expect(title).to_contain_text("the samples x", timeout=10_000)
    expect(page.locator("#how-note")).to_contain_text("Change of variables")
    page.locator("#how-play").click()
    expect(title).to_contain_text("the base Gaussian", timeout=5_000)
    expect(title).to_contain_text("the samples x", timeout=15_000)
    page.locator("#how-it-works").screenshot(path=output_dir / "how_it_works_flow.png")


def test_an_autoregressive_models_conditionals_are_shown_and_drawn(page: Page, output_dir: Path) -> None:
    open_card(page, "autoregressive-masks", "MADE on 8gaussians")
    page.locator("#how-conditionals").get_by_text("one conditional at a time").click()
    page.locator("#cond-show").click()
    expect(page.locator("#cond-note")).to_contain_text("x₁ first", timeout=10_000)
    expect(page.locator("#cond-plot .legendtext").first).to_be_visible()
    page.locator("#cond-draw").click()
    expect(page.locator("#cond-note")).to_contain_text("the sample is the black cross", timeout=10_000)
    expect(page.locator("#cond-plot .legendtext", has_text="the drawn sample")).to_be_visible()
    page.locator("#how-conditionals").screenshot(path=output_dir / "how_it_works_autoregressive.png")


def test_a_diffusion_models_reverse_process_plays_from_noise_to_data(page: Page, output_dir: Path) -> None:
    open_card(page, "diffusion", "DDPM on moons")
    page.locator("#how-diffusion").get_by_text("diffusion, forward and reverse").click()
    page.locator("#diff-show").click()
    expect(page.locator("#diff-note")).to_contain_text("T = 100 steps", timeout=10_000)
    titles = page.locator("#diff-plot .annotation-text")
    expect(titles.first).to_contain_text("noised to step 100;")
    page.locator("#diff-play").click()
    expect(titles.first).to_contain_text("noised to step 0;", timeout=20_000)
    page.locator("#how-diffusion").screenshot(path=output_dir / "how_it_works_diffusion.png")


def test_an_image_is_drawn_pixel_by_pixel_in_the_models_order(page: Page, output_dir: Path) -> None:
    open_card(page, "sampling-digits", "PixelCNN on digits")
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


def test_a_gans_players_are_stepped_one_at_a_time(page: Page, output_dir: Path) -> None:
    open_card(page, "gan-modes", "GAN on 8gaussians")
    page.locator("#how-players").get_by_text("two players").click()
    page.locator("#players-copy").click()
    expect(page.locator("#players-note")).to_contain_text("Copied the players", timeout=10_000)
    page.locator("#players-d").click()
    expect(page.locator("#players-note")).to_contain_text("After 10 D steps and 0 G steps", timeout=10_000)
    page.locator("#players-g").click()
    expect(page.locator("#players-plot .gtitle")).to_contain_text("10 D steps and 10 G steps", timeout=10_000)
    page.locator("#how-players").screenshot(path=output_dir / "how_it_works_gan_players.png")


def test_an_energy_based_models_chains_are_played(page: Page, output_dir: Path) -> None:
    open_card(page, "energy-based", "EBM on moons")
    page.locator("#how-energy").get_by_text("chains").click()
    page.locator("#energy-show").click()
    expect(page.locator("#energy-note")).to_contain_text("mean E(data)", timeout=10_000)
    titles = page.locator("#energy-plot .annotation-text")
    page.locator("#energy-play").click()
    expect(titles.first).to_contain_text("after 0 steps", timeout=10_000)
    expect(titles.first).to_contain_text("after 20 steps", timeout=20_000)
    page.locator("#how-energy").screenshot(path=output_dir / "how_it_works_energy.png")


def test_a_vaes_posteriors_on_digits_are_shown(page: Page, output_dir: Path) -> None:
    open_card(page, "latent-walk", "VAE on digits")
    page.get_by_role("tab", name="Train").click()  # the card opens the Latent explorer
    page.locator("#how-posteriors").get_by_text("a VAE's posteriors").click()
    page.locator("#post-show").click()
    expect(page.locator("#post-note")).to_contain_text("latent dimensions active", timeout=10_000)
    expect(page.locator("#post-plot .gtitle")).to_contain_text("E[x | z = μ]")
    page.locator("#how-posteriors").screenshot(path=output_dir / "how_it_works_posteriors.png")


def test_a_vae_trained_on_moons_shows_its_posteriors_over_its_priors_gaussians(page: Page, output_dir: Path) -> None:
    """The VAE on points has a prior mixing 16 learned Gaussians: trained on the page, its posteriors view draws
    them (one legend entry per ring of outlines), and its table takes the 2-D columns again after the digits' view
    (it had kept their four headers over six columns of numbers), with no error in the console."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.get_by_role("tab", name="Train").click()
    choose(page, "#dataset", "moons")
    choose(page, "#model", "VAE (latent)")
    set_number(page, "#steps", "300")
    page.locator("#train-btn").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    if not page.locator("#post-show").is_visible():  # the view is still open from the digits' walk when run after it
        page.locator("#how-posteriors").get_by_text("a VAE's posteriors").click()
    page.locator("#post-show").click()
    expect(page.locator("#post-note")).to_contain_text("mean KL", timeout=10_000)
    expect(page.locator("#post-plot .legendtext", has_text="prior's 16 Gaussians at 1σ")).to_be_visible()
    expect(page.locator("#post-table thead")).to_contain_text("σ₂")  # not the digits' columns shown before
    page.locator("#how-posteriors").screenshot(path=output_dir / "how_it_works_posteriors_points.png")
    assert errors == []
