"""A folder of broken, hostile and awkward files: every bad one is reported with a clear
reason, the scan goes on, the good ones are indexed, and the exit code says 'partial'."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import LOOKALIKE, Result, cli_env

BAD = ["empty.jpg", "truncated.jpg", "notes.jpg", "page.jpg", "bomb.png", "sub/up", "self.jpg"]


@pytest.fixture(scope="module")
def scanned(cli, bad_corpus):
    result = cli("scan", bad_corpus.root, "--follow-symlinks", "--format", "json", timeout=60)
    return result


def _relative(corpus, path: str) -> str:
    return os.path.relpath(path, corpus.root)


def _failures(corpus, result) -> dict[str, dict]:
    return {_relative(corpus, f["path"]): f for f in result.json()["failures"]}


def test_scan_that_finished_exits_0_and_3_with_strict(cli, bad_corpus, scanned, tmp_path):
    """The exit-code policy (README, "Exit codes"): unreadable files are listed, and only
    --strict turns them into exit 3 (for scripts that must stop)."""
    assert scanned.code == 0, str(scanned)
    assert len(scanned.json()["failures"]) == len(bad_corpus.bad)
    strict = cli("scan", bad_corpus.root, "--follow-symlinks", "--format", "json", "--strict",
                 timeout=60)
    assert strict.code == 3, str(strict)
    assert strict.json()["failures"] == scanned.json()["failures"]
    config = tmp_path / "lookalike.toml"
    config.write_text("[scan]\nstrict = true\n")
    from_file = cli("scan", bad_corpus.root, "--follow-symlinks", "--format", "json",
                    timeout=60, env=cli_env(LOOKALIKE_CONFIG=str(config)))
    assert from_file.code == 3, str(from_file)


def test_every_bad_file_is_listed_and_nothing_else(bad_corpus, scanned):
    failures = _failures(bad_corpus, scanned)
    assert sorted(failures) == sorted(bad_corpus.bad), failures
    summary = scanned.json()
    assert summary["failed"] == len(bad_corpus.bad)


@pytest.mark.parametrize("name", BAD)
def test_failure_reason(name, bad_corpus, scanned):
    failure = _failures(bad_corpus, scanned).get(name)
    assert failure is not None, f"{name} not reported"
    assert set(failure) == {"path", "stage", "reason"}
    assert bad_corpus.bad[name].lower() in failure["reason"].lower(), failure


def test_text_file_reason_says_text(bad_corpus, scanned):
    reason = _failures(bad_corpus, scanned)["notes.jpg"]["reason"]
    assert "not an image" in reason and "text" in reason


def test_good_files_are_indexed(bad_corpus, scanned, db):
    index = bad_corpus.root / ".lookalike" / "index.db"
    rows = {os.fsdecode(p) if isinstance(p, bytes) else p: (status, fmt)
            for p, status, fmt in db(index, "SELECT f.path, f.status, c.format FROM files f "
                                     "LEFT JOIN contents c ON c.id = f.content_id")}
    for name in bad_corpus.good:
        path = os.path.join(bad_corpus.root, name)
        assert rows.get(path, (None,))[0] == "ok", f"{name}: {rows.get(path)}"
    assert rows[str(bad_corpus.root / "really_a_png.jpg")][1] == "PNG"
    assert rows[str(bad_corpus.root / "no_extension")][1] == "JPEG"
    assert rows[str(bad_corpus.root / "grey16.png")][1] == "PNG"
    assert scanned.json()["scanned"] == len(bad_corpus.good)


def test_non_utf8_name_is_scanned_and_kept_as_raw_bytes(cli, bad_corpus, scanned, db):
    raw = os.fsencode(str(bad_corpus.root)) + b"/caf\xe9.jpg"
    index = bad_corpus.root / ".lookalike" / "index.db"
    assert db(index, "SELECT status FROM files WHERE path = ?", (raw,)) == [("ok",)]
    table = cli("dupes", "--index", index)
    assert "caf\\xe9.jpg" in table.stdout, table.stdout


def _groups(cli, corpus):
    result = cli("dupes", "--index", corpus.root / ".lookalike" / "index.db", "--format", "json")
    assert result.code == 0, str(result)
    return result.json()


def test_dupes_groups_the_good_files(cli, bad_corpus, scanned):
    data = _groups(cli, bad_corpus)
    found = [sorted(_relative(bad_corpus, f["path"]) for f in g["files"]) for g in data["groups"]]
    expected: dict[str, list[str]] = {}
    for name, picture in bad_corpus.good.items():
        expected.setdefault(picture, []).append(name)
    display = {os.fsdecode(b"caf\xe9.jpg"): "caf\\xe9.jpg"}  # how dupes prints that name
    for picture, names in expected.items():
        if len(names) < 2:
            continue
        want = sorted(display.get(n, n) for n in names)
        assert want in found, f"{picture}: {want} not a group; groups: {found}"
    failed = {_relative(bad_corpus, f["path"]) for f in data["failures"]}
    assert failed == set(bad_corpus.bad)


def test_heic_is_read(bad_corpus, scanned):
    if not bad_corpus.heic:
        pytest.skip("pillow_heif cannot write HEIC here (no encoder)")
    assert "photo.heic" not in _failures(bad_corpus, scanned)


def test_rescan_reports_the_same_failures_and_reads_nothing(cli, bad_corpus, scanned):
    again = cli("scan", bad_corpus.root, "--follow-symlinks", "--format", "json", "--strict",
                timeout=60)
    assert again.code == 3, str(again)
    assert sorted(_failures(bad_corpus, again)) == sorted(bad_corpus.bad)
    assert again.json()["scanned"] == 0


def test_symlink_loop_without_follow_is_not_entered(cli, bad_corpus, scanned, tmp_path):
    result = cli("scan", bad_corpus.root, "--index", tmp_path / "i.db", "--format", "json",
                 timeout=60)
    failures = _failures(bad_corpus, result)
    assert "sub/up" not in failures and "self.jpg" not in failures


def test_table_summary_lists_failures_on_stderr(cli, bad_corpus, scanned, tmp_path):
    result = cli("scan", bad_corpus.root, "--index", tmp_path / "i.db", timeout=60)
    assert result.code == 0
    assert "failed 5" in result.stdout, result.stdout
    assert "empty.jpg" in result.stderr and "truncated" in result.stderr


def test_png_bomb_is_refused_before_decoding(cli, pics, tmp_path):
    """The size cap must hold even when the decoder is given room: a small PNG claiming
    30000 x 30000 RGB pixels is refused as 'too many pixels' without allocating them."""
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "huge.png").write_bytes(pics.png_bomb(30_000, 30_000))
    (folder / "fine.jpg").write_bytes(pics.jpeg(pics.picture(1)))
    limit = 1_500_000_000  # bytes of address space: far less than 30000 * 30000 * 3
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = cli("scan", folder, "--workers", "1", "--format", "json", "--strict", timeout=60,
                 preexec_fn=cap)
    assert result.code == 3, str(result)
    failures = result.json()["failures"]
    assert len(failures) == 1 and "too many pixels" in failures[0]["reason"], failures


def test_fifo_given_as_argument_does_not_hang(cli, pics, tmp_path):
    """`lookalike scan pipe.jpg` on a named pipe must report it, not block on open()."""
    folder = tmp_path / "fifo"
    folder.mkdir()
    os.mkfifo(folder / "pipe.jpg")
    (folder / "fine.jpg").write_bytes(pics.jpeg(pics.picture(1)))
    inside = cli("scan", folder, "--format", "json", timeout=30)  # a folder walk skips it
    assert inside.code == 0, str(inside)
    try:
        result = cli("scan", folder / "pipe.jpg", "--index", tmp_path / "i.db", "--format",
                     "json", "--strict", timeout=3)
    except subprocess.TimeoutExpired:
        pytest.fail("scan of a named pipe hung (open() blocks waiting for a writer)")
    assert result.code == 3, str(result)
    assert "not a regular file" in result.json()["failures"][0]["reason"]


def test_unreadable_file_is_reported_as_permission_denied(cli, pics):
    """chmod 000 stops reads only for a non-root user: as root, run the scan as 'nobody'."""
    folder = Path(tempfile.mkdtemp(prefix="lookalike-perm-"))
    try:
        os.chmod(folder, 0o777)
        (folder / "fine.jpg").write_bytes(pics.jpeg(pics.picture(1)))
        secret = folder / "secret.jpg"
        secret.write_bytes(pics.jpeg(pics.picture(2)))
        os.chmod(secret, 0)
        command = [str(LOOKALIKE), "scan", str(folder), "--format", "json", "--strict"]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: cannot drop privileges")
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        elif os.access(secret, os.R_OK):
            pytest.skip("permissions do not stop reads here")
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env=cli_env())
        result = Result(command, proc.returncode, proc.stdout, proc.stderr)
        if result.code not in (0, 3):
            pytest.skip(f"scan cannot run as another user here: {result}")
        assert result.code == 3, str(result)
        (failure,) = result.json()["failures"]
        assert failure["path"] == str(secret)
        assert "permission denied" in failure["reason"].lower(), failure
        assert result.json()["scanned"] == 1
    finally:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        shutil.rmtree(folder, ignore_errors=True)


def test_messages_to_a_pipe_are_not_wrapped(tmp_path):
    """stderr that is not a terminal gets each message on one line, however long its path,
    so `grep` and log files see whole paths."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / ("and-another-one-" * 4)
    deep.mkdir(parents=True)
    broken = deep / ("broken-picture-with-a-long-name-" * 2 + ".jpg")
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    done = subprocess.run([os.fspath(LOOKALIKE), "scan", str(tmp_path), "--workers", "1",
                           "--index", str(tmp_path.parent / "wrap.db")],
                          capture_output=True, text=True, env=cli_env(COLUMNS="80"),
                          timeout=60)
    assert len(str(broken)) > 200
    assert any(str(broken) in line for line in done.stderr.splitlines()), done.stderr
