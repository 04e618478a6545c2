"""`lookalike train` checks its model before the index uses it (issue 16): a short VAE run,
as in the report where one was registered and `dupes --method embed` then paired half of
74 pictures at similarity 1.0, is measured on copies of the pictures, found collapsed and
not registered; the command says why, exits 3 and keeps the model, and `--force` registers
it anyway."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")


def _active_models(index):
    if not index.exists():
        return []
    with sqlite3.connect(index) as db:
        return db.execute("SELECT name, ref FROM models WHERE active=1").fetchall()


def test_a_collapsed_vae_is_not_registered_until_forced(cli, pics, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(24):
        (photos / f"p{seed:02d}.jpg").write_bytes(pics.jpeg(pics.picture(8100 + seed)))
    index = photos / ".lookalike" / "index.db"

    refused = cli("train", photos, "--objective", "vae", "--steps", "2", "--batch", "2",
                  "--format", "json", timeout=300)
    assert refused.code == 3, str(refused)  # PARTIAL: trained, not registered
    summary = refused.json()
    check = summary["check"]
    assert not summary["registered"] and summary["index"] is None
    assert not check["passed"] and check["pictures"] == 24 and not check["held_out"]
    assert check["different_median"] >= 0.9 and check["similarity"] is None
    assert "collapsed" in check["reason"]
    said = " ".join(refused.stderr.split())  # Rich wraps long lines
    assert "not registered: it has collapsed" in said and "--force" in said
    assert summary["onnx"] in "".join(refused.stderr.split())  # where the model is kept
    assert _active_models(index) == []
    sidecar = summary["onnx"] + ".json"
    with open(sidecar, encoding="utf-8") as handle:
        assert '"passed": false' in handle.read()  # the model is kept, its check with it

    forced = cli("train", photos, "--objective", "vae", "--steps", "2", "--batch", "2",
                 "--force", timeout=300)
    assert forced.code == 0, str(forced)
    assert "registered despite a failed check" in " ".join(forced.stderr.split())
    assert "FAILED" in forced.stdout and "registered in" in forced.stdout
    assert _active_models(index) == [("custom", summary["onnx"])]
