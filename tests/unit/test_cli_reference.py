"""Docs that cannot drift: docs/cli.md is the text the commands generate, every option and
argument says what it is for, and --help shows readable metavars, not Python types."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.cli.reference import REGENERATE, command_tree, parameters, reference, walk

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [path for path, _ in walk(command_tree())]
# Typer 0.29 writes a parameter's Python type where click wrote a metavar: <bool>, <str>,
# <list[Path]>, <path>, <int range>, <Format>.
PYTHON_TYPE = re.compile(r"<(bool|str|int|float|path|file|list\[|[A-Z]\w*>)")


def test_docs_cli_md_is_the_generated_reference():
    expected = reference()
    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    if written != expected:
        diff = "".join(list(difflib.unified_diff(
            written.splitlines(keepends=True), expected.splitlines(keepends=True),
            "docs/cli.md", "generated"))[:40])
        pytest.fail(f"docs/cli.md is out of date; regenerate it with\n    {REGENERATE}\n"
                    f"(from the repository root, in the project's environment)\n{diff}")


def test_reference_covers_every_command_and_option():
    text = reference()
    assert len(COMMANDS) >= 20
    for path, command in walk(command_tree()):
        assert f"`{' '.join(path)}`" in text
        for param in parameters(command):
            assert f"`{_shown_name(param)}" in text, (path, _shown_name(param))


def _shown_name(param) -> str:
    return param.opts[0] if param.param_type_name == "option" else param.name


def test_every_option_and_argument_has_help():
    missing = [f"{' '.join(path)} {_shown_name(param)}"
               for path, command in walk(command_tree()) for param in parameters(command)
               if not (param.help or "").strip()]
    assert not missing, "options and arguments without help text:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_readable_metavars(path):
    result = CliRunner().invoke(app, [*path[1:], "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    help_text = result.output
    assert "<bool>" not in help_text and "<list[" not in help_text
    assert not PYTHON_TYPE.search(help_text), PYTHON_TYPE.search(help_text).group(0)


def test_flags_show_no_metavar_and_values_show_words():
    help_text = CliRunner().invoke(app, ["scan", "--help"], env={"COLUMNS": "200"}).output
    lines = {line.split()[1]: line for line in help_text.splitlines()
             if line.startswith("│") and len(line.split()) > 2}
    assert lines["--hidden"].split()[2] == "Also", lines["--hidden"]
    assert lines["--index"].split()[2] == "PATH"
    assert lines["--include"].split()[2] == "TEXT"
    assert lines["--format"].split()[2] == "[table|json|csv]"
    assert lines["roots..."].split()[2] == "PATH"
