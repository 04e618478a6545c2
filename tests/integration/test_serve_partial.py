"""GET /partial of `lookalike serve` and the web UI's Partial copies view, on a real index of
scikit-image photographs with planted partial copies: a crop, a mirrored crop under a name
full of markup, and a photograph placed inside a larger page. The API must list each with
the frame where it lies in the larger picture; the browser must draw that frame at the same
place on the larger picture's thumbnail."""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageOps

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
skimage = pytest.importorskip("skimage")

from fastapi.testclient import TestClient  # noqa: E402

from lookalike.errors import LookalikeError  # noqa: E402
from lookalike.index.store import open_index  # noqa: E402
from lookalike.scan import scan  # noqa: E402
from lookalike.search.partial import containment_pairs  # noqa: E402
from lookalike.service.app import create_app  # noqa: E402
from lookalike.service.routes_partial import Background, FoundPartial  # noqa: E402
from lookalike.service.state import StateCache  # noqa: E402

from .conftest import jpeg  # noqa: E402
from .serving import running  # noqa: E402
from .test_report_html import ARTIFACTS, ODD_NAME, _browser  # noqa: E402
from .test_serve_ui import browser_page  # noqa: E402

DATA = Path(skimage.__file__).parent / "data"
TOKEN = "partial-test-token"
METHODS = ["phash", "dhash", "local"]
ODD_CROP = ODD_NAME.replace("odd.jpg", "coffee crop.jpg")  # markup in a legal file name


def photo(name: str) -> Image.Image:
    with Image.open(DATA / name) as image:
        return image.convert("RGB")


@dataclass(frozen=True)
class Library:
    root: Path
    index: Path
    # inner name -> (outer name, the box where it lies in outer, outer's width and height)
    truth: dict[str, tuple[str, tuple[int, int, int, int], tuple[int, int]]]


def build_library(root: Path) -> Library:
    """Originals, a crop, a mirrored crop, and a page holding a photograph; scanned with
    local features."""
    root.mkdir(parents=True)
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        (root / f"{name.split('.')[0]}.jpg").write_bytes(jpeg(photo(name)))
    truth = {}
    (root / "astronaut_crop.jpg").write_bytes(
        jpeg(photo("astronaut.png").crop((100, 50, 400, 350))))
    truth["astronaut_crop.jpg"] = ("astronaut.jpg", (100, 50, 400, 350), (512, 512))
    (root / ODD_CROP).write_bytes(
        jpeg(ImageOps.mirror(photo("coffee.png").crop((200, 100, 600, 400)))))
    truth[ODD_CROP] = ("coffee.jpg", (200, 100, 600, 400), (600, 400))
    page = Image.new("RGB", (1400, 1000), (250, 250, 250))
    page.paste(photo("chelsea.png").resize((420, 300)), (800, 500))
    (root / "page.jpg").write_bytes(jpeg(page))
    truth["chelsea.jpg"] = ("page.jpg", (800, 500, 1220, 800), (1400, 1000))
    index = root / ".lookalike" / "index.db"
    scan([root], index_path=index, methods=METHODS, workers=1)
    return Library(root, index, truth)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Library:
    return build_library(tmp_path_factory.mktemp("partial") / "photos")


@pytest.fixture(scope="module")
def client(library) -> TestClient:
    with TestClient(create_app(library.index), base_url="http://127.0.0.1") as c:
        yield c


def partial(client: TestClient, **params) -> dict:
    """GET /partial, asked again while the search is under way (as the UI does)."""
    deadline = time.monotonic() + 180
    while True:
        reply = client.get("/partial", params=params)
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        if not answer["computing"]:
            return answer
        assert answer["pairs"] == [] and time.monotonic() < deadline


def by_names(answer: dict) -> dict[tuple[str, str], dict]:
    return {(os.path.basename(p["inner"]["path"]), os.path.basename(p["outer"]["path"])): p
            for p in answer["pairs"]}


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_each_planted_copy_is_listed_with_its_frame_and_ids(client, library):
    answer = partial(client, page_size=500)
    assert answer["reason"] is None and not answer["capped"]
    found = by_names(answer)
    with open_index(library.index) as index:
        ids = {os.path.basename(p): i for p, i in index.live_file_ids(
            str(p) for p in library.root.iterdir()).items()}
        expected = [p for p in containment_pairs(index) if p.relation != "same"]
    assert answer["total"] == len(answer["pairs"]) == len(expected)  # as dupes --partial
    assert [p["number"] for p in answer["pairs"]] == list(range(1, answer["total"] + 1))
    for inner, (outer, box, size) in library.truth.items():
        pair = found.get((inner, outer))
        assert pair is not None, (inner, outer, sorted(found))
        assert pair["relation"] == "inside"
        assert pair["inner"]["file_id"] == ids[inner] and pair["outer"]["file_id"] == ids[outer]
        assert (pair["outer"]["width"], pair["outer"]["height"]) == size
        assert iou(pair["box"], box) >= 0.8, pair
        truth = [box[0] / size[0], box[1] / size[1], box[2] / size[0], box[3] / size[1]]
        assert pair["box_fraction"] == pytest.approx(truth, abs=0.03), pair
        width = int(re.fullmatch(r"a crop of it, or placed inside it, at (\d+)% of its width",
                                 pair["words"]).group(1))
        assert abs(width - 100 * (truth[2] - truth[0])) <= 3, pair["words"]
        assert pair["inliers"] >= 10 and pair["detail"]
    assert found[(ODD_CROP, "coffee.jpg")]["mirror"] is True
    assert found[("astronaut_crop.jpg", "astronaut.jpg")]["mirror"] is False
    assert not {("coffee.jpg", "chelsea.jpg"), ("chelsea.jpg", "coffee.jpg"),
                ("rocket.jpg", "page.jpg")} & set(found)


def test_pages_are_bounded_and_numbered(client):
    everything = partial(client, page_size=500)["pairs"]
    assert len(everything) >= 3
    second = partial(client, page=2, page_size=1)
    assert second["pages"] == second["total"] == len(everything)
    assert second["pairs"] == [everything[1]] and second["pairs"][0]["number"] == 2
    assert partial(client, page=len(everything) + 1, page_size=1)["pairs"] == []
    for params in ({"page_size": 501}, {"page_size": 0}, {"page": 0}, {"page": "x"}):
        assert client.get("/partial", params=params).status_code == 422, params


def test_without_local_features_it_says_why_then_a_new_scan_finds_them(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "astronaut.jpg").write_bytes(jpeg(photo("astronaut.png")))
    (root / "crop.jpg").write_bytes(jpeg(photo("astronaut.png").crop((100, 50, 400, 350))))
    index = root / ".lookalike" / "index.db"
    scan([root], index_path=index, methods=["phash"], workers=1)
    with TestClient(create_app(index), base_url="http://127.0.0.1") as client:
        answer = partial(client)
        assert answer["pairs"] == [] and answer["total"] == 0
        assert "no local features" in answer["reason"], answer
        assert "--method local" in answer["reason"] and "--mode thorough" in answer["reason"]
        scan([root], index_path=index, methods=["phash", "local"], workers=1)
        answer = partial(client)  # the index changed: searched again
        assert answer["reason"] is None
        assert set(by_names(answer)) == {("crop.jpg", "astronaut.jpg")}


def test_the_route_needs_the_token(library):
    app = create_app(library.index, token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/partial").status_code == 401
        reply = client.get("/partial", headers={"Authorization": "Bearer wrong"})
        assert reply.status_code == 401
        reply = client.get("/partial", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reply.status_code == 200, reply.text


class Counter:
    """A stand-in for the index's change counter, moved by the test."""

    def __init__(self) -> None:
        self.now = 1

    def value(self) -> int:
        return self.now


def test_a_slow_search_answers_computing_and_runs_one_at_a_time():
    release, states = threading.Event(), []
    counter = Counter()

    def slow() -> FoundPartial:
        states.append(counter.now)
        release.wait(10)
        return FoundPartial([], False, f"searched state {counter.now}")

    background = Background(StateCache(counter))
    assert background.result(slow, 0.05) is None  # under way: the request does not wait
    counter.now = 2  # a commit while it runs
    assert background.result(slow, 0.05) is None
    assert states == [1]  # no second search beside the first
    release.set()
    assert background.result(slow, 5).reason == "searched state 2"
    assert background.result(slow, 0).reason == "searched state 2"  # kept for this state
    assert states == [1, 2]


def test_a_failed_search_is_tried_again():
    attempts = []

    def flaky() -> FoundPartial:
        attempts.append(1)
        if len(attempts) == 1:
            raise LookalikeError("the index is busy")
        return FoundPartial([], False, "found")

    background = Background(StateCache(Counter()))
    with pytest.raises(LookalikeError):
        background.result(flaky, 5)
    assert background.result(flaky, 5).reason == "found"


def test_a_mark_does_not_search_again(library, monkeypatch):
    from lookalike.service import routes_partial

    searches = []
    real = routes_partial.containment_pairs
    monkeypatch.setattr(routes_partial, "containment_pairs",
                        lambda *args: searches.append(1) or real(*args))
    with TestClient(create_app(library.index), base_url="http://127.0.0.1") as client:
        first = partial(client)
        file_id = first["pairs"][0]["outer"]["file_id"]
        for decision in ("keep", "clear"):
            reply = client.post("/decisions", json={"decision": decision,
                                                    "file_ids": [file_id]})
            assert reply.status_code == 200, reply.text
            assert partial(client) == first
    assert len(searches) == 1


def test_the_view_draws_each_frame_where_the_api_places_it(library, client):
    sync_playwright = _browser()
    answer = partial(client, page_size=500)  # also leaves the server's search done
    expected = {(p["inner"]["file_id"], p["outer"]["file_id"]): p for p in answer["pairs"]}
    errors: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running(create_app(library.index)) as url, sync_playwright() as pw, \
            browser_page(pw, errors) as page:
        page.goto(f"{url}/")
        page.get_by_role("link", name="Partial copies").click()
        page.wait_for_selector("li.partial")
        page.wait_for_function("""() => [...document.querySelectorAll('li.partial img')]
            .every((img) => img.complete && img.naturalWidth > 0)""")
        drawn = page.locator("li.partial").evaluate_all("""(cards) => cards.map((card) => {
            const [inner, outer] = [...card.querySelectorAll('.partial-side')];
            const ids = [inner, outer].map((s) => Number(s.querySelector('a').getAttribute('href')
                .split('/')[1]));
            const img = outer.querySelector('img').getBoundingClientRect();
            const box = outer.querySelector('.partial-box');
            const b = box && box.getBoundingClientRect();
            return { ids, title: card.querySelector('h3').textContent,
                     img: [img.left, img.top, img.width, img.height],
                     box: b && [b.left, b.top, b.right, b.bottom] };
        })""")
        page.screenshot(path=str(ARTIFACTS / "ui-partial.png"), full_page=True)
        assert page.evaluate("window.pwned") is None  # the odd name stayed text
    assert errors == []
    assert len(drawn) == len(expected)
    for card in drawn:
        pair = expected[tuple(card["ids"])]
        assert os.path.basename(pair["inner"]["path"]) in card["title"]
        assert pair["words"] in card["title"]
        assert (card["box"] is None) == (pair["box_fraction"] is None), card
        if card["box"] is None:
            continue
        left, top, width, height = card["img"]
        assert width > 50 and abs(width / height - pair["outer"]["width"]
                                  / pair["outer"]["height"]) < 0.02
        shown = [(card["box"][0] - left) / width, (card["box"][1] - top) / height,
                 (card["box"][2] - left) / width, (card["box"][3] - top) / height]
        assert shown == pytest.approx(pair["box_fraction"], abs=2 / width), (card, pair)
    planted = next(c for c in drawn if ODD_CROP in c["title"])
    assert "coffee.jpg" in planted["title"]
