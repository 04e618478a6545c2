"""Readable metavars in --help. Typer 0.29's help prints each parameter's Python type where
click printed a metavar: `--hidden <bool>`, `roots... <list[Path]>`, `--index <path>`. Here
flags show none and values the usual words (PATH, TEXT, INTEGER, [table|json]), for every
command at once: common.py makes the app's group a ReadableGroup.

Typer builds its parameter objects itself and has no setting for their class or for this
column, so the group hands each command and parameter the subclass below (same objects,
one method changed)."""

from __future__ import annotations

from enum import Enum
from pathlib import PurePath
from typing import Any, get_args

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

TYPE_WORDS = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}


def metavar(param: TyperOption | TyperArgument) -> str | None:
    """What help shows for a parameter's value: its own metavar, nothing for a flag, else a
    word for its type (of a list: of its items; the '...' of a variadic argument is Typer's)."""
    if param.metavar is not None:
        return param.metavar or None
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    described = param.type_descriptor
    if described.choices is not None:
        return "[" + "|".join(str(c.value if isinstance(c, Enum) else c)
                              for c in described.choices) + "]"
    if described.is_file:
        return "FILE"
    annotation: Any = get_args(described.annotation)[0] if described.is_list \
        else described.annotation
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "PATH"
    return TYPE_WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)).upper())


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        return metavar(self)


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return metavar(self)


def _readable_params(params: list) -> list:
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = _Option
        elif type(param) is TyperArgument:
            param.__class__ = _Argument
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list:
        # here, not once at start: the --help option is made on first use
        return _readable_params(super().get_params(ctx))


class ReadableGroup(TyperGroup):
    """The app's group: its commands, sub-groups and their parameters show readable metavars."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _adopt(self)

    def get_params(self, ctx: Any) -> list:
        return _readable_params(super().get_params(ctx))


def _adopt(group: TyperGroup) -> None:
    for command in group.commands.values():
        if type(command) is TyperCommand:
            command.__class__ = _Command
        elif type(command) is TyperGroup:
            command.__class__ = ReadableGroup
            _adopt(command)
