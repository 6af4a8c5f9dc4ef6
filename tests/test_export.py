"""A run exports as a Jupyter notebook and a Python script that train it again with ``dgm_core`` and reach the run's
own scores: the loop written out, the model's math beside it, and a clear refusal where the data cannot travel."""

from __future__ import annotations

import inspect
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest
import torch
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from PIL import Image

from app.page.downloads import DOWNLOADS
from app.tabs.runs import DownloadView, download_checkpoint, download_code
from app.tabs.train import download_current
from dgm_core.data import USER_SETS
from dgm_core.data import user as user_data
from dgm_core.data.upload import points_from_drawing
from dgm_core.models.registry import FAMILIES, MODELS
from dgm_core.runs.export import ExportError, notebook, script, write_notebook
from dgm_core.runs.replay import replay_of
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from tests.app_helpers import Session, trained

torch.set_num_threads(1)  # as the playground trains, and as the exported code does: the same arithmetic
ROOT = Path(__file__).resolve().parent.parent
STEP_SCHEDULE = {"eval_every_s": None, "eval_every_steps": 10, "sample_every_s": None}  # evaluations by the step
ONE_PER_FAMILY = {  # a model of each family of the registry, on the data it is shown on
    "autoregressive": ("MADE", "moons"),
    "flow": ("RealNVP", "moons"),
    "latent": ("CVAE", "digits"),  # conditional, on images: the labels and the image figure
    "implicit": ("GAN", "moons"),
    "diffusion": ("DDPM", "moons"),
    "energy": ("EBM", "moons"),
}
NLL_TOLERANCE = 1e-3  # nats
# MMD² between 500 samples and 500 validation items scatters by a standard deviation of 2.6e-3 (EBM) to 3.5e-3 (GAN)
# from one draw of samples to the next (these runs, 20 seeds); a replay draws the very same samples, so it must agree
# to a tenth of that
MMD_TOLERANCE = 2.5e-4


def _trained(model: str, dataset: str, steps: int = 20, **settings) -> Run:
    """A small run, evaluated every 10 steps, trained to its end."""
    spec = RunSpec.defaults(model, dataset, steps=steps, hidden=16, batch_size=32, **settings)
    run = Run(spec, **STEP_SCHEDULE)
    run.start()
    while run.active:
        run.advance(5.0)
    return run


def _reported(printed: str, run: Run) -> tuple[float, float]:
    """The score the exported code reports for the kept weights, and the run's own (test NLL, or validation MMD²)."""
    kept = run.kept.scores
    if kept.nll:
        return float(re.search(r"test NLL: (\S+) nats", printed)[1]), kept.nll["test"]
    return float(re.search(r"validation MMD²: (\S+);", printed)[1]), kept.val_mmd


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory):
    """One Python 3 kernel for the notebooks (each starts with %reset, so that none sees another's names), in a
    scratch folder, with the repository importable as the notebook's first cell asks."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path_factory.mktemp("kernel")), env={**os.environ, "PYTHONPATH": str(ROOT)})
    yield manager
    manager.shutdown_kernel(now=True)


def _execute(book: nbformat.NotebookNode, kernel: KernelManager) -> str:
    """Run the notebook top to bottom, headless; what its cells printed."""
    book.cells.insert(0, nbformat.v4.new_code_cell("%reset -f"))
    client = NotebookClient(book, km=kernel, timeout=120)
    try:
        client.execute()
    finally:
        client.kc.stop_channels()
    return "".join(out.get("text", "") for cell in book.cells if cell.cell_type == "code" for out in cell.outputs)


def test_one_model_of_each_family_is_exported():
    assert set(ONE_PER_FAMILY) == set(FAMILIES)
    assert all(MODELS[model].family == family for family, (model, _) in ONE_PER_FAMILY.items())


@pytest.mark.slow
def test_an_exported_notebook_runs_headless_and_reproduces_the_runs_score_in_every_family(kernel):
    for family, (model, dataset) in ONE_PER_FAMILY.items():  # one test: one kernel, wherever xdist sends it
        run = _trained(model, dataset)
        book = notebook(run)
        replayed, recorded = _reported(_execute(book, kernel), run)
        tolerance = NLL_TOLERANCE if run.kept.scores.nll else MMD_TOLERANCE
        assert abs(replayed - recorded) <= tolerance, (
            f"{family}: {model}'s notebook says {replayed}, the run {recorded}"
        )
        pictures = [out for cell in book.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
        assert len(pictures) == 1, f"{family}: {model}'s notebook shows no samples"


@pytest.mark.slow
def test_the_exported_script_runs_as_a_program_and_prints_the_runs_test_nll(tmp_path):
    run = _trained("VAE", "digits")
    (tmp_path / "vae.py").write_text(script(run))
    done = subprocess.run(
        [sys.executable, "vae.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    replayed, recorded = _reported(done.stdout, run)
    assert abs(replayed - recorded) <= NLL_TOLERANCE
    assert Image.open(tmp_path / "VAE-digits-samples.png").size == (320, 320)  # 8 × 8 samples, framed, 4 × 4


def test_a_script_replays_a_cosine_schedule_and_keeps_the_final_weights_as_the_run_did(tmp_path, monkeypatch):
    run = _trained("MAF", "moons", steps=30, lr_schedule="cosine", keep="final")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with redirect_stdout(printed):
        exec(compile(script(run), "maf.py", "exec"), {"__name__": "__main__"})
    replayed, recorded = _reported(printed.getvalue(), run)
    assert run.kept.step == 30 and abs(replayed - recorded) <= NLL_TOLERANCE
    assert "largest difference from the run's scores: 0.0e+00" in printed.getvalue()
    assert Image.open(tmp_path / "MAF-moons-samples.png").size == (480, 480)


def test_the_training_loop_is_written_out_beside_the_models_math():
    run = _trained("RealNVP", "moons", steps=10)
    book = notebook(run)
    code = "\n".join(cell.source for cell in book.cells if cell.cell_type == "code")
    text = "\n".join(cell.source for cell in book.cells if cell.cell_type == "markdown")
    for piece in ("torch.randint(len(train_x)", "model.train_step(", "LambdaLR(", "evaluate(model, step)", "KEEP"):
        assert piece in code
    assert "Trainer" not in code and ".start(" not in code  # no hidden loop
    assert MODELS["RealNVP"].description in text and inspect.cleandoc(type(run.model).__doc__) in text
    assert "pip install -r requirements.txt" in book.cells[0].source and "reproduces the run exactly" in text


def test_the_script_holds_the_notebooks_code_and_its_own_picture():
    run = _trained("MADE", "moons", steps=10)
    code_cells = [cell.source for cell in notebook(run).cells if cell.cell_type == "code"]
    program = script(run)
    assert all(source in program for source in code_cells[:-1])  # all but the last, which shows the picture
    assert code_cells[-1].startswith("picture  #") and "picture.save(" in program
    compile(program, "made.py", "exec")


def test_a_cosine_over_a_time_budget_is_said_to_reproduce_only_approximately():
    timed = {}
    for schedule in ("cosine", "constant"):
        run = Run(RunSpec.defaults("RealNVP", "moons", steps=100_000, hidden=16, lr_schedule=schedule))
        run.start(max_seconds=0.2)
        while run.active:
            run.advance(1.0)
        timed[schedule] = replay_of(run).caveats
    assert "followed the clock of a time budget" in timed["cosine"][0] and timed["constant"] == ()


def test_a_run_on_the_users_own_data_or_never_evaluated_is_refused_with_a_reason(tmp_path):
    drawn = points_from_drawing(torch.randn(300, 2).numpy())
    name = user_data.name_for(drawn, "drawing")
    user_data.register(drawn, name)
    try:
        own = _trained("RealNVP", name, steps=10)
        with pytest.raises(ExportError, match="your own data set .* stays with this browser"):
            write_notebook(own, tmp_path / "own.ipynb")
        session = Session()
        view, folders = session.keep(own), set(DOWNLOADS.glob("*"))
        shown = download_code("script", DOWNLOADED, session, view.id)
        assert shown["file"] is None and shown["message"].startswith("**Not exported:** This run trained on your own")
        assert set(DOWNLOADS.glob("*")) <= folders  # no empty download folder left behind
    finally:
        USER_SETS.clear()
    with pytest.raises(ExportError, match="no evaluated weights yet"):
        script(Run(RunSpec.defaults("RealNVP", "moons", hidden=16)))
    assert list(tmp_path.iterdir()) == []


# --- the Runs and Train tabs --------------------------------------------------------------------------------------
DOWNLOADED = DownloadView("file", "message", "hint")  # a download's outputs, by name


def test_the_runs_tab_downloads_a_notebook_that_parses_and_picking_no_run_says_so():
    session = Session()
    view = trained(session, "moons", "MADE", steps=20, hidden=16)
    shown = download_code("notebook", DOWNLOADED, session, view.id)
    nbformat.validate(nbformat.read(shown["file"], as_version=4))
    assert shown["file"].endswith(f"MADE-moons-run{view.id}.ipynb") and "is ready" in shown["message"]
    nothing = download_code("notebook", DOWNLOADED, session, None)
    assert nothing == {"file": None, "message": "Pick a run to download as a notebook.", "hint": ""}


def test_the_checkpoint_download_shows_two_lines_that_load_it_in_python(monkeypatch):
    session = Session()
    view = trained(session, "moons", "MADE", steps=20, hidden=16)
    shown = download_checkpoint(DOWNLOADED, session, view.id)
    lines = re.search(r"```python\n(.*)\n```", shown["hint"], re.S)[1].splitlines()
    assert len(lines) == 2
    monkeypatch.chdir(Path(shown["file"]).parent)
    loaded = {}
    exec("\n".join(lines), loaded)
    assert loaded["run"].step == view.run.step and loaded["run"].history == view.run.history


def test_the_train_tab_downloads_its_run_as_a_script_and_warns_before_there_is_one():
    session = Session()
    with pytest.warns(UserWarning, match="press Train first"):
        assert download_current("script", session)["visible"] is False
    session.current = trained(session, "moons", "MADE", steps=20, hidden=16)
    shown = download_current("script", session)
    assert shown["visible"] and Path(shown["value"]).read_text().startswith("# # MADE on moons")
