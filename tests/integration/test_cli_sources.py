"""Where files come from: globs, hidden names, symbolic links, path lists, content sniffing."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def tree(tmp_path_factory, pics):
    """
    photos/
      a.jpg  b.png  c.jpg (a PNG inside)  d (a JPEG, no extension)  notes.txt  blob.bin
      .hidden.jpg  .secret/e.jpg
      raw/f.jpg  raw/keep/g.png
      link.jpg -> ../outside/h.jpg      linkdir -> ../outside
    outside/h.jpg
    """
    base = tmp_path_factory.mktemp("sources")
    root, outside = base / "photos", base / "outside"
    for folder in (root, outside, root / ".secret", root / "raw" / "keep"):
        folder.mkdir(parents=True)
    seed = iter(range(6000, 6100))

    def jpg():
        return pics.jpeg(pics.picture(next(seed), (160, 120)))

    def png():
        return pics.png(pics.picture(next(seed), (160, 120)))

    (root / "a.jpg").write_bytes(jpg())
    (root / "b.png").write_bytes(png())
    (root / "c.jpg").write_bytes(png())
    (root / "d").write_bytes(jpg())
    (root / "notes.txt").write_text("just text\n")
    (root / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (root / ".hidden.jpg").write_bytes(jpg())
    (root / ".secret" / "e.jpg").write_bytes(jpg())
    (root / "raw" / "f.jpg").write_bytes(jpg())
    (root / "raw" / "keep" / "g.png").write_bytes(png())
    (outside / "h.jpg").write_bytes(jpg())
    os.symlink("../outside/h.jpg", root / "link.jpg")
    os.symlink("../outside", root / "linkdir")
    return root


def _scan(cli, tmp_path, *args, stdin=None):
    index = tmp_path / "index.db"
    result = cli("scan", *args, "--index", index, "--format", "json", stdin=stdin)
    assert result.code == 0, str(result)
    return result.json(), index


def _indexed(db, index, root) -> dict[str, str]:
    """Relative path -> (status, format) of every file row."""
    rows = db(index, "SELECT f.path, f.status, c.format FROM files f "
                     "LEFT JOIN contents c ON c.id = f.content_id")
    return {os.path.relpath(os.fsdecode(p), root): (status, fmt) for p, status, fmt in rows}


def _images(db, index, root) -> set[str]:
    return {p for p, (status, _) in _indexed(db, index, root).items() if status == "ok"}


def test_default_walk(cli, db, tree, tmp_path):
    summary, index = _scan(cli, tmp_path, tree)
    assert _images(db, index, tree) == {"a.jpg", "b.png", "c.jpg", "d", "raw/f.jpg",
                                        "raw/keep/g.png"}
    assert summary["not_images"] == 2 and summary["failed"] == 0, summary


def test_recognised_by_content_not_extension(cli, db, tree, tmp_path):
    _, index = _scan(cli, tmp_path, tree)
    rows = _indexed(db, index, tree)
    assert rows["c.jpg"] == ("ok", "PNG")
    assert rows["d"] == ("ok", "JPEG")
    assert rows["notes.txt"][0] == "other" and rows["blob.bin"][0] == "other"


def test_hidden(cli, db, tree, tmp_path):
    _, index = _scan(cli, tmp_path, tree, "--hidden")
    images = _images(db, index, tree)
    assert {".hidden.jpg", ".secret/e.jpg"} <= images
    assert not any(p.startswith(".lookalike") for p in _indexed(db, index, tree))


def test_index_folder_is_never_scanned(cli, db, tree, tmp_path):
    scanned = cli("scan", tree, "--hidden", "--format", "json")  # index inside the tree
    try:
        assert scanned.code == 0, str(scanned)
        index = tree / ".lookalike" / "index.db"
        assert not any(p.startswith(".lookalike") for p in _indexed(db, index, tree))
    finally:
        for name in os.listdir(tree / ".lookalike"):
            os.remove(tree / ".lookalike" / name)
        os.rmdir(tree / ".lookalike")


def test_include_and_exclude(cli, db, tree, tmp_path):
    _, index = _scan(cli, tmp_path, tree, "--include", "*.png")
    assert _images(db, index, tree) == {"b.png", "raw/keep/g.png"}
    other = tmp_path / "other"
    other.mkdir()
    _, index = _scan(cli, other, tree, "--exclude", "raw")
    assert _images(db, index, tree) == {"a.jpg", "b.png", "c.jpg", "d"}
    third = tmp_path / "third"
    third.mkdir()
    _, index = _scan(cli, third, tree, "--include", "raw/*", "--exclude", "*.png")
    assert _images(db, index, tree) == {"raw/f.jpg"}


def test_symlinks_only_with_follow(cli, db, tree, tmp_path):
    _, index = _scan(cli, tmp_path, tree, "--follow-symlinks")
    images = _images(db, index, tree)
    assert {"link.jpg", "linkdir/h.jpg"} <= images, images
    plain = tmp_path / "plain"
    plain.mkdir()
    _, index = _scan(cli, plain, tree)
    assert not {p for p in _indexed(db, index, tree) if p.startswith("link")}


def test_from_file_and_stdin(cli, db, tree, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tree / 'a.jpg'}\n\n{tree / 'raw' / 'f.jpg'}\n")
    _, index = _scan(cli, tmp_path, "--from-file", listing)
    assert _images(db, index, tree) == {"a.jpg", "raw/f.jpg"}
    piped = tmp_path / "piped"
    piped.mkdir()
    _, index = _scan(cli, piped, "--from-file", "-",
                     stdin=f"{tree / 'b.png'}\n{tree / 'd'}\n".encode())
    assert _images(db, index, tree) == {"b.png", "d"}
    nul = tmp_path / "nul"
    nul.mkdir()
    _, index = _scan(cli, nul, "--from-file", "-", "--null",
                     stdin=b"\0".join(os.fsencode(tree / n) for n in ("c.jpg", "raw/keep/g.png")))
    assert _images(db, index, tree) == {"c.jpg", "raw/keep/g.png"}


def test_from_file_reports_missing_paths(cli, tree, tmp_path):
    result = cli("scan", "--from-file", "-", "--index", tmp_path / "i.db", "--format", "json",
                 "--strict", stdin=f"{tree / 'a.jpg'}\n{tree / 'nope.jpg'}\n".encode())
    assert result.code == 3, str(result)
    (failure,) = result.json()["failures"]
    assert failure["path"].endswith("nope.jpg")


def test_from_file_needs_index(cli, tree, tmp_path):
    result = cli("scan", "--from-file", "-", stdin=f"{tree / 'a.jpg'}\n".encode(), cwd=tmp_path)
    assert result.code == 2 and "--index" in result.stderr, str(result)


def test_usage_errors(cli, tmp_path):
    assert cli("scan", cwd=tmp_path).code == 2
    missing = cli("scan", tmp_path / "does-not-exist")
    assert missing.code == 2 and "no such file" in missing.stderr
    assert cli("scan", tmp_path, "--method", "nosuchhash").code == 2
