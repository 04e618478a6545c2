"""Scanning URLs (sources/remote.py) against a real S3 API: moto's server, started here on
127.0.0.1 and stopped at the end, holding a generated collection with planted copies.

`scan s3://bucket/prefix` gives the signatures and groups of a local scan of the same
pictures; an object that cannot be read (archived to Glacier) is a failure with its reason
while the run goes on; a re-scan reads only what changed; the report, the web API and the
actions cope with URL paths (actions refuse them); a URL without its package installed is a
clear error naming the extra. The S3 endpoint reaches s3fs through the standard
AWS_ENDPOINT_URL variable, as the scan's subprocesses and Ray workers see it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lookalike.actions.apply import apply_plan
from lookalike.collection import Collection
from lookalike.errors import SourceError
from lookalike.evaluation.transforms import EDITS, encode
from lookalike.index.store import open_index
from lookalike.report.html import write_report
from lookalike.sample import synthetic_picture
from lookalike.scan import scan
from lookalike.search.dupes import find_groups
from lookalike.sources.folders import WalkOptions, walk
from lookalike.sources.remote import _stamp, as_root, is_remote
from lookalike.types import Failure, FileRef

from .conftest import cli_env, run_cli

ORIGINALS = 16
PLANTED = ("copy", "resize50", "mirror", "jpeg70", "png", "rot90", "grey", "flip")
BUCKET, PREFIX = "photos", "set"
ROOT = f"s3://{BUCKET}/{PREFIX}"
COLD = "cold.jpg"  # a byte copy of p000.jpg archived to Glacier: listed, but not readable


def _jpeg(image) -> bytes:
    return encode(image, "JPEG", quality=90)


def _collection(folder: Path) -> Path:
    """16 pictures, 8 planted edits of the first ones, a text file and a broken JPEG."""
    folder.mkdir()
    for seed in range(ORIGINALS):
        (folder / f"p{seed:03d}.jpg").write_bytes(_jpeg(synthetic_picture(seed, (160, 120))))
    for number, edit in enumerate(PLANTED):
        image = synthetic_picture(number, (160, 120))
        data, suffix = EDITS[edit](image, _jpeg(image))
        (folder / "copies" / f"c{number:02d}-{edit}{suffix}").parent.mkdir(exist_ok=True)
        (folder / "copies" / f"c{number:02d}-{edit}{suffix}").write_bytes(data)
    (folder / "notes.txt").write_text("not a picture")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


@dataclass
class S3:
    env: dict  # AWS_* variables: fake credentials and the server's endpoint
    fs: object  # an s3fs file system on the server
    pictures: Path  # the local copy of what the bucket holds under PREFIX (less COLD)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 holding the collection under s3://photos/set/."""
    s3fs = pytest.importorskip("s3fs", reason="the 'remote' extra is not installed "
                                              "(pip install -e '.[remote]'; make test does)")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed "
                                                              "(the 'test' extra)")
    home = tmp_path_factory.mktemp("aws")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(home / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials")}
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    try:
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # none made for another endpoint
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        pictures = _collection(tmp_path_factory.mktemp("s3-local") / "pictures")
        for path in sorted(pictures.rglob("*")):
            if path.is_file():
                fs.put_file(str(path), f"{BUCKET}/{PREFIX}/{path.relative_to(pictures)}")
        fs.call_s3("put_object", Bucket=BUCKET, Key=f"{PREFIX}/{COLD}",
                   Body=(pictures / "p000.jpg").read_bytes(), StorageClass="GLACIER")
        yield S3(env, fs, pictures)
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()
        patch.undo()


@pytest.fixture(scope="module")
def local_index(s3, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("local-index") / "index.db"
    scan([s3.pictures], index_path=index, workers=1)
    return index


@pytest.fixture(scope="module")
def remote_scan(s3, tmp_path_factory) -> tuple[Path, dict]:
    """`lookalike scan s3://photos/set` (the console script, 2 worker processes)."""
    index = tmp_path_factory.mktemp("remote-index") / "index.db"
    result = run_cli("scan", ROOT, "--index", index, "--workers", "2", "--format", "json",
                     env=cli_env(**s3.env), timeout=120)
    assert result.code == 0, result
    return index, result.json()


def _by_name(index: Path, root: str) -> dict[str, tuple]:
    """name under `root` -> (status, stage, content hash, every signature), from the index."""
    conn = sqlite3.connect(index)
    try:
        rows = conn.execute(
            "SELECT f.path, f.status, f.stage, c.hash, s.method, s.version, s.params, s.value "
            "FROM files f LEFT JOIN contents c ON c.id = f.content_id "
            "LEFT JOIN signatures s ON s.content_id = f.content_id "
            "ORDER BY f.path, s.method, s.version, s.params").fetchall()
    finally:
        conn.close()
    found: dict[str, list] = {}
    for path, status, stage, content, *signature in rows:
        assert path.startswith(root + "/"), path
        found.setdefault(path[len(root) + 1:], [status, stage, content]).append(
            tuple(signature))
    return {name: tuple(value) for name, value in found.items()}


def _groups(index: Path, root: str) -> list:
    with open_index(index) as opened:
        return sorted(sorted(f.path[len(root) + 1:] for f in g.files) + [g.method, g.max_distance]
                      for g in find_groups(opened))


# --- S3 through the console script --------------------------------------------------------

def test_s3_scan_gives_the_local_signatures_and_groups(s3, local_index, remote_scan):
    index, summary = remote_scan
    total = ORIGINALS + len(PLANTED)
    assert (summary["scanned"], summary["not_images"], summary["failed"]) == (total, 1, 2)
    failures = {f["path"]: f for f in summary["failures"]}
    assert failures[f"{ROOT}/broken.jpg"]["stage"] == "decode"
    cold = failures[f"{ROOT}/{COLD}"]
    assert cold["stage"] == "read" and "access denied" in cold["reason"]
    assert "storage class" in cold["reason"]  # S3's own reason: InvalidObjectState

    remote = _by_name(index, ROOT)
    local = _by_name(local_index, str(s3.pictures))
    assert remote.pop(COLD)[:2] == ("failed", "read")
    assert remote == local  # the same bytes read: the same hashes and signatures per file
    groups = _groups(index, ROOT)
    assert groups == _groups(local_index, str(s3.pictures))
    assert len(groups) == len(PLANTED)  # each planted edit found with its original
    assert all(not any(COLD in name for name in g[:-2]) for g in groups)


def test_a_rescan_reads_only_new_and_changed_objects(s3, tmp_path):
    root = f"s3://{BUCKET}/changes"
    for seed in range(4):
        s3.fs.pipe(f"{BUCKET}/changes/q{seed}.jpg", _jpeg(synthetic_picture(40 + seed)))
    index = tmp_path / "index.db"
    assert scan([root], index_path=index, workers=1).scanned == 4
    again = scan([root], index_path=index, workers=1)
    assert (again.scanned, again.unchanged) == (0, 4)  # the same sizes and stamps
    s3.fs.pipe(f"{BUCKET}/changes/q0.jpg", _jpeg(synthetic_picture(99, (64, 48))))
    s3.fs.rm(f"{BUCKET}/changes/q1.jpg")
    s3.fs.pipe(f"{BUCKET}/changes/q9.jpg", _jpeg(synthetic_picture(49)))
    changed = scan([root], index_path=index, workers=1)
    assert (changed.scanned, changed.unchanged, changed.vanished) == (2, 2, 1)


def test_a_listing_that_fails_is_a_failure_and_marks_nothing_vanished(s3, tmp_path):
    """... and a list of URLs (--from-file) is read as a list of paths is."""
    index = tmp_path / "index.db"
    scan([f"s3://{BUCKET}/changes"], index_path=index, workers=1)
    summary = scan([f"s3://{BUCKET}/changes", "s3://no-such-bucket/x"], index_path=index,
                   workers=1)
    (failure,) = summary.failures
    assert failure.stage == "walk" and "bucket does not exist" in failure.reason
    assert summary.vanished == 0
    with pytest.raises(SourceError, match=r"give an index path \(--index\)"):
        scan([ROOT])
    listed = scan(paths=[f"{ROOT}/p001.jpg", f"{ROOT}/gone.jpg"], index_path=index, workers=1)
    assert listed.scanned == 1 and [(f.path, f.reason) for f in listed.failures] == [
        (f"{ROOT}/gone.jpg", "cannot stat: no such object")]


# --- what reads the index afterwards -------------------------------------------------------

def test_report_makes_thumbnails_of_objects(remote_scan, tmp_path):
    index, _ = remote_scan
    result = write_report(index, tmp_path / "report.html")
    assert result.groups_shown == len(PLANTED)
    assert result.thumbs.failed == 0 and result.thumbs.made == 2 * len(PLANTED) - 1  # copy
    assert "s3://photos/set/p000.jpg" in (tmp_path / "report.html").read_text()


def test_the_web_api_serves_objects_through_the_same_reader(s3, remote_scan):
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from fastapi.testclient import TestClient

    from lookalike.service.app import create_app

    index, _ = remote_scan
    with open_index(index) as opened:
        (file_id,) = [row[0] for row in opened.conn.execute(
            "SELECT id FROM files WHERE path = ?", (f"{ROOT}/p003.jpg",))]
    with TestClient(create_app(index), base_url="http://127.0.0.1") as client:
        content = client.get(f"/files/{file_id}/content")
        assert content.status_code == 200
        assert content.content == (s3.pictures / "p003.jpg").read_bytes()
        thumbnail = client.get(f"/files/{file_id}/thumbnail")
        assert thumbnail.status_code == 200
        assert thumbnail.content[:4] in (b"RIFF", b"\xff\xd8\xff\xe0")  # WebP or JPEG
        groups = client.get("/groups").json()
        assert groups and all(f["present"] for g in groups["groups"] for f in g["files"])
        assert client.get("/folders").status_code == 200


def test_actions_refuse_remote_files_and_change_nothing(s3, remote_scan, tmp_path):
    index, _ = remote_scan
    before = sorted(s3.fs.find(f"{BUCKET}/{PREFIX}"))
    plan = Collection.open(index).plan(action="quarantine")
    assert plan.groups
    report = apply_plan(plan, execute=True, quarantine_dir=tmp_path / "quarantine")
    assert report.outcomes and {o.status for o in report.outcomes} == {"skipped"}
    assert all("remote file" in o.reason for o in report.outcomes)
    assert sorted(s3.fs.find(f"{BUCKET}/{PREFIX}")) == before


# --- on the Ray cluster ---------------------------------------------------------------------

def test_ray_runner_scans_s3_as_the_local_runner_does(s3, local_index, request, tmp_path):
    import ray

    cluster = request.getfixturevalue("cluster")  # after s3: no cluster started to skip
    # The cluster's workers were started before this server: the job hands them its address
    # (as `ray job submit --runtime-env-json` would); the scan joins this job.
    ray.init(address=cluster, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": s3.env})
    try:
        index = tmp_path / "index.db"
        summary = scan([ROOT], index_path=index, runner="ray", ray_address=cluster,
                       shard_files=8)
    finally:
        ray.shutdown()
    assert (summary.scanned, summary.failed) == (ORIGINALS + len(PLANTED), 2)
    remote = _by_name(index, ROOT)
    assert remote.pop(COLD)[:2] == ("failed", "read")
    assert remote == _by_name(local_index, str(s3.pictures))
    assert _groups(index, ROOT) == _groups(local_index, str(s3.pictures))


def test_ray_shards_at_a_url_are_written_and_searched_there(s3, local_index, request,
                                                           tmp_path):
    """--shard-dir s3://...: the tasks write their shards as objects, the walk file lists
    them, and the shards searched where they lie give the local index's groups and pairs."""
    import ray

    from lookalike.search.dupes import find_pairs
    from lookalike.search.in_shards import search_shards

    cluster = request.getfixturevalue("cluster")
    shards = f"s3://{BUCKET}/shards"
    ray.init(address=cluster, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": s3.env})
    try:
        summary = scan([s3.pictures], index_path=tmp_path / "index.db", runner="ray",
                       ray_address=cluster, shard_files=8, shard_dir=shards, shards_only=True)
        found = search_shards(shards, runner="ray", ray_address=cluster)
    finally:
        ray.shutdown()
    assert (summary.scanned, summary.failed, summary.other) == (ORIGINALS + len(PLANTED), 1, 1)
    objects = sorted(p.rsplit("/", 1)[-1] for p in s3.fs.find(f"{BUCKET}/shards"))
    assert objects[-1] == "walk.tsv" and len(objects) == 5  # 26 files: 4 shards, no marker
    assert all(name.startswith("shard-") and name.endswith(".parquet") for name in objects[:4])
    with open_index(local_index) as opened:
        assert found.groups() == find_groups(opened) and found.groups()
        assert found.pairs() == find_pairs(opened)
    assert found.shards == 4 and not found.outside


# --- without the extra, and without a server ----------------------------------------------

def test_a_url_without_its_package_names_the_extra(tmp_path):
    """The command line, in a process where s3fs cannot be imported; then the library,
    without s3fs and without fsspec itself."""
    code = ("import sys; sys.modules['s3fs'] = None; sys.argv = ['lookalike', 'scan', %r, "
            "'--index', %r]; from lookalike.cli.main import main; main()"
            % (ROOT, str(tmp_path / "index.db")))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=cli_env())
    assert result.returncode != 0
    assert "s3:// paths need s3fs: pip install 'lookalike[remote]'" in result.stderr
    assert not (tmp_path / "index.db").exists()  # refused before any work
    for blocked in ("s3fs", "fsspec"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(sys.modules, blocked, None)
            if blocked == "s3fs" and "fsspec.registry" in sys.modules:  # its loaded classes
                patch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
            with pytest.raises(SourceError, match=rf"s3:// paths need {blocked}: pip install "
                                                  r"'lookalike\[remote\]'"):
                scan([ROOT], index_path=tmp_path / "index.db")


def test_memory_urls_walk_with_the_folder_rules_and_file_urls_are_local(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    for name in ("a.jpg", "sub/b.png", ".hidden/c.jpg", "sub/.d.jpg", "skip/e.jpg"):
        memory.pipe(f"/lk-walk/{name}", name.encode())
    try:
        found = [r.path for r in walk(["memory://lk-walk/"], WalkOptions(exclude=("skip",)))]
        assert found == ["memory:///lk-walk/a.jpg", "memory:///lk-walk/sub/b.png"]
        hidden = [r.path for r in walk(["memory://lk-walk"], WalkOptions(hidden=True,
                                                                        include=("*.jpg",)))]
        assert hidden == ["memory:///lk-walk/.hidden/c.jpg", "memory:///lk-walk/a.jpg",
                          "memory:///lk-walk/skip/e.jpg", "memory:///lk-walk/sub/.d.jpg"]
        (item,) = walk(["memory://lk-walk/a.jpg"])
        assert isinstance(item, FileRef) and item.size == 5 and item.mtime_ns > 0
    finally:
        memory.rm("/lk-walk", recursive=True)
    assert as_root(f"file://{tmp_path}/x") == f"{tmp_path}/x" and not is_remote("file:///x")
    assert is_remote("s3://b/k") and not is_remote("/a/s3://b") and not is_remote("C:\\x")
    with pytest.raises(Exception, match="must not carry a password"):
        as_root("s3://key:secret@bucket/x")
    assert isinstance(next(walk(["memory://lk-nothing-here"]), None), (Failure, type(None)))


def test_stamps_from_times_and_version_tags():
    when = datetime(2026, 12, 5, 10, 0, 1, 250000, tzinfo=timezone.utc)
    assert _stamp({"LastModified": when}) == int(when.timestamp()) * 10**9 + 250_000_000
    assert _stamp({"updated": "2026-12-05T10:00:01.250Z"}) == _stamp({"LastModified": when})
    tagged = _stamp({"ETag": '"abc"'})
    assert tagged == _stamp({"ETag": '"abc"'}) != _stamp({"ETag": '"abd"'}) and tagged > 0
    assert _stamp({}) == 0
