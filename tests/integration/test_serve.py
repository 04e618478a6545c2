"""The HTTP API of `lookalike serve` through real HTTP: uvicorn on 127.0.0.1 (a free port, in a
thread) over a real index of real pictures, talked to with httpx, and raw sockets where httpx
would tidy a malicious URL before sending it."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from lookalike.index.store import open_index  # noqa: E402
from lookalike.scan import scan  # noqa: E402
from lookalike.service.app import create_app  # noqa: E402

from .conftest import LOOKALIKE, cli_env, dihedral, jpeg, picture, png, png_bomb  # noqa: E402
from .serving import raw_get, running  # noqa: E402

MAX_UPLOAD = 1 << 20
MAX_PIXELS = 4_000_000
TOKEN = "s3cret-token-for-tests"


@dataclass
class Served:
    root: Path  # the allow-listed folder of indexed pictures
    outside: Path  # a folder beside it, not allow-listed
    index: Path
    url: str  # server without a token
    secured: str  # the same index, behind TOKEN
    ids: dict[str, int]  # file name -> files.id


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    base = tmp_path_factory.mktemp("serve")
    root, outside = base / "pics", base / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a.jpg").write_bytes(jpeg(picture(8101)))
    with Image.open(root / "a.jpg") as decoded:  # the same pixels, losslessly re-encoded
        (root / "a_copy.png").write_bytes(png(decoded.convert("RGB")))
    (root / "b.jpg").write_bytes(jpeg(picture(8102)))
    (root / "b_small.jpg").write_bytes(jpeg(picture(8102).resize((120, 90)), quality=80))
    (root / "c.jpg").write_bytes(jpeg(picture(8103)))
    (outside / "secret.jpg").write_bytes(jpeg(picture(8104)))
    (root / "link.jpg").symlink_to(outside / "secret.jpg")  # not followed by the scan
    index = base / "index" / "index.db"
    scan([root], index_path=index, workers=1)
    with sqlite3.connect(index) as conn:  # metadata as `lookalike ingest --keep-columns` sets it
        conn.execute("UPDATE files SET meta=? WHERE path LIKE ?",
                     (json.dumps({"category": "tops"}), "%/a%"))
        ids = {Path(p).name: i for i, p in conn.execute(
            "SELECT id, path FROM files WHERE status='ok'")}
    assert {"a.jpg", "a_copy.png", "b.jpg", "b_small.jpg", "c.jpg"} <= set(ids)
    app = create_app(index, allow_paths=[root], max_upload_bytes=MAX_UPLOAD,
                     max_pixels=MAX_PIXELS)
    secured = create_app(index, token=TOKEN, allow_paths=[root])
    with running(app) as url, running(secured) as secured_url:
        yield Served(root, outside, index, url, secured_url, ids)


def post_file(url: str, data: bytes, name: str = "upload.jpg", **kwargs) -> httpx.Response:
    return httpx.post(url, files={"file": (name, data, "application/octet-stream")},
                      timeout=30, **kwargs)


# --- query -------------------------------------------------------------------------------------

@pytest.mark.parametrize("transform", ["identity", "rot90", "mirror+rot180"])
def test_query_upload_finds_the_original_with_its_orientation(served, transform):
    upload = jpeg(dihedral(picture(8103), transform), quality=85)
    reply = post_file(f"{served.url}/query", upload)
    assert reply.status_code == 200, reply.text
    best = reply.json()["matches"][0]
    assert best["file_id"] == served.ids["c.jpg"]
    assert best["transform"] == transform
    assert best["path"].endswith("c.jpg") and 0 < best["score"] <= 1
    words = {"identity": "resized or re-encoded copy · similarity ",
             "rot90": "copy, rotated 90° counter-clockwise · similarity ",
             "mirror+rot180": "copy, mirrored and rotated 180° · similarity "}[transform]
    assert best["words"].startswith(words), best["words"]


def test_query_upload_of_an_indexed_file_is_a_byte_match(served):
    reply = post_file(f"{served.url}/query", (served.root / "b.jpg").read_bytes())
    assert reply.status_code == 200, reply.text
    matches = {m["file_id"]: m for m in reply.json()["matches"]}
    assert matches[served.ids["b.jpg"]]["method"] == "bytes"
    assert matches[served.ids["b.jpg"]]["distance"] == 0
    assert served.ids["b_small.jpg"] in matches  # the resized copy, by its hashes
    assert served.ids["c.jpg"] not in matches


def test_query_by_path_under_the_allow_list(served):
    reply = httpx.post(f"{served.url}/query", json={"path": str(served.root / "a.jpg")})
    assert reply.status_code == 200, reply.text
    found = {m["file_id"]: m["method"] for m in reply.json()["matches"]}
    assert found[served.ids["a.jpg"]] == "bytes"
    assert found[served.ids["a_copy.png"]] == "pixels"


def _truncated_jpeg() -> bytes:
    data = jpeg(picture(8105))
    return data[:len(data) // 3]


BAD_UPLOADS = {
    "zero-byte": (lambda: b"", 400, "empty"),
    "text": (lambda: b"name,price\nshirt,12\n" * 20, 415, "not an image"),
    "html": (lambda: b"<!doctype html><html><body>404</body></html>", 415, "html"),
    "corrupt header": (lambda: b"\x89PNG\r\n\x1a\n" + os.urandom(600), 422, "cannot read"),
    "truncated jpeg": (_truncated_jpeg, 422, "cannot read"),
    "over the byte limit": (lambda: b"\xff\xd8\xff" + os.urandom(MAX_UPLOAD + 200_000), 413,
                            "limit"),
    "decompression bomb": (lambda: png_bomb(50_000, 50_000), 413, "pixels"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_get_4xx_with_a_reason(served, case):
    make, status, word = BAD_UPLOADS[case]
    data = make()
    for route in ("/query", "/index"):
        reply = post_file(f"{served.url}{route}", data)
        assert reply.status_code == status, (route, reply.text)
        assert word in reply.json()["detail"].lower(), (route, reply.text)


def test_bomb_below_the_byte_limit_is_small(served):
    """The bomb case is refused for its pixels, not its size."""
    assert len(png_bomb(50_000, 50_000)) < 1000


def test_query_refuses_other_bodies_and_a_missing_file_field(served):
    reply = httpx.post(f"{served.url}/query", content=b"\xff\xd8\xff",
                       headers={"content-type": "image/jpeg"})
    assert reply.status_code == 415 and "multipart" in reply.json()["detail"]
    reply = httpx.post(f"{served.url}/query", files={"other": ("x.jpg", b"123")})
    assert reply.status_code == 422 and "'file'" in reply.json()["detail"]
    reply = httpx.post(f"{served.url}/query", content=b"{not json",
                       headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "json" in reply.json()["detail"].lower()


def test_unknown_method_is_a_400(served):
    reply = post_file(f"{served.url}/query?method=nohash", jpeg(picture(8103)))
    assert reply.status_code == 400 and "nohash" in reply.json()["detail"]


# --- no path reaches the file system -----------------------------------------------------------

def test_paths_outside_the_allow_list_are_refused(served):
    secret = served.outside / "secret.jpg"
    attempts = [
        str(secret),  # absolute, elsewhere
        f"{served.root}/../outside/secret.jpg",  # climbing out
        f"{served.root}/%2e%2e/outside/secret.jpg",  # URL-encoded (never decoded: no such file)
        str(served.root / "link.jpg"),  # a symlink inside that leads out
        "a.jpg",  # relative
        "/etc/passwd",
        f"{served.root}/a.jpg\x00.png",
    ]
    for path in attempts:
        for route in ("/query", "/index"):
            reply = httpx.post(f"{served.url}{route}", json={"path": path})
            assert reply.status_code in (400, 403, 404), (path, route, reply.text)
            assert "detail" in reply.json()
            assert "matches" not in reply.json() and "files" not in reply.json()
    assert httpx.post(f"{served.url}/query", json={"path": str(secret)}).status_code == 403
    reply = httpx.post(f"{served.url}/query", json={"path": str(served.root / "link.jpg")})
    assert reply.status_code == 403 and "outside" in reply.json()["detail"]


def test_server_without_an_allow_list_refuses_every_path(served):
    app = create_app(served.index)
    with running(app) as url:
        reply = httpx.post(f"{url}/query", json={"path": str(served.root / "a.jpg")})
    assert reply.status_code == 403 and "allow-list" in reply.json()["detail"]


@pytest.mark.parametrize("target", [
    "/files/../../../etc/passwd",
    "/files/..%2F..%2Fetc%2Fpasswd",
    "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd/content",
    "/files/1/../../../../etc/passwd",
    "/files/%2Fetc%2Fpasswd/content",
    "/static/../app.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e/limits.py",
    "/files/-1/content",
    "/files/999999/content",
])
def test_traversal_in_urls_reaches_nothing(served, target):
    status, body = raw_get(served.url, target)
    assert status in (400, 404, 422), (target, status, body[:200])
    assert b"root:" not in body and b"import" not in body


def test_a_file_is_served_only_while_it_is_the_one_indexed(served, tmp_path):
    file_id = served.ids["b_small.jpg"]
    path = served.root / "b_small.jpg"
    original = path.read_bytes()
    reply = httpx.get(f"{served.url}/files/{file_id}/content")
    assert reply.status_code == 200 and reply.content == original
    assert reply.headers["content-type"] == "image/jpeg"
    path.unlink()
    try:
        path.symlink_to(served.outside / "secret.jpg")  # swapped for a link out
        for route in ("content", "thumbnail"):
            reply = httpx.get(f"{served.url}/files/{file_id}/{route}")
            assert reply.status_code in (404, 409), reply.text
            assert reply.content != (served.outside / "secret.jpg").read_bytes()
    finally:
        path.unlink()
        path.write_bytes(original)
        stat = os.stat(path)
        with sqlite3.connect(served.index) as conn:  # the row as the scan left it
            conn.execute("UPDATE files SET mtime_ns=? WHERE id=?", (stat.st_mtime_ns, file_id))


# --- token ---------------------------------------------------------------------------------------

def test_token_is_required_and_checked(served):
    url = f"{served.secured}/files/{served.ids['a.jpg']}"
    assert httpx.get(url).status_code == 401
    status, _ = raw_get(served.secured, f"/files/{served.ids['a.jpg']}",
                        "Authorization: Bearer \r\n")
    assert status == 401
    for wrong in (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x" * len(TOKEN)):
        reply = httpx.get(url, headers={"Authorization": f"Bearer {wrong}"})
        assert reply.status_code == 401, wrong
    assert httpx.get(url, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    reply = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 200 and reply.json()["file_id"] == served.ids["a.jpg"]


def test_token_is_checked_before_an_upload_is_read(served):
    reply = post_file(f"{served.secured}/query", b"\xff\xd8\xff" + b"\0" * (2 << 20))
    assert reply.status_code == 401
    reply = post_file(f"{served.secured}/query", jpeg(picture(8103)),
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 200 and reply.json()["matches"]


def test_the_schema_describes_the_api_without_a_token(served):
    spec = httpx.get(f"{served.secured}/openapi.json").json()
    assert {"/query", "/index", "/groups", "/files/{file_id}",
            "/files/{file_id}/thumbnail"} <= set(spec["paths"])
    assert "MatchOut" in spec["components"]["schemas"]
    assert "lookalike" in httpx.get(f"{served.secured}/").text
    # no interactive docs: they would load Swagger UI from a CDN into this origin
    for route in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert httpx.get(f"{served.url}{route}").status_code == 404, route
        assert httpx.get(f"{served.secured}{route}").status_code == 401, route


def test_serving_beyond_loopback_without_a_token_is_refused(tmp_path):
    for host in ("0.0.0.0", "192.0.2.1", "::", "example.org"):
        done = subprocess.run([str(LOOKALIKE), "serve", "--host", host, "--index",
                               str(tmp_path / "index.db")], capture_output=True, text=True,
                              env=cli_env(), timeout=60)
        assert done.returncode == 2, done
        assert "without a token" in done.stderr, done.stderr


def test_the_command_serves_with_a_token_file(served, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    process = subprocess.Popen([str(LOOKALIKE), "serve", "--index", str(served.index),
                                "--port", str(port), "--token-file", str(token_file)],
                               env=cli_env(), stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/files/{served.ids['c.jpg']}"
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert reply.status_code == 200 and reply.json()["path"].endswith("c.jpg")
        assert httpx.get(url).status_code == 401
    finally:
        process.terminate()
        process.wait(10)


# --- index, groups, files ----------------------------------------------------------------------

def test_index_adds_an_upload_that_queries_then_find(served):
    upload = jpeg(picture(8110))
    reply = post_file(f"{served.url}/index", upload, name="../../new.jpg")
    assert reply.status_code == 200, reply.text
    added, = reply.json()["files"]
    assert added["error"] is None and added["name"] == "new.jpg"
    described = httpx.get(f"{served.url}/files/{added['file_id']}").json()
    assert Path(described["path"]).parent == served.index.parent / "uploads"
    reply = post_file(f"{served.url}/query", jpeg(dihedral(picture(8110), "rot270")))
    assert reply.json()["matches"][0]["file_id"] == added["file_id"]
    again = post_file(f"{served.url}/index", upload).json()
    assert again["files"][0]["file_id"] == added["file_id"] and again["unchanged"] == 1


def test_index_while_another_writer_holds_it_is_a_409(served):
    with open_index(served.index) as writer:
        writer.acquire()
        reply = post_file(f"{served.url}/index", jpeg(picture(8111)))
    assert reply.status_code == 409 and "busy" in reply.json()["detail"]


def test_groups_are_paged_and_filtered(served):
    everything = httpx.get(f"{served.url}/groups", params={"page_size": 100}).json()
    names = [{Path(f["path"]).name for f in g["files"]} for g in everything["groups"]]
    assert {"a.jpg", "a_copy.png"} in names and {"b.jpg", "b_small.jpg"} in names
    assert everything["total"] == len(everything["groups"]) >= 2
    pages = [httpx.get(f"{served.url}/groups", params={"page": p, "page_size": 1}).json()
             for p in range(1, everything["total"] + 2)]
    assert [p["groups"] for p in pages[:-1]] == [[g] for g in everything["groups"]]
    assert pages[-1]["groups"] == [] and pages[0]["pages"] == everything["total"]
    tops = httpx.get(f"{served.url}/groups", params={"where": "category:tops"}).json()
    assert [{Path(f["path"]).name for f in g["files"]} for g in tops["groups"]] == \
        [{"a.jpg", "a_copy.png"}]
    exact = httpx.get(f"{served.url}/groups", params={"method": "pixels"}).json()
    assert {"b.jpg", "b_small.jpg"} not in [{Path(f["path"]).name for f in g["files"]}
                                              for g in exact["groups"]]
    assert httpx.get(f"{served.url}/groups", params={"min_size": 3}).json()["total"] == 0
    for bad in ({"page": 0}, {"page_size": 10_000}, {"where": "category"}, {"method": "zz"}):
        reply = httpx.get(f"{served.url}/groups", params=bad)
        assert reply.status_code in (400, 422), (bad, reply.text)


def test_files_describe_and_thumbnail_indexed_files(served):
    file_id = served.ids["a.jpg"]
    described = httpx.get(f"{served.url}/files/{file_id}").json()
    assert described["meta"] == {"category": "tops"}
    assert (described["width"], described["height"], described["format"]) == (240, 180, "JPEG")
    assert described["bytes"] == (served.root / "a.jpg").stat().st_size
    thumb = httpx.get(f"{served.url}/files/{file_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert thumb.content[:4] == b"RIFF" and thumb.content[8:12] == b"WEBP"
    assert httpx.get(f"{served.url}/files/abc").status_code == 422
    reply = httpx.get(f"{served.url}/files/987654")
    assert reply.status_code == 404 and "987654" in reply.json()["detail"]


def test_a_scan_by_another_process_is_seen_by_the_next_request(served):
    """The cached groups and query state follow commits made elsewhere (a CLI scan)."""
    before = httpx.get(f"{served.url}/groups", params={"page_size": 100}).json()
    copy = served.root / "c_again.png"
    with Image.open(served.root / "c.jpg") as decoded:
        copy.write_bytes(png(decoded.convert("RGB")))
    done = subprocess.run([str(LOOKALIKE), "scan", str(copy), "--index", str(served.index),
                           "--workers", "1"], capture_output=True, text=True, env=cli_env(),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    after = httpx.get(f"{served.url}/groups", params={"page_size": 100}).json()
    assert after["total"] == before["total"] + 1
    assert {"c.jpg", "c_again.png"} in [{Path(f["path"]).name for f in g["files"]}
                                          for g in after["groups"]]
    reply = post_file(f"{served.url}/query", copy.read_bytes())
    assert {Path(m["path"]).name for m in reply.json()["matches"]} >= {"c.jpg", "c_again.png"}
