"""The package layout holds: foundations import no feature package, and no two modules
import each other (directly or around a longer loop).

Imports are read from the source with ``ast`` (module level and inside functions;
``if TYPE_CHECKING:`` blocks are type-only and do not count). Folders map to import
names as in pyproject's ``package-dir``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

# folder -> import name, as [tool.setuptools.package-dir] in pyproject.toml
PACKAGE_DIRS = {"parkcarbon": "parkcarbon", "ingest": "parkcarbon.ingest",
                "carbon": "parkcarbon.carbon", "schema": "parkcarbon.schema",
                "alerts": "parkcarbon.alerts", "grafana": "parkcarbon.grafana",
                "reports": "parkcarbon.reports", "security": "parkcarbon.security"}
FEATURES = ("parkcarbon.ingest", "parkcarbon.carbon", "parkcarbon.alerts",
            "parkcarbon.grafana", "parkcarbon.reports", "parkcarbon.security",
            "parkcarbon.schema", "parkcarbon.runtime", "parkcarbon.demo")
# The composition root may import features; runtime and demo compose them too.
COMPOSITION = ("parkcarbon.cli", "parkcarbon.__main__")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder, name in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([name, *parts])] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def test_foundations_import_no_feature_package() -> None:
    graph = _graph()
    offenders = [
        f"{mod} imports {dep}"
        for mod, deps in sorted(graph.items())
        if mod.count(".") == 1 and not mod.startswith(FEATURES) and mod not in COMPOSITION
        for dep in sorted(deps)
        if dep.startswith(FEATURES)
    ]
    assert offenders == []


def test_feature_packages_never_import_the_root_cli() -> None:
    graph = _graph()
    offenders = [mod for mod, deps in graph.items()
                 if "parkcarbon.cli" in deps and mod not in COMPOSITION]
    assert offenders == []


def test_no_import_cycles() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle of meaning:
    # drop edges from a package to its own submodules.
    for mod, deps in graph.items():
        graph[mod] = {d for d in deps if not d.startswith(mod + ".")}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep])
            elif dep not in state:
                walk(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert [" -> ".join(c) for c in cycles] == []
