"""Embeddings end to end: `scan --method embed --model`, `dupes`/`query --method embed`, and
the default cascade reporting which method matched each pair.

The model is a tiny convolutional network exported by lookalike's own exporter (random
weights, fixed seed): enough to check the plumbing (storage, search, thresholds, the model
recorded in the index), not the quality of a trained model (bench/eval_embed.py).
"""

from __future__ import annotations

import sqlite3

import pytest

torch = pytest.importorskip("torch")


def _tiny_model(path):
    from lookalike.models.export import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(256, 32)).eval()
    return export_onnx(net, path, input_size=48, name="tiny-test", licence="Apache-2.0",
                       similarity=0.995)


@pytest.fixture(scope="module")
def library(tmp_path_factory, cli, pics):
    root = tmp_path_factory.mktemp("embed")
    model = _tiny_model(root / "models" / "tiny.onnx")
    photos = root / "photos"
    photos.mkdir()
    for seed in range(8):
        (photos / f"p{seed}.jpg").write_bytes(pics.jpeg(pics.picture(7100 + seed)))
    source = pics.picture(7100)
    (photos / "p0_small.jpg").write_bytes(pics.jpeg(source.resize((120, 90)), quality=85))
    result = cli("scan", photos, "--method", "phash,dhash,embed", "--model", model)
    assert result.code == 0, str(result)
    return photos, model, photos / ".lookalike" / "index.db"


def test_scan_stores_float16_embeddings_and_records_the_model(library):
    photos, model, index = library
    with sqlite3.connect(index) as db:
        rows = db.execute("SELECT params, length(value) FROM signatures WHERE method='embed'"
                          ).fetchall()
        models = db.execute("SELECT name, ref, active FROM models").fetchall()
    assert len(rows) == 9
    assert {length for _, length in rows} == {32 * 2}  # 32 float16 values
    assert {params for params, _ in rows} == {rows[0][0]}
    assert "model=tiny-test" in rows[0][0]
    assert models == [("tiny-test", str(model.resolve()), 1)]


def test_dupes_by_embedding_finds_the_resized_copy(cli, library):
    photos, _, index = library
    result = cli("dupes", "--index", index, "--method", "embed", "--pairs", "--format", "json")
    assert result.code == 0, str(result)
    pairs = result.json()["pairs"]
    found = {frozenset((p["a"].split("/")[-1], p["b"].split("/")[-1])) for p in pairs}
    assert frozenset(("p0.jpg", "p0_small.jpg")) in found
    for p in pairs:
        assert p["method"] == "embed"
        assert 0.995 <= p["score"] <= 1.0 + 1e-6


def test_min_similarity_bounds_the_pairs(cli, library):
    _, _, index = library
    loose = cli("dupes", "--index", index, "--method", "embed", "--pairs", "--format", "json",
                "--min-similarity", "0.0")
    strict = cli("dupes", "--index", index, "--method", "embed", "--pairs", "--format", "json",
                 "--min-similarity", "0.99999")
    assert loose.code == strict.code == 0, str(loose) + str(strict)
    n_loose, n_strict = (len(r.json()["pairs"]) for r in (loose, strict))
    assert n_loose > n_strict


def test_query_by_embedding_uses_the_indexed_model(cli, library, pics, tmp_path):
    photos, _, index = library
    new = tmp_path / "new.png"
    pics.picture(7103).resize((200, 150)).save(new)
    result = cli("query", new, "--index", index, "--method", "embed", "--format", "json")
    assert result.code == 0, str(result)
    matches = result.json()["queries"][0]["matches"]
    assert matches and matches[0]["path"].endswith("p3.jpg")
    assert matches[0]["method"] == "embed"
    nearest = cli("query", new, "--index", index, "--method", "embed", "--nearest", "3",
                  "--format", "json")
    listed = nearest.json()["queries"][0]["matches"]
    assert len(listed) == 3
    assert [m["score"] for m in listed] == sorted((m["score"] for m in listed), reverse=True)


def test_auto_cascade_says_which_method_matched(cli, library):
    _, _, index = library
    result = cli("dupes", "--index", index, "--pairs", "--format", "json")
    assert result.code == 0, str(result)
    pairs = result.json()["pairs"]
    methods = {p["method"] for p in pairs}
    assert methods <= {"bytes", "pixels", "phash", "embed"}
    assert pairs, "the resized copy is found by the cascade"


def test_train_registers_a_model_that_later_scans_use(cli, pics, tmp_path):
    photos = tmp_path / "mine"
    photos.mkdir()
    for seed in range(10):
        (photos / f"m{seed}.jpg").write_bytes(pics.jpeg(pics.picture(7300 + seed)))
    # 4 steps make a collapsed model: the check refuses it, --force registers it anyway
    trained = cli("train", photos, "--steps", "4", "--batch", "4", "--name", "mine",
                  "--format", "json", "--force", timeout=300)
    assert trained.code == 0, str(trained)
    summary = trained.json()
    assert summary["steps"] == 4
    onnx = summary["onnx"]
    assert onnx.endswith("mine.onnx") and (photos / ".lookalike" / "models" / "mine").is_dir()
    scanned = cli("scan", photos, "--method", "embed")
    assert scanned.code == 0, str(scanned)
    index = photos / ".lookalike" / "index.db"
    with sqlite3.connect(index) as db:
        params = {row[0] for row in db.execute(
            "SELECT DISTINCT params FROM signatures WHERE method='embed'")}
        active = db.execute("SELECT name, ref FROM models WHERE active=1").fetchall()
    assert len(params) == 1 and "model=mine," in params.pop()
    assert active == [("mine", onnx)]
    again = cli("train", photos, "--steps", "4", "--batch", "4", "--name", "mine",
                "--format", "json", "--force", timeout=300)
    assert again.code == 0 and again.json()["steps"] == 4  # resumed: nothing left to do


def test_calibrate_measures_the_embedding_curve(cli, library):
    _, _, index = library
    result = cli("calibrate", "--index", index, "--method", "embed", "--sample", "4",
                 "--edits", "resize50,mirror", "--format", "json")
    assert result.code == 0, str(result)
    (embed,) = result.json()["methods"]
    assert embed["kind"] == "vector" and embed["higher_is_better"]
    curve = embed["curve"]
    assert curve[0]["threshold"] == 1.0 and curve[-1]["threshold"] == 0.5
    recalls = [p["recall"] for p in curve]
    assert recalls == sorted(recalls) and recalls[-1] > 0  # looser passes more


def test_a_calibrated_similarity_belongs_to_its_model(cli, library):
    _, _, index = library
    result = cli("calibrate", "--index", index, "--method", "embed", "--sample", "4",
                 "--edits", "resize50", "--target-precision", "0.01", "--format", "json")
    assert result.code == 0, str(result)
    (embed,) = result.json()["methods"]
    assert embed["stored"]
    with sqlite3.connect(index) as db:
        (key, value), = db.execute(
            "SELECT method, value FROM thresholds WHERE method LIKE 'embed%'").fetchall()
    assert key.startswith("embed:model=tiny-test,") and value == embed["threshold"]
    calibrated = cli("dupes", "--index", index, "--method", "embed", "--pairs", "--format",
                     "json").json()["pairs"]
    default = cli("dupes", "--index", index, "--method", "embed", "--pairs", "--format",
                  "json", "--no-calibration").json()["pairs"]
    assert all(p["score"] >= value - 1e-6 for p in calibrated)
    assert all(p["score"] >= 0.995 - 1e-6 for p in default)
    assert value < 0.995 and len(calibrated) > len(default)
    with sqlite3.connect(index) as db:  # leave the module's index as the other tests expect
        db.execute("DELETE FROM thresholds WHERE method LIKE 'embed%'")
