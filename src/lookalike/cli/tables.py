"""The `dupes` table on a terminal: each group with the file its plan would keep and why,
how each other file matched in words, and the best value of each column in green (as
dupeGuru colours its reference row's deltas). JSON and CSV are report/output.py's."""

from __future__ import annotations

from typing import Mapping, Sequence

from rich.markup import escape

from ..actions.keeper import Keeper
from ..index.store import display_path
from ..report.words import evidence_words
from ..search.evidence import Evidence
from ..types import FileInfo, Group
from .common import out


def print_groups(groups: Sequence[Group], evidence: Mapping[str, Evidence],
                 keepers: Sequence[Keeper | None], formats: Mapping[str, str],
                 failures: Sequence) -> None:
    for number, (group, keeper) in enumerate(zip(groups, keepers), 1):
        loose = "" if group.fully_linked else " · [yellow]not every two members matched[/]"
        out.print(f"[bold]group {number}[/]: {len(group.files)} files{loose}")
        for info in group.files:
            out.print(_row(info, evidence.get(info.path), keeper, formats))
    copies = sum(len(g.files) - 1 for g in groups)
    out.print(f"{len(groups):,} groups, {copies:,} redundant files"
              + (f"; {len(failures):,} files could not be read" if failures else ""))


def _row(info: FileInfo, ev: Evidence | None, keeper: Keeper | None,
         formats: Mapping[str, str]) -> str:
    best = keeper.best if keeper else {}
    size = _best(f"{info.width}x{info.height}", info.path, best.get("resolution"))
    nbytes = _best(f"{info.bytes:,} bytes", info.path, best.get("bytes"))
    fmt = _best(formats.get(info.path, ""), info.path, best.get("format"))
    if keeper is not None and keeper.path == info.path:
        head, how = "[bold green]keep[/]", f"[green]kept: {escape(keeper.reason)}[/]"
    else:
        head, how = "    ", escape(_how(info.path, ev, formats))
    return (f"  {head} {escape(display_path(info.path))}  {size}  {nbytes}  {fmt}  "
            f"[dim]{how}[/]")


def _how(path: str, ev: Evidence | None, formats: Mapping[str, str]) -> str:
    """'mirrored copy of a.png · similarity 97%', from the file's strongest link."""
    if ev is None:
        return ""
    return evidence_words(ev, (formats.get(path, ""), formats.get(ev.other, "")))


def _best(text: str, path: str, winners: list[str] | None) -> str:
    return f"[green]{escape(text)}[/]" if winners and path in winners else escape(text)
