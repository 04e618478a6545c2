"""Rows of image URLs from a CSV/TSV, Parquet or JSON Lines file: id, URL and kept columns.

A bad input file (unreadable, no such column, broken quoting) raises SourceError; a bad row
(no URL, a scheme other than http/https, an over-long URL) becomes a row with a `problem`,
which the ingest records as an "invalid" row and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from ..errors import SourceError

log = logging.getLogger(__name__)

SCHEMES = ("http", "https")
MAX_URL = 8192  # longer URLs are refused by most servers; a longer cell is a broken row
# A CSV cell may be long (a description column); the csv module's default limit (128 KiB)
# would make the whole file unreadable for one such cell.
MAX_CELL = 64 << 20
FALLBACK_ENCODING = "latin-1"  # decodes any bytes; used (with a warning) when UTF-8 fails


@dataclass(frozen=True)
class UrlRow:
    row: int  # 1-based data row: records after the header, blank lines not counted
    url: str
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # the kept columns
    problem: str | None = None  # why there is nothing to fetch, or None


@dataclass(frozen=True)
class UrlSource:
    path: Path
    rows: list[UrlRow]
    columns: list[str]
    encoding: str | None = None  # the text encoding used (None for Parquet)
    warning: str | None = None  # e.g. the encoding fallback, for the CLI to show


def read_urls(path: str | os.PathLike, url_column: str, *, id_column: str | None = None,
              keep_columns: Sequence[str] = (), encoding: str | None = None,
              format: str | None = None) -> UrlSource:
    """Read `path` (format from `format` or the suffix: .csv, .tsv, .parquet, .jsonl/.ndjson).

    `encoding`: of a text file; by default UTF-8 (a BOM is dropped), falling back to
    latin-1 with a warning when the file is not valid UTF-8.
    """
    path = Path(path)
    kind = (format or _kind_of(path)).lower()
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    wanted = [url_column] + ([id_column] if id_column else []) + list(keep_columns)
    if kind == "parquet":
        columns, records = _parquet_records(path, wanted)
        text_encoding, warning = None, None
    elif kind in ("csv", "tsv", "jsonl"):
        text, text_encoding, warning = _decode(path, encoding)
        if kind == "jsonl":
            columns, records = _jsonl_records(path, text)
        else:
            columns, records = _csv_records(path, text, "\t" if kind == "tsv" else ",")
    else:
        raise SourceError(f"cannot read {path}: unknown format {kind!r} "
                          "(csv, tsv, parquet, jsonl)")
    missing = [name for name in wanted if name not in columns]
    if missing and kind != "jsonl":
        raise SourceError(_missing_message(path, missing, columns))
    if kind == "jsonl" and url_column not in columns:
        raise SourceError(_missing_message(path, [url_column], columns))
    rows = [_row(number, record, url_column, id_column, keep_columns)
            for number, record in enumerate(records, 1)]
    return UrlSource(path, rows, columns, text_encoding, warning)


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return {"ndjson": "jsonl", "jsonlines": "jsonl", "pq": "parquet", "txt": "csv"}.get(
        suffix, suffix or "csv")


def _missing_message(path: Path, missing: list[str], columns: list[str]) -> str:
    names = ", ".join(repr(c) for c in columns) or "none"
    what = "column" if len(missing) == 1 else "columns"
    return (f"{path.name} has no {what} {', '.join(repr(m) for m in missing)}; "
            f"its columns are: {names}")


def _decode(path: Path, encoding: str | None) -> tuple[str, str, str | None]:
    data = path.read_bytes()
    if encoding:
        try:
            return data.decode(encoding), encoding, None
        except (UnicodeDecodeError, LookupError) as exc:
            raise SourceError(f"cannot decode {path.name} as {encoding}: {exc}") from None
    try:
        return data.decode("utf-8-sig"), "utf-8", None
    except UnicodeDecodeError as exc:
        warning = (f"{path.name} is not valid UTF-8 (byte {exc.start:,}); read it as "
                   f"{FALLBACK_ENCODING} (give --encoding to choose another)")
        log.warning("%s", warning)
        return data.decode(FALLBACK_ENCODING), FALLBACK_ENCODING, warning


@contextmanager
def _cell_limit(limit: int) -> Iterator[None]:
    before = csv.field_size_limit(limit)  # a process-wide setting: put it back afterwards
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _csv_records(path: Path, text: str, delimiter: str) -> tuple[list[str], list[dict]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[dict] = []
    with _cell_limit(MAX_CELL):
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(f"{path.name} is empty: no header row")
            columns = [name.strip() for name in header]
            for cells in reader:
                if not cells:  # a blank line is not a record (as csv.DictReader)
                    continue
                record = dict(zip(columns, (c.strip() for c in cells)))
                extra = [c for c in cells[len(columns):] if c.strip()]
                if extra:  # more cells than columns (empty trailing cells are harmless)
                    record[None] = extra
                records.append(record)
        except csv.Error as exc:
            raise SourceError(f"cannot read {path.name} near line {reader.line_num}: "
                              f"{exc}") from None
    return columns, records


def _jsonl_records(path: Path, text: str) -> tuple[list[str], list[dict]]:
    columns: dict[str, None] = {}
    records: list[dict] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            value = {None: f"not valid JSON ({exc.msg})"}
        if not isinstance(value, dict):
            value = {None: "not a JSON object"}
        columns.update((k, None) for k in value if k is not None)
        records.append(value)
    return list(columns), records


def _parquet_records(path: Path, wanted: list[str]) -> tuple[list[str], list[dict]]:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet sources need it
    except ImportError:
        raise SourceError("reading Parquet needs pyarrow: pip install 'lookalike[ingest]'"
                          ) from None
    try:
        columns = list(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several unrelated types)
        raise SourceError(f"cannot read {path.name} as Parquet: {exc}") from None
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise SourceError(_missing_message(path, missing, columns))
    table = pq.read_table(path, columns=list(dict.fromkeys(wanted)))
    return columns, table.to_pylist()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def _row(number: int, record: dict, url_column: str, id_column: str | None,
         keep_columns: Sequence[str]) -> UrlRow:
    url = _text(record.get(url_column))
    ident = _text(record.get(id_column)) if id_column else None
    meta = {name: record.get(name) for name in keep_columns}
    problem = url_problem(url)
    if None in record and isinstance(record[None], str):
        problem = record[None]  # a JSON Lines line that is not an object
    elif None in record:
        problem = f"{len(record[None])} more cells than the header has columns"
    elif not any(_text(v) for v in record.values()):
        problem = "empty row"
    return UrlRow(number, url, ident or None, meta, problem)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched, or None."""
    if not url:
        return "no URL"
    if len(url) > MAX_URL:
        return f"URL too long ({len(url):,} characters > {MAX_URL:,})"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"malformed URL: {exc}"
    if parts.scheme.lower() not in SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"scheme not allowed: {shown} (only http and https)"
    if not parts.hostname:
        return "malformed URL: no host"
    return None
