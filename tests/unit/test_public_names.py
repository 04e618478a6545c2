"""lookalike's public names, imported on first use (PEP 562), are the library's objects."""

from __future__ import annotations

import subprocess
import sys

import lookalike


def test_every_public_name_resolves_to_its_object():
    import importlib

    for name in lookalike.__all__:
        value = getattr(lookalike, name)
        module = "scan" if name == "scan" else lookalike._WHERE[name]
        assert value is getattr(importlib.import_module(f"lookalike.{module}"), name), name
    assert set(lookalike.__all__) <= set(dir(lookalike))


def test_import_stays_light_and_scan_stays_the_function():
    """A fresh `import lookalike` loads neither the report's templates nor the downloader;
    importing the CLI (which imports the module lookalike.scan) leaves `scan` the function."""
    code = ("import sys, lookalike; heavy = [m for m in ('jinja2', 'httpx', 'lookalike.actions')"
            " if m in sys.modules]; import lookalike.cli.main;"
            " print(heavy, callable(lookalike.scan))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] True"


def test_unknown_name_is_an_attribute_error():
    try:
        lookalike.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")
