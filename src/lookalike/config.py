"""The configuration file, lookalike.toml: where it is looked for, how it is read, and which
keys its command tables may hold. Its `[settings]` table is read by settings.py (which knows
the settings); every other table gives one command's option defaults, handed to the command
line as click's `default_map`. Precedence: flag > environment > this file > default.

This module knows no command and no setting: the callers pass them in, so it stays at the
bottom layer beside settings.py."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ConfigError

FILE_NAME = "lookalike.toml"
SETTINGS_TABLE = "settings"


@dataclass(frozen=True)
class ConfigFile:
    """A read configuration file; `path` None: none was found (every table empty)."""

    path: Path | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    commands: Mapping[str, Any] = field(default_factory=dict)

    def where(self, table: str, key: str = "") -> str:
        """How an error names a place in the file: 'FILE: [scan] workers'."""
        return f"{self.path}: [{table}]" + (f" {key}" if key else "")


@dataclass(frozen=True)
class CommandSchema:
    """What a command's table may hold: its options (the key as written, dashes turned to
    underscores -> the parameter's name) and, for a group, its sub-commands' tables."""

    options: Mapping[str, str] = field(default_factory=dict)
    subcommands: Mapping[str, CommandSchema] = field(default_factory=dict)


def key_name(written: str) -> str:
    """A key as the file may write it, made comparable: `max-distance` == `max_distance`."""
    return written.strip().lstrip("-").replace("-", "_")


def search_order(explicit: str | None, environ: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> list[Path]:
    """The files looked for, first wins: `explicit` (LOOKALIKE_CONFIG) alone when given, else
    ./lookalike.toml, then $XDG_CONFIG_HOME/lookalike/lookalike.toml (~/.config/...)."""
    if explicit:
        return [Path(explicit).expanduser()]
    environ = os.environ if environ is None else environ
    found = []
    try:
        found.append((cwd or Path.cwd()) / FILE_NAME)
    except OSError:  # the current folder was removed: nothing to read there
        pass
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # the XDG spec ignores a relative XDG_CONFIG_HOME
    base = Path(xdg) if os.path.isabs(xdg) else _home(environ) / ".config"
    found.append(base / "lookalike" / FILE_NAME)
    return found


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ["HOME"]) if environ.get("HOME") else Path.home()


def find_config(explicit: str | None, environ: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> Path | None:
    """The configuration file to read, or None. A file named by `explicit` must exist."""
    order = search_order(explicit, environ, cwd)
    if explicit:  # /dev/null is no regular file, and a way to read no configuration
        if not _exists(order[0]) or order[0].is_dir():
            raise ConfigError(f"LOOKALIKE_CONFIG names {order[0]}, which is not a file "
                              "(or cannot be looked at)")
        return order[0]
    return next((path for path in order if _exists(path) and not path.is_dir()), None)


def _exists(path: Path) -> bool:
    """False also where a folder on the way cannot be entered: another user's HOME (a command
    run as another user keeps HOME) holds no configuration for this one."""
    try:
        path.stat()
    except OSError:
        return False
    return True


def read_config(path: Path | None) -> ConfigFile:
    """The file at `path` parsed, its top level checked (tables only); re-read only when the
    file changes."""
    if path is None:
        return ConfigFile()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read(path: str, _mtime_ns: int, _size: int) -> ConfigFile:
    try:
        with open(path, "rb") as stream:
            tables = tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    loose = [key for key, value in tables.items() if not isinstance(value, dict)]
    if loose:
        raise ConfigError(f"{path}: {', '.join(loose)}: keys belong in a table, "
                          f"[{SETTINGS_TABLE}] or a command's (e.g. [scan])")
    settings = tables.pop(SETTINGS_TABLE, {})
    return ConfigFile(Path(path), settings, tables)


def command_defaults(config: ConfigFile, root: CommandSchema,
                     covered: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The command tables as click's `default_map` ({command: {parameter: value}}, nested for
    groups), with every key checked against `root`. `covered` maps option keys that a setting
    also sets (index) to that setting's key: they go in [settings] only, so that the
    environment keeps its precedence over the file."""
    return _defaults(config, config.commands, root, (), covered or {})


def _defaults(config: ConfigFile, tables: Mapping[str, Any], schema: CommandSchema,
              path: tuple[str, ...], covered: Mapping[str, str]) -> dict[str, Any]:
    commands = {key_name(name): name for name in schema.subcommands}
    found: dict[str, Any] = {}
    for written, table in tables.items():
        name = commands.get(key_name(written))
        if name is None:
            known = sorted(commands) + ([] if path else [SETTINGS_TABLE])
            raise ConfigError(f"{config.path}: [{'.'.join((*path, written))}] is not a "
                              f"command; known: {', '.join(known) or 'none'}")
        if not isinstance(table, dict):
            raise ConfigError(f"{config.path}: {'.'.join((*path, written))} must be a table")
        found[name] = _options(config, table, schema.subcommands[name], (*path, name),
                               covered)
    return found


def _options(config: ConfigFile, table: Mapping[str, Any], schema: CommandSchema,
             path: tuple[str, ...], covered: Mapping[str, str]) -> dict[str, Any]:
    if schema.subcommands:  # a group: its table holds its commands' tables
        return _defaults(config, table, schema, path, covered)
    where = ".".join(path)
    found: dict[str, Any] = {}
    for written, value in table.items():
        key = key_name(written)
        if key in covered:
            raise ConfigError(f"{config.where(where, written)}: set it for every command as "
                              f"[{SETTINGS_TABLE}] {covered[key]}")
        if key not in schema.options:
            known = ", ".join(sorted(schema.options)) or "none"
            raise ConfigError(f"{config.where(where, written)} is not an option of "
                              f"'{' '.join(path)}'; known: {known}")
        found[schema.options[key]] = value
    return found
