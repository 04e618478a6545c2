"""Third-party methods and models through entry points: a real plugin package is written to a
temporary folder with its dist-info (METADATA, entry_points.txt) and put on sys.path, where
importlib.metadata finds it as it would an installed distribution."""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.cli.main import app
from lookalike.decode import DRAFT_SIZE
from lookalike.methods import registry
from lookalike.models import registry as models
from lookalike.plugins import METHODS_GROUP, plugins
from lookalike.types import FileRef
from lookalike.worker import process_chunk

# A median hash of the 8 x 8 grey grid (imagehash's whash idea without the wavelet), with its
# 8 flips and turns as lookalike's hashes store them; and "sides", which records the size of
# the picture it was given, and asks the decoder for 1024 px.
MHASH = '''
import struct

import numpy as np

from lookalike.methods import MethodSpec, register_method
from lookalike.methods.dihedral import all_variants
from lookalike.types import Signature

SPEC = MethodSpec(name="mhash", version=1, kind="hamming", bits=64, variants=8,
                  default_radius=8, min_quality=2.0, params="grid=8",
                  description="8x8 grey grid against its median (a plugin)")
SIDES = MethodSpec(name="sides", version=1, kind="exact", bits=64, variants=1,
                   default_radius=0, min_quality=0.0, params="", draft_size=1024,
                   description="the decoded size (a plugin)")


@register_method(SPEC)
class MedianHash:
    spec = SPEC

    def compute(self, pictures):
        out = []
        for picture in pictures:
            grid = picture.gray_resized(8, 8).astype(np.float64)
            bits = all_variants(grid > np.median(grid))
            value = np.packbits(bits.reshape(8, 64), axis=1).tobytes()
            out.append(Signature(SPEC.name, SPEC.version, SPEC.params, value, float(grid.std())))
        return out


@register_method(SIDES)
class Sides:
    spec = SIDES

    def compute(self, pictures):
        return [Signature(SIDES.name, SIDES.version, SIDES.params,
                          struct.pack("<II", *p.rgb.shape[:2]), float(min(p.rgb.shape[:2])))
                for p in pictures]
'''
# Registers a method, then fails: the method must be taken back.
BROKEN_CALL = '''
from lookalike.methods import MethodSpec, register_method

def register():
    spec = MethodSpec(name="half-done", version=1, kind="exact", bits=64, variants=1,
                      default_radius=0, min_quality=0.0, params="", description="")
    register_method(spec)(object)
    raise RuntimeError("the plugin's own bug")
'''
BROKEN_IMPORT = "import lookalike_no_such_dependency  # noqa\n"
# Registers a method of its own, then takes the name of a built-in.
CLASH = '''
from lookalike.methods import MethodSpec, register_method

def _spec(name):
    return MethodSpec(name=name, version=1, kind="exact", bits=64, variants=1,
                      default_radius=0, min_quality=0.0, params="", description="impostor")

register_method(_spec("clash-own"))(object)
register_method(_spec("phash"))(object)
'''
MODEL = '''
from lookalike.models import ModelSpec

def models():
    common = dict(file="m.onnx", url="http://127.0.0.1:9/m.onnx", input_size=32,
                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), dim=8)
    return [ModelSpec(name="plugin-model", **common)]

def clashing():
    return ModelSpec(name="sscd", file="m.onnx", url="http://127.0.0.1:9/m.onnx",
                     input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), dim=8)
'''
# distribution -> (module name, its source, {group: {entry point name: value}})
PACKAGES = {
    "lookalike-mhash": ("lookalike_mhash", MHASH, {METHODS_GROUP: {"mhash": "lookalike_mhash"}}),
    "lookalike-broken": ("lookalike_broken", BROKEN_CALL,
                         {METHODS_GROUP: {"half": "lookalike_broken:register"}}),
    "lookalike-noimport": ("lookalike_noimport", BROKEN_IMPORT,
                           {METHODS_GROUP: {"noimport": "lookalike_noimport"}}),
    "lookalike-clash": ("lookalike_clash", CLASH, {METHODS_GROUP: {"clash": "lookalike_clash"}}),
    "lookalike-model": ("lookalike_model", MODEL,
                        {"lookalike.models": {"mine": "lookalike_model:models",
                                              "theirs": "lookalike_model:clashing"}}),
}


def _reload() -> None:
    import importlib

    importlib.invalidate_caches()
    registry.reload_plugins()
    models.reload_plugins()


@pytest.fixture
def install(tmp_path, monkeypatch):
    """install(distribution, ...): write those plugin packages and put them on sys.path."""
    site = tmp_path / "site"
    site.mkdir()

    def install(*names: str) -> None:
        for dist in names:
            module, source, groups = PACKAGES[dist]
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
            (info / "entry_points.txt").write_text("".join(
                f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
                for group, points in groups.items()))
        monkeypatch.syspath_prepend(str(site))
        _reload()

    yield install
    for module, _, _ in PACKAGES.values():
        sys.modules.pop(module, None)
    monkeypatch.undo()  # sys.path as it was, before the registries forget the plugins
    _reload()


def _pictures(folder: Path, count: int = 6) -> dict[str, Path]:
    """Smooth random pictures (distinct median hashes), and a smaller JPEG copy of the first."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    paths = {}
    for number in range(count):
        grid = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(grid).resize((240, 180), Image.BICUBIC)
        paths[f"p{number}"] = folder / f"p{number}.png"
        image.save(paths[f"p{number}"])
    copy = Image.open(paths["p0"]).resize((200, 150), Image.LANCZOS)
    paths["copy"] = folder / "copy.jpg"
    copy.save(paths["copy"], quality=85)
    return paths


def test_a_plugin_method_is_listed_scanned_and_finds_a_planted_copy(install, tmp_path):
    install("lookalike-mhash")
    names = [s.name for s in registry.list_methods()]
    assert "mhash" in names and "phash" in names
    assert registry.method_origin("mhash") == "lookalike-mhash 1.0 (mhash)"
    assert registry.method_origin("phash") == "lookalike"
    runner = CliRunner()
    listed = runner.invoke(app, ["methods"])
    assert listed.exit_code == 0 and "median (a plugin)" in listed.output
    assert "(plugin lookalike-mhash 1.0 (mhash))" in " ".join(listed.output.split())

    paths = _pictures(tmp_path / "pictures")
    index = tmp_path / "index.db"
    scanned = runner.invoke(app, ["scan", str(tmp_path / "pictures"), "--index", str(index),
                                  "--method", "mhash", "--workers", "1", "--format", "json"])
    assert scanned.exit_code == 0, scanned.output
    assert json.loads(scanned.output)["scanned"] == len(paths)
    found = runner.invoke(app, ["dupes", "--index", str(index), "--method", "mhash",
                                "--format", "json"])
    assert found.exit_code == 0, found.output
    groups = json.loads(found.output)["groups"]
    members = [sorted(os.path.basename(f["path"]) for f in g["files"]) for g in groups]
    assert members == [["copy.jpg", "p0.png"]]
    assert groups[0]["method"] == "mhash"


def test_a_plugin_method_gets_the_draft_size_it_registered(install, tmp_path):
    """The worker decodes a JPEG at the largest draft its methods registered: 1024 px for the
    plugin's "sides", the hashes' 256 px for "mhash" alone."""
    install("lookalike-mhash")
    assert registry.draft_size(["mhash"]) == DRAFT_SIZE
    assert registry.draft_size(["mhash", "sides"]) == 1024
    path = tmp_path / "big.jpg"
    rng = np.random.default_rng(3)
    smooth = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)  # no texture: drafted as asked
    Image.fromarray(smooth).resize((2048, 2048), Image.BICUBIC).save(path)
    ref = FileRef(str(path), path.stat().st_size, path.stat().st_mtime_ns)

    def seen(names: list[str]) -> float:
        [scanned] = process_chunk([ref], names)
        return {s.method: s.quality for s in scanned.signatures}["sides"]

    assert seen(["sides"]) == 1024  # 2048 at DCT scale 1/2, the smallest still >= 1024
    assert seen(["mhash", "sides"]) == 1024
    # The same picture as the hashes' draft gives it: what "sides" would see without its own.
    from lookalike.decode import decode

    assert min(decode(path.read_bytes()).image.size) == DRAFT_SIZE


def test_broken_plugins_are_refused_with_a_warning_and_builtins_still_work(install, caplog):
    caplog.set_level(logging.WARNING, logger="lookalike.plugins")
    install("lookalike-broken", "lookalike-noimport", "lookalike-mhash")
    names = [s.name for s in registry.list_methods()]
    assert "mhash" in names  # a good plugin beside broken ones loads
    assert "half-done" not in names  # what the broken one registered was taken back
    assert registry.get_spec("phash").name == "phash"
    warned = caplog.text
    assert "lookalike-broken 1.0 (half)" in warned and "the plugin's own bug" in warned
    assert "lookalike-noimport 1.0 (noimport)" in warned and "lookalike_no_such" in warned
    refused = {p.name: p.error for p in plugins(METHODS_GROUP) if p.error}
    assert set(refused) == {"half", "noimport"}


def test_a_plugin_cannot_take_a_builtin_name(install, caplog):
    caplog.set_level(logging.WARNING, logger="lookalike.plugins")
    before = registry.get_spec("phash")
    install("lookalike-clash")
    assert registry.get_spec("phash") == before
    assert registry.method_origin("phash") == "lookalike"
    assert "clash-own" not in [s.name for s in registry.list_methods()]  # the whole plugin
    assert "'phash' is taken by lookalike" in caplog.text
    assert "lookalike-clash 1.0 (clash)" in caplog.text


def test_plugin_models_register_and_cannot_replace_a_builtin(install, caplog):
    caplog.set_level(logging.WARNING, logger="lookalike.plugins")
    install("lookalike-model")
    assert "plugin-model" in models.list_models()
    assert models.get_model("plugin-model").dim == 8
    assert models.model_origin("plugin-model") == "lookalike-model 1.0 (mine)"
    assert models.get_model("sscd").dim == 512  # the built-in, untouched
    assert models.model_origin("sscd") == "lookalike"
    assert "lookalike-model 1.0 (theirs)" in caplog.text and "already registered" in caplog.text


def test_the_plugins_are_gone_once_uninstalled(install, tmp_path):
    install("lookalike-mhash", "lookalike-model")
    assert "mhash" in [s.name for s in registry.list_methods()]
    assert "plugin-model" in models.list_models()
    for module, _, _ in PACKAGES.values():
        sys.modules.pop(module, None)
    sys.path.remove(str(tmp_path / "site"))
    _reload()
    assert "mhash" not in [s.name for s in registry.list_methods()]
    assert "plugin-model" not in models.list_models()


def test_every_registration_carries_what_its_specs_carry():
    """Callers read draft size and evidence rank from the registration (no model is read for
    that); every spec a registration gives must agree with it."""
    for spec in registry.list_methods():
        entry = registry.registration(spec.name)
        assert (entry.draft_size, entry.evidence_rank) == (spec.draft_size, spec.evidence_rank)
    assert registry.evidence_rank("pixels") < registry.evidence_rank("phash") \
        < registry.evidence_rank("embed@any-model-not-resolved")
    assert registry.draft_size(["local", "phash"]) > registry.draft_size(["phash"])
