"""`lookalike ingest`: download the images a CSV/Parquet/JSON Lines file lists (and, with
--scan, index them with their metadata). Registered on main.app."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..errors import LookalikeError
from ..sources.options import BOUNDS, DownloadOptions, check_bound
from ..sources.download_ray import BATCH_BOUNDS, RayDownloadOptions
from ..sources.ingest import IngestSummary, ingest
from ..sources.folders import WalkOptions
from ..runners import check_runner
from . import options
from .common import (OK, PARTIAL, USAGE, Format, _emit, _fail, _scan_with_progress,
                   _split_methods, _translate, app, err, out)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
DEFAULTS = DownloadOptions()


def _range(name: str) -> dict:
    """min/max of a flag, from the library's table (the library checks them again)."""
    low, high = BOUNDS[name]
    return {"min": low, "max": high}


def parse_size(text: str) -> int:
    """'50MB', '512k', '1000000' -> bytes (binary units: 1 MB = 1,048,576 bytes)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 50MB, 512k, 1000000)")
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _UNITS[unit])


@app.command("ingest")
def ingest_command(
    source: Path = typer.Argument(..., help="CSV, TSV, Parquet or JSON Lines file of URLs."),
    url_column: str = typer.Option("url", "--url-column", help="Column holding the URLs."),
    id_column: Optional[str] = typer.Option(None, "--id-column", help="Column naming each "
                                            "file (default: the SHA-1 of the URL)."),
    keep_columns: list[str] = typer.Option([], "--keep-columns", help="Columns stored as the "
                                           "files' metadata (comma-separated, repeatable), "
                                           "for 'dupes --where KEY=VALUE'."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the downloaded images."),
    index: Optional[Path] = typer.Option(None, "--index", help="Index file (default: "
                                         "OUT/.lookalike/index.db)."),
    results: Optional[Path] = typer.Option(None, "--results", help="Per-row results, .csv or "
                                           ".parquet (default: next to the index)."),
    concurrency: int = typer.Option(DEFAULTS.concurrency, "--concurrency",
                                    **_range("concurrency"),
                                    help="Downloads in flight in all."),
    per_host: int = typer.Option(DEFAULTS.per_host, "--per-host", **_range("per_host"),
                                 help="Downloads in flight from one host."),
    timeout: float = typer.Option(DEFAULTS.timeout, "--timeout", **_range("timeout"),
                                  help="Seconds to connect, and without data while reading."),
    total_timeout: float = typer.Option(DEFAULTS.total_timeout, "--total-timeout",
                                        **_range("total_timeout"),
                                        help="Seconds for one attempt in all."),
    retries: int = typer.Option(DEFAULTS.retries, "--retries", **_range("retries"),
                                help="Retries on 429, 5xx, timeouts and broken connections."),
    backoff: float = typer.Option(DEFAULTS.backoff, "--backoff", **_range("backoff"),
                                  help="Seconds before the first retry (doubled each time, "
                                  "with jitter; Retry-After is honoured)."),
    max_retry_wait: float = typer.Option(DEFAULTS.max_retry_after, "--max-retry-wait",
                                         **_range("max_retry_after"),
                                         help="Longest Retry-After waited for, in seconds; "
                                         "a row asked to wait longer fails, and a re-run "
                                         "retries it."),
    max_bytes: str = typer.Option("50MB", "--max-bytes", help="Largest file (e.g. 50MB; "
                                  "at most 1TB)."),
    max_redirects: int = typer.Option(DEFAULTS.max_redirects, "--max-redirects",
                                      **_range("max_redirects"),
                                      help="Redirects followed per URL at most."),
    allow_private: bool = typer.Option(False, "--allow-private", help="Also fetch from "
                                       "loopback, private, link-local and other non-public "
                                       "addresses (refused by default: a list of URLs from "
                                       "someone else must not reach internal services)."),
    allow_network: list[str] = typer.Option([], "--allow-network", help="A network (CIDR, "
                                            "e.g. 10.20.0.0/16) fetched even though not "
                                            "public; repeatable."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Also retry rows that "
                                      "failed for good last time (404, not an image, too "
                                      "large); other failures are always retried."),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of a CSV "
                                           "(default: UTF-8, else latin-1 with a warning)."),
    scan: bool = typer.Option(False, "--scan", help="Then index the downloaded images with "
                              "their metadata (as 'lookalike scan OUT')."),
    method: Optional[list[str]] = typer.Option(None, "--method", "-m",
                                               help="With --scan: signatures to compute."),
    workers: Optional[int] = options.WORKERS,
    fmt: Format = typer.Option(Format.table, "--format", help="Summary as table or json."),
    strict: bool = options.STRICT,
    runner: str = typer.Option("local", "--runner", metavar="local|ray",
                               help="Who downloads (and, with --scan, scans): local (this "
                               "process, the default) or ray (Ray tasks of --ray-batch URLs "
                               "on the cluster, writing into --out, which every node must "
                               "see at the same path; --concurrency and --per-host hold per "
                               "task; needs the 'ray' extra)."),
    ray_address: Optional[str] = options.RAY_ADDRESS,
    ray_batch: int = typer.Option(RayDownloadOptions.batch_urls, "--ray-batch",
                                  min=BATCH_BOUNDS[0], max=BATCH_BOUNDS[1], metavar="N",
                                  help="With --runner ray: URLs per download task (the unit "
                                  "of retry)."),
    shard_files: int = options.SHARD_FILES,
) -> None:
    """Download the images a file of URLs lists; a re-run resumes (done rows are skipped,
    failed ones retried). Every row gets a status and a reason, in the index and a results
    file. With --runner ray the downloads run on the Ray cluster too. Exit code 0 when the
    run finished, even if some rows failed (they are listed); with --strict, 3 when some
    rows failed or were invalid."""
    try:
        check_runner(runner)  # before any download
    except LookalikeError as exc:
        raise _translate(exc)
    try:
        limit = parse_size(max_bytes)
        check_bound("max_bytes", limit, integer=True)
        download = DownloadOptions(concurrency=concurrency, per_host=per_host, timeout=timeout,
                                   total_timeout=total_timeout, retries=retries,
                                   backoff=backoff, max_retry_after=max_retry_wait,
                                   max_bytes=limit, max_redirects=max_redirects,
                                   allow_private=allow_private,
                                   allow_networks=tuple(allow_network))
    except ValueError as exc:  # BoundError is a ValueError too
        raise _fail(f"--max-bytes: {exc}" if "max_bytes" in str(exc) else str(exc), USAGE)
    kept = _split_methods(keep_columns) or []  # the same comma splitting as --method
    arguments = dict(id_column=id_column, keep_columns=kept, index_path=index,
                     results_path=results, options=download, retry_failed=retry_failed,
                     encoding=encoding, runner=runner, ray_address=ray_address,
                     ray_options=RayDownloadOptions(batch_urls=ray_batch))
    try:
        summary = _with_progress(source, url_column, out_dir, arguments)
        if scan:  # here rather than ingest(scan=True): the scan gets its own progress bar
            summary.scan = _scan_with_progress([out_dir], [], summary.index_path,
                                               _split_methods(method), WalkOptions(), workers,
                                               runner=runner, ray_address=ray_address,
                                               shard_files=shard_files)
    except LookalikeError as exc:
        raise _translate(exc)
    except KeyboardInterrupt:
        raise _fail("interrupted; run the same command again to resume", 130)
    if summary.warning:
        err.print(f"[yellow]warning:[/] {escape(summary.warning)}")
    if fmt is Format.json:
        failures = [{"row": r.row, "url": r.url, "status": r.status, "reason": r.reason}
                    for r in summary.rows if r.status in ("failed", "invalid")]
        _emit(json.dumps(summary.as_dict() | {"failures": failures}, indent=2))
    else:
        _print_summary(summary)
    bad = summary.statuses.get("failed", 0) + summary.statuses.get("invalid", 0)
    scan_failed = summary.scan is not None and summary.scan.failures
    raise typer.Exit(PARTIAL if strict and (bad or scan_failed) else OK)


def _with_progress(source: Path, url_column: str, out_dir: Path,
                   arguments: dict) -> IngestSummary:
    if not err.is_terminal:
        return ingest(source, url_column, out_dir, **arguments)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeRemainingColumn)

    with Progress(TextColumn("downloading"), BarColumn(), MofNCompleteColumn(),
                  TaskProgressColumn(), TextColumn("[red]{task.fields[failed]}[/]"),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("ingest", total=None, failed="", rate="")

        def update(done: int, failed: int, total: int) -> None:
            speed = bar.tasks[0].speed
            bar.update(task, completed=done, total=total,
                       failed=f"{failed:,} failed" if failed else "",
                       rate=f"{speed:,.1f} rows/s" if speed else "")

        return ingest(source, url_column, out_dir, progress=update, **arguments)


def _print_summary(summary: IngestSummary) -> None:
    counts = summary.statuses
    out.print(f"rows {len(summary.rows):,}: ok {counts.get('ok', 0):,} (downloaded "
              f"{summary.downloaded:,}, already there {summary.already:,}), failed "
              f"{counts.get('failed', 0):,}, invalid {counts.get('invalid', 0):,}, duplicate "
              f"{counts.get('duplicate', 0):,}  in {summary.seconds:.1f} s")
    out.print(f"results: {summary.results_path}", markup=False)
    out.print(f"index: {summary.index_path}", markup=False)
    bad = [r for r in summary.rows if r.status in ("failed", "invalid")]
    for r in bad[:20]:
        err.print(f"  row {r.row} {r.status}: {escape(r.url[:200])}: {escape(r.reason)}")
    if len(bad) > 20:
        err.print(f"  ... and {len(bad) - 20:,} more (in the results file)")
    if summary.scan is not None:
        s = summary.scan
        out.print(f"scanned {s.scanned:,}  unchanged {s.unchanged:,}  failed {s.failed:,}")
