"""Every setting lookalike reads, with its default and help, in one table (README, "Settings",
is checked against it by tests/unit/test_settings.py). A setting's value comes from, first
wins: a command-line flag where the setting has one (the command passes it), the environment
(LOOKALIKE_INDEX), the `[settings]` table of the configuration file (`index = ...`, config.py
finds and reads the file), the default here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigFile, find_config, key_name, read_config, search_order
from .errors import ConfigError

PREFIX = "LOOKALIKE_"
CONFIG_ENV = "LOOKALIKE_CONFIG"
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str
    tests_only: bool = False
    # What the file may give: "text", "secret" (text `lookalike config` masks), "path" (a
    # relative one is from the file's folder), "paths" (a list, or text split by os.pathsep),
    # "bool" (true/false, or text as in the environment).
    kind: str = "text"
    flag: str = ""  # the command-line option that sets the same thing, where one does
    choices: tuple[str, ...] = ()  # the only values the file may give, where it is one of a few
    in_file: bool = True  # the configuration file may set it

    @property
    def key(self) -> str:
        """Its name in the file's [settings] table: LOOKALIKE_CEILING_DIRECTORIES ->
        ceiling_directories; "" where the file cannot set it."""
        if self.tests_only or not self.in_file:
            return ""
        return self.env.removeprefix(PREFIX).lower()


SETTINGS: dict[str, Setting] = {s.env: s for s in (
    Setting("LOOKALIKE_CONFIG", "", "The configuration file to read (instead of "
            "./lookalike.toml, else $XDG_CONFIG_HOME/lookalike/lookalike.toml or "
            "~/.config/lookalike/lookalike.toml); it must exist. /dev/null: none.",
            in_file=False),
    Setting("LOOKALIKE_INDEX", "", "The index file to use when a command gets no --index "
            "(instead of searching the current folder and its parents).", kind="path",
            flag="--index"),
    Setting("LOOKALIKE_CEILING_DIRECTORIES", "", "Folders, separated by ':' (';' on Windows), "
            "above which the search for an index does not go, like git's "
            "GIT_CEILING_DIRECTORIES; the home folder always is one.", kind="paths"),
    Setting("LOOKALIKE_CACHE", "", "The model cache folder (default: "
            "$XDG_CACHE_HOME/lookalike/models, or ~/.cache/lookalike/models).", kind="path"),
    Setting("LOOKALIKE_OFFLINE", "", "1, true, yes or on: never download a model, use only "
            "what the cache holds (as --offline).", kind="bool", flag="--offline"),
    Setting("LOOKALIKE_TOKEN", "", "The bearer token of `lookalike serve` (as --token-file).",
            kind="secret"),
    Setting("LOOKALIKE_LOG", "WARNING", "Log level of the command line: DEBUG, INFO, WARNING, "
            "ERROR.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    Setting("LOOKALIKE_TEST_APPLY_DELAY", "", "Seconds `apply` waits after each action, so a "
            "test can kill it in its middle.", tests_only=True),
    Setting("LOOKALIKE_TEST_KILL_SHARD", "", "A file path: the first Ray shard task (or "
            "ingest download batch) to create it kills its own worker process in the middle "
            "of its work, so a test sees the task retried.", tests_only=True),
)}
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS.values() if s.key}


def setting(env: str) -> str:
    """The value of the setting named `env`: the environment's, else the configuration
    file's, else its default. Raises ConfigError when the file cannot be read or is wrong."""
    if os.environ.get(env):
        return os.environ[env]
    if not SETTINGS[env].key:
        return SETTINGS[env].default
    return file_settings(config_file()).get(env) or SETTINGS[env].default


def is_true(env: str) -> bool:
    return setting(env).strip().lower() in TRUE_WORDS


def config_file(environ: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> ConfigFile:
    """The configuration file in force (found by LOOKALIKE_CONFIG, the current folder, the
    user's config folder), read; an empty one where there is none. `environ` and `cwd`
    default to this process's."""
    environ = os.environ if environ is None else environ
    return read_config(find_config(environ.get(CONFIG_ENV) or None, environ, cwd))


def config_search_order(environ: Mapping[str, str] | None = None,
                        cwd: Path | None = None) -> list[Path]:
    """The files config_file looks for, first wins."""
    environ = os.environ if environ is None else environ
    return search_order(environ.get(CONFIG_ENV) or None, environ, cwd)


def file_settings(config: ConfigFile) -> dict[str, str]:
    """The file's [settings] as {variable: value}, each value checked and turned into the
    text its variable would hold."""
    values = {}
    for key, value in config.settings.items():
        found = BY_KEY.get(key_name(key).lower())
        if found is None:
            raise ConfigError(f"{config.where('settings', key)} is not a setting; known: "
                              f"{', '.join(sorted(BY_KEY))}")
        values[found.env] = _as_text(config, key, found, value)
        if found.choices and values[found.env] not in found.choices:
            raise ConfigError(f"{config.where('settings', key)} = {value!r}: choose one of "
                              f"{', '.join(found.choices)}")
    return values


WANTED = {"text": "text", "secret": "text", "path": "a path (text)",
          "paths": "a list of paths (or text)", "bool": "true or false"}


def _as_text(config: ConfigFile, key: str, spec: Setting, value: object) -> str:
    if spec.kind == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    many = spec.kind == "paths" and isinstance(value, list)
    if not isinstance(value, str) and not (many and all(isinstance(v, str) for v in value)):
        raise ConfigError(f"{config.where('settings', key)} = {value!r}: wants "
                          f"{WANTED[spec.kind]}")
    parts = value if many else value.split(os.pathsep) if spec.kind == "paths" else [value]
    if spec.kind in ("path", "paths") and config.path is not None:
        parts = [str(_from_file(config.path, part)) if part else part for part in parts]
    return os.pathsep.join(parts)


def _from_file(config_path: Path, written: str) -> Path:
    """A path written in the file: `~` expanded, relative ones from the file's folder."""
    path = Path(written).expanduser()
    return path if path.is_absolute() else config_path.parent / path


@dataclass(frozen=True)
class Effective:
    """One setting's value now and where it came from: env, file or default."""

    env: str
    key: str
    value: str
    source: str

    def shown(self) -> str:
        return "********" if SETTINGS[self.env].kind == "secret" and self.value else self.value


def effective_settings(environ: Mapping[str, str] | None = None,
                       cwd: Path | None = None) -> list[Effective]:
    """Every setting (but those for tests) with its value and source, in the table's order."""
    environ = os.environ if environ is None else environ
    from_file = file_settings(config_file(environ, cwd))
    found = []
    for spec in SETTINGS.values():
        if spec.tests_only:
            continue
        if environ.get(spec.env):
            value, source = environ[spec.env], "env"
        elif spec.env in from_file:
            value, source = from_file[spec.env], "file"
        else:
            value, source = spec.default, "default"
        found.append(Effective(spec.env, spec.key, value, source))
    return found
