"""GET /groups names each group's keeper, the file `plan` keeps (actions/keeper.py, the same
choice with the files' marks first), why, and the best member on each value; each file says
how it matched in words. Checked against keepers() and POST /plan on a real index, over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from lookalike.actions.keeper import keepers  # noqa: E402
from lookalike.index.store import open_index  # noqa: E402
from lookalike.search.dupes import find_groups  # noqa: E402

from .test_serve_review import Site, decide, review_site  # noqa: E402


@pytest.fixture
def site(tmp_path) -> Site:
    with review_site(tmp_path) as served:
        yield served


def by_group(site: Site, route: str = "/groups") -> dict[frozenset, dict]:
    """The groups of GET `route`, by the relative paths of their files."""
    reply = site.get(route)
    assert reply.status_code == 200, reply.text
    return {frozenset(str(Path(f["path"]).relative_to(site.root)) for f in g["files"]): g
            for g in reply.json()["groups"]}


def name_of(site: Site, file_id: int) -> str:
    return {i: n for n, i in site.ids.items()}[file_id]


def planned(site: Site, body: dict | None = None) -> dict[frozenset, str]:
    """group -> the file a POST /plan keeps (relative path)."""
    plan = site.post("/plan", body or {}).json()
    out = {}
    for g in plan["groups"]:
        members = [g["keep"], *g["kept"], *g["reference"], *g["quarantine"], *g["skipped"]]
        out[frozenset(str(Path(f["path"]).relative_to(site.root)) for f in members)] = \
            str(Path(g["keep"]["path"]).relative_to(site.root))
    return out


def test_the_keeper_is_the_file_keepers_and_plan_keep(site):
    groups = by_group(site)
    with open_index(site.index) as index:
        found = find_groups(index)
        expected = {frozenset(str(Path(f.path).relative_to(site.root)) for f in g.files): k
                    for g, k in zip(found, keepers(index, found))}
    assert set(groups) == set(expected) and len(groups) == 3
    plan = planned(site)
    for members, g in groups.items():
        keeper = g["keeper"]
        want = expected[members]
        assert name_of(site, keeper["file_id"]) == str(Path(want.path).relative_to(site.root))
        assert keeper["reason"] == want.reason
        assert keeper["best"] == {value: [site.ids[str(Path(p).relative_to(site.root))]
                                          for p in paths] for value, paths in want.best.items()}
        assert plan[members] == name_of(site, keeper["file_id"])  # what the plan keeps
    big = groups[frozenset({"lib/a.jpg", "lib/a_copy.png", "lib/a_small.jpg"})]["keeper"]
    # a.jpg and its PNG twin share the largest resolution; the JPEG is the older (the PNG,
    # the larger file, was made from it)
    assert name_of(site, big["file_id"]) == "lib/a.jpg"
    assert big["reason"] == "oldest file"
    best = {value: sorted(name_of(site, i) for i in ids) for value, ids in big["best"].items()}
    assert best["resolution"] == ["lib/a.jpg", "lib/a_copy.png"]
    assert best["bytes"] == ["lib/a_copy.png"] and best["format"] == ["lib/a_copy.png"]
    assert best["date"] == ["lib/a.jpg"] and best["path"] == ["lib/a.jpg"]  # oldest, shortest


def test_each_file_says_how_it_matched_in_words(site):
    files = {str(Path(f["path"]).relative_to(site.root)): f
             for g in by_group(site).values() for f in g["files"]}
    assert files["lib/a.jpg"]["words"] == \
        "same pixels as a_copy.png, other file format (JPEG and PNG)"
    assert files["lib/a.jpg"]["format"] == "JPEG" and files["lib/a_copy.png"]["format"] == "PNG"
    assert files["lib/a_small.jpg"]["words"].startswith("resized or re-encoded copy of ")
    assert "· similarity " in files["lib/a_small.jpg"]["words"]
    turned = files["lib/c_turned.png"]
    assert turned["transform"] == "rot90" and "rotated 90° counter-clockwise" in turned["words"]
    for f in files.values():
        assert 0 < f["score"] <= 1
        assert "distance" not in f["words"] and "hash" not in f["words"]  # no jargon


def test_marks_move_the_keeper_and_the_plan_follows(site):
    big = frozenset({"lib/a.jpg", "lib/a_copy.png", "lib/a_small.jpg"})
    decide(site, "keep", ["lib/a_small.jpg"])  # the rules would keep a_copy.png
    keeper = by_group(site)[big]["keeper"]
    assert name_of(site, keeper["file_id"]) == "lib/a_small.jpg"
    assert keeper["reason"] == "marked keep"
    assert planned(site)[big] == "lib/a_small.jpg"
    decide(site, "clear", ["lib/a_small.jpg"])
    decide(site, "quarantine", ["lib/a_copy.png"])  # then the next by the rules
    keeper = by_group(site)[big]["keeper"]
    assert name_of(site, keeper["file_id"]) == "lib/a.jpg"
    assert keeper["reason"] == "largest resolution"
    assert planned(site)[big] == "lib/a.jpg"


def test_the_keep_rules_can_be_asked_for_and_are_checked(site):
    big = frozenset({"lib/a.jpg", "lib/a_copy.png", "lib/a_small.jpg"})
    keeper = by_group(site, "/groups?keep=shortest-path&keep=oldest")[big]["keeper"]
    assert name_of(site, keeper["file_id"]) == "lib/a.jpg"
    assert keeper["reason"] == "shortest path"
    assert planned(site, {"rules": ["shortest-path", "oldest"]})[big] == "lib/a.jpg"
    reply = site.get("/groups?keep=biggest")
    assert reply.status_code == 422

