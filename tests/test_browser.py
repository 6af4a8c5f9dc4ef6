"""The page in a real Chromium (Playwright): choose data and a model, train, watch it update, stop, continue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

STEP = re.compile(r"step (\d+) / (\d+)")

# Records, in page time, when Train and Stop are clicked and when their first effects become visible.
WATCH_UPDATES = """() => {
  const marks = (window.__marks = {});
  const onClick = (id, key) => document.querySelector(id).addEventListener('click',
      () => { marks[key] = performance.now(); }, {capture: true, once: true});
  onClick('#train-btn', 'train'); onClick('#stop-btn', 'stop');
  const check = () => {
    const status = document.querySelector('#status')?.innerText || '';
    const match = status.match(/step (\\d+) \\//);
    const legend = [...document.querySelectorAll('#samples-plot .legendtext')].map(e => e.textContent);
    const mark = (after, key, seen) => { if (marks[after] !== undefined && marks[key] === undefined && seen)
                                           marks[key] = performance.now(); };
    mark('train', 'status', match && Number(match[1]) >= 1);
    mark('train', 'samples', legend.includes('model samples'));
    mark('stop', 'stopped', status.includes('Stopped'));
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def choose(page: Page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.locator(f"{dropdown} input")).to_have_value(option)


def set_number(page: Page, field: str, value: str) -> None:
    page.locator(f"{field} input").fill(value)
    page.locator(f"{field} input").press("Tab")


def step(page: Page) -> int:
    match = STEP.search(page.locator("#status").inner_text())
    return int(match[1]) if match else -1


def wait_for_step(page: Page, at_least: int, timeout_ms: int = 20_000) -> None:
    page.wait_for_function(
        "n => { const m = document.querySelector('#status').innerText.match(/step (\\d+) \\//);"
        " return m && Number(m[1]) >= n; }",
        arg=at_least,
        timeout=timeout_ms,
    )


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#train-btn")).to_be_visible(timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3")  # figures drawn
    page.evaluate("() => new Promise(done => requestIdleCallback(done, {timeout: 3000}))")  # the page is idle
    page.wait_for_function("() => localStorage.getItem('dgm-playground-token')")  # it knows its browser


def test_moons_realnvp_trains_live_then_stops_and_continues(page: Page, app_url: str, output_dir: Path) -> None:
    open_app(page, app_url)
    choose(page, "#dataset", "moons")
    choose(page, "#model", "RealNVP (flow)")
    expect(page.locator("#model-info")).to_contain_text("Normalizing flow")
    set_number(page, "#steps", "3000")
    page.evaluate(WATCH_UPDATES)
    page.locator("#train-btn").click()

    page.wait_for_function("() => window.__marks.status !== undefined && window.__marks.samples !== undefined")
    marks = page.evaluate("window.__marks")
    to_status, to_samples = (marks["status"] - marks["train"]) / 1000, (marks["samples"] - marks["train"]) / 1000
    report = f"click Train -> status shows a step: {to_status:.2f} s; samples drawn: {to_samples:.2f} s\n"

    samples = page.locator("#samples-plot")
    early = samples.screenshot(path=output_dir / "moons_samples_early.png")
    wait_for_step(page, 150)
    expect(page.locator("#status")).to_contain_text("test NLL")
    expect(page.locator("#status")).to_contain_text("exact")
    expect(page.locator("#nll-plot")).to_contain_text("data entropy (floor)")
    expect(page.locator("#nll-plot .legendtext")).to_have_count(2)
    expect(page.locator("#loss-plot .scatterlayer .trace")).to_have_count(1)
    redrawn = False  # the samples are redrawn as training goes on (at most once a second: look for up to 10 s)
    for _ in range(20):
        redrawn = samples.screenshot(path=output_dir / "moons_samples_later.png") != early
        if redrawn:
            break
        page.wait_for_timeout(500)
    assert redrawn
    page.screenshot(path=output_dir / "moons_training.png", full_page=True)

    page.locator("#stop-btn").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=5_000)
    marks = page.evaluate("window.__marks")
    report += f"click Stop -> status says stopped: {(marks['stopped'] - marks['stop']) / 1000:.2f} s\n"
    (output_dir / "first_update.txt").write_text(report)
    print(report, end="")
    expect(page.locator("#status")).to_contain_text("Kept the weights of step")
    stopped_at = step(page)
    page.wait_for_timeout(600)
    assert step(page) == stopped_at, "training went on after Stop"
    page.screenshot(path=output_dir / "moons_stopped.png", full_page=True)

    set_number(page, "#steps", "100")
    page.locator("#continue-btn").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=20_000)
    assert step(page) == stopped_at + 100
    page.screenshot(path=output_dir / "moons_continued.png", full_page=True)


PICTURE = "(figure) => document.querySelector(`${figure} image`)?.getAttribute('href')"


def picture_of(page: Page, figure: str, other_than: str | None = None) -> str:
    """The picture a figure shows (a layout image: plotly draws it as an SVG image, whose data it sets once the
    picture has loaded), waiting for one other than ``other_than``."""
    changed = f"([figure, before]) => ({PICTURE})(figure) && ({PICTURE})(figure) !== before"
    page.wait_for_function(changed, arg=[figure, other_than])
    return page.evaluate(PICTURE, figure)


def test_digits_vae_shows_a_sample_grid_and_a_bound(page: Page, app_url: str, output_dir: Path) -> None:
    open_app(page, app_url)
    choose(page, "#dataset", "digits")
    expect(page.locator("#samples-plot .gtitle")).to_contain_text("digits (training images)")
    choose(page, "#model", "VAE (latent)")
    expect(page.locator("#model-info")).to_contain_text("Variational autoencoder")
    expect(page.locator("#batch-size input")).to_have_value("128")
    set_number(page, "#steps", "400")
    preview = picture_of(page, "#samples-plot")
    page.locator("#train-btn").click()

    wait_for_step(page, 50)
    expect(page.locator("#samples-plot .gtitle")).to_contain_text("8×8 images")  # the model's samples, as a picture
    first = picture_of(page, "#samples-plot", other_than=preview)  # the model's samples replaced the data
    expect(page.locator("#status")).to_contain_text("bound: ELBO")
    picture_of(page, "#samples-plot", other_than=first)  # drawn again as it learns
    expect(page.locator("#nll-plot")).to_contain_text("test (bound)")
    expect(page.locator("#status")).to_contain_text("Done", timeout=20_000)
    expect(page.locator("#status")).to_contain_text("baseline (independent pixels)")
    page.screenshot(path=output_dir / "digits_vae.png", full_page=True)


def test_invalid_learning_rate_is_explained_on_the_page(page: Page, app_url: str) -> None:
    open_app(page, app_url)
    set_number(page, "#lr", "0")
    page.locator("#train-btn").click()
    expect(page.locator("#status")).to_contain_text("The learning rate must be a number in (0, 1]")
    expect(page.locator(".toast-body").first).to_contain_text("learning rate")
