"""The layout DESIGN §1 fixes, checked from the source: import arrows, no import loop, small modules.

Imports are read with ``ast`` (nothing is imported, so no framework is needed). Module-level imports make
the import graph (an import loop is a cycle there); imports inside functions (the lazy framework and
command imports) count for the layer rules too, since they run all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("reference", "conformance")
MAX_LINES = 400

#: (importer prefix, imported prefix) pairs that must never occur
FORBIDDEN = [
    ("reference", "conformance"),  # the spec does not know the suite
    ("conformance.report", "conformance.adapters"),  # the report never runs an adapter
    ("conformance.report", "conformance.harness.judge"),
    ("conformance.report", "conformance.harness.plugin"),
    ("conformance.adapters", "conformance.harness"),  # adapters know only the reference and their framework
    ("conformance.adapters", "conformance.report"),
    ("conformance.harness", "conformance.report"),
    ("conformance.harness", "conformance.properties"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" or (
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(module-level imports, all imports) of one module, resolved to modules of this repository."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    top, every = set(), set()

    def resolve(node) -> list[str]:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        found = set()
        for n in names:
            while n and n not in modules:
                n = n.rpartition(".")[0]
            if n and n != name:
                found.add(n)
        return sorted(found)

    def walk(node, level: int) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                hits = resolve(child)
                every.update(hits)
                if level == 0:
                    top.update(hits)
            inner = level + isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            walk(child, inner)

    walk(tree, 0)
    return top, every


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_loop(graph):
    top = {name: edges[0] for name, edges in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(top.get(n, ())):
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                pytest.fail("import loop: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(top):
        if n not in state:
            visit(n)


@pytest.mark.parametrize("importer,imported", FORBIDDEN, ids=[f"{a}-x-{b}" for a, b in FORBIDDEN])
def test_layers_import_only_downwards(graph, importer, imported):
    def under(mod: str, prefix: str) -> bool:
        return mod == prefix or mod.startswith(prefix + ".")

    bad = sorted(f"{src} imports {dst}" for src, (_, every) in graph.items() if under(src, importer)
                 for dst in every if under(dst, imported))
    assert not bad, "\n".join(bad)


def test_the_checker_of_this_test_sees_imports(graph):
    """The graph is not empty by accident: known arrows are found."""
    assert "reference" in graph["conformance.harness.judge"][0] or any(
        m.startswith("reference") for m in graph["conformance.harness.judge"][0])
    assert any(m.startswith("conformance.adapters") for m in graph["conformance.harness.plugin"][0])


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by what they do): {long}"
