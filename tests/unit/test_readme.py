"""The README's Python examples cannot drift from the library: each block parses, every name it
imports exists, and every call of a lookalike function uses keywords that function takes and
no more positional arguments than it has. (They need folders of pictures to run; tests/ runs
the same functions on real data.)"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import lookalike

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _functions(tree: ast.Module) -> dict[str, object]:
    """Names the block binds to lookalike objects: `import lookalike` and its from-imports."""
    names: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name: importlib.import_module(a.name) for a in node.names
                      if a.name.startswith("lookalike")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lookalike"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def _target(call: ast.Call, names: dict[str, object]):
    func = call.func
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = names.get(func.value.id)
        if owner is lookalike:
            assert hasattr(lookalike, func.attr), f"lookalike has no {func.attr}"
            return getattr(lookalike, func.attr)
    return None


def test_there_are_examples():
    assert len(BLOCKS) >= 3


def test_every_example_matches_the_library():
    checked = 0
    for block in BLOCKS:
        tree = ast.parse(block)
        names = _functions(tree)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            function = _target(call, names)
            if not callable(function) or inspect.isclass(function) and not hasattr(
                    function, "__init__"):
                continue
            signature = inspect.signature(function)
            params = signature.parameters.values()
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                for keyword in call.keywords:
                    assert keyword.arg in signature.parameters, \
                        f"{function.__qualname__} takes no {keyword.arg}= (README: {block[:60]!r})"
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            if not any(p.kind is p.VAR_POSITIONAL for p in params):
                assert len(call.args) <= len(positional), function.__qualname__
            checked += 1
    assert checked >= 15
