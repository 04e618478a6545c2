"""Fuzzing the URL-list readers (sources/urls.py): CSV/TSV, JSON Lines, plain lists and
Parquet, with random quoting, delimiters, encodings (UTF-8, UTF-8/16/32 with a byte-order
mark, latin-1, invalid bytes), NUL bytes, long lines, empty and header-only files, and
single-character corruptions. Whatever the bytes: read_urls returns rows or raises the
documented SourceError, never anything else; every row has a URL or a problem that says
why not, and can be stored (UTF-8); the rows and lines add up; and a quote that swallows
rows is an error, never rows silently gone."""

from __future__ import annotations

import codecs
import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lookalike.errors import SourceError
from lookalike.sources.urlcheck import url_problem
from lookalike.sources.urls import UrlSource, read_urls

FUZZ = settings(max_examples=150, deadline=None)
FOLDER = Path(tempfile.mkdtemp(prefix="lookalike-fuzz-"))
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "utf-16-le")

# Cells made of the characters that break CSV: quotes, delimiters, line ends, NUL, others.
awkward = st.lists(st.sampled_from(list(',;\t"\'\n\r \x00\\|#é\u2028\ufeff\ud7ffab1')
                                  + ["http://", "x" * 50]), max_size=12).map("".join)
cells = st.one_of(awkward, st.text(max_size=20),
                  st.integers(0, 300_000).map(lambda n: "y" * n))  # past csv's 128 KiB limit
urls = st.one_of(st.integers(0, 10**6).map(lambda n: f"http://h{n}.example/{n}.jpg"),
                 st.text(max_size=30), st.sampled_from([
                     "http://127.0.0.1:99999/x", "http://[::1/x", "ftp://a/b", "",
                     "http://xn--a.com/", "http://a..b/", "https://m\u00fcnchen.example/x",
                     "http://" + "a" * 9000]))


def write(name: str, data: bytes) -> Path:
    path = FOLDER / name
    path.write_bytes(data)
    return path


def read(path: Path, *args, **kwargs) -> UrlSource | None:
    """read_urls, where SourceError (with a reason) is an answer and anything else a bug."""
    try:
        table = read_urls(path, *args, **kwargs)
    except SourceError as exc:
        assert str(exc).strip(), "a SourceError without a reason"
        return None
    check_rows(table)
    return table


def check_rows(table: UrlSource) -> None:
    assert [r.row for r in table.rows] == list(range(1, len(table.rows) + 1))
    lines = [r.line for r in table.rows]
    if table.lines is not None:  # text: rows begin on distinct lines, in order, in the file
        assert lines == sorted(set(lines)) and all(1 <= n <= table.lines for n in lines)
    for row in table.rows:
        assert isinstance(row.url, str)
        if row.problem is None:
            assert url_problem(row.url) is None
        else:
            assert isinstance(row.problem, str) and row.problem.strip()
        stored = json.dumps([row.url, row.id, row.problem, row.meta], default=str)
        stored.encode("utf-8")  # the index and the results file can hold it


def csv_bytes(header: list[str], rows: list[list[str]], delimiter: str, quoting: int,
              encoding: str) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding, "replace")


@FUZZ
@given(rows=st.lists(st.tuples(urls, cells, cells), max_size=8),
       delimiter=st.sampled_from([",", "\t"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
       encoding=st.sampled_from(("utf-8", "utf-8-sig", "utf-16", "utf-32")))
@example(rows=[], delimiter=",", quoting=csv.QUOTE_MINIMAL, encoding="utf-8")  # header only
def test_valid_csv_reads_every_row(rows, delimiter, quoting, encoding):
    data = csv_bytes(["id", "url", "note"], [[n, u, c] for u, n, c in rows], delimiter,
                     quoting, encoding)
    path = write("valid.tsv" if delimiter == "\t" else "valid.csv", data)
    table = read(path, "url", id_column="id", keep_columns=["note"])
    # Only a note holding a whole row of its own (3 cells, a fetchable URL) is refused.
    if table is None:
        assert any(_row_shaped(cell, delimiter) for row in rows for cell in row)
        return
    assert len(table.rows) == len(rows)
    assert [r.url for r in table.rows] == [u.strip() for u, _, _ in rows]
    assert [r.meta["note"] for r in table.rows] == [c.strip() for _, _, c in rows]
    text = data.decode(table.encoding if table.encoding != "utf-8" else "utf-8-sig")
    assert table.lines == len(io.StringIO(text, newline="").readlines())


def _row_shaped(note: str, delimiter: str) -> bool:
    for line in io.StringIO(note, newline="").readlines()[1:]:
        parts = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
        if len(parts) >= 3 and url_problem(parts[1].strip()) is None:
            return True
    return False


@FUZZ
@given(count=st.integers(1, 12), notes=st.lists(st.text(alphabet="ab ,\"'", max_size=8),
                                                min_size=12, max_size=12),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
       edit=st.sampled_from(["insert", "delete"]), where=st.integers(0, 10**6))
def test_a_stray_or_missing_quote_never_loses_rows_silently(count, notes, quoting, edit,
                                                            where):
    wanted = [f"http://h{n}.example/{n}.jpg" for n in range(count)]
    text = csv_bytes(["id", "url", "note"], [[str(n), u, notes[n]] for n, u in
                                             enumerate(wanted)], ",", quoting,
                     "utf-8").decode()
    if edit == "insert":
        at = where % (len(text) + 1)
        text = text[:at] + '"' + text[at:]
    else:
        quotes = [i for i, c in enumerate(text) if c == '"']
        if not quotes:
            return
        at = quotes[where % len(quotes)]
        text = text[:at] + text[at + 1:]
    table = read(write("quote.csv", text.encode()), "url", id_column="id")
    if table is not None:  # read: then every row is there, or has a reason
        found = {r.url for r in table.rows}
        missing = [u for u in wanted if u not in found]
        # A quote landing in a URL or id changes that cell, but that row is still a row.
        assert len(table.rows) >= count or not missing, (text, missing)
        assert len(missing) <= 1, (text, missing)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(["csv", "tsv", "jsonl", "txt"]),
       encoding=st.sampled_from([None, "utf-8", "latin-1", "utf-16", "cp1252"]))
@example(data=b"", suffix="csv", encoding=None)
@example(data=b"\xef\xbb\xbf", suffix="csv", encoding=None)
@example(data=b"url\n", suffix="csv", encoding=None)
@example(data=codecs.BOM_UTF16_LE + b"u\x00", suffix="csv", encoding=None)  # odd: invalid
@example(data=b"url\nhttp://a.example/\x00x\n", suffix="csv", encoding=None)
@example(data=b'url\n"http://a.example/x\n' + b"y\n" * 50, suffix="csv", encoding=None)
@example(data=b'{"url": "\\ud800"}\n{"url": 1e999}\n' + b"[" * 5000, suffix="jsonl",
         encoding=None)
def test_any_bytes_give_rows_or_a_source_error(data, suffix, encoding):
    path = write(f"any.{suffix}", data)
    read(path, "url", encoding=encoding)
    read(path, "url", id_column="id", keep_columns=["note"], encoding=encoding)


@FUZZ
@given(text=st.text(max_size=300), encoding=st.sampled_from(ENCODINGS),
       suffix=st.sampled_from(["csv", "tsv", "jsonl", "txt"]),
       header=st.sampled_from(["url", "id,url", "url\tid", "", "url,url"]))
def test_any_text_in_any_encoding(text, encoding, suffix, header):
    data = (header + "\n" + text).encode(encoding, "replace")
    read(write(f"text.{suffix}", data), "url")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                           st.text(max_size=10), lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)


@FUZZ
@given(lines=st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["url", "id", "note", "x"]), json_values | urls,
                    max_size=4).map(json.dumps),
    json_values.map(json.dumps), st.text(max_size=20), st.just(""), st.just("   ")),
    max_size=10), ending=st.sampled_from(["\n", "\r\n"]), final=st.booleans())
def test_json_lines_one_row_a_line(lines, ending, final):
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    text = ending.join(lines) + (ending if final and lines else "")
    table = read(write("rows.jsonl", text.encode("utf-8", "surrogatepass")), "url",
                 id_column="id", keep_columns=["note"])
    records = [n for n, line in enumerate(lines, 1) if line.strip()]
    if table is None:  # only when no line has the URL column
        return
    assert [r.line for r in table.rows] == records  # every non-blank line is a row
    assert table.lines == text.count("\n") + (not text.endswith("\n") and text != "")


@FUZZ
@given(lines=st.lists(st.one_of(urls, st.just(""), st.just("# note"), awkward), max_size=10),
       ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_plain_lists_one_row_a_line(lines, ending):
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    text = ending.join(["http://first.example/a.jpg"] + lines) + ending
    table = read(write("list.txt", text.encode()), "url")
    assert table is not None and table.kind == "text"
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert [r.url for r in table.rows] == ["http://first.example/a.jpg"] + [
        line.strip() for line in kept]
    assert table.lines == 1 + len(lines)


@FUZZ
@given(values=st.lists(st.one_of(urls, st.none()), max_size=6),
       kind=st.sampled_from(["string", "int", "binary", "list", "large_string"]),
       cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_parquet_of_any_column_type(values, kind, cut):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    column = {"string": lambda: pa.array(values, pa.string()),
              "large_string": lambda: pa.array(values, pa.large_string()),
              "int": lambda: pa.array([None if v is None else len(v) for v in values]),
              "binary": lambda: pa.array([None if v is None else v.encode("utf-8",
                                                                           "surrogatepass")
                                          for v in values], pa.binary()),
              "list": lambda: pa.array([None if v is None else [v] for v in values])}[kind]
    try:
        array = column()
    except (pa.ArrowInvalid, UnicodeEncodeError):  # a lone surrogate: not Arrow text
        return
    buffer = io.BytesIO()
    pq.write_table(pa.table({"url": array, "id": pa.array(range(len(values)))}), buffer)
    data = buffer.getvalue() if cut is None else buffer.getvalue()[:cut]
    table = read(write("rows.parquet", data), "url", id_column="id")
    if cut is None:
        assert table is not None and len(table.rows) == len(values)
        assert all(r.line is None for r in table.rows)
