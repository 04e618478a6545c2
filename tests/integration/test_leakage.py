"""`lookalike cross` and `lookalike split` on real pictures and real scans: planted copies
across train/test/val are reported and within-set duplicates are not; the split keeps every
duplicate group whole, meets its ratios and depends only on the seed; materialising it
leaves the user's files as they were."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from lookalike.index.store import open_index
from lookalike.search.dupes import find_groups
from lookalike.search.leakage import cross_pairs, outer_roots, set_of

from .conftest import dihedral, jpeg, picture, png

TRAIN_PICTURES = 10
TEST_PICTURES = 8


def _resized(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, cli):
    """train/, test/ and val/ of distinct pictures, with copies planted across the sets
    (test: a byte copy, a resized JPEG and a mirror of train pictures; val: a byte copy of a
    test picture) and duplicates within train and within test that cross must not report."""
    root = tmp_path_factory.mktemp("leakage")
    train, test, val = root / "train", root / "test", root / "val"
    for folder in (train, test, val):
        folder.mkdir()
    sources = {k: picture(2000 + k) for k in range(TRAIN_PICTURES + TEST_PICTURES + 3)}
    for k in range(TRAIN_PICTURES):
        (train / f"t{k}.jpg").write_bytes(jpeg(sources[k]))
    for k in range(TEST_PICTURES):
        (test / f"s{k}.jpg").write_bytes(jpeg(sources[TRAIN_PICTURES + k]))
    for k in range(2):
        (val / f"v{k}.jpg").write_bytes(jpeg(sources[TRAIN_PICTURES + TEST_PICTURES + k]))
    # Across sets: the three files of test that leak from train, the one of val from test.
    (test / "leak_bytes.jpg").write_bytes((train / "t0.jpg").read_bytes())
    (test / "leak_resized.jpg").write_bytes(jpeg(_resized(sources[1]), quality=80))
    (test / "leak_mirror.png").write_bytes(png(dihedral(sources[2], "mirror")))
    (val / "leak_from_test.jpg").write_bytes((test / "s0.jpg").read_bytes())
    # Within one set only.
    (train / "t3_again.jpg").write_bytes(jpeg(_resized(sources[3]), quality=85))
    (test / "s1_again.jpg").write_bytes((test / "s1.jpg").read_bytes())
    result = cli("cross", train, test, val, "--format", "json")
    assert result.code == 0, str(result)
    return root, result.json()


def _pair_names(report: dict) -> set[tuple[str, str, str, str]]:
    return {(p["set_a"], Path(p["path_a"]).name, p["set_b"], Path(p["path_b"]).name)
            for p in report["pairs"]}


def test_planted_copies_across_sets_are_reported(dataset):
    _, report = dataset
    pairs = _pair_names(report)
    assert ("train", "t0.jpg", "test", "leak_bytes.jpg") in pairs
    assert ("train", "t1.jpg", "test", "leak_resized.jpg") in pairs
    assert ("train", "t2.jpg", "test", "leak_mirror.png") in pairs
    assert ("test", "s0.jpg", "val", "leak_from_test.jpg") in pairs
    methods = {Path(p["path_b"]).name: (p["method"], p["transform"]) for p in report["pairs"]}
    assert methods["leak_bytes.jpg"][0] == "bytes"
    assert methods["leak_mirror.png"][1] == "mirror"


def test_within_set_duplicates_are_not_reported(dataset):
    _, report = dataset
    for p in report["pairs"]:
        assert p["set_a"] != p["set_b"], p
        names = {Path(p["path_a"]).name, Path(p["path_b"]).name}
        assert not names & {"t3_again.jpg", "s1_again.jpg"}, p
    assert len(report["pairs"]) == 4, report["pairs"]


def test_summary_counts(dataset):
    root, report = dataset
    files = {name: sum(p.is_file() for p in (root / name).iterdir())
             for name in ("train", "test", "val")}
    assert {n: s["files"] for n, s in report["sets"].items()} == files
    summary = {(s["earlier"], s["later"]): (s["leaked"], s["later_files"])
               for s in report["summary"]}
    assert summary == {("train", "test"): (3, files["test"]),
                       ("train", "val"): (0, files["val"]),
                       ("test", "val"): (1, files["val"])}
    assert len(report["groups"]) == 4
    assert all(len(g["sets"]) >= 2 for g in report["groups"])


def test_table_names_and_fail_on_leak(dataset, cli):
    root, _ = dataset
    result = cli("cross", root / "train", root / "test", "--no-scan", "--names", "fit,holdout",
                 "--index", root / "train" / ".lookalike" / "index.db", "--fail-on-leak")
    assert result.code == 1, str(result)
    assert "3 of 12 holdout images (25.0%) have a duplicate in fit" in result.stdout
    clean = cli("cross", root / "train", root / "val", "--no-scan", "--fail-on-leak",
                "--index", root / "train" / ".lookalike" / "index.db", "--format", "csv")
    assert clean.code == 0, str(clean)
    assert clean.stdout.splitlines() == [
        "set_a,path_a,set_b,path_b,method,distance,score,transform"]


def test_nested_roots_deepest_wins(tmp_path, cli):
    data = tmp_path / "data"
    (data / "test").mkdir(parents=True)
    (data / "a.jpg").write_bytes(jpeg(picture(2100)))
    (data / "b.jpg").write_bytes(jpeg(picture(2101)))
    (data / "test" / "a_copy.jpg").write_bytes((data / "a.jpg").read_bytes())
    result = cli("cross", data, data / "test", "--format", "json")
    assert result.code == 0, str(result)
    report = result.json()
    assert _pair_names(report) == {("train", "a.jpg", "test", "a_copy.jpg")}
    assert report["sets"]["train"]["files"] == 2 and report["sets"]["test"]["files"] == 1
    assert outer_roots([str(data), str(data / "test")]) == [str(data)]
    assert set_of(str(data / "elsewhere.jpg"), {"x": str(data / "test")}) is None


def test_library_matches_the_command(dataset):
    root, report = dataset
    sets = {"train": root / "train", "test": root / "test", "val": root / "val"}
    with open_index(root / "train" / ".lookalike" / "index.db") as index:
        found = cross_pairs(index, sets)
    assert len(found.pairs) == len(report["pairs"])
    assert [(s.earlier, s.later, s.leaked) for s in found.summary] == [
        (s["earlier"], s["later"], s["leaked"]) for s in report["summary"]]


# --- split -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def collection(tmp_path_factory, cli):
    """40 distinct pictures, 8 of them with copies: groups of 4, 3 and 2 files."""
    root = tmp_path_factory.mktemp("split") / "photos"
    root.mkdir()
    for k in range(40):
        image = picture(3000 + k)
        (root / f"p{k:02d}.jpg").write_bytes(jpeg(image))
        if k < 2:  # a group of four
            (root / f"p{k:02d}_small.jpg").write_bytes(jpeg(_resized(image), quality=80))
            (root / f"p{k:02d}_mirror.png").write_bytes(png(dihedral(image, "mirror")))
        if k < 5:
            (root / f"p{k:02d}_copy.jpg").write_bytes((root / f"p{k:02d}.jpg").read_bytes())
    result = cli("scan", root, "--format", "json")
    assert result.code == 0, str(result)
    return root


def _read_split(path: Path) -> dict[str, str]:
    with open(path, newline="") as handle:
        return {row["path"]: row["split"] for row in csv.DictReader(handle)}


def _digests(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.iterdir()) if p.is_file()}


def test_split_keeps_groups_whole_and_meets_ratios(collection, cli, tmp_path):
    result = cli("split", collection, "--no-scan", "--out", tmp_path / "split.csv")
    assert result.code == 0, str(result)
    assigned = _read_split(tmp_path / "split.csv")
    files = sorted(str(p) for p in collection.iterdir() if p.is_file())
    assert sorted(assigned) == files
    with open_index(collection / ".lookalike" / "index.db") as index:
        groups = find_groups(index)
    assert max(len(g.files) for g in groups) == 4
    for g in groups:
        assert len({assigned[f.path] for f in g.files}) == 1, g
    counts = Counter(assigned.values())
    largest = max(len(g.files) for g in groups)
    for name, ratio in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(counts[name] - ratio * len(files)) <= largest, counts


def test_split_depends_only_on_the_seed(collection, cli, tmp_path):
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        result = cli("split", collection, "--no-scan", "--seed", seed, "--ratios", "0.5,0.5",
                     "--out", tmp_path / f"{name}.json")
        assert result.code == 0, str(result)
        data = json.loads((tmp_path / f"{name}.json").read_text())
        runs[name] = {f["path"]: f["split"] for f in data["files"]}
    assert set(runs["a"].values()) == {"train", "test"}
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


@pytest.mark.parametrize("option", ["--copy-to", "--link-to"])
def test_materialised_split_leaves_sources_untouched(collection, cli, tmp_path, option):
    before = _digests(collection)
    dest = tmp_path / "out"
    result = cli("split", collection, "--no-scan", "--out", tmp_path / "split.csv",
                 option, dest)
    assert result.code == 0, str(result)
    assert _digests(collection) == before
    assigned = _read_split(tmp_path / "split.csv")
    for path, split in assigned.items():
        target = dest / split / Path(path).name
        assert os.path.samefile(target, path), target
        assert target.is_symlink() == (option == "--link-to")
    again = cli("split", collection, "--no-scan", "--seed", "1", "--out",
                tmp_path / "other.csv", option, dest)
    assert again.code == 2 and "not this split" in again.stderr, str(again)
    assert _digests(collection) == before


def test_split_usage_errors(collection, cli, tmp_path):
    bad = cli("split", collection, "--no-scan", "--ratios", "0.5,0.3,0.1,0.1",
              "--out", tmp_path / "s.csv")
    assert bad.code == 2 and "names" in bad.stderr, str(bad)
    bad = cli("split", collection, "--no-scan", "--out", tmp_path / "s.txt")
    assert bad.code == 2, str(bad)


def test_split_stratified_and_filtered(collection, tmp_path):
    """Metadata as `ingest --keep-columns` leaves it (files.meta), written into a copy of the
    index. Category "copies" holds the five pictures with copies (14 files), "single" the
    rest: unstratified, largest first, all 14 land in train at 0.8,0.2; stratified, each
    category is split on its own, so both reach test. --where keeps one category."""
    import shutil
    import sqlite3

    from lookalike.search.split import plan_split

    def category(path: str) -> str:
        return "copies" if int(Path(path).name[1:3]) < 5 else "single"

    index_path = tmp_path / "index.db"
    shutil.copy(collection / ".lookalike" / "index.db", index_path)
    conn = sqlite3.connect(index_path)
    with conn:
        for (path,) in conn.execute("SELECT path FROM files").fetchall():
            conn.execute("UPDATE files SET meta=? WHERE path=?",
                         (json.dumps({"category": category(path)}), path))
    conn.close()
    with open_index(index_path) as index:
        split = plan_split(index, [0.8, 0.2], stratify="category")
        plain = plan_split(index, [0.8, 0.2])
        only_single = plan_split(index, [0.5, 0.5], where={"category": "single"})
        groups = find_groups(index)
    counts = Counter((category(a.path), a.split) for a in split.files)
    for name in ("copies", "single"):
        total = counts[name, "train"] + counts[name, "test"]
        assert counts[name, "test"] >= 1 and abs(counts[name, "test"] - 0.2 * total) <= 4, counts
    assert not any(category(a.path) == "copies" and a.split == "test" for a in plain.files)
    assigned = {a.path: a.split for a in split.files}
    for g in groups:
        assert len({assigned[f.path] for f in g.files}) == 1
    assert len(only_single.files) == 35
    assert all(category(a.path) == "single" for a in only_single.files)
