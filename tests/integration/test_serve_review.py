"""The review and action routes of `lookalike serve` through real HTTP: decisions, plans,
apply (a dry run unless asked), runs and undo, on a real index of real pictures, with uvicorn
on 127.0.0.1. Every test gets its own collection (they move files)."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from lookalike.index.store import open_index  # noqa: E402
from lookalike.search.dupes import find_groups  # noqa: E402
from lookalike.service.app import create_app  # noqa: E402

from .serving import build_review, group_names, raw_get, running, snapshot  # noqa: E402

TOKEN = "review-token-for-tests"


@dataclass
class Site:
    root: Path
    index: Path
    url: str
    ids: dict[str, int]  # relative path -> file id

    def post(self, route: str, body: dict, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}{route}", json=body, timeout=60, **kwargs)

    def get(self, route: str, **kwargs) -> httpx.Response:
        return httpx.get(f"{self.url}{route}", timeout=60, **kwargs)

    def groups(self) -> list[set[str]]:
        return group_names(self.get("/groups").json()["groups"], self.root)


@pytest.fixture
def site(tmp_path) -> Site:
    with review_site(tmp_path) as served:
        yield served


@contextmanager
def review_site(tmp_path: Path) -> Iterator[Site]:
    """serving.build_review's collection under `tmp_path`, served (test_serve_keeper too)."""
    review = build_review(tmp_path / "photos")
    with open_index(review.index) as index:
        ids = {str(Path(p).relative_to(review.root)): i
               for p, i in index.live_file_ids(
                   str(review.root / n) for g in review.groups.values() for n in g).items()}
    with running(create_app(review.index)) as url:
        yield Site(review.root, review.index, url, ids)


def decide(site: Site, decision: str, names: list[str], others: list[str] = ()) -> dict:
    reply = site.post("/decisions", {"decision": decision, "file_ids": [site.ids[n] for n in names],
                                     "others": [site.ids[n] for n in others]})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_marks_are_stored_listed_and_shown_with_the_groups(site):
    assert decide(site, "keep", ["lib/a_small.jpg"])["marked"] == 1
    assert decide(site, "quarantine", ["lib/a.jpg"])["marked"] == 1
    listed = site.get("/decisions").json()
    assert {(Path(m["path"]).name, m["mark"]) for m in listed["marks"]} == \
        {("a_small.jpg", "keep"), ("a.jpg", "quarantine")}
    files = {Path(f["path"]).name: f for g in site.get("/groups").json()["groups"]
             for f in g["files"]}
    assert files["a_small.jpg"]["mark"] == "keep" and files["a.jpg"]["mark"] == "quarantine"
    assert files["a_copy.png"]["mark"] is None
    assert site.get(f"/files/{site.ids['lib/a.jpg']}").json()["mark"] == "quarantine"
    decide(site, "clear", ["lib/a.jpg"])
    assert [m["file_id"] for m in site.get("/decisions").json()["marks"]] == \
        [site.ids["lib/a_small.jpg"]]


def test_not_a_duplicate_is_respected_by_groups_and_find_groups(site):
    turned = {"lib/c.jpg", "lib/c_turned.png"}
    assert turned in site.groups()
    assert decide(site, "not-duplicate", ["lib/c_turned.png"], ["lib/c.jpg"])["pairs"] == 1
    assert turned not in site.groups()
    with open_index(site.index) as index:
        assert turned not in group_names(find_groups(index), site.root)
    pairs = site.get("/decisions").json()["pairs"]
    assert [(p["decision"], {Path(p["path_a"]).name, Path(p["path_b"]).name}) for p in pairs] \
        == [("not-duplicate", {"c.jpg", "c_turned.png"})]
    decide(site, "clear", ["lib/c_turned.png"], ["lib/c.jpg"])  # a mistake, taken back
    assert turned in site.groups()


def test_a_whole_group_is_not_duplicates(site):
    big = ["lib/a.jpg", "lib/a_copy.png", "lib/a_small.jpg"]
    assert decide(site, "not-duplicate", big)["pairs"] == 3
    assert not any(set(big) & g for g in site.groups())


def test_bad_decisions_are_422_and_unknown_ids_404(site):
    a = site.ids["lib/a.jpg"]
    for body in ({"decision": "maybe", "file_ids": [a]}, {"decision": "keep", "file_ids": []},
                 {"decision": "keep"}, {"decision": "keep", "file_ids": ["x"]},
                 {"decision": "not-duplicate", "file_ids": [a]}):
        reply = site.post("/decisions", body)
        assert reply.status_code == 422, (body, reply.text)
        assert reply.json()["detail"]
    reply = site.post("/decisions", {"decision": "keep", "file_ids": [a, 987654]})
    assert reply.status_code == 404 and "987654" in reply.json()["detail"]
    assert site.get("/decisions").json()["total_marks"] == 0  # nothing half-done
    assert site.get("/files/987654").status_code == 404


def test_plan_follows_marks_over_rules_and_keeps_references(site):
    decide(site, "keep", ["lib/a_small.jpg"])  # the rules would keep a larger one
    reply = site.post("/plan", {"reference": [str(site.root / "ref")]})
    assert reply.status_code == 200, reply.text
    plan = reply.json()
    by_keep = {Path(g["keep"]["path"]).name: g for g in plan["groups"]}
    # c.jpg and its turned PNG copy share the resolution: the older one, the original, stays
    assert set(by_keep) == {"a_small.jpg", "b.jpg", "c.jpg"}
    assert {k: g["keep"]["reason"] for k, g in by_keep.items()} == {
        "a_small.jpg": "marked keep", "b.jpg": "in a reference folder",
        "c.jpg": "oldest file"}
    assert {Path(f["path"]).name for f in by_keep["a_small.jpg"]["quarantine"]} == \
        {"a.jpg", "a_copy.png"}
    assert [Path(f["path"]).name for f in by_keep["b.jpg"]["quarantine"]] == ["b_q70.jpg"]
    assert all(f["file_id"] == site.ids[str(Path(f["path"]).relative_to(site.root))]
               for g in plan["groups"] for f in g["quarantine"])
    assert plan["actions"] == 4 and plan["rules"] == ["largest-resolution", "oldest",
                                                      "largest-file"]
    ignoring = site.post("/plan", {"use_marks": False}).json()
    assert "a_small.jpg" not in {Path(g["keep"]["path"]).name for g in ignoring["groups"]}
    only_big = site.post("/plan", {"min_size": 3}).json()
    assert len(only_big["groups"]) == 1


def test_plan_takes_only_folders_of_the_index(site):
    folders = {f["path"]: f["files"] for f in site.get("/folders").json()["folders"]}
    assert folders == {str(site.root): 9, str(site.root / "lib"): 8, str(site.root / "ref"): 1}
    for body in ({"reference": ["/etc"]}, {"prefer_path": [str(site.root / "ref" / "..")]},
                 {"reference": ["ref"]}, {"rules": ["biggest"]}, {"min_size": 1}):
        reply = site.post("/plan", body)
        assert reply.status_code == 422, (body, reply.text)


def test_apply_without_execute_changes_nothing(site):
    before = snapshot(site.root)
    plan = site.post("/plan", {}).json()
    reply = site.post("/apply", {"plan_id": plan["plan_id"]})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["executed"] is False and result["run"] is None
    assert result["counts"] == {"would": 4, "done": 0, "skipped": 0, "failed": 0}
    assert snapshot(site.root) == before
    assert site.get("/runs").json()["runs"] == []
    assert not (site.index.parent / "quarantine").exists() or \
        not any((site.index.parent / "quarantine").iterdir())


def test_apply_then_undo_restores_every_file(site):
    before = snapshot(site.root)
    plan = site.post("/plan", {"reference": [str(site.root / "ref")]}).json()
    moved = {f["path"] for g in plan["groups"] for f in g["quarantine"]}
    result = site.post("/apply", {"plan_id": plan["plan_id"], "execute": True}).json()
    assert result["executed"] and result["counts"]["done"] == len(moved) == 4
    run_dir = site.index.parent / "quarantine" / result["run"]
    for path in moved:
        assert not Path(path).exists()
        kept = run_dir / "files" / path.lstrip("/")
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == \
            before[str(Path(path).relative_to(site.root))][0]
    assert snapshot(site.root)["ref/b.jpg"] == before["ref/b.jpg"]
    runs = site.get("/runs").json()["runs"]
    assert [(r["run"], r["finished"], r["done"], r["undone"]) for r in runs] == \
        [(result["run"], True, 4, 0)]
    grouped = {Path(f["path"]).name: f["present"] for g in site.get("/groups").json()["groups"]
               for f in g["files"]}
    assert not {Path(p).name for p in moved} & set(grouped)  # the index followed the run
    again = site.post("/apply", {"plan_id": plan["plan_id"], "execute": True}).json()
    assert again["counts"]["done"] == 0 and again["counts"]["skipped"] == 4  # gone: skipped
    undone = site.post("/undo", {"run": result["run"]}).json()
    assert {f["path"] for f in undone["restored"]} == moved and undone["problems"] == []
    assert snapshot(site.root) == before
    grouped = {Path(f["path"]).name for g in site.get("/groups").json()["groups"]
               for f in g["files"]}
    assert {Path(p).name for p in moved} <= grouped  # back in their groups
    assert site.post("/undo", {"run": result["run"]}).json()["restored"] == []  # harmless


def test_unknown_plans_and_runs_are_404_and_ids_never_paths(site):
    assert site.post("/apply", {"plan_id": "20990101T000000000000Z-1-abc"}).status_code == 404
    assert site.post("/undo", {"run": "20990101T000000000000Z-1"}).status_code == 404
    for bad in ("../index", "/etc/passwd", "a/b", "..", ""):
        assert site.post("/apply", {"plan_id": bad}).status_code == 422, bad
        assert site.post("/undo", {"run": bad}).status_code == 422, bad


def test_a_plan_that_would_delete_is_never_applied_from_the_web(site):
    """A plan file edited on the server to delete: the web refuses it and touches nothing."""
    before = snapshot(site.root)
    plan_id = site.post("/plan", {}).json()["plan_id"]
    stored = site.index.parent / "plans" / f"{plan_id}.json"
    data = json.loads(stored.read_text())
    for group in data["groups"]:
        for action in group["actions"]:
            action["action"] = "delete"
    stored.write_text(json.dumps(data))
    for execute in (False, True):
        reply = site.post("/apply", {"plan_id": plan_id, "execute": execute})
        assert reply.status_code == 422 and "quarantine" in reply.json()["detail"]
    assert snapshot(site.root) == before


def test_a_cross_site_form_post_does_nothing(site):
    """A page elsewhere can POST text/plain without a CORS preflight: it is not JSON to us."""
    before = snapshot(site.root)
    plan_id = site.post("/plan", {}).json()["plan_id"]
    reply = httpx.post(f"{site.url}/apply", content=json.dumps({"plan_id": plan_id,
                                                                "execute": True}),
                       headers={"Content-Type": "text/plain"}, timeout=30)
    assert reply.status_code == 422
    assert snapshot(site.root) == before


def test_a_foreign_host_name_is_refused_without_a_token(site):
    """DNS rebinding: a page whose own name resolves to 127.0.0.1 reaches nothing."""
    for host in ("rebind.example", "rebind.example:80", "127.0.0.1.evil.example", ""):
        status, body = raw_get(site.url, "/runs", host=host)
        assert status == 403 and b"loopback" in body, host
    for host in ("127.0.0.1", "localhost:1234", "[::1]:80"):
        assert raw_get(site.url, "/runs", host=host)[0] == 200, host


def test_review_routes_need_the_token_when_one_is_set(tmp_path):
    review = build_review(tmp_path / "photos")
    with running(create_app(review.index, token=TOKEN)) as url:
        calls = [("GET", "/decisions", None), ("GET", "/folders", None), ("GET", "/runs", None),
                 ("GET", "/info", None), ("POST", "/decisions", {"decision": "keep",
                                                                 "file_ids": [1]}),
                 ("POST", "/plan", {}), ("POST", "/apply", {"plan_id": "x"}),
                 ("POST", "/undo", {"run": "x"})]
        for method, route, body in calls:
            reply = httpx.request(method, f"{url}{route}", json=body, timeout=30)
            assert reply.status_code == 401, (route, reply.text)
            wrong = httpx.request(method, f"{url}{route}", json=body, timeout=30,
                                  headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401, route
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/runs", headers=good).json() == {"runs": []}
        plan = httpx.post(f"{url}/plan", json={}, headers=good, timeout=30)
        assert plan.status_code == 200 and plan.json()["actions"] == 4
        assert httpx.get(f"{url}/", timeout=30).status_code == 200  # the UI's page: public
        assert httpx.get(f"{url}/static/main.js", timeout=30).status_code == 200
        # with a token, any Host name is served (the token is the protection)
        assert raw_get(url, "/runs", f"Authorization: Bearer {TOKEN}\r\n",
                       host="photos.example")[0] == 200


def test_info_files_and_docs_describe_the_new_routes(site):
    info = site.get("/info").json()
    assert info["files"] == 9 and info["methods"][0] == "auto" and "phash" in info["methods"]
    assert info["token"] is False
    described = site.get(f"/files/{site.ids['lib/a.jpg']}").json()
    assert described["taken"] == "2021-05-06 07:08:09"
    assert site.get(f"/files/{site.ids['lib/a_copy.png']}").json()["taken"] is None
    paths = site.get("/openapi.json").json()["paths"]
    for route in ("/decisions", "/folders", "/plan", "/apply", "/runs", "/undo", "/info"):
        assert route in paths, route
    schema = json.dumps(paths["/decisions"])
    assert "not-duplicate" in site.get("/openapi.json").text and "DecisionIn" in schema


def test_a_mark_keeps_the_groups_cached_a_not_duplicate_does_not(site, monkeypatch):
    """Triage must stay quick: a keep/quarantine mark changes no group, so the server does
    not search the collection again for the next group; a not-duplicate does."""
    from lookalike.service import state

    searches = []
    real = state.groups_with_evidence

    def counted(*args, **kwargs):
        searches.append(args[1:])
        return real(*args, **kwargs)

    monkeypatch.setattr(state, "groups_with_evidence", counted)
    site.get("/groups")
    assert len(searches) == 1
    decide(site, "keep", ["lib/a_small.jpg"])
    decide(site, "quarantine", ["lib/a.jpg"])
    decide(site, "clear", ["lib/a.jpg"])
    page = site.get("/groups").json()
    assert len(searches) == 1  # still the cached groups, with the marks as they are now
    marks = {Path(f["path"]).name: f["mark"] for g in page["groups"] for f in g["files"]}
    assert marks["a_small.jpg"] == "keep" and marks["a.jpg"] is None
    decide(site, "not-duplicate", ["lib/c_turned.png"], ["lib/c.jpg"])
    assert {"lib/c.jpg", "lib/c_turned.png"} not in site.groups()
    assert len(searches) == 2


def test_only_the_newest_plans_are_kept(site):
    from lookalike.service.review import PLANS_KEPT

    ids = [site.post("/plan", {}).json()["plan_id"] for _ in range(PLANS_KEPT + 2)]
    stored = sorted(p.stem for p in (site.index.parent / "plans").glob("*.json"))
    assert stored == sorted(ids[2:])
    assert site.post("/apply", {"plan_id": ids[0]}).status_code == 404
    assert site.post("/apply", {"plan_id": ids[-1]}).status_code == 200
