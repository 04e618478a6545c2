"""The notebook facade (lookalike.Collection) and the one search-options object shared by
find_pairs, find_groups, query, cross_pairs and plan_split."""

from __future__ import annotations

import os

import pytest
from PIL import Image

import lookalike
from lookalike import Collection, SearchOptions
from lookalike.errors import BoundError, IndexNotFoundError
from lookalike.index.store import open_index
from lookalike.search.dupes import find_groups, find_pairs
from lookalike.search.leakage import cross_pairs
from lookalike.search.query import query
from lookalike.search.split import plan_split

from .conftest import jpeg, picture, png


def names(groups) -> list[list[str]]:
    return sorted(sorted(os.path.basename(f.path) for f in g.files) for g in groups)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two folders: a picture with a re-encoded, a shrunk and a mirrored copy; another with a
    byte copy in the second folder; and pictures with no copy."""
    root = tmp_path_factory.mktemp("photos")
    (root / "train").mkdir()
    (root / "test").mkdir()
    first, second = picture(11), picture(12)
    (root / "train" / "a.png").write_bytes(png(first))
    (root / "train" / "a_small.jpg").write_bytes(jpeg(first.resize((160, 120)), 85))
    (root / "test" / "a_mirror.png").write_bytes(png(first.transpose(Image.FLIP_LEFT_RIGHT)))
    (root / "train" / "b.png").write_bytes(png(second))
    (root / "test" / "b_copy.png").write_bytes(png(second))
    for seed in (13, 14, 15):
        (root / "train" / f"other{seed}.png").write_bytes(png(picture(seed)))
    return root


def test_scratch_collection_writes_nothing_into_the_folders_and_is_removed(photos):
    before = sorted(str(p) for p in photos.rglob("*"))
    with Collection.scan(photos, workers=1) as collection:
        index_file = collection.path
        assert index_file.exists() and photos not in index_file.parents
        assert len(collection) == 8
        assert names(collection.groups()) == [["a.png", "a_mirror.png", "a_small.jpg"],
                                              ["b.png", "b_copy.png"]]
        assert collection.roots() == [str(photos)]
    assert not index_file.exists()  # close() removed the scratch index
    assert sorted(str(p) for p in photos.rglob("*")) == before


def test_kept_index_is_reused_and_opened_later(photos, tmp_path):
    kept = tmp_path / "photos.db"
    collection = Collection.scan([str(photos)], index=kept, workers=1)
    assert collection.last_scan.scanned == 8
    collection.close()
    assert kept.exists()  # a kept index stays
    again = Collection.open(str(kept))
    summary = again.update(workers=1)  # the folders of the earlier scan
    assert summary.scanned == 0 and summary.unchanged == 8
    assert names(again.groups()) == names(lookalike.find_duplicates(photos, workers=1))
    with pytest.raises(IndexNotFoundError):
        Collection.open(tmp_path / "missing.db")


@pytest.fixture(scope="module")
def kept(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp("kept") / "index.db"
    Collection.scan(photos, index=path, workers=1, mode="fast").close()
    return path


def test_options_object_gives_what_the_keywords_give(kept, photos):
    options = SearchOptions(method="phash", max_distance=0, linkage="connected")
    with open_index(kept) as index:
        by_keywords = find_pairs(index, "phash", 0)
        assert find_pairs(index, options=options) == by_keywords
        assert find_groups(index, options=options) == \
            find_groups(index, "phash", 0, linkage="connected")
        sets = {"train": photos / "train", "test": photos / "test"}
        assert cross_pairs(index, sets, options=options) == cross_pairs(index, sets, "phash", 0)
        probe = str(photos / "train" / "a_small.jpg")
        assert query(index, [probe], options=options) == query(index, [probe], "phash", 0)
        assert plan_split(index, [0.5, 0.5], seed=3, options=options) == \
            plan_split(index, [0.5, 0.5], seed=3, method="phash", linkage="connected")
        # the radius is used: at 0 the mirrored copy is still found (hashes look at all 8
        # turns), with a wider radius every pair found at 0 is still found
        wide = {(m.a, m.b) for m in find_pairs(index, options=options.replace(max_distance=12))}
        assert {(m.a, m.b) for m in by_keywords} <= wide


def test_options_and_differing_keywords_together_are_refused(kept):
    with open_index(kept) as index:
        with pytest.raises(BoundError, match="max_distance"):
            find_groups(index, max_distance=3, options=SearchOptions())
        with pytest.raises(BoundError, match="SearchOptions"):
            find_pairs(index, options={"method": "phash"})
    with pytest.raises(BoundError, match="between 0 and 256"):
        SearchOptions(max_distance=1000)
    with pytest.raises(BoundError, match="linkage"):
        SearchOptions(linkage="single")
    with pytest.raises(BoundError, match="unknown search setting maxdistance"):
        SearchOptions().replace(maxdistance=3)


def test_collection_settings_change_per_call_and_reach_every_search(kept, photos):
    collection = Collection.open(kept, options=SearchOptions(method="pixels"))
    # "pixels" finds only same-pixel copies: the byte copy, not the re-encoded or mirrored
    assert names(collection.groups()) == [["b.png", "b_copy.png"]]
    assert len(names(collection.groups(method="auto"))) == 2
    found = collection.query(photos / "train" / "a_small.jpg", method="auto")
    assert {os.path.basename(m.b) for m in found[0].matches} == \
        {"a.png", "a_small.jpg", "a_mirror.png"}
    # where= keeps only indexed files whose metadata match: none has this key
    assert collection.query(photos / "train" / "a_small.jpg", method="auto",
                            where={"category": "shoes"})[0].matches == ()
    leak = collection.cross({"train": photos / "train", "test": photos / "test"},
                            method="auto")
    assert {(os.path.basename(p.path_a), os.path.basename(p.path_b)) for p in leak.pairs} == \
        {("b.png", "b_copy.png"), ("a.png", "a_mirror.png"), ("a_small.jpg", "a_mirror.png")}
    split = collection.split([0.5, 0.5], seed=1, method="auto")
    by_path = {os.path.basename(a.path): a.split for a in split.files}
    assert by_path["a.png"] == by_path["a_small.jpg"] == by_path["a_mirror.png"]
    plan = collection.plan(method="auto")
    assert len(plan.groups) == 2
    assert collection.failures() == []
    with pytest.raises(BoundError, match="verify"):
        collection.query(photos / "train" / "a.png", verify=True)


def test_a_collection_on_ray_scans_and_searches_there_with_the_local_answer(photos, cluster,
                                                                            tmp_path,
                                                                            monkeypatch):
    """runner="ray": the scan runs as shard tasks and the searches' hash self-join on the
    cluster (the session's two-node cluster); groups, pairs, evidence and the plan are the
    local ones."""
    pytest.importorskip("pyarrow", reason="the 'ray' extra (pyarrow) is not installed")
    from lookalike.search import distributed
    from lookalike.search.evidence import groups_with_evidence

    joins, real_join = [], distributed.self_join_ray
    monkeypatch.setattr(distributed, "self_join_ray",
                        lambda *args: joins.append(args[-1]) or real_join(*args))
    local = Collection.scan(photos, index=tmp_path / "local.db", workers=1)
    on_ray = Collection.scan(photos, index=tmp_path / "ray.db", runner="ray",
                             ray_address=cluster, shard_files=2)
    assert (tmp_path / "shards").is_dir()  # the scan ran in shards on the cluster
    assert names(on_ray.groups()) == names(local.groups()) == [
        ["a.png", "a_mirror.png", "a_small.jpg"], ["b.png", "b_copy.png"]]
    assert ([m.to_dict() for m in on_ray.pairs()] == [m.to_dict() for m in local.pairs()])
    assert ([(g.keep, g.keep_reason) for g in on_ray.plan().groups]
            == [(g.keep, g.keep_reason) for g in local.plan().groups])
    with open_index(on_ray.path) as index:
        groups, evidence = groups_with_evidence(index, runner="ray", ray_address=cluster)
    with open_index(local.path) as index:
        assert (groups, evidence) == groups_with_evidence(index)
    # groups, pairs, plan and groups_with_evidence each joined on the cluster; local never
    assert joins == [cluster] * 4
