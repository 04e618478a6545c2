"""`lookalike serve` under hostile or careless clients, through real HTTP (uvicorn on 127.0.0.1
over a real index of real pictures): cross-site writes from a web page, many uploads at
once, another process holding the index, numbers out of range, and a stop while a request
is still arriving."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from lookalike.index.store import open_index  # noqa: E402
from lookalike.service.app import create_app  # noqa: E402
from lookalike.service.guard import cross_site  # noqa: E402
from lookalike.service.models import MAX_ID  # noqa: E402

from .conftest import LOOKALIKE, cli_env, jpeg, picture  # noqa: E402
from .serving import build_review, running  # noqa: E402
from .test_report_html import CHROMIUM_ARGS, _browser  # noqa: E402

TOKEN = "hardening-token-for-tests"
BIG = 2**63  # one past the largest SQLite integer (it used to be a 500)


@dataclass
class Site:
    root: Path
    index: Path
    url: str
    ids: dict[str, int]  # file name -> id

    @property
    def uploads(self) -> Path:
        return self.index.parent / "uploads"


def _site(root: Path, url: str, index: Path) -> Site:
    with open_index(index) as opened:
        paths = [f.path for files in opened.live_files().values() for f in files]
        ids = {Path(p).name: i for p, i in opened.live_file_ids(paths).items()}
    return Site(root, index, url, ids)


@pytest.fixture
def site(tmp_path) -> Site:
    review = build_review(tmp_path / "photos")
    with running(create_app(review.index)) as url:
        yield _site(review.root, url, review.index)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Site:
    """One collection for the tests that change nothing (or only marks)."""
    review = build_review(tmp_path_factory.mktemp("hardening") / "photos")
    with running(create_app(review.index)) as url:
        yield _site(review.root, url, review.index)


def upload(url: str, data: bytes, name: str = "new.jpg", **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/index", files={"file": (name, data, "image/jpeg")}, timeout=120,
                      **kwargs)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def marks(index: Path) -> dict[int, str]:
    with open_index(index) as opened:
        return {i: m.mark for i, m in opened.marks().items()}


# --- cross-site writes --------------------------------------------------------------------------

EVIL = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}


def test_a_cross_site_upload_is_refused_and_adds_nothing(site):
    """What `fetch(url, {method: "POST", mode: "no-cors", body: formData})` on another site
    sends: no preflight, so only the server can stop it."""
    with open_index(site.index) as index:
        before = sum(len(v) for v in index.live_files().values())
    port = site.url.rsplit(":", 1)[1]
    for headers in (EVIL, {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"},
                    {"Origin": f"http://localhost:{port}"},  # another origin, same server
                    {"Origin": f"https://127.0.0.1:{port}"},
                    {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"}):
        reply = upload(site.url, jpeg(picture(9301)), headers=headers)
        assert reply.status_code == 403, (headers, reply.text)
        assert "cross-" in reply.json()["detail"]
    assert listing(site.uploads) == []
    with open_index(site.index) as index:
        assert sum(len(v) for v in index.live_files().values()) == before


def test_every_write_route_refuses_other_sites_and_serves_its_own_page(shared):
    file_id = shared.ids["d.jpg"]
    writes = [("/query", {"files": {"file": ("q.jpg", jpeg(picture(7004)), "image/jpeg")}}),
              ("/index", {"json": {"path": "/etc/passwd"}}),
              ("/decisions", {"json": {"decision": "keep", "file_ids": [file_id]}}),
              ("/plan", {"json": {}}), ("/apply", {"json": {"plan_id": "x"}}),
              ("/undo", {"json": {"run": "x"}})]
    before = marks(shared.index)
    for route, body in writes:
        for method in ("POST", "PUT", "DELETE"):
            reply = httpx.request(method, f"{shared.url}{route}", headers=EVIL, timeout=30,
                                  **body)
            assert reply.status_code == 403, (method, route, reply.text)
    assert marks(shared.index) == before
    # the web UI's own fetches: same origin, as a browser labels them
    own = {"Origin": shared.url, "Sec-Fetch-Site": "same-origin"}
    reply = httpx.post(f"{shared.url}/decisions", headers=own, timeout=30,
                       json={"decision": "keep", "file_ids": [file_id]})
    assert reply.status_code == 200, reply.text
    assert marks(shared.index)[file_id] == "keep"
    reply = httpx.post(f"{shared.url}/query", headers=own, timeout=30,
                       files={"file": ("q.jpg", jpeg(picture(7004)), "image/jpeg")})
    assert reply.status_code == 200 and reply.json()["matches"][0]["file_id"] == file_id
    # reads stay open: a page elsewhere cannot read the answer anyway (no CORS headers)
    reply = httpx.get(f"{shared.url}/groups", headers=EVIL, timeout=30)
    assert reply.status_code == 200 and "access-control-allow-origin" not in reply.headers


def test_behind_a_token_the_browsers_verdict_still_counts(tmp_path):
    review = build_review(tmp_path / "photos")
    good = {"Authorization": f"Bearer {TOKEN}"}
    body = {"decision": "keep", "file_ids": [1]}
    with running(create_app(review.index, token=TOKEN)) as url:
        for site_header in ("cross-site", "same-site"):
            reply = httpx.post(f"{url}/decisions", json=body, timeout=30,
                               headers={**good, "Sec-Fetch-Site": site_header})
            assert reply.status_code == 403, reply.text
        # a proxy in front may rewrite Host or scheme: the Origin is not compared here
        reply = httpx.post(f"{url}/decisions", json=body, timeout=30, headers={
            **good, "Origin": "https://photos.example", "Sec-Fetch-Site": "same-origin"})
        assert reply.status_code == 200, reply.text


SEND_UPLOAD = """async ([target, bytes]) => {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], {type: "image/jpeg"}), "x.jpg");
  const reply = await fetch(target, {method: "POST", mode: "no-cors", body: form});
  return reply.type;
}"""


def test_a_page_of_another_origin_in_a_real_browser_cannot_upload(site):
    """The attack itself, in chromium: a page at http://localhost:PORT (another origin,
    another site) posts a form to http://127.0.0.1:PORT/index without CORS; the same fetch
    from the server's own page goes through."""
    sync_playwright = _browser()
    port = site.url.rsplit(":", 1)[1]
    data = list(jpeg(picture(9601)))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"http://localhost:{port}/")
            assert page.evaluate(SEND_UPLOAD, [f"{site.url}/index", data]) == "opaque"
            assert listing(site.uploads) == []
            page.goto(f"{site.url}/")
            assert page.evaluate(SEND_UPLOAD, [f"{site.url}/index", data]) == "basic"
            assert len(listing(site.uploads)) == 1
        finally:
            browser.close()


@pytest.mark.parametrize("origin, host, scheme, refused", [
    ("http://127.0.0.1:8765", "127.0.0.1:8765", "http", False),
    ("http://LOCALHOST:8765", "localhost:8765", "http", False),
    ("http://[::1]:8765", "[::1]:8765", "http", False),
    ("http://127.0.0.1", "127.0.0.1:80", "http", False),  # the default port, left out
    ("https://photos.example", "photos.example:443", "https", False),
    ("http://127.0.0.1:8766", "127.0.0.1:8765", "http", True),
    ("http://127.0.0.1:8765", "127.0.0.1:8765", "https", True),
    ("http://127.0.0.1:8765/x", "127.0.0.1:8765", "http", True),
    ("http://user@127.0.0.1:8765", "127.0.0.1:8765", "http", True),
    ("http://127.0.0.1:99999", "127.0.0.1:99999", "http", True),  # not a port: junk
    ("file://", "127.0.0.1:8765", "http", True),
    ("null", "127.0.0.1:8765", "http", True),
])
def test_origins_are_compared_as_scheme_host_and_port(origin, host, scheme, refused):
    scope = {"type": "http", "method": "POST", "scheme": scheme,
             "headers": [(b"host", host.encode()), (b"origin", origin.encode())]}
    assert (cross_site(scope) is not None) == refused


# --- many writes at once, and another process's lock ----------------------------------------

def test_parallel_uploads_queue_and_are_all_indexed(site):
    pictures = [jpeg(picture(9400 + n)) for n in range(12)]
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda n: upload(site.url, pictures[n], f"p{n}.jpg"),
                                range(12)))
    assert [r.status_code for r in replies] == [200] * 12, [r.text for r in replies]
    ids = [r.json()["files"][0]["file_id"] for r in replies]
    assert None not in ids and len(set(ids)) == 12
    assert len(listing(site.uploads)) == 12
    with open_index(site.index) as index:
        live = {f.path for files in index.live_files().values() for f in files}
    assert {str(p) for p in site.uploads.iterdir()} <= live
    for file_id in ids:
        assert httpx.get(f"{site.url}/files/{file_id}/thumbnail", timeout=30).status_code == 200


HOLD_LOCK = """
import sys
from lookalike.index.store import open_index
index = open_index(sys.argv[1])
index.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_an_upload_refused_for_another_process_leaves_nothing(site):
    upload(site.url, jpeg(picture(9501)), "first.jpg")  # uploads/ holds one file already
    before = listing(site.uploads)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(site.index)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        reply = httpx.post(f"{site.url}/index", timeout=60, files=[
            ("file", ("a.jpg", jpeg(picture(9502)), "image/jpeg")),
            ("file", ("b.jpg", jpeg(picture(9503)), "image/jpeg"))])
        assert reply.status_code == 409, reply.text
        assert f"pid {holder.pid}" in reply.json()["detail"]
        assert listing(site.uploads) == before
        reply = httpx.post(f"{site.url}/decisions", timeout=60,
                           json={"decision": "keep", "file_ids": [site.ids["d.jpg"]]})
        assert reply.status_code == 409, reply.text
    finally:
        holder.stdin.close()
        holder.wait(30)
    reply = upload(site.url, jpeg(picture(9502)))  # the lock is free again: it goes in
    assert reply.status_code == 200 and reply.json()["files"][0]["file_id"] is not None
    assert len(listing(site.uploads)) == len(before) + 1


# --- numbers and filters out of range -----------------------------------------------------------

OUT_OF_RANGE = [
    ("GET", f"/files/{BIG}", {}), ("GET", f"/files/{BIG}/thumbnail", {}),
    ("GET", f"/files/{BIG}/content", {}), ("GET", f"/files/{10**30}", {}),
    ("GET", f"/files/{2**63 - 1}", {}), ("GET", f"/files/{MAX_ID + 1}", {}),
    ("GET", "/files/0", {}), ("GET", "/files/-1", {}),
    ("POST", "/decisions", {"json": {"decision": "keep", "file_ids": [BIG]}}),
    ("POST", "/decisions", {"json": {"decision": "not-duplicate", "file_ids": [1],
                                     "others": [BIG]}}),
    ("POST", "/decisions", {"json": {"decision": "keep", "file_ids": [0]}}),
    ("GET", "/groups", {"params": {"where": 'a"b:c'}}),
    ("GET", "/groups", {"params": {"where": "a\\b:c"}}),
    ("GET", "/groups", {"params": {"where": ["k:v"] * 21}}),
    ("GET", "/groups", {"params": {"page": 10**7}}),
    ("GET", "/groups", {"params": {"page": BIG}}),
    ("GET", "/groups", {"params": {"min_size": BIG}}),
    ("GET", "/groups", {"params": {"max_size": 10**7}}),
    ("GET", "/groups", {"params": {"method": "m" * 65}}),
    ("GET", "/decisions", {"params": {"limit": BIG}}),
    ("POST", "/plan", {"json": {"min_size": BIG}}),
    ("POST", "/plan", {"json": {"where": ['a"b:c']}}),
    ("POST", "/query", {"params": {"max_distance": 257}}),
    ("POST", "/query", {"params": {"max_distance": "99999999999999999999"}}),
    ("POST", "/query", {"params": {"limit": BIG}}),
]


@pytest.mark.parametrize("method, route, request_args", OUT_OF_RANGE)
def test_numbers_out_of_range_are_a_422_never_a_500_or_a_hang(shared, method, route,
                                                                request_args):
    if route == "/query":
        request_args = {**request_args, "files": {"file": ("q.jpg", jpeg(picture(7004)),
                                                            "image/jpeg")}}
    reply = httpx.request(method, f"{shared.url}{route}", timeout=10, **request_args)
    assert reply.status_code == 422, reply.text


def test_the_largest_ids_and_radius_are_served(shared):
    top = MAX_ID  # 2**53 - 1: the largest integer a browser reads exactly
    for route in (f"/files/{top}", f"/files/{top}/thumbnail", f"/files/{top}/content"):
        reply = httpx.get(f"{shared.url}{route}", timeout=10)
        assert reply.status_code == 404 and str(top) in reply.json()["detail"], route
    reply = httpx.post(f"{shared.url}/decisions", timeout=10,
                       json={"decision": "keep", "file_ids": [top]})
    assert reply.status_code == 404, reply.text
    reply = httpx.post(f"{shared.url}/query", params={"max_distance": 256}, timeout=30,
                       files={"file": ("q.jpg", jpeg(picture(7004)), "image/jpeg")})
    assert reply.status_code == 200 and reply.json()["matches"], reply.text


def test_a_malformed_filter_is_the_requests_fault_even_without_an_index(tmp_path):
    with running(create_app(tmp_path / "none" / "index.db")) as url:
        reply = httpx.get(f"{url}/groups", params={"where": 'a"b:c'}, timeout=10)
        assert reply.status_code == 422, reply.text
        assert reply.json()["detail"][0]["loc"] == ["query", "where", 0]
        assert httpx.get(f"{url}/groups", timeout=10).status_code == 503  # no index: ours


# --- stopping -------------------------------------------------------------------------------------

def test_sigterm_stops_the_server_while_a_request_is_still_arriving(shared, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(LOOKALIKE), "serve", "--index", str(shared.index),
                               "--port", str(port), "--no-warm"], env=cli_env(),
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/info").status_code == 200
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            # an upload whose body never finishes arriving: the request is in progress
            slow.sendall(f"POST /index HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                         "multipart/form-data; boundary=xx\r\nContent-Length: 100000\r\n\r\n"
                         "--xx\r\n".encode())
            time.sleep(0.5)
            started = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            server.wait(10)  # TimeoutExpired fails the test: it used to wait for ever
            assert time.monotonic() - started < 10
        assert "/openapi.json" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
