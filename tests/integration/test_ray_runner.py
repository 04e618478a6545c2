"""`scan --runner ray` on a real two-node Ray cluster on 127.0.0.1 gives the same index, the
same groups and the same pairs as the local process pool; a worker killed in the middle of a
shard is retried without a lost or doubled row; a re-run reuses the shards already on disk.

The cluster (a head and a second node, one CPU each) is the `cluster` fixture of
ray_cluster.py, started once per test session.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed "
                                        "(pip install -e '.[ray]'; make test installs it)")
pytest.importorskip("pyarrow", reason="the 'ray' extra (pyarrow) is not installed")

from lookalike.evaluation.transforms import EDITS  # noqa: E402
from lookalike.index.store import open_index  # noqa: E402
from lookalike.runners.ray import free_port  # noqa: E402
from lookalike.sample import synthetic_picture  # noqa: E402
from lookalike.scan import scan  # noqa: E402
from lookalike.search.dupes import find_groups, find_pairs  # noqa: E402

from .conftest import cli_env, run_cli  # noqa: E402
from .ray_cluster import RAY_ENV  # noqa: E402
from .image_server import ImageServer  # noqa: E402

ORIGINALS = 40
PLANTED = ("copy", "resize50", "mirror", "flip", "jpeg70", "png", "rot90", "grey")
SHARD_FILES = 8  # 60-odd files: 8 shards, spread over both nodes


def _collection(root: Path) -> Path:
    """40 pictures, 20 planted copies (edits of the first ones), a text file, a broken JPEG."""
    pictures = root / "pictures"
    pictures.mkdir()
    for seed in range(ORIGINALS):
        image = synthetic_picture(seed, (200, 150))
        (pictures / f"p{seed:03d}.jpg").write_bytes(image_bytes(image))
    for number in range(20):
        edit = PLANTED[number % len(PLANTED)]
        image = synthetic_picture(number, (200, 150))
        data, suffix = EDITS[edit](image, image_bytes(image))
        (pictures / f"copy{number:02d}-{edit}{suffix}").write_bytes(data)
    (pictures / "notes.txt").write_text("not a picture")
    (pictures / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return pictures


def image_bytes(image) -> bytes:
    from lookalike.evaluation.transforms import encode

    return encode(image, "JPEG", quality=90)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    return _collection(tmp_path_factory.mktemp("ray-collection"))


@pytest.fixture(scope="module")
def local_index(pictures, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("local") / "index.db"
    summary = scan([pictures], index_path=index, workers=2)
    assert summary.scanned == ORIGINALS + 20 and summary.failed == 1 and summary.other == 1
    return index


def _signatures(index: Path) -> dict[str, tuple]:
    """path -> (status, stage, every signature's method, version, params, value, quality)."""
    conn = sqlite3.connect(index)
    try:
        rows = conn.execute(
            "SELECT f.path, f.status, f.stage, s.method, s.version, s.params, s.value, "
            "s.quality FROM files f LEFT JOIN signatures s ON s.content_id = f.content_id "
            "ORDER BY f.path, s.method, s.version, s.params").fetchall()
        duplicates = conn.execute("SELECT path, COUNT(*) FROM files GROUP BY path "
                                  "HAVING COUNT(*) > 1").fetchall()
    finally:
        conn.close()
    assert not duplicates
    found: dict[str, list] = {}
    for path, status, stage, *signature in rows:
        found.setdefault(path, [status, stage]).append(tuple(signature))
    return {path: tuple(value) for path, value in found.items()}


def _answers(index: Path) -> tuple[list, set]:
    with open_index(index) as opened:
        groups = sorted(sorted(f.path for f in g.files) + [g.method, g.max_distance]
                        for g in find_groups(opened))
        pairs = {(min(m.a, m.b), max(m.a, m.b), m.method, m.distance)
                 for m in find_pairs(opened)}
    return groups, pairs


def _shards(index: Path) -> list[Path]:
    return sorted((index.parent / "shards").glob("*/shard-*.parquet"))


def _shard_paths(index: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [path for shard in _shards(index) for path in pq.read_table(shard)["path"].to_pylist()]


def test_ray_scan_gives_the_local_index_groups_and_pairs(cluster, pictures, local_index,
                                                          tmp_path):
    index = tmp_path / "ray" / "index.db"
    result = run_cli("scan", pictures, "--index", index, "--runner", "ray",
                     "--ray-address", cluster, "--shard-files", str(SHARD_FILES),
                     "--format", "json", env=cli_env(**RAY_ENV), timeout=180)
    assert result.code == 0, result  # the broken JPEG is listed; only --strict makes it 3
    assert result.json()["scanned"] == ORIGINALS + 20 and result.json()["failed"] == 1

    expected = _signatures(local_index)
    assert len(expected) == ORIGINALS + 22
    assert _signatures(index) == expected
    groups, pairs = _answers(index)
    local_groups, local_pairs = _answers(local_index)
    assert len(local_groups) >= 15  # the planted copies are found ...
    assert groups == local_groups  # ... and the same way
    assert pairs == local_pairs
    shard_paths = _shard_paths(index)
    assert len(_shards(index)) == 8
    assert sorted(shard_paths) == sorted(expected)  # every file once, none twice


def test_a_worker_killed_mid_shard_is_retried_without_lost_or_doubled_rows(
        cluster, pictures, local_index, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setenv("LOOKALIKE_TEST_KILL_SHARD", str(marker))
    index = tmp_path / "ray" / "index.db"
    summary = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                   shard_files=SHARD_FILES)
    victim = int(marker.read_text())  # the task's own worker process, killed by its pid
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)
    assert summary.scanned == ORIGINALS + 20 and summary.failed == 1
    assert _signatures(index) == _signatures(local_index)
    shard_paths = _shard_paths(index)
    assert len(shard_paths) == len(set(shard_paths)) == ORIGINALS + 22
    assert _answers(index) == _answers(local_index)


def test_a_rerun_reuses_the_shards_on_disk(cluster, pictures, local_index, tmp_path, caplog):
    index = tmp_path / "ray" / "index.db"
    scan([pictures], index_path=index, runner="ray", ray_address=cluster,
         shard_files=SHARD_FILES)
    shards = _shards(index)
    assert len(shards) == 8
    # As a job killed after six shards and before it merged anything: two shards missing,
    # no index.
    for lost in shards[2:4]:
        lost.unlink()
    for file in index.parent.glob("index.db*"):
        file.unlink()
    before = {shard: shard.stat().st_mtime_ns for shard in shards if shard.exists()}
    with caplog.at_level(logging.INFO, logger="lookalike.runners.ray"):
        summary = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                       shard_files=SHARD_FILES)
    assert "2 computed, 6 reused, 0 already in the index" in caplog.text
    assert {shard: shard.stat().st_mtime_ns for shard in before} == before  # not rewritten
    assert all(shard.exists() for shard in shards)
    assert summary.scanned == ORIGINALS + 20
    assert _signatures(index) == _signatures(local_index)
    assert _answers(index) == _answers(local_index)



# --- the self-join on the cluster (search/distributed.py) -----------------------------------

SKEW = 40  # one picture at many sizes and qualities: one huge bucket in every block


@pytest.fixture(scope="module")
def search_index(tmp_path_factory) -> Path:
    """A few hundred pictures, locally scanned: 120 originals, 60 planted copies (every
    simple edit), SKEW near-identical versions of one picture and 10 plain grey ones."""
    root = tmp_path_factory.mktemp("ray-search")
    pictures = root / "pictures"
    pictures.mkdir()
    edits = sorted(EDITS)
    for seed in range(120):
        image = synthetic_picture(1000 + seed, (96, 72))
        (pictures / f"p{seed:03d}.jpg").write_bytes(image_bytes(image))
        if seed < 60:
            edit = edits[seed % len(edits)]
            data, suffix = EDITS[edit](image, image_bytes(image))
            (pictures / f"copy{seed:03d}-{edit}{suffix}").write_bytes(data)
    from lookalike.evaluation.transforms import encode

    skewed = synthetic_picture(5000, (200, 150))
    for k in range(SKEW):
        resized = skewed.resize((100 + 3 * k, 75 + 2 * k))
        (pictures / f"skew{k:02d}.jpg").write_bytes(encode(resized, "JPEG",
                                                           quality=60 + k % 35))
    from PIL import Image

    for k in range(10):
        plain = Image.new("RGB", (64 + k, 48 + k), (120 + k, 120 + k, 120 + k))
        (pictures / f"plain{k:02d}.png").write_bytes(encode(plain, "PNG"))
    index = root / "index.db"
    summary = scan([pictures], index_path=index, workers=2)
    assert summary.scanned == 180 + SKEW + 10
    return index


def test_dupes_on_ray_gives_the_local_pairs_and_groups_exactly(cluster, search_index,
                                                               monkeypatch):
    from lookalike.search import distributed

    planned, radii, real_plan = [], [], distributed.plan_tasks  # radii: of each join's plan

    def plan(*args, **kwargs):  # the driver's plan, recorded
        tasks = real_plan(*args, **kwargs)
        planned.extend(tasks)
        radii.append(max(args[1].radii))
        return tasks

    monkeypatch.setattr(distributed, "plan_tasks", plan)
    # small tasks (a few hundred pictures are one task's work otherwise), so that the
    # skewed family's bucket is more than one task's share
    monkeypatch.setattr(distributed, "MIN_TASK_WORK", 1000)
    monkeypatch.setattr(distributed, "TASKS_PER_CPU", 16)
    with open_index(search_index) as opened:
        local = (find_pairs(opened), find_groups(opened),
                 find_pairs(opened, method="phash", max_distance=12),
                 find_groups(opened, linkage="connected", max_distance=10))
        assert not planned
        ray.init(address=cluster, log_to_driver=False, configure_logging=False)
        try:
            on_ray = (find_pairs(opened, runner="ray", ray_address=cluster),
                      find_groups(opened, runner="ray", ray_address=cluster),
                      find_pairs(opened, method="phash", max_distance=12, runner="ray"),
                      find_groups(opened, linkage="connected", max_distance=10,
                                  runner="ray"))
            workers = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        finally:
            ray.shutdown()
    assert len(workers) == 2
    assert any(t.parts > 1 for t in planned)  # the skewed bucket was split across tasks
    assert min(radii) == 0 and max(radii) > 0  # exact blocks at r = 8, probed at 10 and 12
    pairs, groups = local[0], local[1]
    assert len(pairs) >= 60 + SKEW * (SKEW - 1) // 2 - 50  # copies and the skewed family
    assert max(len(g.files) for g in groups) >= SKEW - 5
    assert {m.transform for m in local[2]} >= {"identity", "mirror", "rot90"}
    for ours, theirs in zip(on_ray, local):
        assert ours == theirs  # pairs, distances, transforms, scores, groups and their order


def test_dupes_cli_with_runner_ray_prints_the_local_groups(cluster, local_index):
    results = [run_cli("dupes", "--index", local_index, "--format", "json", *extra,
                       env=cli_env(**RAY_ENV), timeout=120)
               for extra in ([], ["--runner", "ray", "--ray-address", cluster])]
    for result in results:
        assert result.code == 0, result
    assert len(results[0].json()["groups"]) >= 15
    assert results[1].json() == results[0].json()


# --- shards alone (no cluster) ----------------------------------------------------------------

def test_shard_records_round_trip_and_a_half_written_shard_is_not_read(tmp_path):
    from lookalike.runners.shards import from_table, read_shard, to_table, write_shard
    from lookalike.types import Failure, FileRef, Scanned, Signature

    records = [
        Scanned(FileRef("/a.jpg", 10, 1), b"\x01" * 16, "image", 20, 10, "JPEG", "RGB",
                (Signature("phash", 2, "p=1", b"\x00\xff" * 32, 87.5),), frames=3),
        Scanned(FileRef("/b.txt", 3, 2), b"\x02" * 16, "other"),
        Scanned(FileRef("/c.jpg", 0, 3), b"", "image",
                failure=Failure("/c.jpg", "decode", "truncated file")),
    ]
    assert from_table(to_table(records)) == records
    path = tmp_path / "shards" / "shard-00000.parquet"
    write_shard(to_table(records), path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    assert read_shard(path, [r.ref for r in records[::-1]]) == records[::-1]
    assert read_shard(path, [FileRef("/d.jpg", 1, 1)]) is None  # not in it: compute again
    path.write_bytes(path.read_bytes()[:100])  # as a writer killed in the middle would leave
    assert read_shard(path, [r.ref for r in records]) is None


# shard ids (cut from the walk as it streams): tests/unit/test_shard_stream.py


def test_an_address_nobody_answers_at_is_a_clear_error_at_once(pictures, tmp_path):
    port = free_port()  # free: nothing listens there
    started = time.monotonic()
    result = run_cli("scan", pictures, "--index", tmp_path / "index.db", "--runner", "ray",
                     "--ray-address", f"127.0.0.1:{port}", env=cli_env(**RAY_ENV), timeout=60)
    assert result.code == 4, result  # could not run (errors.RunnerError)
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in result.stderr
    assert time.monotonic() - started < 30  # not Ray's minutes of retrying


def test_ingest_scans_on_ray_as_it_scans_locally(cluster, tmp_path):
    """`ingest --scan --runner ray`: the downloaded pictures are indexed on the cluster, with
    the same rows and signatures as an ingest scanned by the local pool."""
    from lookalike.sources.download import DownloadOptions
    from lookalike.sources.ingest import ingest

    source = tmp_path / "urls.csv"
    options = DownloadOptions(retries=0, timeout=5.0, allow_private=True)
    with ImageServer() as server:
        rows = [f"p{seed},{server.url(f'/img/{seed}.jpg')}" for seed in range(12)]
        rows += [f"again,{server.url('/img/3.jpg')}", f"gone,{server.url('/status/404')}"]
        source.write_text("id,url\n" + "\n".join(rows) + "\n")
        local = ingest(source, "url", tmp_path / "local", id_column="id", options=options,
                       scan=True, workers=1)
        ray = ingest(source, "url", tmp_path / "ray", id_column="id", options=options,
                     scan=True, runner="ray", ray_address=cluster)
    assert ray.statuses == local.statuses == {"ok": 12, "duplicate": 1, "failed": 1}
    assert ray.scan.scanned == local.scan.scanned == 12

    def by_name(index) -> dict[str, tuple]:
        return {Path(path).name: value for path, value in _signatures(index).items()}

    assert by_name(ray.index_path) == by_name(local.index_path)
    assert len(_shards(Path(ray.index_path))) >= 1  # the scan really went through shards

