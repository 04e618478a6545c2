"""Rows of image URLs from a CSV/TSV, Parquet or JSON Lines file, or a plain list of URLs
(one a line): id, URL and kept columns.

A bad input file (unreadable, no such column, broken quoting) raises SourceError naming the
line; a bad row (no URL, a scheme other than http/https, a malformed or over-long URL)
becomes a row with a `problem`, which the ingest records as an "invalid" row and goes on.
Nothing is dropped silently: every line of a text source is a header line, a blank line,
a line of a record, or (JSON Lines, plain lists) a row of its own.

CSV is parsed strictly. A quoted field may span lines (legal CSV: an address, a
description), but a quote left open swallows every later line into one cell, so: the file
ending inside a quote is an error naming the line where that record began, a quote
followed by anything but a delimiter is an error, and a multi-line cell holding a line
that is itself a whole row of this file (the header's number of cells, a fetchable URL in
the URL column) is an error too: that is a quote closed by accident many rows later, not
a description.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import SourceError
from .urlcheck import MAX_URL, SCHEMES, url_problem  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

# A CSV cell may be long (a description column); the csv module's default limit (128 KiB)
# would make the whole file unreadable for one such cell.
MAX_CELL = 64 << 20
FALLBACK_ENCODING = "latin-1"  # decodes any bytes; used (with a warning) when UTF-8 fails
# Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
TEXT_KINDS = ("csv", "tsv", "jsonl", "text")


@dataclass(frozen=True)
class UrlRow:
    row: int  # 1-based data row: records after the header, blank lines not counted
    url: str
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # the kept columns
    problem: str | None = None  # why there is nothing to fetch, or None
    line: int | None = None  # the line of the file where the row begins (None: Parquet)


@dataclass(frozen=True)
class UrlSource:
    path: Path
    rows: list[UrlRow]
    columns: list[str]
    encoding: str | None = None  # the text encoding used (None for Parquet)
    warning: str | None = None  # e.g. the encoding fallback, for the CLI to show
    lines: int | None = None  # lines in a text source (None for Parquet)
    kind: str = "csv"  # csv, tsv, jsonl, text or parquet


@dataclass(frozen=True)
class _Record:
    line: int  # where it begins
    values: dict  # column -> value; the key None holds a problem of the whole record


def read_urls(path: str | os.PathLike, url_column: str, *, id_column: str | None = None,
              keep_columns: Sequence[str] = (), encoding: str | None = None,
              format: str | None = None) -> UrlSource:
    """Read `path` (format from `format` or the suffix: .csv, .tsv, .parquet, .jsonl/.ndjson;
    .txt is a plain list of URLs if its first line is a URL, else CSV).

    `encoding`: of a text file; by default from its byte-order mark (UTF-8, UTF-16, UTF-32),
    else UTF-8, falling back to latin-1 with a warning when the file is not valid UTF-8.
    """
    path = Path(path)
    kind = (format or _kind_of(path)).lower()
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    if kind not in TEXT_KINDS + ("parquet", "txt"):
        raise SourceError(f"cannot read {path}: unknown format {kind!r} "
                          "(csv, tsv, parquet, jsonl, text)")
    wanted = [url_column] + ([id_column] if id_column else []) + list(keep_columns)
    text_encoding, warning, lines = None, None, None
    if kind == "parquet":
        columns, records = _parquet_records(path, wanted)
    else:
        text, text_encoding, warning = _decode(path, encoding)
        if kind == "txt":
            kind = "text" if _is_url_list(text) else "csv"
        if kind == "jsonl":
            columns, records, lines = _jsonl_records(text)
        elif kind == "text":
            if len(wanted) > 1:
                raise SourceError(f"{path.name} is a plain list of URLs (one a line): it has "
                                  "no id or other columns to keep")
            columns, records, lines = _list_records(text, url_column)
        else:
            columns, records, lines = _csv_records(path, text, "\t" if kind == "tsv"
                                                   else ",", wanted)
    missing = [name for name in (wanted if kind != "jsonl" else [url_column])
               if name not in columns]
    if missing:
        raise SourceError(_missing_message(path, missing, columns))
    rows = [_row(number, record, url_column, id_column, keep_columns)
            for number, record in enumerate(records, 1)]
    return UrlSource(path, rows, columns, text_encoding, warning, lines, kind)


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return {"ndjson": "jsonl", "jsonlines": "jsonl", "pq": "parquet"}.get(suffix,
                                                                          suffix or "csv")


def _missing_message(path: Path, missing: list[str], columns: list[str]) -> str:
    names = ", ".join(repr(c) for c in columns) or "none"
    what = "column" if len(missing) == 1 else "columns"
    return (f"{path.name} has no {what} {', '.join(repr(m) for m in missing)}; "
            f"its columns are: {names}")


def _decode(path: Path, encoding: str | None) -> tuple[str, str, str | None]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if encoding:
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding, None
        except (UnicodeError, LookupError) as exc:
            raise SourceError(f"cannot decode {path.name} as {encoding}: {exc}") from None
    for bom, name in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name.removesuffix("-sig"), None
            except UnicodeError as exc:
                raise SourceError(f"{path.name} starts with a {name.removesuffix('-sig')} "
                                  f"byte-order mark but is not valid {name}: {exc}; give "
                                  "--encoding to choose another") from None
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError as exc:
        hint = ("; every other byte is 0, as in UTF-16 without a byte-order mark"
                if data[1:200:2].count(0) > 0.9 * len(data[1:200:2]) > 0 else "")
        warning = (f"{path.name} is not valid UTF-8 (byte {exc.start:,}); read it as "
                   f"{FALLBACK_ENCODING}{hint} (give --encoding to choose another)")
        log.warning("%s", warning)
        return data.decode(FALLBACK_ENCODING), FALLBACK_ENCODING, warning


def _physical_lines(text: str) -> list[str]:
    """Lines as the csv module counts them: ended by \\n, \\r or \\r\\n only (not by the
    other characters str.splitlines takes, which may stand inside a value)."""
    return io.StringIO(text, newline="").readlines()


@contextmanager
def _cell_limit(limit: int) -> Iterator[None]:
    before = csv.field_size_limit(limit)  # a process-wide setting: put it back afterwards
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _csv_records(path: Path, text: str, delimiter: str,
                 wanted: Sequence[str]) -> tuple[list[str], list[_Record], int]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[_Record] = []
    header: list[str] | None = None
    with _cell_limit(MAX_CELL):
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader, None)
            except csv.Error as exc:
                raise SourceError(_quoting_message(path, exc, start, reader.line_num)
                                  ) from None
            if cells is None:
                break
            if not cells:  # a blank line is not a record (as csv.DictReader)
                continue
            if header is None:
                if reader.line_num > start:  # a column name never spans lines
                    raise SourceError(
                        f"cannot read {path.name}: the header that begins on line {start} "
                        f"runs to line {reader.line_num}; a quote on line {start} is "
                        "probably missing its closing quote")
                header = cells
                columns = [name.strip() for name in header]
                url_index = columns.index(wanted[0]) if wanted[0] in columns else None
                _check_columns(path, columns, wanted, start)
                continue
            if reader.line_num > start:
                _check_spanning(path, cells, len(columns), url_index, delimiter, start,
                                reader.line_num)
            record = dict(zip(columns, (c.strip() for c in cells)))
            extra = [c for c in cells[len(columns):] if c.strip()]
            if extra:  # more cells than columns (empty trailing cells are harmless)
                record[None] = extra
            records.append(_Record(start, record))
    if header is None:
        raise SourceError(f"{path.name} is empty: no header row")
    return columns, records, reader.line_num


def _check_columns(path: Path, columns: list[str], wanted: Sequence[str], line: int) -> None:
    """SourceError if a column the ingest reads appears twice (which one would it read?)."""
    seen: dict[str, int] = {}
    for number, name in enumerate(columns, 1):
        if name in seen and name in wanted:
            raise SourceError(f"{path.name} line {line}: column {name!r} appears twice "
                              f"(columns {seen[name]} and {number}): which one is meant?")
        seen.setdefault(name, number)


def _quoting_message(path: Path, exc: csv.Error, start: int, end: int) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return (f"cannot read {path.name}: the record that begins on line {start} opens a "
                f"quote that is never closed (the file ends inside it, on line {end}); "
                "close the quote or remove it")
    if "field larger than field limit" in text:
        return (f"cannot read {path.name}: the record that begins on line {start} has a "
                f"field longer than {MAX_CELL >> 20} MiB (a quote left open?)")
    if start == end:
        return (f"cannot read {path.name} line {start}: {text} (a quote inside a quoted "
                'field is written twice: "")')
    return (f"cannot read {path.name}: the record that begins on line {start} breaks on "
            f"line {end}: {text}; a quote opened on line {start} is probably missing its "
            "closing quote")


def _check_spanning(path: Path, cells: list[str], width: int, url_index: int | None,
                    delimiter: str, start: int, end: int) -> None:
    """SourceError if a cell that spans lines holds a line that is a whole row itself."""
    if url_index is None:
        return
    for cell in cells:
        inner = _physical_lines(cell)[1:]
        for offset, line in enumerate(inner, 1):
            try:
                parts = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
            except csv.Error:
                continue
            shaped = len(parts) >= width and not any(p.strip() for p in parts[width:])
            if shaped and url_problem(parts[url_index].strip()) is None:
                raise SourceError(
                    f"cannot read {path.name}: a quoted field of the record that begins on "
                    f"line {start} runs to line {end} and holds whole rows (e.g. "
                    f"{line.strip()[:80]!r}); a quote on line {start} is probably missing "
                    "its closing quote")


def _is_url_list(text: str) -> bool:
    first = next((line.strip() for line in _physical_lines(text)
                  if line.strip() and not line.lstrip().startswith("#")), "")
    return url_problem(first) is None


def _list_records(text: str, url_column: str) -> tuple[list[str], list[_Record], int]:
    """A plain list: one URL a line; blank lines and lines starting with # are skipped."""
    lines = _physical_lines(text)
    records = [_Record(number, {url_column: line.strip()})
               for number, line in enumerate(lines, 1)
               if line.strip() and not line.lstrip().startswith("#")]
    return [url_column], records, len(lines)


def _jsonl_records(text: str) -> tuple[list[str], list[_Record], int]:
    columns: dict[str, None] = {}
    records: list[_Record] = []
    lines = text.split("\n")  # JSON Lines: "\n" ends a line; a value may hold U+2028
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            value = {None: f"not valid JSON ({exc.msg})"}
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, deep nesting
            value = {None: f"not valid JSON ({type(exc).__name__}: {str(exc)[:100]})"}
        if not isinstance(value, dict):
            value = {None: "not a JSON object"}
        value = _storable(value)
        columns.update((k, None) for k in value if k is not None)
        records.append(_Record(number, value))
    return list(columns), records, len(lines)


def _storable(value: Any) -> Any:
    """`value` with lone surrogates (JSON's "\\ud800") replaced: the index and the results
    file are UTF-8, which cannot hold them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _parquet_records(path: Path, wanted: list[str]) -> tuple[list[str], list[_Record]]:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet sources need it
    except ImportError:
        raise SourceError("reading Parquet needs pyarrow: pip install 'lookalike[ingest]'"
                          ) from None
    try:
        columns = list(pq.read_schema(path).names)
        missing = [name for name in wanted if name not in columns]
        if missing:
            raise SourceError(_missing_message(path, missing, columns))
        table = pq.read_table(path, columns=list(dict.fromkeys(wanted)))
        return columns, [_Record(0, record) for record in table.to_pylist()]
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several unrelated types)
        raise SourceError(f"cannot read {path.name} as Parquet: {exc}") from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def _row(number: int, record: _Record, url_column: str, id_column: str | None,
         keep_columns: Sequence[str]) -> UrlRow:
    values = record.values
    url = _text(values.get(url_column))
    ident = _text(values.get(id_column)) if id_column else None
    meta = {name: values.get(name) for name in keep_columns}
    problem = url_problem(url)
    if None in values and isinstance(values[None], str):
        problem = values[None]  # a JSON Lines line that is not an object
    elif None in values:
        problem = f"{len(values[None])} more cells than the header has columns"
    elif not any(_text(v) for v in values.values()):
        problem = "empty row"
    return UrlRow(number, url, ident or None, meta, problem, record.line or None)
