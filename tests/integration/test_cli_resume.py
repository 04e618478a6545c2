"""A scan killed with SIGKILL part-way leaves a consistent index; running it again finishes
the job, and the result is the index an uninterrupted scan builds. One writer at a time."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import LOOKALIKE, cli_env

COUNT = 300


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pics):
    root = tmp_path_factory.mktemp("resume") / "many"
    root.mkdir()
    for number in range(COUNT):
        (root / f"img_{number:03d}.jpg").write_bytes(
            pics.jpeg(pics.picture(20_000 + number, (160, 120))))
    for number in range(0, 40, 4):  # some duplicates too
        (root / f"img_{number:03d}_copy.jpg").write_bytes(
            (root / f"img_{number:03d}.jpg").read_bytes())
    return root


def _rows(index: Path, sql: str) -> list[tuple]:
    try:
        conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _count_files(index: Path) -> int:
    if not index.exists():
        return 0
    rows = _rows(index, "SELECT COUNT(*) FROM files")
    return rows[0][0] if rows else 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _start_and_kill(folder: Path, index: Path, *, whole_group: bool) -> tuple[int, list[int]]:
    """Start a scan, SIGKILL it once some files are committed; (files then, orphans)."""
    proc = subprocess.Popen([str(LOOKALIKE), "scan", str(folder), "--index", str(index),
                             "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=cli_env(), start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid) or workers
            if _count_files(index) > 0:
                break
            time.sleep(0.003)
        workers = _children(proc.pid) or workers
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return _count_files(index), [w for w in workers if _alive(w)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _snapshot(index: Path):
    files = _rows(index, "SELECT f.path, f.size, f.mtime_ns, c.hash, f.status, f.stage, "
                         "f.error FROM files f LEFT JOIN contents c ON c.id = f.content_id "
                         "ORDER BY f.path")
    signatures = _rows(index, "SELECT c.hash, s.method, s.version, s.params, s.value, "
                              "s.quality FROM signatures s JOIN contents c "
                              "ON c.id = s.content_id ORDER BY c.hash, s.method")
    contents = _rows(index, "SELECT hash, bytes, width, height, format, mode FROM contents "
                            "ORDER BY hash")
    return files, signatures, contents


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory, cli):
    index = tmp_path_factory.mktemp("reference") / "index.db"
    result = cli("scan", folder, "--index", index, "--workers", "2", "--format", "json")
    assert result.code == 0, str(result)
    assert result.json()["scanned"] == COUNT + 10
    return _snapshot(index)


def _resume_and_compare(cli, folder, index, reference, committed):
    assert 0 < committed < COUNT + 10, f"kill came too late: {committed} files committed"
    result = cli("scan", folder, "--index", index, "--workers", "2", "--format", "json")
    assert result.code == 0, str(result)
    summary = result.json()
    assert summary["unchanged"] >= committed, summary  # finished work is not redone
    assert summary["scanned"] + summary["unchanged"] == COUNT + 10, summary
    files, signatures, contents = _snapshot(index)
    assert len(files) == COUNT + 10
    assert files == reference[0]
    assert contents == reference[2]
    assert signatures == reference[1]
    runs = _rows(index, "SELECT id, status FROM runs ORDER BY id")
    assert [s for _, s in runs] == ["interrupted", "done"], runs
    again = cli("scan", folder, "--index", index, "--format", "json").json()
    assert again["unchanged"] == COUNT + 10 and again["scanned"] == 0, again


def test_kill_process_group_then_resume_matches_uninterrupted_scan(folder, reference, cli,
                                                                   tmp_path):
    index = tmp_path / "killed.db"
    committed, orphans = _start_and_kill(folder, index, whole_group=True)
    _kill(orphans)
    _resume_and_compare(cli, folder, index, reference, committed)


def test_kill_main_process_only_then_resume(folder, reference, cli, tmp_path):
    """`kill -9 PID` of the scan the user started: its worker processes must not keep the
    index locked (or live on) after it died."""
    index = tmp_path / "killed.db"
    committed, orphans = _start_and_kill(folder, index, whole_group=False)
    try:
        deadline = time.monotonic() + 2
        while orphans and time.monotonic() < deadline:
            time.sleep(0.1)
            orphans = [pid for pid in orphans if _alive(pid)]
        still_alive = list(orphans)
        result = cli("scan", folder, "--index", index, "--workers", "2", "--format", "json")
        assert "index is busy" not in result.stderr, \
            f"worker processes {still_alive} of the killed scan still hold the lock:\n{result}"
        assert not still_alive, f"worker processes {still_alive} outlived the killed scan"
    finally:
        _kill(orphans)
    assert result.code == 0, str(result)
    files, signatures, contents = _snapshot(index)
    assert (files, signatures, contents) == reference


def test_second_writer_is_refused_while_the_lock_is_held(cli, folder, tmp_path):
    index = tmp_path / "busy.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from lookalike.index.store import open_index\n"
         "index = open_index(sys.argv[1], create=True)\n"
         "index.acquire()\n"
         "print('locked', flush=True)\n"
         "time.sleep(60)\n", str(index)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = cli("scan", folder, "--index", index, "--format", "json")
        assert result.code == 4, str(result)
        assert "index is busy" in result.stderr
        assert str(holder.pid) in result.stderr  # names who holds it
        assert time.monotonic() - started < 10, "a busy index must be refused at once"
        # Readers are not blocked by the writer lock.
        assert cli("dupes", "--index", index, "--format", "json").code == 0
    finally:
        holder.kill()
        holder.wait()
    result = cli("scan", folder, "--index", index, "--format", "json")
    assert result.code == 0, str(result)


def test_second_scan_is_refused_while_a_scan_runs(cli, folder, tmp_path):
    index = tmp_path / "running.db"
    slow = "phash,dhash,whash,pdq,pdq-ref,phash256,dhash256,ahash256,whash256"
    first = subprocess.Popen([str(LOOKALIKE), "scan", str(folder), "--index", str(index),
                              "--workers", "1", "--method", slow], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=cli_env())
    try:
        deadline = time.monotonic() + 30
        while not _rows(index, "SELECT 1 FROM runs WHERE status='running'") \
                and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.005)
        if first.poll() is not None:
            pytest.skip("the first scan finished before the second could start")
        result = cli("scan", folder, "--index", index)
        if first.poll() is not None and result.code == 0:
            pytest.skip("the first scan finished before the second took the lock")
        assert result.code == 4, str(result)
        assert "index is busy" in result.stderr
    finally:
        first.wait(timeout=120)
    assert first.returncode == 0
