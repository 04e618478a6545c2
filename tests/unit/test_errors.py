"""One exception tree: every error lookalike raises on purpose is defined in errors.py and
carries its own exit code and HTTP status, so the CLI and the server cannot disagree."""

from __future__ import annotations

import importlib
import pkgutil

import typer

import lookalike
from lookalike import errors
from lookalike.cli.common import _translate


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_error_class_lives_in_errors_py():
    for module in pkgutil.walk_packages(lookalike.__path__, "lookalike."):
        if not module.name.endswith("__main__"):  # that one runs the CLI
            importlib.import_module(module.name)
    outside = {f"{c.__module__}.{c.__name__}" for c in _all_subclasses(errors.LookalikeError)
               if c.__module__ != "lookalike.errors"}
    assert not outside


def test_codes_are_sane():
    for cls in {errors.LookalikeError} | _all_subclasses(errors.LookalikeError):
        assert cls.exit_code in (errors.USAGE, errors.CANNOT_RUN), cls
        assert 400 <= cls.http_status < 600, cls


def test_busy_is_busy_everywhere():
    for cls in (errors.IndexBusyError, errors.QuarantineBusyError):
        exit_ = _translate(cls("another process has it"))
        assert isinstance(exit_, typer.Exit) and exit_.exit_code == errors.CANNOT_RUN
        assert cls.http_status == 409


def test_a_refusal_keeps_its_own_status():
    assert errors.Refused(413, "too large").http_status == 413
    assert errors.Refused(403, "not allowed").status == 403
