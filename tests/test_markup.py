"""Data is never markup: every string a user or a file supplies (a file name, a CSV's content, a checkpoint's values,
a setting sent through the API) is shown literally. Each message below is rendered as the page renders Markdown
(CommonMark with HTML allowed, as Gradio's) and must create no element and no link of its own."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import fields

import pytest
import torch
from markdown_it import MarkdownIt

from app.page.session import Backend, Session
from app.page.views import plain
from app.tabs import runs as runs_tab
from app.tabs import train as train_tab
from app.tabs.your_data import add_files
from dgm_core.data import USER_SETS
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import Scheduler

HOSTILE = "<img src=x onerror=alert(1)> [win](http://evil.example) **bold** www.evil.example\n# heading"
ALLOWED = {"p", "strong", "em", "br"}  # what the app's own messages use
RENDER = MarkdownIt("commonmark", {"html": True})


RUNS_TAB = runs_tab.RunsView(*(field.name for field in fields(runs_tab.RunsView)))  # its outputs, by name


def elements(markdown: str) -> set[str]:
    """The HTML elements the page would create from ``markdown``."""
    return set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", RENDER.render(markdown)))


def test_plain_text_creates_no_element_whatever_it_holds():
    assert elements(plain(HOSTILE)) <= {"p"}
    assert "&lt;img" in RENDER.render(plain(HOSTILE)) and "http://evil.example" in RENDER.render(plain(HOSTILE))


def test_the_check_sees_markup_when_it_is_there():
    assert {"img", "a", "strong", "h1"} <= elements(HOSTILE)


@pytest.fixture()
def page(tmp_path) -> Session:
    yield Session(Backend(torch.device("cpu"), Scheduler(1)))
    USER_SETS.clear()


def test_a_file_name_and_its_content_shown_after_an_upload(page, tmp_path):
    named = tmp_path / "<img src=x onerror=alert(1)>[win](http:evil).csv"
    named.write_text("x,y\n" + "\n".join(f"{i % 7},{i % 5}" for i in range(200)))
    said, _, _ = add_files(page, [str(named)], 8)
    assert said.startswith("Added") and elements(said) <= ALLOWED
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(f"<img src=x>,[a](b),{i}" for i in range(50)))
    said, _, _ = add_files(page, [str(bad)], 8)
    assert said.startswith("**Not used:**") and elements(said) <= ALLOWED


def test_a_checkpoint_whose_values_carry_markup(page, tmp_path):
    run = Run(RunSpec.defaults("RealNVP", "moons", hidden=16, steps=2))
    path = run.save(tmp_path / "run")
    with zipfile.ZipFile(path) as archive:
        config, weights = json.loads(archive.read("config.json")), archive.read("weights.safetensors")
    config["spec"]["model"] = HOSTILE
    hostile = tmp_path / "hostile.dgm.zip"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("weights.safetensors", weights)
    said = runs_tab.upload_run(RUNS_TAB, page, str(hostile), None)["message"]
    assert said.startswith("**Not loaded:**") and elements(said) <= ALLOWED


def test_a_setting_sent_through_the_api(page, monkeypatch):
    monkeypatch.setattr(train_tab.gr, "Warning", lambda message: None)
    said = train_tab.refuse(f"Choose a model: {HOSTILE} is not one.")
    assert said.startswith("**Cannot train:**") and elements(said) <= ALLOWED
