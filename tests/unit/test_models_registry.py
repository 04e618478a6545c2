"""The model registry: built-in entries, sidecars, and where resolve_model finds files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from lookalike.errors import LookalikeError, ModelError
from lookalike.models import registry
from lookalike.models.registry import (DEFAULT_MODEL, SIDECAR_KEYS, ModelSpec, get_model,
                                       list_models, load_sidecar, lookup_model,
                                       register_model, resolve_model, sidecar_path,
                                       unregister_model, write_sidecar)

PUBLIC = ["dinov2-small", "clip-vit-b32", "sscd-disc-mixup", "isc21-lyakaap-v107"]


def _spec(**changes) -> ModelSpec:
    fields = dict(name="tiny", file="tiny.onnx", input_size=32, mean=(0.5, 0.5, 0.5),
                  std=(0.25, 0.25, 0.25), dim=8, source="user", licence="Apache-2.0",
                  commercial=True)
    fields.update(changes)
    return ModelSpec(**fields)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LOOKALIKE_CACHE", str(folder))
    monkeypatch.delenv("LOOKALIKE_OFFLINE", raising=False)
    return folder


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """An empty stand-in for the package's data/models folder."""
    folder = tmp_path / "package"
    folder.mkdir()
    monkeypatch.setattr(registry, "package_dir", lambda: folder)
    return folder


def test_registry_lists_the_default_first_and_the_public_models():
    names = list_models()
    assert names[0] == DEFAULT_MODEL
    for name in PUBLIC:
        assert name in names


@pytest.mark.parametrize("name", PUBLIC)
def test_public_entries_say_where_they_come_from(name):
    spec = get_model(name)
    assert spec.source == "download" and spec.url.startswith("https://")
    assert spec.licence and spec.licence != "unknown"
    assert spec.verified == (spec.sha256 is not None)
    assert spec.dim > 0 and spec.input_size > 0


def test_non_commercial_models_are_marked_and_only_used_when_named():
    assert get_model("sscd-disc-mixup").commercial  # MIT since 2022-07-13
    assert not registry.commercial_licence("CC-BY-NC-4.0")
    for name in list_models()[1:]:
        spec = get_model(name)
        if not spec.commercial:
            assert "only used when named explicitly" in spec.description


def test_the_default_is_never_a_non_commercial_model(shipped, monkeypatch):
    non_commercial = replace(get_model("sscd-disc-mixup"), name=DEFAULT_MODEL,
                             licence="CC-BY-NC-4.0", commercial=False)
    monkeypatch.setitem(registry._entries(), DEFAULT_MODEL, non_commercial)
    with pytest.raises(ModelError, match="commercial"):
        lookup_model(None)
    assert lookup_model(DEFAULT_MODEL)[0] is non_commercial  # named, it is allowed


def test_unknown_name_is_a_typed_error_listing_the_known_ones():
    with pytest.raises(ModelError) as caught:
        get_model("no-such-model")
    assert isinstance(caught.value, LookalikeError)
    assert "dinov2-small" in str(caught.value)
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("no-such-model")


@pytest.mark.parametrize("change, word", [
    ({"resize": "stretch"}, "resize"), ({"colour": "RGBA"}, "colour"),
    ({"format": "tflite"}, "format"), ({"input_size": 0}, "input_size"),
    ({"dim": -1}, "dim"), ({"std": (0.2, 0.0, 0.2)}, "std"), ({"mean": (0.5, 0.5)}, "mean"),
    ({"sha256": "ABC"}, "sha256"), ({"verified": True}, "verified"),
    ({"source": "download"}, "url"), ({"file": "a/b.onnx"}, "file"),
])
def test_spec_checks_its_fields(change, word):
    with pytest.raises(ModelError, match=word):
        _spec(**change)


def test_register_and_unregister():
    spec = _spec(name="test-registered", source="download", url="http://127.0.0.1:9/x.onnx")
    register_model(spec)
    try:
        assert get_model("test-registered") is spec
        with pytest.raises(ModelError, match="already registered"):
            register_model(spec)
        register_model(replace(spec, dim=16), replace_existing=True)
        assert get_model("test-registered").dim == 16
    finally:
        unregister_model("test-registered")
    assert "test-registered" not in list_models()


def test_sidecar_round_trip(tmp_path):
    model = tmp_path / "mine.onnx"
    spec = _spec(name="mine", file="mine.onnx", resize="letterbox", colour="BGR",
                 output="embedding", similarity=0.8, description="a test model",
                 sha256="0" * 64, verified=True)
    side = write_sidecar(spec, model)
    assert side == sidecar_path(model) == tmp_path / "mine.onnx.json"
    data = json.loads(side.read_text())
    assert set(SIDECAR_KEYS) <= set(data)
    assert load_sidecar(model) == spec
    assert load_sidecar(side) == spec  # the sidecar's own path works too


def test_sidecar_with_extra_keys_and_inferred_licence(tmp_path):
    model = tmp_path / "theirs.onnx"
    sidecar_path(model).write_text(json.dumps({
        "input_size": 64, "resize": "center-crop", "mean": [0, 0, 0], "std": [1, 1, 1],
        "colour": "RGB", "dim": 4, "licence": "CC-BY-NC-4.0", "normalised": True,
        "input": "input"}))
    spec = load_sidecar(model)
    assert spec.name == "theirs" and spec.commercial is False and spec.sha256 is None
    assert spec.mean == (0.0, 0.0, 0.0)


def test_missing_sidecar_says_which_file_and_keys(tmp_path):
    model = tmp_path / "bare.onnx"
    model.write_bytes(b"not checked here")
    with pytest.raises(ModelError) as caught:
        resolve_model(str(model))
    message = str(caught.value)
    assert str(sidecar_path(model)) in message
    for key in SIDECAR_KEYS:
        assert key in message


@pytest.mark.parametrize("content, word", [
    ("{not json", "cannot read"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"input_size": 224, "resize": "squash", "mean": [0.5] * 3}), "lacks std"),
    (json.dumps({"input_size": 224, "resize": "zoom", "mean": [0.5] * 3, "std": [0.5] * 3,
                 "colour": "RGB", "dim": 8}), "resize"),
    (json.dumps({"input_size": "224", "resize": "squash", "mean": [0.5] * 3,
                 "std": [0.5] * 3, "colour": "RGB", "dim": 8}), "input_size"),
])
def test_invalid_sidecar_names_the_problem_and_the_keys(tmp_path, content, word):
    model = tmp_path / "bad.onnx"
    sidecar_path(model).write_text(content)
    with pytest.raises(ModelError, match=word) as caught:
        load_sidecar(model)
    assert "colour" in str(caught.value) and str(sidecar_path(model)) in str(caught.value)


def test_user_model_resolves_to_its_path_and_checks_its_checksum(tmp_path):
    model = tmp_path / "mine.onnx"
    model.write_bytes(b"pretend onnx")
    write_sidecar(_spec(file=model.name), model)
    spec, path = resolve_model(str(model))
    assert path == model.resolve() and spec.source == "user"
    good = hashlib.sha256(b"pretend onnx").hexdigest()
    write_sidecar(_spec(file=model.name, sha256=good), model)
    assert resolve_model(str(model))[0].verified
    write_sidecar(_spec(file=model.name, sha256="1" * 64), model)
    with pytest.raises(ModelError, match="does not match"):
        resolve_model(str(model))


def test_missing_user_file_and_pytorch_files(tmp_path):
    with pytest.raises(ModelError, match="no model file"):
        resolve_model(str(tmp_path / "gone.onnx"))
    weights = tmp_path / "net.pt"
    weights.write_bytes(b"\0")
    with pytest.raises(ModelError, match="models export"):
        resolve_model(str(weights))


def test_missing_shipped_model_is_a_clear_error(shipped):
    with pytest.raises(ModelError) as caught:
        resolve_model(None)
    assert "lookalike-copy-v1" in str(caught.value)
    assert str(shipped / "lookalike-copy-v1.onnx") in str(caught.value)


def test_shipped_model_reads_its_sidecar_when_asked(shipped):
    model = shipped / "lookalike-copy-v1.onnx"
    model.write_bytes(b"shipped bytes")
    write_sidecar(_spec(name="whatever", file=model.name, licence="unknown",
                        sha256=hashlib.sha256(b"shipped bytes").hexdigest()), model)
    spec, path = resolve_model(None)
    assert spec.name == DEFAULT_MODEL and spec.source == "package" and path == model
    assert spec.licence == "Apache-2.0" and spec.commercial and spec.verified
    model.write_bytes(b"changed")
    with pytest.raises(ModelError, match="does not match"):
        resolve_model(None)


def test_offline_download_entry_says_where_to_put_the_file(cache):
    spec = get_model("dinov2-small")
    with pytest.raises(ModelError) as caught:
        resolve_model("dinov2-small", offline=True)
    message = str(caught.value)
    assert str(cache / spec.file) in message and spec.url in message


def test_checkpoint_entries_explain_what_to_do(cache):
    spec = get_model("isc21-lyakaap-v107")
    cache.mkdir()
    (cache / spec.file).write_bytes(b"weights")  # put there by hand: pinned on first use
    with pytest.raises(ModelError, match="export_onnx"):
        resolve_model("isc21-lyakaap-v107", offline=True)
