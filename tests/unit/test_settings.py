"""One table of settings: every environment variable lookalike reads is in settings.py, read
through it, and listed in the README with its default, help and key in lookalike.toml; the
README's example lookalike.toml is one lookalike accepts."""

from __future__ import annotations

import json
import os
import re
import tomllib
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
    monkeypatch.setenv("LOOKALIKE_CONFIG", os.devnull)  # never the user's own file
    monkeypatch.delenv("LOOKALIKE_LOG", raising=False)
    assert setting("LOOKALIKE_LOG") == "WARNING"
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "Yes")
    assert is_true("LOOKALIKE_OFFLINE")
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "0")
    assert not is_true("LOOKALIKE_OFFLINE")


def test_the_readme_names_each_settings_key_in_the_file():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for s in SETTINGS.values():
        if not s.tests_only:
            key = f"`{s.key}`" if s.key else "-"
            assert f"| `{s.env}` | {key} |" in readme, s.env


def test_the_readme_example_file_is_valid(tmp_path, monkeypatch):
    """The example is read as lookalike reads any configuration file: every key known, every
    value one its option takes; `lookalike config` shows each of them as from the file."""
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Settings"):]
    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "lookalike.toml"
    path.write_text(example, encoding="utf-8")
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOKALIKE_CONFIG", str(path))
    result = CliRunner().invoke(app, ["config", "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    written = tomllib.loads(example)
    sources = {row["key"]: row["source"] for row in shown["settings"]}
    assert {key for key, source in sources.items() if source == "file"} == set(
        written.pop("settings"))
    commands = {name for name, table in written.items()
                for name in ([f"{name} {sub}" for sub in table]
                             if all(isinstance(v, dict) for v in table.values()) else [name])}
    assert set(shown["commands"]) == commands


def test_no_configuration_file(monkeypatch):
    monkeypatch.setenv("LOOKALIKE_CONFIG", os.devnull)
    monkeypatch.delenv("LOOKALIKE_LOG", raising=False)
    assert setting("LOOKALIKE_LOG") == "WARNING"
