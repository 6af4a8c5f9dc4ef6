"""Exploring trained models in a real Chromium: the latent explorer's slider, comparisons (two models to their end;
six families side by side, stopped), the runs list."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from dgm_core.serve.comparison import default_models
from tests.test_browser import choose, open_app, picture_of, set_number

pytestmark = pytest.mark.browser


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def train_digits_vae(page: Page, steps: int = 300) -> None:
    choose(page, "#dataset", "digits")
    expect(page.locator("#samples-plot .gtitle")).to_contain_text("digits")  # the data set's own event has finished
    choose(page, "#model", "VAE (latent)")
    expect(page.locator("#model-info")).to_contain_text("Variational autoencoder")  # its defaults have arrived
    set_number(page, "#steps", str(steps))
    expect(page.locator("#steps input")).to_have_value(str(steps))
    page.locator("#train-btn").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)


def drag_slider(page: Page, selector: str, to_fraction: float) -> None:
    """Press on the slider's thumb area and drag it with the mouse, as a user would."""
    box = page.locator(f"{selector} input[type=range]").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    for fraction in (0.6, 0.7, 0.8, to_fraction):
        page.mouse.move(box["x"] + box["width"] * fraction, y, steps=3)
    page.mouse.up()


def test_latent_slider_moves_the_decoded_image(page: Page, app_url: str, output_dir: Path) -> None:
    open_app(page, app_url)
    train_digits_vae(page)
    open_tab(page, "Latent explorer")
    expect(page.locator("#latent-info")).to_contain_text("8-dimensional latent space", timeout=10_000)
    before = picture_of(page, "#latent-image")
    expect(page.locator("#latent-strip img")).to_be_visible()

    drag_slider(page, "#latent-slider", 0.95)
    picture_of(page, "#latent-image", other_than=before)  # another point decoded
    page.screenshot(path=output_dir / "latent_explorer.png", full_page=True)

    page.locator("#latent-source label", has_text="two test items").click()
    page.locator("#latent-set").click()
    expect(page.locator("#latent-note")).to_contain_text("test items 0 and 1, encoded by the model")
    page.locator("#latent-gif").click()
    expect(page.locator("#latent-file")).to_contain_text(re.compile(r"interpolation-run\d+.*\.gif"), timeout=10_000)


def test_likelihood_tab_overlays_runs_and_scores_items_against_out_of_distribution_sets(
    page: Page, app_url: str, output_dir: Path
) -> None:
    open_app(page, app_url)
    train_digits_vae(page, steps=150)
    open_tab(page, "Likelihood")
    expect(page.locator("#lik-curves")).to_contain_text("VAE (ELBO) test", timeout=10_000)
    expect(page.locator("#lik-curves")).to_contain_text("IWAE (k=64) bound")
    page.locator("#lik-score").click()
    expect(page.locator("#lik-ood")).to_contain_text("inverted test items", timeout=20_000)
    expect(page.locator("#lik-hist")).to_contain_text("uniform noise")
    expect(page.locator("#lik-extremes image").first).to_be_visible()  # the most and least likely digits
    page.screenshot(path=output_dir / "likelihood_digits.png", full_page=True)


def test_a_two_model_comparison_fills_its_table(page: Page, app_url: str, output_dir: Path) -> None:
    open_app(page, app_url)
    open_tab(page, "Compare")
    choose(page, "#compare-data", "moons")
    wanted = {"MADE (autoregressive)", "GAN (implicit)"}
    for label in page.locator("#compare-models label").all():
        checked = label.locator("input").is_checked()
        if checked != (label.inner_text().strip() in wanted):
            label.click()
    page.locator("#compare-budget label", has_text="steps").click()
    set_number(page, "#compare-amount", "80")
    page.locator("#compare-btn").click()
    expect(page.locator("#compare-status")).to_contain_text("Done", timeout=60_000)

    table = page.locator("#compare-table").inner_text()
    made = re.search(r"MADE\s+autoregressive\s+done\s+(\d\.\d+)\s+exact", table)
    gan = re.search(r"GAN\s+implicit\s+done\s+—\s+none \(no likelihood\)\s+(\S+)\s+(\S+)", table)
    assert made and gan, table
    assert 1.0 < float(made[1]) < 3.0  # bits/dim on moons: between the entropy's 1.73 and far worse than a Gaussian
    assert float(gan[1]) < 1 and 0 < float(gan[2]) <= 1, "the GAN gets a two-sample statistic like everyone else"
    expect(page.locator("#compare-samples")).to_contain_text("MADE")
    expect(page.locator("#compare-nll .legendtext")).to_have_count(1)  # only MADE has a likelihood
    heights = page.locator("#compare-table th").evaluate_all("cells => cells.map(c => c.offsetHeight)")
    assert max(heights) < 2 * min(heights), f"a header wraps (once a letter per line): {heights}"
    page.screenshot(path=output_dir / "compare_moons.png", full_page=True)

    open_tab(page, "Runs")
    expect(page.locator("#runs-table")).to_contain_text("MADE", timeout=5_000)
    expect(page.locator("#runs-table")).to_contain_text("GAN")

    page.reload()  # the browser keeps its token: the server brings its runs back
    expect(page.locator("#status")).to_contain_text("Welcome back", timeout=20_000)
    open_tab(page, "Runs")
    expect(page.locator("#runs-table")).to_contain_text("MADE", timeout=5_000)
    expect(page.locator("#runs-table")).to_contain_text("GAN")


def test_six_families_train_side_by_side_and_stop_keeps_what_each_reached(
    page: Page, app_url: str, output_dir: Path
) -> None:
    open_app(page, app_url)
    open_tab(page, "Compare")
    choose(page, "#compare-data", "moons")  # its default models: one per family
    names = default_models("moons")
    expect(page.locator("#compare-models input:checked")).to_have_count(len(names))
    page.locator("#compare-budget label", has_text="seconds").click()
    set_number(page, "#compare-amount", "30")  # seconds each: Stop comes long before any model ends
    clicked = time.perf_counter()
    page.locator("#compare-btn").click()
    page.wait_for_function(  # every model's panel, while they all train
        "names => names.every(name => document.querySelector('#compare-samples').textContent.includes(name))",
        arg=names,
        timeout=30_000,
    )
    panels_s = time.perf_counter() - clicked
    status = page.locator("#compare-status")
    expect(status).to_contain_text(f"Training {len(names)} of {len(names)} models at once")
    expect(page.locator("#compare-nll .legendtext")).not_to_have_count(0, timeout=15_000)  # curves while training
    page.screenshot(path=output_dir / "compare_six_training.png", full_page=True)

    stop_clicked = time.perf_counter()
    page.locator("#compare-stop").click()
    expect(status).to_contain_text("Stopped", timeout=10_000)
    stopped_s = time.perf_counter() - stop_clicked
    expect(status).to_contain_text("each model keeps the weights it chose", timeout=30_000)
    scored_s = time.perf_counter() - stop_clicked
    table = page.locator("#compare-table").inner_text()
    assert table.count("stopped") == len(names) and "not started" not in table and "…" not in table, table
    page.screenshot(path=output_dir / "compare_six_stopped.png", full_page=True)
    report = (
        f"six families on moons: click -> every panel shows samples {panels_s:.2f} s; "
        f"Stop -> status says Stopped {stopped_s:.2f} s; Stop -> every model scored {scored_s:.2f} s\n"
    )
    (output_dir / "compare_live.txt").write_text(report)
    print(report, end="")
