"""A run as code: a Jupyter notebook and a plain Python script that rebuild it with ``dgm_core`` — the data, the model
with its settings, the training loop written out (batch draw, ``model.train_step``, learning-rate schedule, evaluations,
the weights kept), the kept weights on the test split and a figure of samples — beside the model's math (its docstrings
and the registry's description). One list of cells (``cells``) makes both files, so that they never disagree.

The replay draws what the run drew: ``build_model`` seeds the initial weights with the run's seed; the batches, and the
model's training noise, come from ``RandomStream(seed)`` as in ``Trainer._train_step``; the learning rate follows
``TrainConfig.lr_factor``; and the weights are scored at the steps the run evaluated (its history's, whether a step
schedule or the busy clock chose them) by a copy of ``Trainer._evaluation``, so the same weights are kept and score the
same. That is exact on the CPU, except where the notebook says otherwise (``Replay.caveats``): a cosine over a time
budget follows the clock, which no run records step by step (the replay spans the cosine over the steps taken
instead); a GPU rounds differently. A run stopped (or finished) and then continued went on from its kept weights,
which nothing records either: so the code prints its distance from the run's own scores as it goes.

A run on a user's own data is refused (``ExportError``): that data stays with its browser, and embedding it (up to
100,000 points, or thousands of images) would make a file too large to read.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

from dgm_core.runs.export_cells import cells
from dgm_core.runs.replay import ExportError
from dgm_core.runs.run import Run

__all__ = ["ExportError", "notebook", "script", "write_notebook", "write_script"]
COMMENT_WIDTH = 118  # the script's comment lines


def notebook(run: Run) -> nbformat.NotebookNode:
    """The run as a Jupyter notebook (nbformat 4, Python 3 kernel), not yet executed."""
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book = nbformat.v4.new_notebook(
        cells=[make[cell.kind](cell.source) for cell in cells(run) if cell.only != "script"],
        metadata={"kernelspec": kernel, "language_info": {"name": "python"}},
    )
    nbformat.validate(book)
    return book


def script(run: Run) -> str:
    """The run as one Python file: the notebook's code in order, its Markdown as comments."""
    parts = [
        cell.source if cell.kind == "code" else _comment(cell.source) for cell in cells(run) if cell.only != "notebook"
    ]
    return "\n\n\n".join(parts) + "\n"


def write_notebook(run: Run, path: str | Path) -> Path:
    """The notebook written to ``path`` (nothing is written when the run cannot be exported)."""
    book = notebook(run)
    nbformat.write(book, Path(path))
    return Path(path)


def write_script(run: Run, path: str | Path) -> Path:
    """The script written to ``path`` (nothing is written when the run cannot be exported)."""
    text = script(run)
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)


def _comment(markdown: str) -> str:
    """Markdown as comment lines: paragraphs wrapped anew, indented blocks (formulas, code) and lists as they are."""
    lines = []
    for block in markdown.split("\n\n"):
        verbatim = any(line.startswith((" ", "- ")) for line in block.splitlines())
        lines += [*(block.splitlines() if verbatim else textwrap.wrap(block, COMMENT_WIDTH - 2)), ""]
    return "\n".join(f"# {line}".rstrip() for line in lines[:-1])
