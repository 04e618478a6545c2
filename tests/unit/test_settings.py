"""One table of settings: every environment variable lookalike reads is in settings.py, read
through it, and listed in the README with its default and help."""

from __future__ import annotations

import re
from pathlib import Path

from lookalike.settings import SETTINGS, is_true, setting

ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_the_code_names_is_in_the_table():
    named = set()
    for path in (ROOT / "src" / "lookalike").rglob("*.py"):
        named |= set(re.findall(r"\bLOOKALIKE_[A-Z_]+\b", path.read_text(encoding="utf-8")))
    assert named <= set(SETTINGS), named - set(SETTINGS)


def test_only_settings_py_reads_them_from_the_environment():
    readers = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "lookalike").rglob("*.py")
               if p.name != "settings.py"
               and re.search(r"environ[^\n]*LOOKALIKE_", p.read_text(encoding="utf-8"))]
    assert not readers


def test_the_readme_lists_every_setting_with_its_help():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for s in SETTINGS.values():
        if not s.tests_only:
            assert f"| `{s.env}` |" in readme and s.help in readme, s.env


def test_values_and_defaults(monkeypatch):
    monkeypatch.delenv("LOOKALIKE_LOG", raising=False)
    assert setting("LOOKALIKE_LOG") == "WARNING"
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "Yes")
    assert is_true("LOOKALIKE_OFFLINE")
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "0")
    assert not is_true("LOOKALIKE_OFFLINE")
