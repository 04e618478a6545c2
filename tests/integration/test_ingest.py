"""`lookalike ingest` against a real HTTP server on 127.0.0.1 (tests/integration/
image_server.py): every way a download goes wrong ends as a row with the right status and
reason, nothing is half-written, a re-run resumes, a killed ingest (SIGKILL) resumes to the
result of an uninterrupted one, and bad input files are clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import lookalike
from lookalike.cli.main import app
from lookalike.errors import SourceError
from lookalike.sources.download import DownloadOptions, retry_after_seconds
from lookalike.sources.ingest import file_stems, ingest
from lookalike.sources.urls import UrlRow, read_urls

from .image_server import ImageServer, image_bytes, padded

# Short timeouts and backoff keep the file fast; the defaults are for the real world.
# The server is on 127.0.0.1, which ingest refuses unless allow_private.
FAST = DownloadOptions(concurrency=8, per_host=4, timeout=0.5, total_timeout=3.0, retries=2,
                       backoff=0.01, max_backoff=0.05, max_retry_after=2.0, max_bytes=100_000,
                       allow_private=True)
SRC = str(Path(lookalike.__file__).resolve().parents[1])  # the code under test, for children


@pytest.fixture(scope="module")
def server():
    with ImageServer() as running:
        yield running


def write_csv(path: Path, rows: list[list], header=("id", "image_url", "category"),
              encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_results(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` (not in .lookalike) by name."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# name -> (server path or full URL, status, a word of the reason, permanent, attempts)
CASES = {
    "good": ("/img/1.jpg", "ok", "downloaded", False, 1),
    "good_png": ("/img/2.png", "ok", "downloaded", False, 1),
    "slow": ("/slow/3/3.jpg", "failed", "timed out", False, 3),
    "trickle": ("/trickle/3/4.jpg", "failed", "timed out", False, 3),
    "missing": ("/status/404", "failed", "HTTP 404", True, 1),
    "forbidden": ("/status/403", "failed", "HTTP 403", True, 1),
    "broken": ("/status/500", "failed", "HTTP 500", False, 3),
    "flaky": ("/flaky/1/5.jpg", "ok", "downloaded", False, 2),
    "limited": ("/ratelimit/1/6.jpg", "ok", "downloaded", False, 2),
    "redirected": ("/redirect/3/7.jpg", "ok", "downloaded", False, 1),
    "too_many_hops": ("/redirect/7/8.jpg", "failed", "too many redirects", True, 1),
    "loop": ("/loop", "failed", "redirect loop", True, 1),
    "to_ftp": ("/redirect-ftp", "failed", "ftp://", True, 1),
    "html": ("/html", "failed", "HTML page", True, 1),
    "truncated": ("/truncated/9.jpg", "failed", "truncated: the connection closed after", False,
                  3),
    "big": ("/big/200000", "failed", "too large", True, 1),
    "big_unsized": ("/big-unsized/200000", "failed", "too large", True, 1),
    "reset": ("/reset", "failed", "connection reset", False, 3),
    "refused": ("http://127.0.0.1:1/x.jpg", "failed", "connection refused", False, 3),
    "ftp": ("ftp://127.0.0.1/a.jpg", "invalid", "scheme not allowed", True, 0),
    "file": ("file:///etc/passwd", "invalid", "scheme not allowed", True, 0),
    "no_url": ("", "invalid", "no URL", True, 0),
    "no_host": ("http:///x.jpg", "invalid", "no host", True, 0),
    "same_as_good": ("/img/1.jpg", "duplicate", "same URL as row 1", False, 0),
}


def _url(server: ImageServer, where: str) -> str:
    return where if ("://" in where or not where) else server.url(where)


@pytest.fixture(scope="module")
def ingested(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest")
    source = write_csv(root / "urls.csv", [[name, _url(server, where), f"cat_{i % 3}"]
                                           for i, (name, (where, *_)) in enumerate(CASES.items())])
    summary = ingest(source, "image_url", root / "out", id_column="id",
                     keep_columns=["category"], options=FAST)
    return root, summary


def test_every_row_ends_with_the_right_status(ingested):
    root, summary = ingested
    by_id = {r.id: r for r in summary.rows}
    assert [r.id for r in summary.rows] == list(CASES)
    for name, (_, status, word, permanent, attempts) in CASES.items():
        row = by_id[name]
        assert (row.status, row.attempts) == (status, attempts), row
        assert word.lower() in row.reason.lower(), row
        if status == "failed":
            assert row.permanent == permanent, row
            assert row.path is None
    assert by_id["good_png"].path.endswith("good_png.png")  # the extension is the content's
    assert by_id["good"].path.endswith("good.jpg")
    assert by_id["same_as_good"].path == by_id["good"].path  # downloaded once
    assert by_id["missing"].http_status == 404 and by_id["good"].http_status == 200
    assert summary.statuses == {"ok": 5, "failed": 14, "invalid": 4, "duplicate": 1}
    assert summary.downloaded == 5 and summary.failed == 14


def test_nothing_is_half_written(ingested):
    root, summary = ingested
    out = root / "out"
    found = files_in(out)
    wanted = {Path(r.path).name for r in summary.rows if r.status == "ok"}
    assert set(found) == wanted  # no .part, nothing for a failed row
    for name, data in found.items():
        with Image.open(out / name) as image:
            image.load()  # whole pictures only
    assert found["good.jpg"] == image_bytes(1)
    assert found["redirected.jpg"] == image_bytes(7)


def test_retry_after_is_honoured(ingested, server):
    first, second = server.times["/ratelimit/1/6.jpg"][:2]
    assert second - first >= 0.9  # Retry-After: 1, though the backoff is 0.01 s
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None


def test_results_file_and_index_hold_every_row(ingested):
    root, summary = ingested
    results = read_results(summary.results_path)
    assert summary.results_path.parent == root / "out" / ".lookalike"
    assert [(r["id"], r["status"]) for r in results] == [(r.id, r.status) for r in summary.rows]
    assert {r["category"] for r in results} == {"cat_0", "cat_1", "cat_2"}
    conn = sqlite3.connect(summary.index_path)
    rows = dict(conn.execute("SELECT id, status FROM ingest").fetchall())
    conn.close()
    assert rows == {r.id: r.status for r in summary.rows}


def test_stats_and_report_list_the_failed_downloads(ingested, tmp_path):
    root, summary = ingested
    numbers = lookalike.stats(summary.index_path, duplicates=False)
    downloads = numbers.downloads
    assert downloads.rows == len(CASES) and downloads.status == summary.statuses
    failed = {(r.url, r.reason) for r in summary.rows if r.status in ("failed", "invalid")}
    assert {(f.url, f.reason) for f in downloads.failures} == failed
    assert sum(downloads.failure_reasons.values()) == len(failed)
    assert downloads.failure_reasons["HTTP 404 Not Found"] == 1
    assert numbers.to_dict()["downloads"]["status"]["failed"] == 14
    out = lookalike.write_report(summary.index_path, tmp_path / "report.html").path
    html = Path(out).read_text()
    assert '<section id="downloads">' in html and "scheme not allowed" in html


def test_rerun_skips_done_rows_and_retries_failed_ones(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [
        ["a", server.url("/img/11.jpg"), "x"], ["b", server.url("/status/502"), "x"],
        ["c", server.url("/status/410"), "x"], ["d", server.url("/img/12.jpg?rerun"), "x"]])
    options = DownloadOptions(allow_private=True, retries=0, backoff=0.01, timeout=1.0)
    first = ingest(source, "image_url", tmp_path / "out", id_column="id", options=options)
    assert [r.status for r in first.rows] == ["ok", "failed", "failed", "ok"]
    hits = dict(server.hits)
    (tmp_path / "out" / "d.jpg").unlink()  # a file that went missing is fetched again
    second = ingest(source, "image_url", tmp_path / "out", id_column="id", options=options)
    assert (second.downloaded, second.already) == (1, 1)
    assert server.hits["/img/11.jpg"] == hits["/img/11.jpg"]  # done: not asked again
    assert server.hits["/status/502"] == hits["/status/502"] + 1  # may pass: retried
    assert server.hits["/status/410"] == hits["/status/410"]  # gone for good: not retried
    assert [r.status for r in second.rows] == ["ok", "failed", "failed", "ok"]
    third = ingest(source, "image_url", tmp_path / "out", id_column="id", options=options,
                   retry_failed=True)
    assert server.hits["/status/410"] == hits["/status/410"] + 1
    assert third.already == 2
    # A row inserted at the top shifts the others: they are still recognised.
    write_csv(source, [["new", server.url("/img/13.jpg"), "y"], ["a", server.url("/img/11.jpg"),
                                                                 "z"],
                       ["d", server.url("/img/12.jpg?rerun"), "x"]])
    fourth = ingest(source, "image_url", tmp_path / "out", id_column="id", options=options,
                    keep_columns=["category"])
    assert (fourth.downloaded, fourth.already) == (1, 2)
    assert server.hits["/img/11.jpg"] == hits["/img/11.jpg"]
    assert [(r.row, r.id, r.status, r.meta) for r in fourth.rows] == [
        (1, "new", "ok", {"category": "y"}), (2, "a", "ok", {"category": "z"}),
        (3, "d", "ok", {"category": "x"})]
    conn = sqlite3.connect(fourth.index_path)
    assert conn.execute("SELECT row, id FROM ingest ORDER BY row").fetchall() == [
        (1, "new"), (2, "a"), (3, "d")]
    conn.close()


def test_a_file_larger_than_memory_spool_is_saved_whole(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [["big", server.url("/big/1500000"), "x"]])
    summary = ingest(source, "image_url", tmp_path / "out", id_column="id",
                     options=DownloadOptions(allow_private=True, max_bytes=4_000_000, retries=0))
    assert [(r.status, r.bytes) for r in summary.rows] == [("ok", 1_500_000)]
    assert (tmp_path / "out" / "big.jpg").read_bytes() == padded(1_500_000)
    assert set(files_in(tmp_path / "out")) == {"big.jpg"}


def test_total_timeout_leaves_no_part_file(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [["drip", server.url("/drip/1500000"), "x"]])
    options = DownloadOptions(allow_private=True, max_bytes=4_000_000, retries=0, timeout=1.0,
                              total_timeout=1.0)
    summary = ingest(source, "image_url", tmp_path / "out", id_column="id", options=options)
    assert [(r.status, r.permanent) for r in summary.rows] == [("failed", False)]
    assert "no complete answer in 1 s" in summary.rows[0].reason
    assert files_in(tmp_path / "out") == {}  # the .part of 1.5 MB was removed


def recorded_ok(index_path: Path) -> int:
    """Rows the running ingest has recorded as downloaded (read-only, beside the writer)."""
    if not index_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{index_path}?mode=ro", uri=True, timeout=0.1) as conn:
            return conn.execute("SELECT count(*) FROM ingest WHERE status='ok'").fetchone()[0]
    except sqlite3.Error:  # not created yet, or busy
        return 0


def test_killed_ingest_resumes_to_the_same_result(server, tmp_path):
    count = 60
    rows = [[f"p{n:02d}", server.url(f"/delay/0.05/{100 + n}.jpg"), f"c{n % 2}"]
            for n in range(count)]
    rows.append(["bad", server.url("/status/404"), "c0"])
    source = write_csv(tmp_path / "urls.csv", rows)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "lookalike", "ingest", str(source), "--url-column",
            "image_url", "--id-column", "id", "--keep-columns", "category", "--out", str(out),
            "--concurrency", "2", "--retries", "0", "--allow-private"]
    env = dict(os.environ, PYTHONPATH=SRC)
    env.pop("LOOKALIKE_INDEX", None)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if recorded_ok(out / ".lookalike" / "index.db") >= 10:  # killed after a flush
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the ingest ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = [p for p in out.iterdir() if p.suffix == ".jpg"]
    assert 10 <= len(partial) < count
    for path in partial:  # under its final name, a file is whole
        assert path.read_bytes() == image_bytes(100 + int(path.stem[1:]))
    resumed = subprocess.run(argv + ["--format", "json", "--strict"], env=env,
                             capture_output=True, timeout=120)
    assert resumed.returncode == 3, resumed.stderr.decode()  # the 404 row
    report = json.loads(resumed.stdout)
    assert report["already"] >= 1 and report["downloaded"] < count
    clean = ingest(source, "image_url", tmp_path / "clean", id_column="id",
                   keep_columns=["category"],
                   options=DownloadOptions(allow_private=True, retries=0))

    def essence(results_path: Path) -> list[tuple]:
        return [(r["row"], r["id"], r["url"], r["status"], r["reason"],
                 os.path.basename(r["path"]), r["bytes"], r["category"])
                for r in read_results(results_path)]

    assert essence(Path(report["results"])) == essence(clean.results_path)
    assert files_in(out) == files_in(tmp_path / "clean")  # no .part left, the same bytes
    conn = sqlite3.connect(out / ".lookalike" / "index.db")
    statuses = conn.execute("SELECT status, COUNT(*) FROM ingest GROUP BY status").fetchall()
    conn.close()
    assert dict(statuses) == {"ok": count, "failed": 1}


# --- input files ---------------------------------------------------------------------------

def test_missing_url_column_names_the_columns(tmp_path):
    source = write_csv(tmp_path / "urls.csv", [["1", "http://x/1.jpg", "a"]],
                       header=("sku", "picture", "category"))
    with pytest.raises(SourceError) as caught:
        read_urls(source, "image_url")
    message = str(caught.value)
    assert "'image_url'" in message and "'sku', 'picture', 'category'" in message
    result = CliRunner().invoke(app, ["ingest", str(source), "--url-column", "image_url",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "'picture'" in result.stderr and "image_url" in result.stderr
    with pytest.raises(SourceError, match="'brand'"):
        read_urls(source, "picture", keep_columns=["brand"])


def test_awkward_rows_are_rows_with_a_reason(tmp_path):
    long_url = "http://example.com/" + "a" * 10_000
    description = "long " * 40_000  # a 200,000-character cell: over csv's default limit
    text = ("id,image_url,note\r\n"
            "1,http://example.com/1.jpg,fine\r\n"
            "\r\n"  # a blank line is not a record
            ",,\r\n"  # an empty record is
            f"2,{long_url},long url\r\n"
            f"3,http://example.com/3.jpg,{description}\r\n"
            "4,http://example.com/4.jpg,x,surplus\r\n"
            "5, HTTPS://Example.com/5.jpg ,spaces\r\n")
    (tmp_path / "urls.csv").write_text(text, encoding="utf-8")
    rows = read_urls(tmp_path / "urls.csv", "image_url", id_column="id",
                     keep_columns=["note"]).rows
    assert [r.row for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.problem for r in rows][0] is None
    assert rows[1].problem == "empty row"
    assert "too long" in rows[2].problem
    assert rows[3].problem is None and len(rows[3].meta["note"]) > 190_000
    assert "more cells" in rows[4].problem
    assert rows[5].problem is None and rows[5].url == "HTTPS://Example.com/5.jpg"


def test_encodings(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffid,image_url,category\n1,http://x.org/1.jpg,caf\u00e9\n"
                    .encode("utf-8"))
    table = read_urls(bom, "image_url", id_column="id", keep_columns=["category"])
    assert table.columns[0] == "id" and table.warning is None
    assert table.rows[0].meta == {"category": "caf\u00e9"}
    latin = write_csv(tmp_path / "latin.csv", [["1", "http://x.org/1.jpg", "caf\u00e9"]],
                      encoding="latin-1")
    table = read_urls(latin, "image_url", keep_columns=["category"])
    assert table.encoding == "latin-1" and "not valid UTF-8" in table.warning
    assert table.rows[0].meta == {"category": "caf\u00e9"}
    with pytest.raises(SourceError, match="cannot decode"):
        read_urls(latin, "image_url", encoding="utf-8")


def test_jsonl_and_parquet_sources(tmp_path, server):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    lines = [json.dumps({"id": 1, "image_url": server.url("/img/21.jpg"), "brand": "b"}),
             "", "not json", json.dumps(["a", "list"]),
             json.dumps({"id": 2, "image_url": server.url("/img/22.png"), "brand": None})]
    (tmp_path / "urls.jsonl").write_text("\n".join(lines) + "\n")
    table = read_urls(tmp_path / "urls.jsonl", "image_url", id_column="id",
                      keep_columns=["brand"])
    assert [r.problem for r in table.rows][1:3] == ["not valid JSON (Expecting value)",
                                                     "not a JSON object"]
    assert table.rows[0].id == "1" and table.rows[0].meta == {"brand": "b"}
    pq.write_table(pa.table({"sku": ["p1", "p2"], "url": [server.url("/img/23.jpg"),
                                                          server.url("/status/404")],
                             "size": [1, 2]}), tmp_path / "urls.parquet")
    summary = ingest(tmp_path / "urls.parquet", "url", tmp_path / "out", id_column="sku",
                     keep_columns=["size"], options=FAST,
                     results_path=tmp_path / "results.parquet")
    assert [r.status for r in summary.rows] == ["ok", "failed"]
    results = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert [(r["id"], r["status"], r["http_status"], r["size"]) for r in results] == [
        ("p1", "ok", 200, 1), ("p2", "failed", 404, 2)]
    with pytest.raises(SourceError, match="'sku', 'url', 'size'"):
        read_urls(tmp_path / "urls.parquet", "image_url")


def test_file_names_are_safe_unique_and_stable():
    rows = [UrlRow(1, "http://a/1", "shoe 1"), UrlRow(2, "http://a/2", "shoe_1"),
            UrlRow(3, "http://a/3", "../../etc/passwd"), UrlRow(4, "http://a/4", ".hidden"),
            UrlRow(5, "http://a/5", "x" * 300), UrlRow(6, "http://a/6", "shoe_1"),
            UrlRow(7, "http://a/7", None)]
    stems = file_stems(rows)
    assert len(set(stems.values())) == len(rows)
    assert stems[2] == "shoe_1" and stems[1].startswith("shoe_1-")
    assert all("/" not in s and not s.startswith(".") and len(s) <= 120
               for s in stems.values())
    assert stems[7] == hashlib.sha1(b"http://a/7").hexdigest()  # no id: the URL's hash
    assert file_stems(rows) == stems


# --- metadata: scan, dupes --where, --across -----------------------------------------------

def test_kept_columns_filter_and_group_duplicates(server, tmp_path):
    rows = [["t1", server.url("/img/31.jpg"), "tops"],
            ["t2", server.url("/img/31.jpg?copy=t2"), "tops"],  # a byte copy within tops
            ["s1", server.url("/img/32.jpg"), "shoes"],
            ["t3", server.url("/img/32.jpg?copy=t3"), "tops"],  # a copy across categories
            ["s2", server.url("/img/33.jpg"), "shoes"]]
    source = write_csv(tmp_path / "urls.csv", rows)
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(source), "--url-column", "image_url",
                                 "--id-column", "id", "--keep-columns", "category",
                                 "--out", str(tmp_path / "out"), "--scan", "--workers", "1",
                                 "--format", "json", "--allow-private"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["statuses"] == {"ok": 5} and report["scan"]["scanned"] == 5
    index = str(tmp_path / "out" / ".lookalike" / "index.db")

    def groups(*args) -> list[list[str]]:
        found = runner.invoke(app, ["dupes", "--index", index, "--format", "json", *args])
        assert found.exit_code == 0, found.output
        return sorted(sorted(Path(f["path"]).stem for f in g["files"])
                      for g in json.loads(found.stdout)["groups"])

    assert groups() == [["s1", "t3"], ["t1", "t2"]]
    assert groups("--where", "category=tops") == [["t1", "t2"]]
    assert groups("--where", "category=shoes") == []
    assert groups("--across", "category") == [["s1", "t3"]]
    pairs = runner.invoke(app, ["dupes", "--index", index, "--pairs", "--format", "json",
                                "--across", "category"])
    assert [sorted(Path(p[k]).stem for k in "ab") for p in json.loads(pairs.stdout)["pairs"]
            ] == [["s1", "t3"]]
    bad = runner.invoke(app, ["dupes", "--index", index, "--where", "category"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.stderr


def test_plain_scan_after_ingest_gets_the_metadata(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [["a", server.url("/img/41.jpg"), "bags"]])
    ingest(source, "image_url", tmp_path / "out", id_column="id", keep_columns=["category"],
           options=FAST)
    lookalike.scan([tmp_path / "out"], workers=1)
    conn = sqlite3.connect(tmp_path / "out" / ".lookalike" / "index.db")
    meta = conn.execute("SELECT path, meta FROM files WHERE status='ok'").fetchall()
    conn.close()
    assert meta == [(str(tmp_path / "out" / "a.jpg"), json.dumps({"category": "bags"}))]


def test_cli_exit_code_3_with_strict_when_rows_failed(server, tmp_path):
    source = write_csv(tmp_path / "urls.csv", [["a", server.url("/img/51.jpg"), "x"],
                                               ["b", server.url("/status/404"), "x"]])
    argv = ["ingest", str(source), "--url-column", "image_url", "--id-column", "id", "--out",
            str(tmp_path / "out"), "--retries", "0", "--max-bytes", "1MB", "--allow-private"]
    finished = CliRunner().invoke(app, argv)
    assert finished.exit_code == 0, finished.output  # the run finished; the row is listed
    assert "row 2 failed" in finished.stderr
    result = CliRunner().invoke(app, argv + ["--strict"])
    assert result.exit_code == 3, result.output
    assert "ok 1" in result.stdout and "failed 1" in result.stdout
    assert "row 2 failed" in result.stderr and "HTTP 404" in result.stderr
    bad = CliRunner().invoke(app, ["ingest", str(source), "--out", str(tmp_path / "o2"),
                                   "--url-column", "image_url", "--max-bytes", "lots"])
    assert bad.exit_code == 2 and "not a size" in bad.stderr
