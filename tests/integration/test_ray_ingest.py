"""`ingest --runner ray` downloads on the cluster: the same rows, reasons, files and bytes as
a local ingest of the same CSV, downloaded by the cluster's worker processes (each batch says
which process ran it), and a batch whose worker is killed mid-way is retried by Ray without
a lost or doubled row or a half-written file.

The cluster (a head and a second node, one CPU each) is the `cluster` fixture of
ray_cluster.py; the images come from a real HTTP server on 127.0.0.1 (image_server.py).
"""

from __future__ import annotations

import csv
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the 'ray' extra is not installed "
                                  "(pip install -e '.[ray]'; make test installs it)")

from lookalike.errors import RunnerError  # noqa: E402
from lookalike.sources import download_ray  # noqa: E402
from lookalike.sources.download import DownloadOptions, Job  # noqa: E402
from lookalike.sources.download_ray import (STAGING_PREFIX, RayDownloadOptions,  # noqa: E402
                                            download_batch)
from lookalike.sources.ingest import ingest  # noqa: E402

from .image_server import ImageServer, image_bytes, padded  # noqa: E402

OPTIONS = DownloadOptions(concurrency=8, per_host=4, timeout=2.0, total_timeout=5.0,
                          retries=1, backoff=0.01, max_backoff=0.05, max_bytes=100_000,
                          allow_private=True)
BATCH = RayDownloadOptions(batch_urls=8)  # ~9 batches: both nodes usually take some
GOOD = 60


def _rows(server: ImageServer) -> list[list[str]]:
    rows = [[f"p{n:02d}", server.url(f"/img/{200 + n}.{'png' if n % 5 == 0 else 'jpg'}")]
            for n in range(GOOD)]
    rows += [["gone", server.url("/status/404")],  # permanent
             ["page", server.url("/html")],  # not an image
             ["broken", server.url("/status/500")],  # retried, then failed for now
             ["refused", "http://127.0.0.1:1/x.jpg"],  # nobody listens there
             ["hops", server.url("/redirect/2/7.jpg")],
             ["twice", server.url("/img/200.png")],  # the URL of p00: a duplicate
             ["ftp", "ftp://127.0.0.1/a.jpg"],  # invalid: never downloaded
             ["nohost", "http:///x.jpg"]]
    return rows


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The server, the CSV and a local ingest of it (what the Ray ingests must equal)."""
    root = tmp_path_factory.mktemp("ray-ingest")
    with ImageServer() as server:
        source = root / "urls.csv"
        with open(source, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["id", "url"], *_rows(server)])
        local = ingest(source, "url", root / "local", id_column="id", options=OPTIONS)
        yield server, source, local


def _essence(summary) -> list[tuple]:
    """The results file: every column but times, paths by name (the out folders differ)."""
    with open(summary.results_path, newline="", encoding="utf-8") as handle:
        return [(r["row"], r["id"], r["url"], r["status"], r["reason"],
                 os.path.basename(r["path"]), r["http_status"], r["bytes"], r["attempts"])
                for r in csv.DictReader(handle)]


def _index_rows(summary) -> list[tuple]:
    conn = sqlite3.connect(summary.index_path)
    try:
        rows = conn.execute("SELECT row, id, url, status, reason, path, http_status, bytes, "
                            "attempts, permanent FROM ingest ORDER BY row").fetchall()
    finally:
        conn.close()
    return [(*r[:5], r[5] and os.path.basename(r[5]), *r[6:]) for r in rows]


def _files(folder: Path) -> dict[str, bytes]:
    """Every entry of the out folder but the index's: files by name (a .part, a staging
    folder or a file of a failed row would show up here)."""
    return {p.name: p.read_bytes() if p.is_file() else b"<folder>"
            for p in folder.iterdir() if p.name != ".lookalike"}


def _same_as_local(ray, local) -> None:
    assert ray.statuses == local.statuses == {"ok": GOOD + 1, "failed": 4, "duplicate": 1,
                                              "invalid": 2}
    assert _essence(ray) == _essence(local)
    assert _index_rows(ray) == _index_rows(local)
    files = _files(ray.out_dir)
    assert files == _files(local.out_dir)
    assert len(files) == GOOD + 1
    assert files["p01.jpg"] == image_bytes(201) and files["hops.jpg"] == image_bytes(7)
    assert not any(name.startswith(STAGING_PREFIX) for name in os.listdir(ray.out_dir))


def test_ray_ingest_downloads_on_the_workers_as_a_local_ingest(cluster, served, tmp_path,
                                                               caplog):
    server, source, local = served
    with caplog.at_level(logging.INFO, logger="lookalike.sources.download_ray"):
        ray = ingest(source, "url", tmp_path / "out", id_column="id", options=OPTIONS,
                     runner="ray", ray_address=cluster, ray_options=BATCH)
    _same_as_local(ray, local)
    [record] = [r for r in caplog.records if hasattr(r, "workers")]
    pids = {note.pid for note in record.workers}
    assert os.getpid() not in pids  # the driver downloaded nothing itself (which of the two
    # nodes took the batches is Ray's scheduling: both usually, but not always, under load)
    assert ray.downloaded == local.downloaded == GOOD + 1

    # A re-run asks again only for the rows that may pass now (the 500, the refused one).
    hits = dict(server.hits)
    again = ingest(source, "url", tmp_path / "out", id_column="id", options=OPTIONS,
                   runner="ray", ray_address=cluster, ray_options=BATCH)
    assert (again.downloaded, again.already) == (0, GOOD + 1)
    assert server.hits["/img/201.jpg"] == hits["/img/201.jpg"]
    assert server.hits["/status/500"] == hits["/status/500"] + OPTIONS.retries + 1
    assert server.hits["/status/404"] == hits["/status/404"]
    _same_as_local(again, local)


def test_a_batch_whose_worker_is_killed_is_retried_without_lost_or_doubled_rows(
        cluster, served, tmp_path, monkeypatch):
    server, source, local = served
    marker = tmp_path / "killed"
    monkeypatch.setenv("LOOKALIKE_TEST_KILL_SHARD", str(marker))
    before = dict(server.hits)
    ray = ingest(source, "url", tmp_path / "out", id_column="id", options=OPTIONS,
                 runner="ray", ray_address=cluster, ray_options=BATCH)
    victim = int(marker.read_text())  # the batch's own worker process, killed by its pid
    assert victim != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    # Half a batch was downloaded twice (the killed attempt, then the retry): really re-run.
    twice = [n for n in range(GOOD) if server.hits[_path(n)] - before.get(_path(n), 0) == 2]
    assert 1 <= len(twice) <= BATCH.batch_urls
    _same_as_local(ray, local)
    rows = [r[0] for r in _essence(ray)]
    assert len(rows) == len(set(rows)) == len(_rows(server))


def _path(n: int) -> str:
    return f"/img/{200 + n}.{'png' if n % 5 == 0 else 'jpg'}"


def test_an_interrupted_ray_ingest_resumes_to_the_local_result(cluster, served, tmp_path):
    """Stopped on the driver after 24 rows (as Ctrl-C stops the command; the first two
    batches recorded, the third not), then run again: the rows recorded are skipped, the
    rest downloaded, and the end is a local ingest's. A staging folder as a killed run
    leaves is removed."""
    server, source, local = served

    def stop_soon(done: int, failed: int, total: int) -> None:
        if done >= 24:
            raise KeyboardInterrupt
        if done % 8 == 0:  # a batch in: the recorder writes it once 0.5 s passed
            time.sleep(0.6)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        ingest(source, "url", out, id_column="id", options=OPTIONS, runner="ray",
               ray_address=cluster, ray_options=BATCH, progress=stop_soon)
    left = out / f"{STAGING_PREFIX}killed" / "attempt"
    left.mkdir(parents=True)
    (left / ".p01.part").write_bytes(b"half")
    hits = dict(server.hits)
    again = ingest(source, "url", out, id_column="id", options=OPTIONS, runner="ray",
                   ray_address=cluster, ray_options=BATCH)
    assert again.already >= 8 and again.downloaded + again.already == GOOD + 1
    asked = sum(server.hits[_path(n)] - hits.get(_path(n), 0) for n in range(GOOD))
    assert asked <= GOOD - again.already + 1  # recorded rows not asked again (+1: "hops")
    _same_as_local(again, local)


def test_an_out_folder_a_node_does_not_see_is_a_clear_error(cluster, served, tmp_path,
                                                            monkeypatch):
    """As an --out folder that is not shared: the driver's staging folder is not where the
    tasks look (here it is never made), so every task says its node does not see it."""
    _, source, _ = served
    monkeypatch.setattr(download_ray, "_make_staging", lambda out: out / ".not-shared")
    with pytest.raises(RunnerError, match="does not see the output folder .*every node sees"):
        ingest(source, "url", tmp_path / "out", id_column="id", options=OPTIONS,
               runner="ray", ray_address=cluster, ray_options=BATCH)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".lookalike"]  # no file


def test_two_attempts_of_one_batch_at_once_both_leave_whole_files(served, tmp_path):
    """As when Ray runs a batch again while a node it gave up on still runs it: each attempt
    downloads into a folder of its own, so neither renames the other's partial file away
    (plain download() into one folder fails rows with "cannot write the file" here) and the
    files under their final names are whole. Two threads stand for the two workers."""
    server, _, _ = served
    options = DownloadOptions(allow_private=True, max_bytes=8_000_000, retries=0)
    jobs = [Job(1, server.url("/big/3000000"), "big")]  # past the 1 MB held in memory
    jobs += [Job(10 + n, server.url(f"/img/{300 + n}.jpg"), f"s{n}") for n in range(20)]
    for trial in range(3):
        out = tmp_path / str(trial)
        staging = out / f"{STAGING_PREFIX}run"
        staging.mkdir(parents=True)
        results: list = []
        attempts = [threading.Thread(target=lambda: results.append(
            download_batch(jobs, str(out), str(staging), options))) for _ in range(2)]
        for attempt in attempts:
            attempt.start()
        for attempt in attempts:
            attempt.join()
        assert len(results) == 2
        for fetched in results:
            assert [(f.key, f.ok, f.path) for f in fetched] == [
                (job.key, True, str(out / f"{job.stem}.jpg")) for job in jobs]
        assert (out / "big.jpg").read_bytes() == padded(3_000_000)
        assert all((out / f"s{n}.jpg").read_bytes() == image_bytes(300 + n) for n in range(20))
        assert sorted(os.listdir(out)) == sorted([f"{job.stem}.jpg" for job in jobs]
                                                 + [staging.name])
        assert os.listdir(staging) == []  # each attempt removed its own folder
