"""`ingest`: download the images a CSV/Parquet/JSON Lines file lists, record every row.

Every row ends with a status and a reason, in the index (table `ingest`, written in small
batches as downloads finish, so a killed run loses at most the last second) and in a results
file (CSV or Parquet, rewritten atomically every few seconds and at the end). A re-run of the
same source skips the rows whose file is there, retries the rows that failed for a reason
that may pass (timeouts, 5xx, 429, resets, truncation) and, with `retry_failed`, the others
too (404, not an image, too large). Kept columns land on files.meta of the downloaded file
(Index.copy_ingest_meta), where `dupes --where` and the rest of lookalike read them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..errors import SourceError
from ..index.store import Index, default_index_path, open_index
from ..types import IngestRow
from ..runners import check_runner
from .download import DownloadOptions, Fetched, Job, download, remove_parts
from .download_ray import RayDownloadOptions, download_on_ray, remove_staging
from .urls import UrlRow, UrlSource, read_urls

if TYPE_CHECKING:
    from ..scan import ScanSummary

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5  # results written to the index at least this often
RESULTS_SECONDS = 10.0  # the results file rewritten at least this often
MAX_STEM = 100  # characters of an id kept in a file name
RESULT_COLUMNS = ("row", "id", "url", "status", "reason", "path", "http_status", "bytes",
                  "attempts")

Progress = Callable[[int, int, int], None]  # (rows done, of which failed, rows to fetch)


@dataclass
class IngestSummary:
    source: Path
    out_dir: Path
    index_path: Path
    results_path: Path | None
    rows: list[IngestRow]
    downloaded: int = 0  # files fetched by this run
    already: int = 0  # rows done by an earlier run whose file is still there
    seconds: float = 0.0
    warning: str | None = None  # e.g. the source was not UTF-8
    scan: "ScanSummary | None" = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.statuses.get("failed", 0)

    def as_dict(self) -> dict:
        return {"rows": len(self.rows), "downloaded": self.downloaded, "already": self.already,
                "statuses": dict(self.statuses), "seconds": round(self.seconds, 2),
                "source": str(self.source), "out": str(self.out_dir),
                "index": str(self.index_path),
                "results": str(self.results_path) if self.results_path else None,
                "warning": self.warning,
                "scan": self.scan.as_dict() if self.scan is not None else None}


def ingest(source: str | os.PathLike, url_column: str, out_dir: str | os.PathLike, *,
           id_column: str | None = None, keep_columns: Sequence[str] = (),
           index_path: str | os.PathLike | None = None,
           results_path: str | os.PathLike | None = None,
           options: DownloadOptions = DownloadOptions(), retry_failed: bool = False,
           encoding: str | None = None, scan: bool = False,
           scan_methods: Iterable[str] | None = None, workers: int | None = None,
           progress: Progress | None = None, runner: str = "local",
           ray_address: str | None = None,
           ray_options: RayDownloadOptions = RayDownloadOptions()) -> IngestSummary:
    """Download the images of `source` into `out_dir` and record every row (see module).

    `index_path`: default OUT_DIR/.lookalike/index.db, the index `lookalike scan OUT_DIR`
    uses. `results_path`: default ingest-SOURCE_NAME.csv next to the index, out of the way
    of a scan of OUT_DIR (a .parquet suffix writes Parquet).
    `runner` "ray": the downloads run as Ray tasks on the cluster at `ray_address` (as
    scan takes it), batches of `ray_options` (download_ray.py); `out_dir` must then be a
    folder every node sees at the same path.
    `scan`: then index the downloaded files with their metadata (lookalike.scan, with the
    same `runner` and `ray_address`).
    Raises SourceError for a source that cannot be read; a bad row is only a result.
    """
    start = time.perf_counter()
    check_runner(runner)
    table = read_urls(source, url_column, id_column=id_column, keep_columns=keep_columns,
                      encoding=encoding)
    out = Path(os.path.abspath(out_dir))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"cannot create the output folder {out}: "
                          f"{exc.strerror or exc}") from None
    index_path = Path(index_path) if index_path is not None else default_index_path(out)
    results = (Path(results_path) if results_path is not None
               else index_path.parent / f"ingest-{table.path.stem}.csv")
    key = str(table.path.resolve())
    index = open_index(index_path, create=True)
    try:
        index.acquire()
        removed = remove_parts(out) + remove_staging(out)
        if removed:
            log.info("removed %d partial downloads of an interrupted run", removed)
        fetch = download if runner == "local" else partial(
            download_on_ray, address=ray_address, ray_options=ray_options)
        summary = _run(index, key, table, out, results, options, retry_failed,
                       keep_columns, progress, fetch)
    finally:
        index.close()
    summary.index_path, summary.warning = index_path, table.warning
    if scan:
        from ..scan import scan as run_scan

        summary.scan = run_scan([out], index_path=index_path, methods=scan_methods,
                                workers=workers, runner=runner, ray_address=ray_address)
    summary.seconds = time.perf_counter() - start
    return summary


def _run(index: Index, key: str, table: UrlSource, out: Path, results: Path,
         options: DownloadOptions, retry_failed: bool, keep_columns: Sequence[str],
         progress: Progress | None, fetch: Callable = download) -> IngestSummary:
    previous = index.ingest_rows(key)
    final, duplicates, jobs = _plan(table.rows, previous, out, retry_failed)
    already = sum(1 for r in final.values() if r.status == "ok")
    by_row = {row.row: row for row in table.rows}
    writer = _Recorder(index, key, results, keep_columns, final, previous, progress,
                       len(jobs))
    writer.flush(force=True)  # invalid and carried rows are recorded before any download
    fetched = fetch(jobs, out, options,
                    lambda f: writer.add(_from_fetched(f, by_row[f.key])))
    for row_number, owner in duplicates.items():
        final[row_number] = _duplicate(by_row[row_number], final[owner])
    rows = [final[row.row] for row in table.rows]
    writer.finish(rows, len(table.rows))
    return IngestSummary(table.path, out, index.path, results, rows,
                         downloaded=sum(1 for f in fetched if f.ok), already=already,
                         statuses=dict(Counter(r.status for r in rows)))


def _plan(rows: Sequence[UrlRow], previous: dict[int, IngestRow], out: Path,
          retry_failed: bool) -> tuple[dict[int, IngestRow], dict[int, int], list[Job]]:
    """What each row needs: its result already (invalid, or done by an earlier run), the
    result of an earlier row with its URL (row -> that row), or a download (the jobs)."""
    # Rows are recognised by their URL and id too, so a row inserted or removed above them
    # (the row numbers shift) does not make the rest download again.
    previous_by_url = {(r.url, r.id): r for r in previous.values()}
    stems = file_stems(rows)
    final: dict[int, IngestRow] = {}
    owners: dict[str, int] = {}  # URL -> the first row that has it
    duplicates: dict[int, int] = {}
    jobs: list[Job] = []
    for row in rows:
        if row.problem:
            final[row.row] = _invalid(row)
            continue
        owner = owners.setdefault(row.url, row.row)
        if owner != row.row:
            duplicates[row.row] = owner
            continue
        before = previous.get(row.row)
        if before is None or (before.url, before.id) != (row.url, row.id):
            before = previous_by_url.get((row.url, row.id))
        kept = _kept(before, row, out, retry_failed)
        if kept is not None:
            final[row.row] = kept
        else:
            jobs.append(Job(row.row, row.url, stems[row.row]))
    return final, duplicates, jobs


class _Recorder:
    """Writes results to the index in batches, and the results file now and then."""

    def __init__(self, index: Index, key: str, results: Path, keep_columns: Sequence[str],
                 final: dict[int, IngestRow], stored: dict[int, IngestRow],
                 progress: Progress | None, total: int) -> None:
        self.index, self.key, self.results, self.keep = index, key, results, keep_columns
        self.final, self.progress, self.total = final, progress, total
        self.stored = dict(stored)  # what the index holds: rows equal to it are not rewritten
        self.pending: list[IngestRow] = list(final.values())
        self.done = self.failed = 0
        self.flushed = self.rewritten = time.monotonic()

    def add(self, row: IngestRow) -> None:
        self.final[row.row] = row
        self.pending.append(row)
        self.done += 1
        self.failed += row.status != "ok"
        if self.progress is not None:
            self.progress(self.done, self.failed, self.total)
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.pending and (force or now - self.flushed >= FLUSH_SECONDS):
            self._store(self.pending)
            self.pending, self.flushed = [], now
        if not force and now - self.rewritten >= RESULTS_SECONDS:
            write_results(self.results, sorted(self.final.values(), key=lambda r: r.row),
                          self.keep)
            self.rewritten = now

    def finish(self, rows: list[IngestRow], count: int) -> None:
        self._store(rows, last_row=count)
        self.index.copy_ingest_meta()
        write_results(self.results, rows, self.keep)

    def _store(self, rows: Sequence[IngestRow], last_row: int | None = None) -> None:
        changed = [r for r in rows if self.stored.get(r.row) != r]
        self.index.write_ingest(self.key, changed, last_row=last_row)
        self.stored.update((r.row, r) for r in changed)


def _kept(before: IngestRow | None, row: UrlRow, out: Path,
          retry_failed: bool) -> IngestRow | None:
    """The earlier result of this row if it stands (with today's row number and kept
    columns), else None."""
    if before is None or before.url != row.url or before.id != row.id:
        return None
    if (before.status == "ok" and before.path and Path(before.path).parent == out
            and _whole(before.path, before.bytes)):
        return replace(before, row=row.row, meta=row.meta)
    if before.status == "failed" and before.permanent and not retry_failed:
        return replace(before, row=row.row, meta=row.meta)
    return None


def _whole(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


def _invalid(row: UrlRow) -> IngestRow:
    return IngestRow(row.row, row.url, "invalid", row.problem or "", row.id, permanent=True,
                     meta=row.meta)


def _duplicate(row: UrlRow, owner: IngestRow) -> IngestRow:
    how = "" if owner.status == "ok" else f" ({owner.status}: {owner.reason})"
    return IngestRow(row.row, row.url, "duplicate", f"same URL as row {owner.row}{how}",
                     row.id, owner.path if owner.status == "ok" else None,
                     owner.http_status, owner.bytes, 0, owner.permanent, meta=row.meta)


def _from_fetched(f: Fetched, row: UrlRow) -> IngestRow:
    return IngestRow(row.row, row.url, "ok" if f.ok else "failed", f.reason, row.id, f.path,
                     f.http_status, f.bytes, f.attempts, f.permanent, f.started, f.finished,
                     row.meta)


def file_stems(rows: Sequence[UrlRow]) -> dict[int, str]:
    """row -> file name without extension: the id made safe, else the sha1 of the URL.

    It depends only on the row's id and URL (and, for an id seen before with another URL,
    on that), so a re-run finds the same names. An id changed to be safe (other characters,
    a leading dot that would hide the file from scan, too long) gets a hash of itself
    appended, so two ids never share a name; a repeated id gets a hash of its URL.
    """
    stems: dict[int, str] = {}
    seen: set[str] = set()
    for row in rows:
        if row.id is None:
            stems[row.row] = _sha1(row.url)
            continue
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", row.id).lstrip(".")[:MAX_STEM]
        if safe != row.id or not safe:
            safe = f"{safe or 'id'}-{_sha1(row.id)[:10]}"
        stem = safe if safe not in seen else f"{safe}-{_sha1(row.url)[:10]}"
        seen.add(stem)
        stems[row.row] = stem
    return stems


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def write_results(path: Path, rows: Sequence[IngestRow], keep_columns: Sequence[str]) -> None:
    """The results file, one line a row, replaced atomically (CSV, or Parquet by suffix)."""
    kept = [(name, name if name not in RESULT_COLUMNS else f"meta_{name}")
            for name in keep_columns]
    header = list(RESULT_COLUMNS) + [column for _, column in kept]
    records = [[r.row, r.id or "", r.url, r.status, r.reason, r.path or "",
                "" if r.http_status is None else r.http_status, r.bytes, r.attempts]
               + [r.meta.get(name) for name, _ in kept] for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa  # optional, as for reading Parquet
        import pyarrow.parquet as pq

        columns = {name: [rec[i] for rec in records] for i, name in enumerate(header)}
        columns["http_status"] = [r.http_status for r in rows]
        columns["id"] = [r.id for r in rows]
        columns["path"] = [r.path for r in rows]
        pq.write_table(pa.table(columns), temporary)
    else:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerows(records)
        temporary.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    os.replace(temporary, path)
