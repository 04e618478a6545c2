"""Planted duplicates of every kind are found; look-alike distinct pictures are not grouped;
the JSON/CSV output contracts of `dupes` hold."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest
from PIL import Image
from lookalike.evaluation.transforms import EDITS

ORIENTATION = {"mirror": "mirror", "flip": "mirror+rot180", "rot90": "rot90",
               "rot180": "rot180", "rot270": "rot270"}
INVERSE = {"identity": "identity", "rot90": "rot270", "rot180": "rot180", "rot270": "rot90",
           "mirror": "mirror", "mirror+rot90": "mirror+rot90",
           "mirror+rot180": "mirror+rot180", "mirror+rot270": "mirror+rot270"}
TRANSFORMS = set(INVERSE)


def _groups(cli, collection, *extra):
    result = cli("dupes", "--index", collection.index, "--format", "json", *extra)
    assert result.code == 0, str(result)
    return result.json()["groups"]


def _names(group) -> list[str]:
    return [os.path.basename(f["path"]) for f in group["files"]]


@pytest.fixture(scope="module")
def auto_groups(cli, planted):
    return _groups(cli, planted)


@pytest.fixture(scope="module")
def pairs(cli, planted):
    result = cli("dupes", "--index", planted.index, "--pairs", "--format", "json")
    assert result.code == 0, str(result)
    return result.json()


@pytest.mark.parametrize("kind", list(EDITS))
def test_planted_duplicate_is_grouped_with_its_original(kind, planted, auto_groups):
    original, copy = planted.planted[kind]
    holding = [g for g in auto_groups if original in _names(g)]
    assert holding, f"{original} is in no group; groups: {[_names(g) for g in auto_groups]}"
    assert copy in _names(holding[0]), f"{kind}: {copy} not grouped with {original}: " \
        f"{_names(holding[0])}"


@pytest.mark.parametrize("extra", [(), ("--method", "phash", "--max-distance", "10")],
                         ids=["auto", "phash-10"])
def test_no_group_mixes_two_pictures(extra, cli, planted):
    for group in _groups(cli, planted, *extra):
        sources = {planted.source_of[name] for name in _names(group)}
        assert len(sources) == 1, f"group mixes different pictures: {_names(group)}"


def test_hard_negatives_are_in_no_group(planted, auto_groups):
    grouped = {name for g in auto_groups for name in _names(g)}
    wrongly = sorted(set(planted.negatives) & grouped)
    assert not wrongly, f"distinct pictures grouped: " \
        f"{[_names(g) for g in auto_groups if set(_names(g)) & set(wrongly)]}"


def test_auto_finds_exactly_the_planted_groups(planted, auto_groups):
    found = sorted(sorted(_names(g)) for g in auto_groups)
    expected = sorted(sorted(pair) for pair in planted.planted.values())
    assert found == expected


def test_group_files_report_size_and_dimensions(planted, auto_groups):
    for group in auto_groups:
        for f in group["files"]:
            path = planted.root / os.path.basename(f["path"])
            assert f["bytes"] == path.stat().st_size
            assert f["width"] > 0 and f["height"] > 0
    resized = next(g for g in auto_groups if "dup_resize50.jpg" in _names(g))
    sizes = {os.path.basename(f["path"]): (f["width"], f["height"]) for f in resized["files"]}
    assert sizes == {"src_resize50.jpg": (240, 180), "dup_resize50.jpg": (120, 90)}


def test_group_method_is_weakest_evidence(planted, auto_groups):
    by_kind = {planted.source_of[_names(g)[0]]: g for g in auto_groups}
    assert by_kind["copy"]["method"] == "bytes"
    assert by_kind["metadata"]["method"] == "pixels"
    assert by_kind["png"]["method"] == "pixels"
    assert by_kind["jpeg70"]["method"] not in ("bytes", "pixels")


def test_json_groups_contract_with_method_and_max_distance(cli, planted):
    result = cli("dupes", "--index", planted.index, "--method", "phash", "--max-distance", "10",
                 "--format", "json")
    assert result.code == 0, str(result)
    data = result.json()
    assert set(data) == {"groups", "failures"}
    assert data["failures"] == []
    assert data["groups"], "no groups"
    for group in data["groups"]:
        assert set(group) == {"files", "method", "max_distance", "linkage", "diameter",
                              "weakest", "fully_linked"}
        assert isinstance(group["max_distance"], int) and 0 <= group["max_distance"] <= 10
        assert group["max_distance"] <= group["diameter"] and group["linkage"] == "complete"
        assert group["fully_linked"]  # complete linkage: every two members matched
        paths = {f["path"] for f in group["files"]}
        if group["weakest"] is not None:  # None only for a group of byte copies
            weakest = group["weakest"]
            assert {weakest["a"], weakest["b"]} <= paths
            assert weakest["distance"] == group["max_distance"]
        assert len(group["files"]) >= 2
        for f in group["files"]:
            assert set(f) == {"path", "width", "height", "bytes"}
            assert os.path.isabs(f["path"])
            assert all(isinstance(f[k], int) for k in ("width", "height", "bytes"))


def test_method_phash_still_groups_byte_copies(cli, planted):
    """Byte-identical files have identical pHashes: any method must group them."""
    groups = _groups(cli, planted, "--method", "phash")
    assert any(set(planted.planted["copy"]) <= set(_names(g)) for g in groups), \
        f"byte copies missing under --method phash: {[_names(g) for g in groups]}"


def test_pairs_json_contract(planted, pairs):
    data = pairs
    assert set(data) == {"pairs"}
    found = data["pairs"]
    assert len(found) >= len(planted.planted)
    for p in found:
        assert {"a", "b", "method", "distance", "score"} <= set(p)
        assert p["a"] != p["b"]
        assert isinstance(p["distance"], int) and p["distance"] >= 0
        assert 0.0 <= p["score"] <= 1.0
        assert p.get("transform", "identity") in TRANSFORMS
    scores = [p["score"] for p in found]
    assert scores == sorted(scores, reverse=True), "pairs not most-alike first"
    copy = next(p for p in found
                if {os.path.basename(p["a"]), os.path.basename(p["b"])}
                == set(planted.planted["copy"]))
    assert copy["score"] == 1.0 and copy["distance"] == 0 and copy["method"] == "bytes"
    # Higher score = more alike: within one method, a larger distance never scores higher.
    for method in {p["method"] for p in found}:
        same = sorted((p["distance"], -p["score"]) for p in found if p["method"] == method)
        assert [s for _, s in same] == sorted(s for _, s in same)
    pairs_of = {frozenset((os.path.basename(p["a"]), os.path.basename(p["b"]))) for p in found}
    for kind, pair in planted.planted.items():
        assert frozenset(pair) in pairs_of, f"{kind} pair missing from --pairs"


@pytest.mark.parametrize("kind", list(ORIENTATION))
def test_pairs_transform_turns_a_into_b(kind, planted, pairs):
    original, copy = planted.planted[kind]
    pair = next(p for p in pairs["pairs"]
                if {os.path.basename(p["a"]), os.path.basename(p["b"])} == {original, copy})
    expected = ORIENTATION[kind]
    if os.path.basename(pair["a"]) == copy:
        expected = INVERSE[expected]
    assert pair["transform"] == expected, pair


def test_groups_csv_parses(cli, planted, auto_groups):
    result = cli("dupes", "--index", planted.index, "--format", "csv")
    assert result.code == 0, str(result)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {"group", "path", "width", "height", "bytes", "method",
                     "max_distance", "diameter"} <= set(rows[0])
    assert len({r["group"] for r in rows}) == len(auto_groups)
    assert len(rows) == sum(len(g["files"]) for g in auto_groups)
    assert {r["path"] for r in rows} == {f["path"] for g in auto_groups for f in g["files"]}


def test_pairs_csv_parses(cli, planted, pairs):
    as_json = pairs
    result = cli("dupes", "--index", planted.index, "--pairs", "--format", "csv")
    assert result.code == 0, str(result)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(as_json["pairs"])
    assert {"a", "b", "method", "distance", "score"} <= set(rows[0])
    assert [(r["a"], r["b"]) for r in rows] == [(p["a"], p["b"]) for p in as_json["pairs"]]


def test_table_output_lists_groups(cli, planted, auto_groups):
    result = cli("dupes", "--index", planted.index)
    assert result.code == 0, str(result)
    assert f"{len(auto_groups)} groups" in result.stdout
    for original, copy in planted.planted.values():
        assert original in result.stdout and copy in result.stdout


def test_fail_on_dupes_exit_codes(cli, planted, pics, tmp_path):
    assert cli("dupes", "--index", planted.index, "--fail-on-dupes").code == 1
    assert cli("dupes", "--index", planted.index, "--fail-on-dupes", "--format", "json").code == 1
    distinct = tmp_path / "distinct"
    distinct.mkdir()
    for seed in range(4):
        (distinct / f"p{seed}.jpg").write_bytes(pics.jpeg(pics.picture(700 + seed)))
    assert cli("scan", distinct).code == 0
    result = cli("dupes", "--index", distinct / ".lookalike" / "index.db", "--fail-on-dupes",
                 "--format", "json")
    assert result.code == 0, str(result)
    assert result.json()["groups"] == []


def test_dupes_finds_index_from_working_folder(cli, planted, auto_groups):
    result = cli("dupes", "--format", "json", cwd=planted.root)
    assert result.code == 0, str(result)
    assert len(result.json()["groups"]) == len(auto_groups)
    result = cli("dupes", "--format", "json", cwd=planted.root.parent,
                 env={**os.environ, "LOOKALIKE_INDEX": str(planted.index)})
    assert result.code == 0, str(result)


def test_dupes_without_index_is_a_usage_error(cli, tmp_path):
    result = cli("dupes", cwd=tmp_path)
    assert result.code == 2, str(result)
    assert "no index" in result.stderr


def test_unknown_method_is_a_usage_error(cli, planted):
    result = cli("dupes", "--index", planted.index, "--method", "nosuchhash")
    assert result.code == 2, str(result)
    assert "unknown method" in result.stderr


def test_json_paths_are_not_rewritten(cli, pics, tmp_path):
    """Paths with ':name:' or '[markup]' must come out of JSON exactly as on disk."""
    folder = tmp_path / "odd"
    folder.mkdir()
    data = pics.jpeg(pics.picture(42))
    names = ["holiday :smile: beach.jpg", "[bold]copy.jpg"]
    for name in names:
        (folder / name).write_bytes(data)
    assert cli("scan", folder).code == 0
    result = cli("dupes", "--index", folder / ".lookalike" / "index.db", "--format", "json")
    paths = sorted(os.path.basename(f["path"]) for g in result.json()["groups"]
                   for f in g["files"])
    assert paths == sorted(names)


def test_sample_scan_dupes_flow(cli, tmp_path):
    """What `make run` does: build the sample, scan it, print its planted groups."""
    dest = tmp_path / "sample"
    result = cli("sample", dest, "--count", "16")
    assert result.code == 0, str(result)
    manifest = json.loads((dest / "manifest.json").read_text())
    result = cli("scan", dest)
    assert result.code == 0, str(result)
    assert "scanned" in result.stdout
    table = cli("dupes", "--index", dest / ".lookalike" / "index.db")
    assert table.code == 0, str(table)
    planted_ids = {m["picture"] for m in manifest if m["edit"] != "original"}
    assert f"{len(planted_ids)} groups" in table.stdout, table.stdout
    groups = cli("dupes", "--index", dest / ".lookalike" / "index.db", "--format", "json").json()
    picture_of = {m["file"]: m["picture"] for m in manifest}
    found = sorted(sorted(os.path.basename(f["path"]) for f in g["files"])
                   for g in groups["groups"])
    expected = sorted(sorted(m["file"] for m in manifest if m["picture"] == pid)
                      for pid in planted_ids)
    assert found == expected
    for g in groups["groups"]:
        assert len({picture_of[os.path.basename(f["path"])] for f in g["files"]}) == 1


def _chain_folder(pics, root):
    """A chain of pictures, each a small step from the last: its two ends look unlike.

    Steps of a few pixels' shift move the pHash by a few bits each, so with a wide radius
    every neighbour pair matches but the ends do not.
    """
    root.mkdir()
    base = np.asarray(pics.picture(777, (320, 240)))
    for step in range(6):
        shifted = np.roll(base, shift=step * 14, axis=1)
        (root / f"step_{step}.png").write_bytes(pics.png(Image.fromarray(shifted)))
    return root


@pytest.mark.parametrize("linkage", ["connected", "complete", "star"])
def test_linkage_choice_holds_its_promise(cli, pics, tmp_path, linkage):
    root = _chain_folder(pics, tmp_path / "chain")
    assert cli("scan", root).code == 0
    index = root / ".lookalike" / "index.db"
    pairs = cli("dupes", "--index", index, "--method", "phash", "-d", "14", "--pairs",
                "--format", "json").json()["pairs"]
    found = {frozenset((os.path.basename(p["a"]), os.path.basename(p["b"]))) for p in pairs}
    result = cli("dupes", "--index", index, "--method", "phash", "-d", "14",
                 "--linkage", linkage, "--format", "json")
    assert result.code == 0, str(result)
    groups = [{os.path.basename(f["path"]) for f in g["files"]} for g in result.json()["groups"]]
    assert len(found) < 15, "the chain's ends should not match"  # 6 files, 15 possible pairs
    for g in groups:
        g_pairs = {frozenset((x, y)) for x in g for y in g if x < y}
        if linkage == "complete":
            assert g_pairs <= found
        if linkage == "star":
            assert any(all(frozenset((c, x)) in found for x in g - {c}) for c in g)
    if linkage == "connected":
        assert len(groups) == 1 and len(groups[0]) == 6
    else:
        assert all(len(g) < 6 for g in groups)


def test_unknown_linkage_is_a_usage_error(cli, planted):
    result = cli("dupes", "--index", planted.index, "--linkage", "average")
    assert result.code == 2 and "linkage" in result.stderr
