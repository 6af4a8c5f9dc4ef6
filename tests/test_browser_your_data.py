"""Your own data in Chromium: draw a shape, train a flow on it and see its density; upload a CSV and an image zip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.test_browser import open_app, set_number

pytestmark = pytest.mark.browser


def _image_zip(path: Path) -> Path:
    """40 small PNGs in two folders: bars and rings."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(40):
            picture = np.zeros((20, 20), np.uint8)
            if i % 2:
                picture[:, 8 + i % 4 : 12 + i % 4] = 255
            else:
                yy, xx = np.mgrid[:20, :20]
                picture[np.abs(np.hypot(yy - 10, xx - 10) - 6) < 1.5] = 255
            png = io.BytesIO()
            Image.fromarray(picture).save(png, format="PNG")
            archive.writestr(f"{'bars' if i % 2 else 'rings'}/{i}.png", png.getvalue())
    path.write_bytes(buffer.getvalue())
    return path


def test_a_csv_and_an_image_zip_are_uploaded(page: Page, app_url: str, tmp_path: Path) -> None:
    open_app(page, app_url)
    page.locator("#your-data").get_by_text("Your own data").click()
    rng = np.random.default_rng(0)
    csv = tmp_path / "three-clusters.csv"
    points = rng.standard_normal((500, 2)) + rng.integers(3, size=(500, 1)) * 3
    csv.write_text("x;y\n" + "\n".join(f"{x:.3f};{y:.3f}" for x, y in points))
    page.locator("#data-files input[type=file]").set_input_files(str(csv))
    expect(page.locator("#data-files")).to_contain_text("three-clusters.csv", timeout=30_000)  # uploaded
    page.locator("#data-use-files").click()
    expect(page.locator("#data-said")).to_contain_text("Added three-clusters-", timeout=60_000)
    expect(page.locator("#data-info")).to_contain_text("500 points")
    page.locator("#data-files input[type=file]").set_input_files(str(_image_zip(tmp_path / "shapes.zip")))
    expect(page.locator("#data-files")).to_contain_text("shapes.zip", timeout=30_000)
    page.locator("#data-use-files").click()
    expect(page.locator("#data-said")).to_contain_text("Added shapes-", timeout=60_000)
    expect(page.locator("#data-info")).to_contain_text("images 1×8×8")
    expect(page.locator("#samples-plot .gtitle")).to_contain_text("training images")


def test_a_drawn_shape_is_trained_on_and_its_density_shown(page: Page, app_url: str, output_dir: Path) -> None:
    open_app(page, app_url)
    page.locator("#your-data").get_by_text("Your own data").click()
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("#data-canvas canvas").first
    expect(canvas).to_be_visible(timeout=10_000)
    page.locator("#data-canvas button[aria-label='Brush']").click()
    box = canvas.bounding_box()
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    angles = np.linspace(0, 1.8 * np.pi, 60)  # one stroke: most of a ring
    page.mouse.move(left + (0.5 + 0.3 * np.cos(angles[0])) * width, top + (0.5 + 0.3 * np.sin(angles[0])) * height)
    page.mouse.down()
    for angle in angles:
        page.mouse.move(left + (0.5 + 0.3 * np.cos(angle)) * width, top + (0.5 + 0.3 * np.sin(angle)) * height)
    page.mouse.up()
    page.wait_for_timeout(300)
    page.locator("#your-data").screenshot(path=output_dir / "your_data_canvas.png")
    page.locator("#data-use-drawing").click()
    expect(page.locator("#data-said")).to_contain_text("drawn points", timeout=15_000)
    expect(page.locator("#data-info")).to_contain_text("drawn points", timeout=10_000)
    set_number(page, "#steps", "100")
    page.locator("#train-btn").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#samples-plot .gtitle")).to_contain_text("log density", timeout=20_000)
    page.locator("#samples-plot").screenshot(path=output_dir / "your_data_drawn.png")
