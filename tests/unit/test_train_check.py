"""The check a trained model passes before the index uses it (lookalike.train.check): a model
whose embeddings collapsed fails, the shipped model passes on real and generated pictures and
gets a threshold from the calibration, and the training loop runs the check and records it in
the sidecar."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from _imagedata import PHOTOS, skimage_dir  # noqa: E402
from lookalike.models.export import export_onnx  # noqa: E402
from lookalike.models.registry import load_sidecar, package_dir, sidecar_path  # noqa: E402
from lookalike.sample import synthetic_picture  # noqa: E402
from lookalike.train import check as C  # noqa: E402


@pytest.fixture(scope="module")
def picture_files(tmp_path_factory):
    """scikit-image's photographs and textures, and 12 generated pictures as JPEG."""
    folder = tmp_path_factory.mktemp("check_pictures")
    files = [os.path.join(skimage_dir(), name) for name in PHOTOS]
    for seed in range(12):
        path = folder / f"g{seed:02d}.jpg"
        synthetic_picture(900 + seed, (240, 180)).save(path, quality=90)
        files.append(str(path))
    return files


class Constant(torch.nn.Module):
    """Every picture to the same vector: a model collapsed all the way."""

    def forward(self, x):
        row = torch.linspace(-1.0, 1.0, 16).unsqueeze(0)
        return row + 0.0 * x.mean(dim=(1, 2, 3)).unsqueeze(1)


class MeanColour(torch.nn.Module):
    """The picture's mean colour in 3 of 16 floats: a model that varies along 3 directions
    only (as the VAE of the report, whose embedding was mostly the mean colour)."""

    def forward(self, x):
        return torch.nn.functional.pad(x.mean(dim=(2, 3)), (0, 13))


def _export(module, path):
    return export_onnx(module, path, input_size=32, name=path.stem, licence="Apache-2.0")


def test_a_constant_model_fails_as_collapsed(picture_files, tmp_path):
    found = C.check_model(_export(Constant(), tmp_path / "constant.onnx"), picture_files)
    assert not found.passed
    assert found.different_median > 0.999 and found.effective_rank == 0.0
    assert found.similarity is None
    assert found.top1 < 3 * found.chance  # all ties: the first picture wins every time
    assert "collapsed" in found.reason and "nearly identical" in found.reason
    assert "guessing" in found.reason  # top-1 near chance is said too


def test_a_model_of_three_directions_fails_as_collapsed(picture_files, tmp_path):
    found = C.check_model(_export(MeanColour(), tmp_path / "colour.onnx"), picture_files)
    assert not found.passed
    assert found.effective_rank < 3.01 and found.different_median < C.COLLAPSED_MEDIAN
    assert "collapsed" in found.reason and "directions" in found.reason


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory):
    """The shipped model and its sidecar, copied: the check writes into the sidecar."""
    folder = tmp_path_factory.mktemp("shipped")
    source = package_dir() / "lookalike-copy-v1.onnx"
    shutil.copy(source, folder / source.name)
    shutil.copy(sidecar_path(source), sidecar_path(folder / source.name))
    return folder / source.name


def test_the_shipped_model_passes_and_gets_a_threshold(picture_files, shipped_copy):
    found = C.check_model(shipped_copy, picture_files)
    assert found.passed, found.reason
    assert found.pictures == len(picture_files) and found.copies == 2 * found.pictures
    assert found.top1 >= 0.8 and found.effective_rank > 10
    assert found.different_median < 0.5
    assert 0.5 < found.similarity < 0.99 and found.precision >= 0.99 and found.recall > 0.2
    C.record_in_sidecar(found)
    assert load_sidecar(shipped_copy).similarity == found.similarity
    recorded = json.loads(sidecar_path(shipped_copy).read_text())["check"]
    assert recorded["passed"] and recorded["top1"] == found.top1


def test_measure_on_made_up_embeddings():
    rng = np.random.default_rng(0)
    originals = np.linalg.qr(rng.normal(size=(64, 40)))[0].T  # 40 orthonormal rows
    sources = np.repeat(np.arange(40), 2)
    noisy = originals[sources] + 0.05 * rng.normal(size=(80, 64))
    copies = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    good = C.measure(originals, copies, sources, np.arange(40))
    assert good.passed and good.top1 == 1.0 and good.recall == 1.0
    assert abs(good.different_median) < 1e-6 and good.effective_rank > 35
    # the loosest threshold that keeps 99% precision: under every copy's own similarity
    assert good.similarity <= np.sum(copies * originals[sources], 1).min()
    assert good.precision >= 0.99
    # the same pictures, all but one direction gone: nearly one vector
    squashed = np.hstack([np.ones((40, 1)), 0.01 * originals[:, :3]])
    squashed /= np.linalg.norm(squashed, axis=1, keepdims=True)
    bad = C.measure(squashed, squashed[sources], sources, np.arange(40))
    assert not bad.passed and bad.different_median > 0.99
    # two pictures labelled as one (a copy the collection holds) are not a false match
    groups = np.arange(40)
    groups[1] = 0
    merged = C.measure(originals, copies, sources, groups)
    assert merged.groups == 39 and merged.chance == pytest.approx(1 / 39)


def test_large_collections_keep_some_pictures_out_of_training():
    small = [f"p{i:04d}.jpg" for i in range(C.HOLDOUT_FROM - 1)]
    assert C.split_holdout(small) == (sorted(small), [])
    large = [f"p{i:04d}.jpg" for i in range(3000)]
    training, held = C.split_holdout(large, seed=3)
    assert len(held) == C.HOLDOUT_MAX and len(training) == 3000 - C.HOLDOUT_MAX
    assert not set(training) & set(held) and sorted(training + held) == sorted(large)
    assert C.split_holdout(list(reversed(large)), seed=3) == (training, held)
    assert C.split_holdout(large, seed=4)[1] != held


def test_training_runs_the_check_and_records_it(picture_files, tmp_path):
    from lookalike.train.loop import train
    from lookalike.train.net import TINY

    result = train(picture_files[:12], steps=2, batch_size=4, net_config=TINY, workers=0,
                   max_side=128, tile=64, out_dir=tmp_path, model_name="tiny",
                   check_files=picture_files[12:])
    assert result.check is not None and result.check.held_out
    assert result.check.pictures == len(picture_files) - 12
    recorded = json.loads(sidecar_path(result.onnx).read_text())["check"]
    assert recorded["passed"] == result.check.passed and recorded["reason"]
