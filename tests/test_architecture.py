"""The folders are the architecture: each package is a layer, and a module imports only from its own layer or the
ones below it — never up, never in a circle (imports inside functions count: they only hide a circle), and the core
never imports Gradio or the app.

    app.layout                     the composition root: builds the page from the tabs
    app.tabs, app.how              the tabs, and the How-it-works views under the Train tab's figures
    app.page                       what every page shares: sessions, streams, status text, uploads
    app.draw                       figures and pictures (Plotly, rasters): no state
    dgm_core.lecture               the lecture's runs and pictures (presets, inverse graphics)
    dgm_core.serve                 many runs on few cores: scheduler, training processes, comparisons
    dgm_core.runs, dgm_core.inspect  a run's life (spec, run, files, store); tools that look inside a model
    dgm_core.learn                 training and evaluation
    dgm_core.models, dgm_core.data the models, and the data they learn
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [  # lowest first; packages on one line are side by side and do not import each other
    ["dgm_core.data"],
    ["dgm_core.models"],
    ["dgm_core.learn"],
    ["dgm_core.runs", "dgm_core.inspect"],
    ["dgm_core.serve"],
    ["dgm_core.lecture"],
    ["dgm_core.__main__"],
    ["app.draw"],
    ["app.page"],
    ["app.tabs", "app.how"],
    ["app.layout"],
]


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("dgm_core", "app"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """Every module of ours that ``module`` imports, at the top or inside a function."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package's own folder up
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            named.add(base)
            named |= {f"{base}.{alias.name}" for alias in node.names}  # "from package import module"
    return {name for name in named if name in MODULES and name != module} | {
        name for name in named if name.split(".")[0] == "gradio"
    }


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> tuple[int, str] | None:
    for rank, packages in enumerate(LAYERS):
        for package in packages:
            if module == package or module.startswith(package + "."):
                return rank, package
    return None


def test_every_module_of_the_core_and_the_app_belongs_to_a_layer() -> None:
    roots = {"dgm_core", "app"}  # the packages' own __init__ files hold no code
    assert [module for module in MODULES if module not in roots and _layer(module) is None] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_a_module_imports_only_from_its_own_layer_or_below(module: str) -> None:
    rank, package = _layer(module)
    upward = []
    for imported in GRAPH[module]:
        if imported.startswith("gradio"):
            continue
        their_rank, their_package = _layer(imported) or (-1, imported)
        if their_rank > rank or (their_rank == rank and their_package != package):
            upward.append(imported)
    assert upward == [], f"{module} imports from a layer above it or beside it"


def test_the_core_never_imports_gradio() -> None:
    assert [m for m in MODULES if m.startswith("dgm_core") and any(i.startswith("gradio") for i in GRAPH[m])] == []


def test_no_import_circle() -> None:
    """Depth-first search for a back edge in the graph of our modules' imports."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(GRAPH[module]):
            if imported.startswith("gradio"):
                continue
            if state.get(imported) == "open":
                circles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert circles == []
