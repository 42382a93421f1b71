"""Static checks on the tutorial notebooks (nbmake executes them; this checks their shape):

- the first cell is Markdown saying what the notebook shows, the last says what to try next;
- code cells import only qllm and the standard plotting / numeric / torch packages (and
  PennyLane in the bring-your-own-circuit notebook);
- no code cell defines a class or a function longer than a few lines (library code goes in qllm);
- they are committed without outputs or execution counts.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_hybrid_transformer", "03_quantum_attention",
            "04_shots_and_noise", "05_resource_cost", "06_your_own_circuit"]
ALLOWED_IMPORTS = {"qllm", "matplotlib", "numpy", "torch"}
# Bringing your own PennyLane circuit or QNode means writing PennyLane: only those notebooks may
# import it.
EXTRA_IMPORTS = {"06_your_own_circuit": {"pennylane"}, "11_bring_your_own_qnode": {"pennylane"}}
MAX_FUNCTION_LINES = 8  # a short plotting helper or a small example circuit; more belongs in qllm


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def text(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def code_tree(cell: dict) -> ast.Module:
    # IPython magics and shell escapes are not Python; blank them before parsing
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in text(cell).splitlines()]
    return ast.parse("\n".join(lines))


def code_nodes(path: Path):
    """Every AST node of every code cell of a notebook."""
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "code":
            yield from ast.walk(code_tree(cell))


def test_the_numbered_notebooks_exist():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:len(EXPECTED)] == EXPECTED
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+", name), f"{name}: notebooks are named NN_topic"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_says_what_it_shows(path):
    first = load(path)["cells"][0]
    assert first["cell_type"] == "markdown", "the first cell must be Markdown"
    body = text(first)
    assert body.startswith("# "), "the first cell starts with a title"
    assert "shows" in body.lower(), "the first cell says what the notebook shows"
    assert len(body.split()) >= 30, "the first cell explains the notebook in a few sentences"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_last_cell_says_what_to_try_next(path):
    last = load(path)["cells"][-1]
    assert last["cell_type"] == "markdown", "the last cell must be Markdown"
    assert "what to try next" in text(last).lower(), "the last cell says what to try next"
    assert text(last).count("\n- ") >= 2, "give at least two suggestions as a list"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_qllm_and_plotting_imports(path):
    for node in code_nodes(path):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
            assert node.level == 0, "no relative imports in notebooks"
        else:
            continue
        allowed = ALLOWED_IMPORTS | EXTRA_IMPORTS.get(path.stem, set())
        bad = set(roots) - allowed
        assert not bad, f"{path.name} imports {sorted(bad)}; allowed: {sorted(allowed)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_library_code_in_notebooks(path):
    for node in code_nodes(path):
        assert not isinstance(node, ast.ClassDef), \
            f"{path.name} defines class {node.name}: put it in a qllm module"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            assert n <= MAX_FUNCTION_LINES, \
                f"{path.name}: function {node.name} has {n} lines; put it in a qllm module"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = load(path)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name} has stored outputs: clear them"
            assert cell["execution_count"] is None, f"{path.name} has execution counts"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
