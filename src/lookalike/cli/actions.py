"""`lookalike plan`, `apply`, `undo` and `decide`: act on duplicate groups safely. Registered
on main.app.

Exit codes as in main: 0 ok, 2 usage error, 3 some actions failed or could not be undone.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..actions.apply import apply_plan, quarantine_for, report_json
from ..actions.follow import after_apply, after_undo, catch_up
from ..actions.keeper import marks_of
from ..actions.plan import ACTIONS, make_plan, read_plan, write_plan
from ..actions.undo import find_runs, resolve_run, run_summary, undo_run
from ..errors import LookalikeError
from ..index.store import display_path, open_index
from ..search.dupes import DEFAULT_LINKAGE, find_groups
from . import options
from .common import OK, PARTIAL, USAGE, _emit, _fail, _index_path, _translate, app, err, out


class Fmt(str, Enum):
    table = "table"
    json = "json"


class Decision(str, Enum):
    not_dup = "not-dup"
    dup = "dup"


DECISIONS = {"not-dup": "not-duplicate", "dup": "duplicate"}


@app.command("plan")
def plan_command(
    out_path: Path = typer.Option(..., "--out", help="Plan file to write (JSON)."),
    keep: str = options.KEEP,
    prefer_path: list[Path] = options.PREFER_PATH,
    reference: list[Path] = options.REFERENCE,
    no_marks: bool = options.NO_MARKS,
    action: str = typer.Option("quarantine", "--action", help=f"What to do with the other "
                               f"files: {', '.join(ACTIONS)}."),
    method: str = typer.Option("auto", "--method", "-m", help="As in dupes."),
    max_distance: Optional[int] = options.MAX_DISTANCE,
    linkage: str = typer.Option(DEFAULT_LINKAGE, "--linkage", help="As in dupes."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "from the current folder)."),
    fmt: Fmt = typer.Option(Fmt.table, "--format", help="Summary as table or json."),
) -> None:
    """Write a reviewable plan: which file of each duplicate group is kept, and what happens
    to the others. Nothing is touched; 'lookalike apply PLAN' runs it."""
    try:
        index = _index_path(index)
        _warn(catch_up(index))  # a killed apply or undo: the index first learns what it did
        with open_index(index) as idx:
            groups = find_groups(idx, method, max_distance, linkage=linkage)
            marks = {} if no_marks else marks_of(idx, [f.path for g in groups for f in g.files])
            plan = make_plan(idx, groups, keep.split(","), [str(p) for p in prefer_path],
                             [str(p) for p in reference], action, marks)
        write_plan(plan, out_path)
    except LookalikeError as exc:
        raise _translate(exc)
    except OSError as exc:
        raise _fail(f"cannot write {out_path}: {exc}", USAGE)
    actions = plan.actions
    if fmt is Fmt.json:
        _emit(json.dumps({"plan": str(out_path), "groups": len(plan.groups),
                          "actions": len(actions),
                          "bytes": sum(a.size for a in actions)}))
        return
    for group in plan.groups:
        out.print(f"[bold]keep[/] {escape(display_path(group.keep))}  "
                  f"[dim]({escape(group.keep_reason)})[/]")
        for a in group.actions:
            out.print(f"  {a.action:10} {escape(display_path(a.path))}")
        for s in group.skipped:
            out.print(f"  [dim]skip       {escape(display_path(s['path']))} ({s['reason']})[/]")
    out.print(f"{len(actions)} action(s) in {len(plan.groups)} group(s), "
              f"{sum(a.size for a in actions):,} bytes; wrote {escape(str(out_path))}. "
              f"Review it, then: lookalike apply {escape(str(out_path))} --execute")


@app.command("apply")
def apply_command(
    plan_path: Path = typer.Argument(..., help="A plan from 'lookalike plan'."),
    execute: bool = typer.Option(False, "--execute", help="Act (default: a dry run)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Act without asking (implies "
                             "--execute)."),
    delete: bool = typer.Option(False, "--delete", help="Allow the plan's delete actions "
                                "(asks first unless --yes)."),
    quarantine: Optional[Path] = typer.Option(None, "--quarantine", help="Quarantine folder "
                                              "(default: next to the index, quarantine/)."),
    fmt: Fmt = typer.Option(Fmt.table, "--format", help="Report as table or json."),
) -> None:
    """Run a plan. Every file is checked against the plan just before it is touched; files
    moved or linked go to a quarantine folder with a journal, so 'lookalike undo' can put
    them back. Files in reference folders are never touched."""
    try:
        plan = read_plan(plan_path)
        execute = execute or yes
        deletes = sum(a.action == "delete" for a in plan.actions)
        if execute and delete and deletes and not yes:
            if not typer.confirm(f"Delete up to {deletes} file(s) for good? They cannot be "
                                 "restored.", default=False, err=True):
                raise _fail("nothing was done", USAGE)
        report = apply_plan(plan, execute=execute, allow_delete=delete,
                            quarantine_dir=quarantine)
    except LookalikeError as exc:
        raise _translate(exc)
    _warn(after_apply(report, plan.index))  # a dry run moved nothing: no warning
    if fmt is Fmt.json:
        _emit(report_json(report))
    else:
        for o in report.outcomes:
            style = {"done": "green", "would": "cyan", "skipped": "yellow"}.get(o.status, "red")
            reason = f" ({escape(o.reason)})" if o.reason else ""
            out.print(f"[{style}]{o.status:8}[/] {o.action:10} "
                      f"{escape(display_path(o.path))}{reason}")
        if report.executed:
            out.print(f"run {report.run_id}: {report.count('done')} done, "
                      f"{report.count('skipped')} skipped, {report.count('failed')} failed; "
                      f"undo with: lookalike undo {report.run_id}")
        else:
            out.print(f"dry run: {report.count('would')} would be done, "
                      f"{report.count('skipped')} skipped; add --execute to act")
    raise typer.Exit(PARTIAL if report.count("failed") else OK)


@app.command("undo")
def undo_command(
    run: Optional[str] = typer.Argument(None, help="Run id or folder (default: the last run)."),
    quarantine: Optional[Path] = typer.Option(None, "--quarantine", help="Quarantine folder "
                                              "(default: next to the index)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index whose quarantine to use."),
    list_runs: bool = typer.Option(False, "--list", help="List the runs, undo nothing."),
    fmt: Fmt = typer.Option(Fmt.table, "--format", help="Report as table or json."),
) -> None:
    """Put back everything an apply run moved or linked (safe to run twice)."""
    try:
        folder = quarantine if quarantine is not None else \
            quarantine_for(_index_path(index))
        if list_runs:
            _print_runs([run_summary(r) for r in find_runs(folder)], fmt)
            return
        run_dir = resolve_run(folder, run)
        report = undo_run(run_dir)
    except LookalikeError as exc:
        raise _translate(exc)
    _warn(after_undo(report, run_dir))
    if fmt is Fmt.json:
        _emit(json.dumps(asdict(report), indent=2))
    else:
        for path in report.restored:
            out.print(f"[green]restored[/] {escape(display_path(path))}")
        for path, why in report.problems:
            err.print(f"[yellow]kept as is[/] {escape(display_path(path))}: {escape(why)}")
        out.print(f"run {report.run_id}: {len(report.restored)} restored, "
                  f"{len(report.problems)} problem(s)")
    raise typer.Exit(PARTIAL if report.problems else OK)


def _print_runs(runs: list[dict], fmt: Fmt) -> None:
    if fmt is Fmt.json:
        _emit(json.dumps({"runs": runs}, indent=2))
        return
    for r in runs:
        state = "finished" if r["finished"] else "interrupted"
        out.print(f"{r['run']}  {state:11}  {r['done']} step(s) done, {r['undone']} undone")
    out.print(f"{len(runs)} run(s)")


@app.command("decide")
def decide_command(
    decision: Decision = typer.Argument(..., help="not-dup: these two are not duplicates "
                                        "(dupes leaves the pair out from now on); dup."),
    a: Path = typer.Argument(..., help="One file of the two (indexed)."),
    b: Path = typer.Argument(..., help="The other file (indexed)."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
) -> None:
    """Remember a decision on two files (by content, so it survives moves)."""
    try:
        with open_index(_index_path(index)) as idx:
            paths = [os.path.abspath(a), os.path.abspath(b)]
            states = idx.file_states(paths)
            missing = [p for p in paths if p not in states]
            if missing:
                raise _fail(f"not in the index: {', '.join(missing)}", USAGE)
            idx.acquire()
            idx.record_decision(states[paths[0]][2], states[paths[1]][2],
                                DECISIONS[decision.value])
    except LookalikeError as exc:
        raise _translate(exc)
    out.print(f"recorded: {escape(paths[0])} and {escape(paths[1])} are "
              f"{DECISIONS[decision.value]}")


def _warn(message: str | None) -> None:
    if message:
        err.print(f"[yellow]warning[/]: {escape(message)}")
