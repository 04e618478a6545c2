"""lookalike.toml: where it is found, what wins over what (flag > environment > file >
default), how a wrong file is refused (exit 2, naming the file and the key), and what
`lookalike config` shows. Every test runs with HOME and XDG_CONFIG_HOME in tmp_path, so the
real user's configuration is never read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.config import find_config
from lookalike.errors import ConfigError
from lookalike.index.store import open_index
from lookalike.settings import SETTINGS, config_file, effective_settings, setting
from lookalike.cli.main import app

USAGE = 2


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A made-up user: HOME, XDG_CONFIG_HOME and the current folder in tmp_path, no
    LOOKALIKE_ variable set. Returns the current folder."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _run(*args: str, env: dict[str, str] | None = None):
    # wide, so that Rich does not break a long path in an error in two
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400", **(env or {})})


# --- where the file is found --------------------------------------------------------------

def test_search_order(home, tmp_path, monkeypatch):
    assert config_file().path is None  # nothing anywhere: no file, every value its default
    assert setting("LOOKALIKE_LOG") == "WARNING"
    user = _write(tmp_path / "home" / ".config" / "lookalike" / "lookalike.toml", "")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert find_config(None) == user  # ~/.config without XDG_CONFIG_HOME
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert find_config(None) is None  # XDG_CONFIG_HOME set: ~/.config is not looked at
    xdg = _write(tmp_path / "xdg" / "lookalike" / "lookalike.toml", "")
    assert find_config(None) == xdg
    here = _write(home / "lookalike.toml", "")
    assert find_config(None) == here  # the current folder's before the user's
    named = _write(tmp_path / "elsewhere.toml", "")
    monkeypatch.setenv("LOOKALIKE_CONFIG", str(named))
    assert config_file().path == named  # LOOKALIKE_CONFIG before both


def test_a_missing_file_named_by_the_variable_is_an_error(home, tmp_path):
    missing = tmp_path / "nowhere.toml"
    result = _run("methods", env={"LOOKALIKE_CONFIG": str(missing)})
    assert result.exit_code == USAGE
    assert "LOOKALIKE_CONFIG" in result.output and "nowhere.toml" in result.output
    with pytest.raises(ConfigError):
        config_file({"LOOKALIKE_CONFIG": str(missing)})


# --- precedence ---------------------------------------------------------------------------

def test_settings_environment_over_file_over_default(home, monkeypatch):
    assert setting("LOOKALIKE_LOG") == "WARNING"
    _write(home / "lookalike.toml", '[settings]\nlog = "ERROR"\noffline = true\n')
    assert setting("LOOKALIKE_LOG") == "ERROR"
    assert setting("LOOKALIKE_OFFLINE") == "true"
    monkeypatch.setenv("LOOKALIKE_LOG", "DEBUG")
    assert setting("LOOKALIKE_LOG") == "DEBUG"
    sources = {s.key: s.source for s in effective_settings()}
    assert sources["log"] == "env" and sources["offline"] == "file"
    assert sources["cache"] == "default"


def test_index_flag_over_environment_over_file(home, tmp_path):
    """`dupes` names the index it could not open: which one it tried shows who won."""
    _write(home / "lookalike.toml", '[settings]\nindex = "from-file.db"\n')
    result = _run("dupes")
    assert result.exit_code == USAGE
    assert str(home / "from-file.db") in result.output  # relative to the file's folder
    env = {"LOOKALIKE_INDEX": str(tmp_path / "from-env.db")}
    assert "from-env.db" in _run("dupes", env=env).output
    flagged = _run("dupes", "--index", str(tmp_path / "from-flag.db"), env=env).output
    assert "from-flag.db" in flagged and "from-env.db" not in flagged


@pytest.fixture
def pictures(home) -> Path:
    folder = home / "pictures"
    folder.mkdir()
    for seed in range(2):
        pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"picture-{seed}.png")
    return folder


def _scanned_methods(pictures: Path, index: Path, *flags: str) -> set[str]:
    result = _run("scan", str(pictures), "--index", str(index), "--workers", "1", *flags)
    assert result.exit_code == 0, result.output
    with open_index(index) as idx:
        return set(idx.methods_present())


def test_scan_takes_its_defaults_from_the_file_and_a_flag_wins(home, pictures):
    default = _scanned_methods(pictures, home / "default.db")
    assert "whash" not in default and "dhash256" not in default
    _write(home / "lookalike.toml", '[scan]\nmethod = "whash"\n')
    from_file = _scanned_methods(pictures, home / "file.db")
    assert "whash" in from_file and not from_file & (default - {"bytes", "pixels"})
    flagged = _scanned_methods(pictures, home / "flag.db", "--method", "dhash256")
    assert "dhash256" in flagged and "whash" not in flagged


def test_nested_group_table_and_dashes_or_underscores(home):
    _write(home / "lookalike.toml", '[models.list]\nformat = "json"\n'
                                    '[dupes]\nmax-distance = 3\nno_calibration = true\n')
    result = _run("models", "list", env={"LOOKALIKE_CACHE": str(home / "cache")})
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.output), list)
    shown = json.loads(_run("config", "--format", "json").output)["commands"]
    assert shown["dupes"] == {"--max-distance": 3, "--no-calibration": True}


def test_paths_in_the_file_are_from_its_folder(home, tmp_path):
    user = _write(tmp_path / "xdg" / "lookalike" / "lookalike.toml",
                  '[serve]\ntoken-file = "token.txt"\n[settings]\ncache = "~/models"\n')
    shown = json.loads(_run("config", "--format", "json").output)
    assert shown["commands"]["serve"]["--token-file"] == str(user.parent / "token.txt")
    cache = next(row for row in shown["settings"] if row["key"] == "cache")
    assert cache["value"] == str(tmp_path / "home" / "models")  # ~ is HOME


# --- a wrong file -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('[scan]\nmode = "thorough"\nworkers = \n', ["not valid TOML", "line 3"]),
    ('[settings]\nindx = "a.db"\n', ["[settings] indx is not a setting", "index", "cache"]),
    ('[scna]\nmode = "fast"\n', ["[scna] is not a command", "scan", "dupes"]),
    ('[scan]\nmoed = "fast"\n', ["[scan] moed is not an option of 'scan'", "mode",
                                 "workers"]),
    ('[models.lst]\nformat = "json"\n', ["[models.lst] is not a command", "list"]),
    ('[scan]\nmode = "slow"\n', ["[scan] mode", "'slow' is not one of 'fast', 'thorough'"]),
    ('[scan]\nworkers = "many"\n', ["[scan] workers", "valid integer"]),
    ('[scan]\nworkers = true\n', ["[scan] workers", "takes a value, not true or false"]),
    ('[scan]\nmethod = [true]\n', ["[scan] method", "takes a value, not true or false"]),
    ('[scan]\nindex = "a.db"\n', ["[scan] index", "[settings] index"]),
    ('index = "a.db"\n', ["keys belong in a table"]),
    ('[settings]\noffline = 3\n', ["[settings] offline", "true or false"]),
    ('[settings]\nlog = "loud"\n', ["[settings] log", "DEBUG, INFO, WARNING, ERROR"]),
])
def test_a_wrong_file_is_refused_with_exit_2(home, text, expected):
    path = _write(home / "lookalike.toml", text)
    result = _run("methods")
    assert result.exit_code == USAGE, result.output
    message = result.output
    assert str(path) in message
    for words in expected:
        assert words in message, (words, message)


@pytest.mark.parametrize("option, value", [("workers", "0"), ("max-distance", "999")])
def test_out_of_range_reads_as_on_the_command_line(home, option, value):
    command, *rest = ["scan", str(home)] if option == "workers" else ["dupes"]
    on_line = _run(command, f"--{option}", value, *rest).output
    assert "Invalid value" in on_line
    _write(home / "lookalike.toml", f"[{command}]\n{option} = {value}\n")
    in_file = _run(command).output
    reason = in_file.rpartition(": ")[2].strip()  # "Input should be ... 256"
    assert f"[{command}] {option} = {value}" in in_file
    assert reason and reason in on_line, (reason, on_line)


# --- lookalike config ---------------------------------------------------------------------

def test_config_shows_values_and_sources(home, tmp_path):
    _write(home / "lookalike.toml", '[settings]\ntoken = "s3cret"\ncache = "models"\n'
                                    '[scan]\nmode = "thorough"\n')
    result = _run("config", "--format", "json", env={"LOOKALIKE_LOG": "INFO"})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["file"] == str(home / "lookalike.toml")
    assert shown["searched"][0] == str(home / "lookalike.toml")
    rows = {row["key"]: row for row in shown["settings"]}
    assert rows["log"] == {"key": "log", "variable": "LOOKALIKE_LOG", "value": "INFO",
                           "source": "env"}
    assert rows["cache"]["value"] == str(home / "models") and rows["cache"]["source"] == "file"
    assert rows["index"]["source"] == "default"
    assert rows["token"]["value"] == "********"  # a secret is never printed
    assert shown["commands"] == {"scan": {"--mode": "thorough"}}
    table = _run("config").output
    assert "s3cret" not in table and "LOOKALIKE_CACHE" in table and "thorough" in table
