"""The configuration file at the command line: `apply_file` (called by the app's callback in
main.py) turns lookalike.toml's command tables into click's `default_map`, every value checked
as the command line would check it; `lookalike config` shows the settings in force and where
each came from. Finding and reading the file is the library's (config.py, settings.py)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from ..config import ConfigFile, CommandSchema, command_defaults, key_name
from ..errors import ConfigError, LookalikeError
from ..settings import (SETTINGS, config_file, config_search_order, effective_settings,
                        file_settings)
from .common import _emit, _translate, app, out

# Options a setting also sets: the file sets them once, in [settings], so that the
# variable (LOOKALIKE_INDEX) in the environment still wins over the file.
COVERED = {key_name(s.flag): s.key for s in SETTINGS.values() if s.flag}


def apply_file(ctx: typer.Context) -> None:
    """Read the configuration file and give each command its defaults from it; a file that
    cannot be read, or holds an unknown key or a wrong value, stops the command (exit 2)."""
    try:
        config = config_file()
        file_settings(config)  # checked now, not when a command first needs a setting
        defaults = command_defaults(config, schema(ctx.command), COVERED)
        _check(config, ctx.command, defaults, ())
    except LookalikeError as exc:
        raise _translate(exc)
    if defaults:
        ctx.default_map = defaults


def schema(command: Any) -> CommandSchema:
    """What the file may say of `command`: its options by their long name, its sub-commands."""
    if isinstance(command, TyperGroup):
        return CommandSchema(subcommands={name: schema(sub)
                                          for name, sub in command.commands.items()})
    return CommandSchema(options={key_name(_long(p)): p.name for p in _options(command)})


def _options(command: Any) -> list:
    return [p for p in command.params if p.param_type_name == "option" and p.expose_value
            and not p.is_eager]


def _long(param: Any) -> str:
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def _check(config: ConfigFile, command: Any, defaults: dict[str, Any],
           path: tuple[str, ...]) -> None:
    """Each value as its option takes it (type, bounds, choices); paths made relative to the
    file's folder; one text for a repeatable option made a list of one."""
    for name, value in defaults.items():
        if isinstance(command, TyperGroup):
            _check(config, command.commands[name], value, (*path, name))
            continue
        param = next(p for p in _options(command) if p.name == name)
        where = config.where(".".join(path), _long(param).lstrip("-"))
        if not param.is_flag and any(isinstance(v, bool) for v in _items(value)):
            raise ConfigError(f"{where} = {_toml(value)}: {_long(param)} takes a value, not "
                              "true or false")  # which click would read as 1, or "True"
        if param.multiple and not isinstance(value, list):
            value = [value]
        if _is_path(param) and config.path is not None:
            value = _from_folder(config.path.parent, value)
        try:
            param.process_value(typer.Context(command, info_name=path[-1]), value)
        except typer.BadParameter as exc:  # the command line's own message
            raise ConfigError(f"{where} = {_toml(defaults[name])}: "
                              f"{exc.format_message()}") from None
        defaults[name] = value


def _items(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _is_path(param: Any) -> bool:
    annotation = param.type_descriptor.annotation
    if param.type_descriptor.is_list:
        annotation = getattr(annotation, "__args__", (None,))[0]
    return isinstance(annotation, type) and issubclass(annotation, PurePath)


def _from_folder(folder: Path, value: Any) -> Any:
    if isinstance(value, list):
        return [_from_folder(folder, v) for v in value]
    if not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else folder / path)


def _toml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, str, int, float, list)) else repr(value)


class Shown(str, Enum):
    table = "table"
    json = "json"


@app.command("config")
def config_command(ctx: typer.Context,
                   fmt: Shown = typer.Option(Shown.table, "--format",
                                             help="Output as table or json.")) -> None:
    """The settings in force, each with its value and where it came from (env, file or
    default), the configuration file read, and the option defaults it gives commands."""
    try:
        config = config_file()
        settings = effective_settings()
    except LookalikeError as exc:
        raise _translate(exc)
    searched = [str(p) for p in config_search_order()]
    commands = _option_defaults(ctx.find_root().command, ctx.find_root().default_map or {})
    if fmt is Shown.json:
        _emit(json.dumps({
            "file": str(config.path) if config.path else None, "searched": searched,
            "settings": [{"key": s.key, "variable": s.env, "value": s.shown(),
                          "source": s.source} for s in settings],
            "commands": commands}, indent=2))
        return
    out.print(f"configuration file: {escape(str(config.path or 'none'))}")
    out.print(f"[dim]  looked for: {escape(', '.join(searched))}[/]")
    width = max(len(s.env) for s in settings)
    out.print(f"[bold]{'setting':20}  {'variable':{width}}  {'source':7}  value[/]")
    for s in settings:
        out.print(f"{s.key or '-':20}  {s.env:{width}}  {s.source:7}  {escape(s.shown())}")
    for command, values in commands.items():
        for option, value in values.items():
            out.print(f"{escape(command)} {escape(option)} = {escape(_toml(value))}"
                      "  [dim](file)[/]")


def _option_defaults(command: Any, defaults: dict[str, Any],
                     path: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """{'models fetch': {'--offline': true}}: the file's defaults by the options' names."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in defaults.items():
        if isinstance(command, TyperGroup):
            found |= _option_defaults(command.commands[name], value, (*path, name))
        else:
            param = next(p for p in _options(command) if p.name == name)
            found.setdefault(" ".join(path), {})[_long(param)] = value
    return found
