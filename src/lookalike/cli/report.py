"""`lookalike stats` and `lookalike report`: the dataset analysis on the terminal (or as JSON)
and as a self-contained HTML file. Registered on main.app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import LookalikeError
from ..index.store import display_path, open_index
from .evaluate import Report as StatsFormat  # table or json, as calibrate and eval
from . import options
from .common import OK, USAGE, _emit, _fail, _index_path, _translate, app, err, out
from ..report.analysis import stats
from ..report.health import health, thresholds_from
from ..report.html import write_report

FAILURES_PRINTED = 20
FLAGGED_PRINTED = 5  # flagged files printed per health check (--format json lists more)


@app.command("stats")
def stats_command(
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    by: Optional[str] = typer.Option(None, "--by", help="Metadata key to split counts and "
                                     "duplicate rates by (default: category, when files have "
                                     "it)."),
    duplicates: bool = typer.Option(True, "--duplicates/--no-duplicates",
                                    help="Also find duplicate groups (the default cascade)."),
    fmt: StatsFormat = typer.Option(StatsFormat.table, "--format",
                                    help="Output as table or json."),
    health_thresholds: list[str] = options.HEALTH,
) -> None:
    """What the collection holds: formats, colour modes, sizes, unreadable files, how much
    of it is duplicated, and its health (blurry, dark, bright, blank, low-information,
    odd-shaped, tiny, huge and outlier pictures)."""
    try:
        thresholds = _health_thresholds(health_thresholds)
        with open_index(_index_path(index)) as idx:
            result = stats(idx, by=by, duplicates=duplicates)
            checked = health(idx, thresholds, by=by)
    except LookalikeError as exc:
        raise _translate(exc)
    if fmt is StatsFormat.json:
        _emit(json.dumps(result.to_dict() | {"health": checked.to_dict()}, indent=2))
    else:
        _print_stats(result)
        _print_health(checked)
    raise typer.Exit(OK)


def _health_thresholds(pairs: list[str]):
    """HealthThresholds from --health CHECK=VALUE options (a usage error when malformed)."""
    given: dict[str, float] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        try:
            given[name.strip()] = float(value)
        except ValueError:
            equals = ""
        if not equals:
            raise _fail(f"--health {pair!r}: give CHECK=NUMBER, e.g. blurry=0.2", USAGE)
    return thresholds_from(given)


def _print_health(report) -> None:
    out.print(f"[bold]health[/] ({report.measured:,} of {report.images:,} images measured)")
    for check in report.checks.values():
        if not check.checked:
            continue
        comparison = {"below": "<", "at or below": "<=", "at or above": ">="}.get(check.flags,
                                                                                ">")
        out.print(f"  {check.name:16} {check.count:>7,}  {escape(check.value)} "
                  f"{comparison} {_short(check.threshold)}")
        if check.by_category:
            _print_counts(f"  {'':16} by {report.by}", check.by_category)
        for flagged in check.flagged[:FLAGGED_PRINTED]:
            out.print(f"  {'':16}   {escape(display_path(flagged.path))} "
                      f"({_short(flagged.value)})")
        if check.count > FLAGGED_PRINTED:
            out.print(f"  {'':16}   ... and {check.count - FLAGGED_PRINTED:,} more")
    for note in report.notes:
        out.print(f"  [dim]{escape(note)}[/]")


def _print_stats(s) -> None:
    out.print(f"[bold]{s.files:,} files[/]: {s.images:,} readable images "
              f"({s.contents:,} distinct), {s.status.get('failed', 0):,} could not be read, "
              f"{s.status.get('other', 0):,} not images; {s.total_bytes / 1e6:,.1f} MB")
    _print_counts("formats", s.formats)
    _print_counts("colour modes", s.modes)
    if s.by:
        _print_counts(f"by {s.by}", s.categories)
    if s.width is not None:
        out.print(f"{'':8} {'min':>9} {'p5':>9} {'p25':>9} {'median':>9} {'p75':>9} "
                  f"{'p95':>9} {'max':>9}")
    for name, dist in (("width", s.width), ("height", s.height), ("aspect", s.aspect),
                       ("bytes", s.file_bytes)):
        if dist is not None:
            values = [dist.min, *dist.percentiles.values(), dist.max]
            del values[3]  # p50 is the median, printed once
            values.insert(3, dist.median)
            out.print(f"{name:8} " + " ".join(f"{_short(v):>9}" for v in values))
    d = s.duplicates
    if d is not None:
        out.print(f"[bold]duplicates[/] ({d.method}): {d.groups:,} groups, "
                  f"{d.files_in_groups:,} files in them, {d.redundant:,} redundant copies "
                  f"= {100 * d.rate:.1f}% of images, {d.redundant_bytes / 1e6:,.1f} MB")
        for value, c in d.by_category.items():
            out.print(f"  {escape(value)}: {c.redundant:,} of {c.files:,} redundant "
                      f"({100 * c.rate:.1f}%), {c.in_groups:,} in groups")
    if s.failures:
        out.print(f"[bold]could not be read[/]: {len(s.failures):,} files")
        _print_failures(s.failure_reasons, [(display_path(f.path), f.reason) for f in s.failures])
    downloads = s.downloads
    if downloads is not None:
        _print_counts(f"[bold]downloads[/] ({downloads.rows:,} rows ingested)", downloads.status)
        _print_failures(downloads.failure_reasons, [(f.url, f.reason) for f in downloads.failures])
    err.print(f"[dim]in {s.seconds:.1f} s[/]")


def _print_failures(reasons: dict[str, int], failures: list[tuple[str, str]]) -> None:
    """Reasons counted, then the first failures (what, why)."""
    for reason, count in reasons.items():
        out.print(f"  {count:>6,}  {escape(reason)}")
    for what, why in failures[:FAILURES_PRINTED]:
        out.print(f"  {escape(what)}: {escape(why)}")
    if len(failures) > FAILURES_PRINTED:
        out.print(f"  ... and {len(failures) - FAILURES_PRINTED:,} more "
                  "(--format json lists them all)")


def _print_counts(title: str, counts: dict[str, int]) -> None:
    shown = list(counts.items())[:12]
    rest = sum(counts.values()) - sum(n for _, n in shown)
    text = ", ".join(f"{escape(k)} {n:,}" for k, n in shown) + (f", others {rest:,}"
                                                                 if rest else "") or "none"
    out.print(f"{title}: {text}")


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


@app.command("report")
def report_command(
    out_path: Path = typer.Option(Path("report.html"), "--out", "-o",
                                  help="The HTML file to write."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: found "
                                         "in this folder or a parent)."),
    max_groups: int = typer.Option(1000, "--max-groups", min=0, help="Largest groups shown "
                                   "with thumbnails; the rest are counted."),
    page_size: int = typer.Option(50, "--page-size", min=1, help="Groups a page."),
    by: Optional[str] = typer.Option(None, "--by", help="Metadata key for the per-category "
                                     "numbers (default: category)."),
    thumb_size: int = typer.Option(160, "--thumb-size", min=16, max=1024,
                                   help="Thumbnail size in px (cached next to the index)."),
    fmt: StatsFormat = typer.Option(StatsFormat.table, "--format",
                                    help="Summary of the run as text or json."),
    keep: str = options.KEEP,
    prefer_path: list[Path] = options.PREFER_PATH,
    reference: list[Path] = options.REFERENCE,
    no_marks: bool = options.NO_MARKS,
    partial: Optional[bool] = typer.Option(None, "--partial/--no-partial", help="Show the "
                                           "crops and pictures inside others (dupes "
                                           "--partial) with their frame drawn (default: when "
                                           "the index holds local features)."),
) -> None:
    """A self-contained HTML report (works offline): plots of the collection and the duplicate
    groups as a gallery of thumbnails."""
    if out_path.is_dir():  # a folder: the report goes inside it
        out_path = out_path / "report.html"
    try:
        with open_index(_index_path(index)) as idx:
            result = write_report(idx, out_path, max_groups=max_groups, page_size=page_size,
                                  by=by, thumb_size=thumb_size, keep=keep.split(","),
                                  prefer_path=[str(p) for p in prefer_path],
                                  reference=[str(p) for p in reference],
                                  use_marks=not no_marks, partial=partial)
    except LookalikeError as exc:
        raise _translate(exc)
    except OSError as exc:
        raise _translate(LookalikeError(f"cannot write {out_path}: {exc}"))
    summary = {"path": str(result.path), "bytes": result.bytes,
               "groups": result.groups_total, "groups_shown": result.groups_shown,
               "files_shown": result.files_shown, "partial_shown": result.partial_shown,
               "thumbs_made": result.thumbs.made,
               "thumbs_cached": result.thumbs.cached, "thumbs_failed": result.thumbs.failed,
               "seconds": result.seconds}
    if fmt is StatsFormat.json:
        _emit(json.dumps(summary, indent=2))
    else:
        left = result.groups_total - result.groups_shown
        out.print(f"wrote {escape(display_path(str(result.path)))}: "
                  f"{result.bytes / 1e6:,.1f} MB, {result.groups_shown:,} groups shown"
                  + (f" ({left:,} more left out; --max-groups)" if left else "")
                  + f", thumbnails {result.thumbs.made:,} made, {result.thumbs.cached:,} "
                  f"cached, {result.thumbs.failed:,} failed, in {result.seconds:.1f} s")
    raise typer.Exit(OK)
