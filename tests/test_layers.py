"""The package's import graph has no circles (no module imports back up, not even inside a function), and the
plugin's modules load without torch (STYLE rule 5)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in (ROOT / "robtest").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


class _Imports(ast.NodeVisitor):
    """The robtest modules one module imports (``name``: its dotted name; ``package``: an ``__init__``)."""

    def __init__(self, name: str, package: bool, modules: dict[str, tuple[Path, bool]]) -> None:
        self.name, self.package, self.modules = name, package, modules
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(a.name for a in node.names if a.name in self.modules)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            here = self.name.split(".") if self.package else self.name.split(".")[:-1]
            base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
        for a in node.names:
            sub = f"{base}.{a.name}"
            if sub in self.modules:
                self.found.add(sub)
            elif base in self.modules:
                self.found.add(base)


def import_graph() -> dict[str, set[str]]:
    """Module -> the robtest modules it imports anywhere in its code (at import time or inside a function), but not
    under ``if TYPE_CHECKING:``. ``from robtest.a import b`` counts as importing ``robtest.a.b`` when that is a
    module, else ``robtest.a``."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, package) in modules.items():
        visitor = _Imports(name, package, modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = visitor.found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_back_up():
    graph = import_graph()
    assert len(graph) > 40 and "robtest.attacks._driver" in graph["robtest.evaluate"]
    found = cycles(graph)
    edges = [f"{a} -> {b}" for comp in found for a in comp for b in sorted(graph[a]) if b in comp]
    assert not found, "import circles: " + "; ".join(edges)


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_plugin_and_its_tables_load_without_torch():
    code = ("import sys\n"
            "import robtest.plugin, robtest.options, robtest.fixtures, robtest.reporter, robtest.summary\n"
            "import robtest.property_table, robtest.html_report, robtest.settings, robtest.verdict\n"
            "import robtest.validation, robtest.baseline, robtest.errors\n"
            "print(sorted(m for m in ('torch', 'numpy', 'scipy', 'hypothesis', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
