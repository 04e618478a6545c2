"""GET /health and GET /groups?health=CHECK of `lookalike serve` over a small generated
collection with planted cases: a blurred copy, a darkened copy, a blank picture and two
stretched to 6:1 and 1:6, among clean pictures. The API must list each under its check, and no clean
picture under any."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from lookalike.service.app import create_app  # noqa: E402

from .conftest import jpeg, picture, png  # noqa: E402

CLEAN = ("a.png", "b.png", "c.jpg", "d.jpg")
PLANTED = {"a_blurred.png": "blurry", "b_dark.png": "dark", "blank.png": "blank",
           "c_stretched.jpg": "aspect", "d_tall.png": "aspect"}


@dataclass(frozen=True)
class Planted:
    root: Path
    index: Path


def build_planted(root: Path) -> Planted:
    """Four clean pictures, and beside them: a's blurred copy, b darkened, a uniform grey
    picture, c stretched to 6:1 and d to 1:6. The blurred and the dark copies group with a
    and b."""
    from lookalike.scan import scan

    a, b, c, d = picture(8101), picture(8102), picture(8103), picture(8104)
    dark = Image.fromarray((np.asarray(b, np.float32) * 0.18).astype(np.uint8), "RGB")
    files = {
        "a.png": png(a), "b.png": png(b), "c.jpg": jpeg(c), "d.jpg": jpeg(d),
        "a_blurred.png": png(a.filter(ImageFilter.GaussianBlur(3))),
        "b_dark.png": png(dark),
        "blank.png": png(Image.new("RGB", a.size, (128, 128, 128))),
        "c_stretched.jpg": jpeg(c.resize((480, 80), Image.LANCZOS)),
        "d_tall.png": png(d.resize((80, 480), Image.LANCZOS)),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    index = root / ".lookalike" / "index.db"
    scan([root], index_path=index, workers=1)
    return Planted(root, index)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    return build_planted(tmp_path_factory.mktemp("health") / "photos")


@pytest.fixture(scope="module")
def client(planted) -> TestClient:
    with TestClient(create_app(planted.index), base_url="http://127.0.0.1") as c:
        yield c


def flagged_names(answer: dict) -> dict[str, set[str]]:
    return {c["name"]: {os.path.basename(f["path"]) for f in c["files"]}
            for c in answer["checks"]}


def test_health_lists_each_planted_picture_under_its_check(client):
    answer = client.get("/health").json()
    names = flagged_names(answer)
    assert answer["images"] == answer["measured"] == len(CLEAN) + len(PLANTED)
    for name, check in PLANTED.items():
        assert name in names[check], (name, check, names)
    listed = set().union(*names.values())
    assert not listed & set(CLEAN), names  # no clean picture is flagged by any check
    by_name = {c["name"]: c for c in answer["checks"]}
    assert [c["name"] for c in answer["checks"]][:3] == ["blurry", "dark", "bright"]
    for check in by_name.values():
        assert check["count"] == check["listed"] == len(check["files"])
    # values are on the flagged side of the threshold
    assert all(f["value"] < by_name["blurry"]["threshold"] for f in by_name["blurry"]["files"])
    assert all(f["value"] >= 6 * 0.95 for f in by_name["aspect"]["files"])
    # outliers need embeddings, which a fast scan does not store: said, not guessed
    assert by_name["outlier"]["checked"] == by_name["outlier"]["count"] == 0
    assert "embeddings" in by_name["outlier"]["note"]
    assert by_name["blurry"]["note"] is None


def test_flagged_files_come_by_id_with_their_thumbnails(client):
    blank = client.get("/health", params={"check": "blank"}).json()
    assert [c["name"] for c in blank["checks"]] == ["blank"]
    file = blank["checks"][0]["files"][0]
    assert client.get(f"/files/{file['file_id']}").json()["path"] == file["path"]
    thumb = client.get(f"/files/{file['file_id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"].startswith("image/")


def test_limit_and_offset_page_through_the_flagged_files(client):
    whole = client.get("/health").json()
    check = max(whole["checks"], key=lambda c: c["count"])
    assert check["count"] >= 2, whole
    first = client.get("/health", params={"check": check["name"], "limit": 1}).json()
    second = client.get("/health", params={"check": check["name"], "limit": 1,
                                           "offset": 1}).json()
    assert first["checks"][0]["files"] == check["files"][:1]
    assert second["checks"][0]["files"] == check["files"][1:2]
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"check": "sharpness"}):
        assert client.get("/health", params=bad).status_code == 422, bad


def test_groups_can_be_narrowed_to_those_with_a_flagged_picture(client):
    every = client.get("/groups").json()
    members = [{os.path.basename(f["path"]) for f in g["files"]} for g in every["groups"]]
    assert {"a.png", "a_blurred.png"} in members, members
    blurry = client.get("/groups", params={"health": "blurry"}).json()
    assert [{os.path.basename(f["path"]) for f in g["files"]} for g in blurry["groups"]] == [
        {"a.png", "a_blurred.png"}]
    assert blurry["total"] == 1 and blurry["groups"][0]["number"] == 1
    assert client.get("/groups", params={"health": "huge"}).json()["total"] == 0
    assert client.get("/groups", params={"health": "fuzzy"}).status_code == 422
    # a plan of those groups only (POST /plan takes the same filter)
    plan = client.post("/plan", json={"health": "blurry"}).json()
    assert len(plan["groups"]) == 1
    assert len(client.post("/plan", json={}).json()["groups"]) == every["total"] == 3


def test_the_method_menu_offers_matchers_only(client):
    methods = client.get("/info").json()["methods"]
    assert methods[0] == "auto" and {"phash", "dhash", "pixels"} <= set(methods)
    assert "health" not in methods and "colour" not in methods
