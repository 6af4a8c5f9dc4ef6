"""A picture that many pages show at once (Lecture 1's views, a data preview) is never rewritten while one of them
downloads it: every read of the cached file gets it whole."""

import threading
from pathlib import Path

import numpy as np
import pytest
from gradio import processing_utils

from app.page import image_cache


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)
    image_cache.install()


def test_pages_reading_a_picture_while_others_show_it_again_always_get_it_whole(installed, tmp_path):
    picture = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    path = Path(processing_utils.save_img_array_to_cache(picture, str(tmp_path)))
    whole = path.read_bytes()
    done = threading.Event()

    def show_again() -> None:  # other pages: the same picture, over and over
        while not done.is_set():
            processing_utils.save_img_array_to_cache(picture, str(tmp_path))

    writers = [threading.Thread(target=show_again) for _ in range(2)]
    for writer in writers:
        writer.start()
    try:
        reads = [path.read_bytes() for _ in range(3000)]
    finally:
        done.set()
        for writer in writers:
            writer.join()
    assert all(read == whole for read in reads)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left behind


def test_a_new_picture_is_written_once_and_named_by_its_content(installed, tmp_path):
    first, second = (np.full((8, 8, 3), value, dtype=np.uint8) for value in (10, 200))
    paths = [processing_utils.save_img_array_to_cache(p, str(tmp_path)) for p in (first, second, first)]
    assert paths[0] == paths[2] != paths[1] and all(Path(p).stat().st_size > 0 for p in paths)
