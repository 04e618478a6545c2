"""The layers of docs/architecture.md hold: no module imports a layer above its own, and no
import cycle exists, counting imports inside functions too (they are imports all the same)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "lookalike"
# Bottom first; the same table as docs/architecture.md.
LAYERS = [
    ("types", "errors", "arguments", "locks", "settings", "config", "plugins"),
    ("decode", "decode_reasons", "decode_jpeg", "decode_png"),
    ("methods", "models"),
    ("index",),
    ("scan", "worker", "sources", "runners"),
    ("search", "evaluation"),
    ("actions", "report", "train", "sample"),
    ("cli", "service", "api", "collection", "__init__", "__main__"),
]


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _imports() -> dict[str, set[tuple[str, int]]]:
    """module -> the lookalike modules (or packages) it imports, with the line."""
    found: dict[str, set[tuple[str, int]]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_of(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        targets = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                names = [node.module] if node.module else [a.name for a in node.names]
                for name in names:  # `from . import x` imports the module x
                    targets.add((".".join(base + [name]), node.lineno))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lookalike"):
                targets.add((node.module, node.lineno))
            elif isinstance(node, ast.Import):
                targets |= {(a.name, node.lineno) for a in node.names
                            if a.name.startswith("lookalike")}
    return found


def _known(name: str, modules: set[str]) -> str | None:
    """The module `name` refers to: itself, or (for `from pkg import name`) its package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_has_a_layer():
    for module in _imports():
        _layer(module)


def test_no_module_imports_a_layer_above_its_own():
    imports = _imports()
    upward = [f"{module}:{line} imports {target}"
              for module, targets in imports.items() for target, line in targets
              if _layer(_known(target, set(imports))) > _layer(module)]
    assert not upward


def test_no_import_cycles():
    imports = _imports()
    modules = set(imports)
    graph = {module: {_known(t, modules) for t, _ in targets} - {None, module}
             for module, targets in imports.items()}
    # A package's __init__ re-exporting its own modules is not a dependency of those modules.
    graph = {m: {t for t in deps if not m.startswith(t + ".")} for m, deps in graph.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
