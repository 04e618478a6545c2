"""`lookalike query`: files that were never scanned, looked up in an existing index."""

from __future__ import annotations

import csv
import io
import os

import pytest

TRANSFORMS = ["identity", "rot90", "rot180", "rot270",
              "mirror", "mirror+rot90", "mirror+rot180", "mirror+rot270"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, cli, pics):
    root = tmp_path_factory.mktemp("query") / "library"
    root.mkdir()
    for seed in range(12):
        (root / f"photo_{seed:02d}.jpg").write_bytes(pics.jpeg(pics.picture(3000 + seed)))
    result = cli("scan", root)
    assert result.code == 0, str(result)
    return root


def _query(cli, indexed, *files, fmt="json"):
    return cli("query", *files, "--index", indexed / ".lookalike" / "index.db", "--format", fmt)


@pytest.fixture(scope="module")
def turned_queries(cli, pics, indexed, tmp_path_factory):
    """One `query` call: new_<transform>.jpg is the indexed photo_05 turned by <transform> and
    re-encoded; new_unrelated.png shows a picture that is not in the index."""
    folder = tmp_path_factory.mktemp("queries")
    files = []
    for transform in TRANSFORMS:
        path = folder / f"new_{transform}.jpg"
        path.write_bytes(pics.jpeg(pics.dihedral(pics.picture(3005), transform), quality=80))
        files.append(path)
    unrelated = folder / "new_unrelated.png"
    unrelated.write_bytes(pics.png(pics.picture(9999)))
    files.append(unrelated)
    result = _query(cli, indexed, *files)
    assert result.code == 0, str(result)
    queries = result.json()["queries"]
    assert [q["path"] for q in queries] == [str(f) for f in files]
    return {os.path.basename(q["path"]): q for q in queries}


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_query_finds_reencoded_turned_copy_with_its_transform(transform, turned_queries):
    query = turned_queries[f"new_{transform}.jpg"]
    assert query["error"] is None
    assert query["matches"], f"no match for the {transform} copy"
    best = query["matches"][0]
    assert os.path.basename(best["path"]) == "photo_05.jpg", query
    assert best["transform"] == transform, query
    assert set(best) == {"path", "method", "distance", "score", "transform", "evidence"}
    assert best["evidence"] == best["method"]  # the fast mode: the method decided it
    assert 0 < best["score"] <= 1.0
    assert len(query["matches"]) == 1, query


def test_query_unrelated_picture_has_no_match(turned_queries):
    query = turned_queries["new_unrelated.png"]
    assert query["matches"] == [] and query["error"] is None, query


def test_query_byte_copy_matches_by_bytes(cli, indexed, tmp_path):
    copy = tmp_path / "copy.jpg"
    copy.write_bytes((indexed / "photo_03.jpg").read_bytes())
    match = _query(cli, indexed, copy).json()["queries"][0]["matches"][0]
    assert os.path.basename(match["path"]) == "photo_03.jpg"
    assert match["method"] == "bytes" and match["distance"] == 0 and match["score"] == 1.0
    assert match["transform"] == "identity"


def test_query_unreadable_file_is_reported(cli, indexed, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"definitely not a jpeg")
    missing = tmp_path / "missing.jpg"
    result = _query(cli, indexed, broken, missing)
    assert result.code == 3, str(result)
    queries = result.json()["queries"]
    assert all(q["error"] and q["matches"] == [] for q in queries), queries
    assert "not an image" in queries[0]["error"]


def test_query_table_and_csv(cli, pics, indexed, tmp_path):
    turned = tmp_path / "turned.jpg"
    turned.write_bytes(pics.jpeg(pics.dihedral(pics.picture(3007), "rot270"), quality=75))
    other = tmp_path / "other.jpg"
    other.write_bytes(pics.jpeg(pics.picture(8888)))
    table = _query(cli, indexed, turned, other, fmt="table")
    assert table.code == 0, str(table)
    # the table says the turn in words; CSV and JSON keep the transform's name (below)
    assert "photo_07.jpg" in table.stdout and "rotated 90° clockwise" in table.stdout
    assert "no match" in table.stdout
    rows = list(csv.DictReader(io.StringIO(_query(cli, indexed, turned, other, fmt="csv").stdout)))
    assert [(os.path.basename(r["query"]), os.path.basename(r["match"]), r["transform"])
            for r in rows] == [("turned.jpg", "photo_07.jpg", "rot270")]


def test_query_nearest_lists_the_closest_pictures_whatever_their_distance(cli, pics, indexed,
                                                                           tmp_path):
    """An unrelated picture has no match, but --nearest 3 still names the 3 closest by pHash,
    closest first; a turned copy of photo_05 comes first at a small distance."""
    unrelated = tmp_path / "unrelated.png"
    unrelated.write_bytes(pics.png(pics.picture(4242)))
    turned = tmp_path / "turned.jpg"
    turned.write_bytes(pics.jpeg(pics.dihedral(pics.picture(3005), "rot90"), quality=80))
    result = cli("query", unrelated, turned, "--index", indexed / ".lookalike" / "index.db",
                 "--format", "json", "--nearest", "3")
    assert result.code == 0, str(result)
    far, near = result.json()["queries"]
    assert len(far["matches"]) == 3 and len(near["matches"]) == 3
    assert all(m["method"] == "phash" for m in far["matches"])
    distances = [m["distance"] for m in far["matches"]]
    assert distances == sorted(distances) and distances[0] > 8  # beyond the pHash radius
    assert os.path.basename(near["matches"][0]["path"]) == "photo_05.jpg"
    assert near["matches"][0]["transform"] == "rot90" and near["matches"][0]["distance"] <= 8
