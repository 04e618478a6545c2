"""Incremental scans: unchanged files are not read again, renames are moves, deletions
vanish, and a new method adds only its own signatures."""

from __future__ import annotations

import os
import sqlite3

import pytest


def _scan(cli, root, *extra):
    result = cli("scan", root, "--format", "json", *extra)
    assert result.code == 0, str(result)
    return result.json()


def _counts(summary) -> dict:
    return {k: summary[k] for k in ("scanned", "unchanged", "moved", "failed", "not_images",
                                    "vanished")}


@pytest.fixture
def library(tmp_path, cli, pics):
    root = tmp_path / "library"
    root.mkdir()
    for seed in range(6):
        (root / f"photo_{seed}.jpg").write_bytes(pics.jpeg(pics.picture(4000 + seed)))
    (root / "photo_0_copy.jpg").write_bytes((root / "photo_0.jpg").read_bytes())
    (root / "photo_1_small.jpg").write_bytes(
        pics.jpeg(pics.picture(4001).resize((120, 90)), quality=80))
    (root / "readme.txt").write_text("not a picture")
    first = _scan(cli, root)
    assert _counts(first) == {"scanned": 8, "unchanged": 0, "moved": 0, "failed": 0,
                              "not_images": 1, "vanished": 0}
    return root


def _index(root):
    return root / ".lookalike" / "index.db"


def _dupe_names(cli, root) -> list[list[str]]:
    result = cli("dupes", "--index", _index(root), "--format", "json")
    assert result.code == 0, str(result)
    return sorted(sorted(os.path.basename(f["path"]) for f in g["files"])
                  for g in result.json()["groups"])


def test_rescan_reports_everything_unchanged(cli, library):
    again = _scan(cli, library)
    # An unchanged non-image is not read again, but still counted as not an image.
    assert _counts(again) == {"scanned": 0, "unchanged": 8, "moved": 0, "failed": 0,
                              "not_images": 1, "vanished": 0}


def test_touching_one_file_rescans_only_it(cli, library):
    path = library / "photo_3.jpg"
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))
    summary = _scan(cli, library)
    assert summary["scanned"] == 1 and summary["unchanged"] == 7, summary


def test_rewritten_file_gets_new_signatures(cli, pics, library, db):
    path = library / "photo_4.jpg"
    path.write_bytes(pics.jpeg(pics.picture(4001)))  # now shows what photo_1 shows
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))
    summary = _scan(cli, library)
    assert summary["scanned"] == 1, summary
    assert ["photo_1.jpg", "photo_1_small.jpg", "photo_4.jpg"] in _dupe_names(cli, library)


def test_rename_is_a_move_without_recomputation(cli, library, db):
    index = _index(library)
    signatures = db(index, "SELECT COUNT(*) FROM signatures")[0][0]
    contents = db(index, "SELECT COUNT(*) FROM contents")[0][0]
    # Mark the stored signatures: a recomputation would overwrite the mark.
    with sqlite3.connect(index) as conn:
        conn.execute("UPDATE signatures SET quality = quality + 0.25 WHERE content_id = "
                     "(SELECT content_id FROM files WHERE path LIKE '%photo_2.jpg')")
    marked = db(index, "SELECT method, quality FROM signatures WHERE content_id = "
                "(SELECT content_id FROM files WHERE path LIKE '%photo_2.jpg') ORDER BY method")
    os.rename(library / "photo_2.jpg", library / "renamed.jpg")
    summary = _scan(cli, library)
    assert summary["moved"] == 1, summary
    assert summary["vanished"] == 1 and summary["unchanged"] == 7, summary
    assert summary["scanned"] == 1, summary  # read to hash its bytes, not signed again
    assert db(index, "SELECT COUNT(*) FROM signatures")[0][0] == signatures
    assert db(index, "SELECT COUNT(*) FROM contents")[0][0] == contents
    assert db(index, "SELECT method, quality FROM signatures WHERE content_id = "
              "(SELECT content_id FROM files WHERE path LIKE '%renamed.jpg') "
              "ORDER BY method") == marked
    statuses = {os.path.basename(p): s for p, s in db(index, "SELECT path, status FROM files")}
    assert statuses["photo_2.jpg"] == "vanished" and statuses["renamed.jpg"] == "ok"


def test_deleted_file_vanishes_from_dupes(cli, library, db):
    assert ["photo_0.jpg", "photo_0_copy.jpg"] in _dupe_names(cli, library)
    (library / "photo_0_copy.jpg").unlink()
    summary = _scan(cli, library)
    assert summary["vanished"] == 1 and summary["scanned"] == 0, summary
    assert db(_index(library), "SELECT status FROM files WHERE path LIKE '%photo_0_copy.jpg'") \
        == [("vanished",)]
    names = _dupe_names(cli, library)
    assert not any("photo_0_copy.jpg" in g for g in names), names
    assert not any("photo_0.jpg" in g for g in names), names
    pairs = cli("dupes", "--index", _index(library), "--pairs", "--format", "json").json()
    assert not any("photo_0_copy" in p["a"] + p["b"] for p in pairs["pairs"])
    # A vanished file that comes back is live again.
    (library / "photo_0_copy.jpg").write_bytes((library / "photo_0.jpg").read_bytes())
    _scan(cli, library)
    assert ["photo_0.jpg", "photo_0_copy.jpg"] in _dupe_names(cli, library)


def test_adding_a_method_computes_only_that_method(cli, library, db):
    index = _index(library)
    before = db(index, "SELECT content_id, method, value, quality FROM signatures "
                "ORDER BY content_id, method")
    with sqlite3.connect(index) as conn:  # marks that a recomputation would overwrite
        conn.execute("UPDATE signatures SET quality = quality + 0.25")
    marked = db(index, "SELECT content_id, method, value, quality FROM signatures "
                "ORDER BY content_id, method")
    contents = db(index, "SELECT COUNT(*) FROM contents WHERE id IN "
                  "(SELECT content_id FROM files WHERE status='ok')")[0][0]
    assert cli("dupes", "--index", index, "--method", "pdq").code == 2  # not computed yet
    summary = _scan(cli, library, "--method", "pdq")
    assert summary["failed"] == 0, summary
    after = db(index, "SELECT content_id, method, value, quality FROM signatures "
               "WHERE method != 'pdq' ORDER BY content_id, method")
    assert after == marked, "existing signatures were recomputed"
    assert len(before) == len(marked)
    assert db(index, "SELECT COUNT(*) FROM signatures WHERE method='pdq'")[0][0] == contents
    result = cli("dupes", "--index", index, "--method", "pdq", "--format", "json")
    assert result.code == 0, str(result)
    groups = sorted(sorted(os.path.basename(f["path"]) for f in g["files"])
                    for g in result.json()["groups"])
    assert ["photo_1.jpg", "photo_1_small.jpg"] in groups
    assert all(g["method"] in ("pdq", "bytes") for g in result.json()["groups"])
    # The default methods are still complete: a plain re-scan has nothing to do.
    again = _scan(cli, library)
    assert again["scanned"] == 0 and again["unchanged"] == 8, again
