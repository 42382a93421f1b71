"""The package's shape: no import cycles, small modules, nothing pointing outside the repository,
and one fake-device registry that accepts every fake backend qiskit-ibm-runtime ships."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL_FAKES = ["fake_athens", "fake_belem", "fake_bogota", "fake_burlington", "fake_essex",
               "fake_lima", "fake_london", "fake_manila", "fake_ourense", "fake_quito",
               "fake_rome", "fake_santiago", "fake_valencia", "fake_vigo", "fake_yorktown",
               "fake_casablanca", "fake_jakarta", "fake_lagos", "fake_nairobi"]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in sorted((ROOT / "qllm").rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    for p in sorted((ROOT / "circuits").glob("*.py")):
        mods["qllm.circuits" + ("" if p.stem == "__init__" else "." + p.stem)] = p
    return mods


def _imports(tree: ast.AST, mods: dict) -> set[str]:
    """Every qllm module imported anywhere in the file (lazy imports in functions included),
    except under ``if TYPE_CHECKING:``, which never runs."""
    out: set[str] = set()

    def visit(node):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in mods else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in out if m in mods}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for u in graph[v]:
            if u not in index:
                connect(u)
                low[v] = min(low[v], low[u])
            elif u in on:
                low[v] = min(low[v], index[u])
        if low[v] == index[v]:
            comp = []
            while True:
                u = stack.pop()
                on.discard(u)
                comp.append(u)
                if u == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            connect(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_qllm():
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = _imports(ast.parse(path.read_text()), mods)
        # a package importing its own submodules (re-exports) is not a cycle through the code
        graph[name] = {d for d in deps if d != name and not (path.name == "__init__.py"
                                                               and d.startswith(name + "."))}
    assert _cycles(graph) == []


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_nothing_refers_to_files_outside_the_repository():
    out = subprocess.run(["git", "grep", "-l", "-E", r"NOTES\.md|DESIGN\.md|\.\./shared"],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode > 1:
        pytest.skip("not a git checkout")
    assert out.stdout.split() == []


def test_every_fake_backend_of_the_provider_has_a_name():
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    from qllm.hardware.fake_devices import _classes, available_fake_backends, normalize_fake_name

    shipped = {getattr(fake_provider, a) for a in dir(fake_provider)
               if isinstance(getattr(fake_provider, a), type) and a.startswith("Fake")
               and issubclass(getattr(fake_provider, a), FakeBackendV2)
               and getattr(fake_provider, a) is not FakeBackendV2}
    names = available_fake_backends()
    assert {_classes()[n] for n in names} == shipped and len(names) == len(shipped) >= 60
    for n in names:  # every name, and its class name, resolves without loading the snapshot
        assert normalize_fake_name(n) == n
        assert normalize_fake_name(_classes()[n].__name__) == n
    assert {"fake_torino", "fake_fez", "fake_brisbane", "fake_manila"} <= set(names)


@pytest.mark.parametrize("name", SMALL_FAKES)
def test_aer_accepts_every_small_fake_backend(name):
    from qllm.backends import get_backend

    backend = get_backend(f"aer:{name}", shots=64, seed=1)
    assert backend.fake.num_qubits in (5, 7) and backend.device == name


def test_aer_fake_torino_runs():
    """The README's example; FakeTorino has no V2 suffix and was refused before."""
    import torch

    from qllm.backends import get_backend
    from qllm.circuits import build_circuit

    spec = build_circuit(2, 1)
    x = torch.zeros(3, spec.n_inputs, dtype=torch.float64)
    out = get_backend("aer:fake_torino", shots=256, seed=3).expval(
        spec, x, torch.zeros(spec.n_weights, dtype=torch.float64))
    assert out.shape == (3, spec.n_observables) and out.abs().max() <= 1
    assert (out > 0.5).all()  # |00> under Z: near +1 despite noise


def test_cost_targets_share_the_fake_device_cache():
    from qllm.cost.targets import get_target
    from qllm.hardware.fake_devices import fake_backend

    assert get_target("ibm_manila").transpile_kwargs()["backend"] is fake_backend("fake_manila")


def test_no_function_body_over_60_lines():
    """Long functions get split by job; the docstring does not count."""
    long = {}
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(
                        getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]  # the docstring
                if body and (n := body[-1].end_lineno - body[0].lineno + 1) > 60:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = n
    assert long == {}
