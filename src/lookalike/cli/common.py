"""What every command shares: the app, the consoles, exit codes, and the one mapping of
library errors to messages and exit codes. Command modules import this, never main.py
(main.py imports them, to register their commands).

Exit codes: 0 ok, 1 duplicates found (with --fail-on-dupes), 2 usage error, 3 partial
failure, 4 could not run (index busy or unreadable). Partial: scan and ingest only with
--strict (a finished run lists what it could not use and exits 0); a query picture that
cannot be read, or a failed apply or undo action, always (README, "Exit codes")."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import CANNOT_RUN, USAGE, LookalikeError  # noqa: F401  (exit codes for commands)
from ..index.store import find_index
from ..scan import scan as run_scan
from .metavars import ReadableGroup

OK, DUPES_FOUND, PARTIAL = 0, 1, 3  # USAGE (2) and CANNOT_RUN (4) come with the errors

app = typer.Typer(cls=ReadableGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, help="Find duplicate and near-duplicate images.")
out = Console(highlight=False, soft_wrap=True, emoji=False)
# Messages to a pipe or a log file are never wrapped (a long path stays on one line for grep);
# on a terminal Rich wraps them to its width.
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=not sys.stderr.isatty())


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _emit(text: str) -> None:
    """Machine-readable output goes to stdout untouched by Rich."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _translate(exc: LookalikeError) -> typer.Exit:
    """A library error as its message and the exit code its class carries (errors.py)."""
    return _fail(str(exc), exc.exit_code)


def _peak_mb() -> float:
    """Peak resident memory of this process so far (signatures are read in blocks, so this
    stays near the size of the codes and tables, not of the index file)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _index_path(index: Optional[Path]) -> Path:
    return index if index is not None else find_index(".")


def _split_methods(values: Optional[list[str]]) -> Optional[list[str]]:
    if not values:
        return None
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


def _where(values: list[str]) -> dict[str, str] | None:
    """--where KEY=VALUE options as a dict (a repeated KEY: the last one)."""
    conditions = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--where wants KEY=VALUE, got {value!r}", USAGE)
        conditions[key.strip()] = wanted.strip()
    return conditions or None


def _scan_with_progress(roots, paths, index, methods, options, workers, **runner):
    """lookalike.scan with a progress bar on a terminal; `runner`: runner, ray_address,
    shard_files and ray_gpus, as scan takes them."""
    if not err.is_terminal:
        return run_scan(roots, paths=paths, index_path=index, methods=methods, options=options,
                        workers=workers, **runner)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeRemainingColumn)

    with Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                  TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("scan", total=None, rate="")

        def update(done: int, total: Optional[int]) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, completed=done, total=total,
                       rate=f"{speed:,.0f} img/s" if speed else "")

        return run_scan(roots, paths=paths, index_path=index, methods=methods, options=options,
                        workers=workers, progress=update, count_first=True, **runner)
