"""docs/security.md names the test that checks each promise: every test it names must exist,
so a renamed or deleted test cannot leave a promise that nothing checks."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `tests/x/test_a.py::test_b`, `test_a.py::test_b`, or `::test_b` after a named file.
REFERENCE = re.compile(r"(?:(tests/[\w/]+\.py|test_\w+\.py))?::(test_\w+)")


def _tests_in(text: str) -> list[tuple[str, str]]:
    found, current = [], None
    for file, name in REFERENCE.findall(text):
        current = file or current
        found.append((current, name))
    return found


def test_every_test_named_in_security_md_exists():
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    named = _tests_in(text)
    assert len(named) >= 20
    missing = []
    for file, name in named:
        candidates = ([ROOT / file] if file and "/" in file
                      else list((ROOT / "tests").rglob(file or "test_*.py")))
        if not any(re.search(rf"^(async )?def {name}\b", c.read_text(encoding="utf-8"), re.M)
                   for c in candidates if c.exists()):
            missing.append(f"{file}::{name}")
    assert not missing, missing


def test_every_test_file_named_in_security_md_exists():
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    for file in set(re.findall(r"tests/[\w/]+\.py", text)):
        assert (ROOT / file).exists(), file
