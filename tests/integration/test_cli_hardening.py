"""Inputs that used to hang, crash or mislead (issue 17): radii without a bound, a metadata key
pasted into SQL, an index folder that cannot be made, an index search that climbed to "/",
a bare string where a list of folders was meant, frame counts, and names the walk passed
over without a word."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from lookalike.errors import BoundError, IndexError_, IndexNotFoundError
from lookalike.index.store import find_index, open_index
from lookalike.search import mih
from lookalike.search.query import query

from .conftest import cli_env, jpeg, picture, png, run_cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three pictures, one a byte copy, one a re-encoded copy, scanned once."""
    root = tmp_path_factory.mktemp("hardening")
    (root / "a.png").write_bytes(png(picture(1)))
    (root / "a-copy.png").write_bytes(png(picture(1)))
    (root / "a.jpg").write_bytes(jpeg(picture(1), 80))
    (root / "b.png").write_bytes(png(picture(2)))
    lookalike.scan(root, workers=1)  # a bare path, not a list
    return root


def index_of(root: Path) -> Path:
    return root / ".lookalike" / "index.db"


def test_a_huge_radius_is_refused_at_once(folder):
    started = time.monotonic()
    result = run_cli("dupes", "--index", index_of(folder), "--max-distance", "100000000")
    assert result.code == 2 and "256" in result.stderr, result
    with open_index(index_of(folder)) as idx:
        with pytest.raises(BoundError, match="between 0 and 256"):
            lookalike.find_groups(idx, "phash", 10**20)
        with pytest.raises(BoundError):
            query(idx, [str(folder / "b.png")], max_distance=-1)
        with pytest.raises(BoundError, match="limit"):
            query(idx, [str(folder / "b.png")], limit=0)
    assert time.monotonic() - started < 30


def test_the_largest_radius_answers_quickly(folder):
    """A radius of the whole code (or more, inside the library) matches everything, fast."""
    started = time.monotonic()
    plan, _ = mih.best_plan(50_000, 64, 10**7)
    assert time.monotonic() - started < 1
    with open_index(index_of(folder)) as idx:
        widest = lookalike.find_pairs(idx, "phash", 256)
        whole_code = lookalike.find_pairs(idx, "phash", 64)
    assert time.monotonic() - started < 20
    assert {(m.a, m.b) for m in widest} == {(m.a, m.b) for m in whole_code}
    assert {os.path.basename(p) for m in widest for p in (m.a, m.b)} >= {"a.png", "a.jpg"}


def test_a_bare_string_is_one_folder_not_its_characters(folder):
    summary = lookalike.scan(str(folder), workers=1)
    assert summary.index_path == index_of(folder)
    assert summary.unchanged == 4 and summary.failed == 0
    with pytest.raises(BoundError, match="not a path"):
        lookalike.scan([folder, 3], workers=1)
    with pytest.raises(BoundError, match="workers"):
        lookalike.scan(folder, workers=0)


@pytest.mark.parametrize("key", ["x'", "a') UNION SELECT path FROM files --", "ключ"])
def test_metadata_keys_are_bound_not_pasted_into_sql(folder, key):
    result = run_cli("stats", "--index", index_of(folder), "--by", key, "--format", "json")
    assert result.code == 0, result
    data = result.json()
    assert data["by"] == key and data["categories"] == {"(none)": 4}


def test_a_key_sqlite_cannot_express_is_refused(folder):
    result = run_cli("stats", "--index", index_of(folder), "--by", 'a"b', "--format", "json")
    assert result.code == 2 and "double quotes" in result.stderr, result


def test_an_index_folder_that_cannot_be_made_is_exit_4(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("scan", folder, "--index", blocker / "sub" / "index.db")
    assert result.code == 4, result
    assert "cannot create the index folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_index_is_created_at_the_root():
    with pytest.raises(IndexError_, match="root folder"):
        open_index("/.lookalike/index.db", create=True)
    assert not os.path.exists("/.lookalike/index.db")


def test_the_index_search_stops_at_a_ceiling(folder, tmp_path, monkeypatch):
    inner = folder / "deeper" / "still"
    inner.mkdir(parents=True, exist_ok=True)
    assert find_index(inner) == index_of(folder).resolve()
    monkeypatch.delenv("LOOKALIKE_INDEX", raising=False)
    monkeypatch.setenv("LOOKALIKE_CEILING_DIRECTORIES", str(folder / "deeper"))
    with pytest.raises(IndexNotFoundError):
        find_index(inner)
    # The command line obeys the same ceiling.
    result = run_cli("dupes", cwd=inner,
                     env=cli_env(LOOKALIKE_CEILING_DIRECTORIES=str(folder / "deeper")))
    assert result.code == 2 and "no index found" in result.stderr, result


def test_animation_frames_are_counted(tmp_path):
    frames = [Image.new("RGB", (48, 48), (40 * i, 90, 200 - 30 * i)) for i in range(5)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "still.png")
    lookalike.scan(tmp_path, workers=1)
    with sqlite3.connect(index_of(tmp_path)) as conn:
        rows = dict(conn.execute("SELECT format, frames FROM contents"))
    assert rows == {"GIF": 5, "PNG": 1}


def test_links_and_fifos_passed_over_are_listed(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "a.png").write_bytes(png(picture(3)))
    (root / "link.png").symlink_to(root / "a.png")
    os.mkfifo(root / "pipe.png")
    result = run_cli("scan", root, "--format", "json", timeout=60)
    assert result.code == 0, result
    data = result.json()
    assert data["skipped"] == 2 and data["failed"] == 0 and data["scanned"] == 1
    reasons = {os.path.basename(s["path"]): s["reason"] for s in data["skipped_files"]}
    assert "not followed" in reasons["link.png"] and "--follow-symlinks" in reasons["link.png"]
    assert "FIFO" in reasons["pipe.png"]
    table = run_cli("scan", root, timeout=60)
    assert "skipped 2" in table.stdout and "FIFO" in table.stderr, table


def test_find_duplicates_in_one_call_writes_nothing_into_the_folder(tmp_path):
    (tmp_path / "a.png").write_bytes(png(picture(5)))
    (tmp_path / "a.jpg").write_bytes(jpeg(picture(5), 85))
    (tmp_path / "b.png").write_bytes(png(picture(6)))
    before = sorted(p.name for p in tmp_path.iterdir())
    groups = lookalike.find_duplicates(str(tmp_path), workers=1)
    assert [sorted(os.path.basename(f.path) for f in g.files) for g in groups] == \
        [["a.jpg", "a.png"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no .lookalike folder
    kept = tmp_path.parent / "kept.db"
    again = lookalike.find_duplicates(tmp_path, index_path=kept, workers=1)
    assert [len(g.files) for g in again] == [2] and kept.exists()


def test_no_index_here_names_the_ones_just_below(tmp_path, monkeypatch):
    """A command run one folder too high says where the indexes below it are."""
    monkeypatch.delenv("LOOKALIKE_INDEX", raising=False)
    top = tmp_path / "top"
    for name in ("shop", "holiday/2024"):
        (top / name).mkdir(parents=True)
        (top / name / "a.png").write_bytes(png(picture(7)))
        lookalike.scan(top / name, workers=1)
    far = top / "deep" / "er" / "still"  # three levels down: not searched
    far.mkdir(parents=True)
    (far / "a.png").write_bytes(png(picture(8)))
    lookalike.scan(far, workers=1)
    (top / "empty").mkdir()
    monkeypatch.setenv("LOOKALIKE_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(IndexNotFoundError) as caught:
        find_index(top)
    message = str(caught.value)
    assert str(top / "shop" / ".lookalike" / "index.db") in message
    assert str(top / "holiday" / "2024" / ".lookalike" / "index.db") in message
    assert "still" not in message
    result = run_cli("dupes", cwd=top, env=cli_env(LOOKALIKE_CEILING_DIRECTORIES=str(tmp_path)))
    assert result.code == 2 and "shop/.lookalike/index.db" in result.stderr, result
    with pytest.raises(IndexNotFoundError, match="lookalike scan FOLDER"):
        find_index(top / "empty")  # nothing below: the usual advice
