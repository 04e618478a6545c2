"""The onnxruntime embedder on tiny ONNX models built here: preprocessing, normalisation,
batching, and the checks of a model's shapes against its spec."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import ModelError
from lookalike.models.onnx import Embedder, normalise_rows
from lookalike.models.registry import ModelSpec

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)


def tiny_model(path, *, size=16, batch="N", channels=3, dim=None, rows=False,
               input_type=TensorProto.FLOAT, second_input=False):
    """Mean of each channel (GlobalAveragePool), times a fixed random matrix when `dim`;
    with `rows`, the mean of each row of each channel, its length known only when run."""
    if rows:
        nodes = [helper.make_node("ReduceMean", ["pixels"], ["row_means"], axes=[3]),
                 helper.make_node("Flatten", ["row_means"], ["rows"], axis=1)]
        graph = helper.make_graph(nodes, "rows", [helper.make_tensor_value_info(
            "pixels", TensorProto.FLOAT, [batch, 3, "H", "W"])], [
            helper.make_tensor_value_info("rows", TensorProto.FLOAT, [batch, "D"])])
        return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                     path)
    nodes, source = [], "pixels"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["pixels"], ["as_float"], to=TensorProto.FLOAT))
        source = "as_float"
    nodes += [helper.make_node("GlobalAveragePool", [source], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["means"], axis=1)]
    inputs = [helper.make_tensor_value_info("pixels", input_type,
                                            [batch, channels, size, size])]
    if second_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, 1]))
    outputs = [helper.make_tensor_value_info("means", TensorProto.FLOAT, [batch, channels])]
    weights = []
    if dim:
        matrix = np.random.default_rng(7).normal(size=(channels, dim)).astype(np.float32)
        weights.append(numpy_helper.from_array(matrix, "w"))
        nodes.append(helper.make_node("MatMul", ["means", "w"], ["embedding"]))
        outputs.insert(0, helper.make_tensor_value_info("embedding", TensorProto.FLOAT,
                                                        [batch, dim]))
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, weights)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _save(model, path):
    model.ir_version = 9  # what this onnxruntime reads
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def spec(**changes) -> ModelSpec:
    fields = dict(name="tiny", file="tiny.onnx", input_size=16, resize="squash", mean=MEAN,
                  std=STD, colour="RGB", dim=3, output="means", source="user")
    fields.update(changes)
    return ModelSpec(**fields)


@pytest.fixture(scope="module")
def means_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("onnx") / "means.onnx")


@pytest.fixture(scope="module")
def embedder(means_model):
    return Embedder(spec(), means_model, threads=1)


def picture(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def normalised(pixels: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    values = (pixels.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std)
    return values.transpose(2, 0, 1)


def test_preprocess_scales_normalises_and_lays_out_nchw(embedder):
    flat = np.zeros((20, 30, 3), np.uint8) + np.uint8([200, 100, 50])
    batch = embedder.preprocess([flat, picture(1)])
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == np.float32
    expected = (np.float32([200, 100, 50]) / 255 - np.float32(MEAN)) / np.float32(STD)
    np.testing.assert_allclose(batch[0].mean(axis=(1, 2)), expected, atol=1e-6)
    assert np.ptp(batch[0], axis=(1, 2)).max() < 1e-6


def test_bgr_models_get_their_channels_reversed(means_model):
    bgr = Embedder(spec(colour="BGR"), means_model, threads=1)
    flat = np.zeros((16, 16, 3), np.uint8) + np.uint8([200, 100, 50])
    expected = (np.float32([50, 100, 200]) / 255 - np.float32(MEAN)) / np.float32(STD)
    np.testing.assert_allclose(bgr.preprocess([flat])[0, :, 0, 0], expected, atol=1e-6)


def test_shrinking_is_area_averaged_and_growing_bilinear(embedder):
    import cv2

    big, small = picture(2, 48, 64), picture(3, 8, 8)
    batch = embedder.preprocess([big, small])
    np.testing.assert_allclose(
        batch[0], normalised(cv2.resize(big, (16, 16), interpolation=cv2.INTER_AREA)),
        atol=1e-6)
    np.testing.assert_allclose(
        batch[1], normalised(cv2.resize(small, (16, 16), interpolation=cv2.INTER_LINEAR)),
        atol=1e-6)


def test_center_crop_keeps_the_middle_square(means_model):
    crop = Embedder(spec(resize="center-crop"), means_model, threads=1)
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 10:30] = (0, 255, 0)
    wide[:, 30:] = (0, 0, 255)
    got = crop.preprocess([wide])[0]
    np.testing.assert_allclose(got, normalised(np.zeros((16, 16, 3), np.uint8) + np.uint8(
        [0, 255, 0])), atol=1e-6)


def test_letterbox_pads_with_the_mean_colour(means_model):
    box = Embedder(spec(resize="letterbox"), means_model, threads=1)
    wide = np.full((16, 32, 3), 255, np.uint8)
    got = box.preprocess([wide])[0]
    assert np.all(got[:, :4] == 0) and np.all(got[:, 12:] == 0)
    np.testing.assert_allclose(got[:, 4:12], normalised(np.full((8, 16, 3), 255, np.uint8)),
                               atol=1e-6)


def test_embeddings_are_unit_length_and_what_the_model_computes(embedder):
    images = [picture(seed, 30 + seed, 50) for seed in range(5)]
    found = embedder.embed(images)
    assert found.shape == (5, 3) and found.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(found, axis=1), 1.0, rtol=1e-6)
    means = embedder.preprocess(images).mean(axis=(2, 3))
    np.testing.assert_allclose(found, means / np.linalg.norm(means, axis=1, keepdims=True),
                               atol=1e-5)


def test_batching_equals_one_by_one(tmp_path):
    model = tiny_model(tmp_path / "wide.onnx", dim=12)
    wide = Embedder(spec(dim=12, output="embedding"), model, threads=1)
    images = [picture(seed, 20 + 3 * seed, 40) for seed in range(7)]
    one_by_one = np.concatenate([wide.embed([image]) for image in images])
    for batch_size in (1, 2, 3, 32):
        np.testing.assert_allclose(wide.embed(images, batch_size=batch_size), one_by_one,
                                   atol=1e-6)


def test_rows_of_zeros_stay_zeros_without_nan(means_model):
    plain = Embedder(spec(mean=(0, 0, 0), std=(1, 1, 1)), means_model, threads=1)
    found = plain.embed([np.zeros((10, 10, 3), np.uint8), picture(4)])
    assert np.isfinite(found).all()
    assert np.all(found[0] == 0) and abs(np.linalg.norm(found[1]) - 1) < 1e-6
    rows = normalise_rows(np.array([[0, 0], [np.nan, 1], [np.inf, 1], [3, 4]], np.float32))
    np.testing.assert_allclose(rows, [[0, 0], [0, 0], [0, 0], [0.6, 0.8]], atol=1e-7)


def test_nothing_in_nothing_out(embedder):
    assert embedder.embed([]).shape == (0, 3)


@pytest.mark.parametrize("batch", [1, 2])
def test_a_fixed_batch_size_is_respected(tmp_path, batch):
    model = tiny_model(tmp_path / "fixed.onnx", batch=batch)
    fixed = Embedder(spec(), model, threads=1)
    images = [picture(seed) for seed in range(3)]
    np.testing.assert_allclose(fixed.embed(images),
                               np.concatenate([fixed.embed([i]) for i in images]), atol=1e-6)


def test_half_precision_input(tmp_path):
    model = tiny_model(tmp_path / "half.onnx", input_type=TensorProto.FLOAT16)
    half = Embedder(spec(), model, threads=1)
    full = Embedder(spec(), tiny_model(tmp_path / "full.onnx"), threads=1)
    images = [picture(5), picture(6)]
    np.testing.assert_allclose(half.embed(images), full.embed(images), atol=2e-3)


def test_threads_and_defaults(means_model):
    import os

    one = Embedder(spec(), means_model, threads=1)
    assert one.session.get_session_options().intra_op_num_threads == 1
    every = Embedder(spec(), means_model)
    assert every.session.get_session_options().intra_op_num_threads == os.cpu_count()


@pytest.mark.parametrize("build, changes, word", [
    ({"size": 32}, {}, "input pixels of shape"),
    ({"channels": 1}, {"dim": 1}, "input pixels of shape"),
    ({"dim": 12}, {"dim": 8, "output": "embedding"}, "says \\[batch, 8\\]"),
    ({}, {"output": "features"}, "no output 'features'"),
    ({"second_input": True}, {}, "2 inputs"),
    ({"input_type": TensorProto.INT32}, {}, "expected float"),
])
def test_shapes_are_checked_against_the_spec_on_load(tmp_path, build, changes, word):
    model = tiny_model(tmp_path / "odd.onnx", **build)
    with pytest.raises(ModelError, match=word):
        Embedder(spec(**changes), model)


def test_output_length_unknown_until_run_is_checked_then(tmp_path):
    model = tiny_model(tmp_path / "free.onnx", rows=True)
    free = Embedder(spec(dim=8, output=None), model, threads=1)
    with pytest.raises(ModelError, match="expected \\(1, 8\\)"):
        free.embed([picture(7)])


def test_first_output_is_the_default(tmp_path):
    model = tiny_model(tmp_path / "two.onnx", dim=5)
    assert Embedder(spec(dim=5, output=None), model).embed([picture(8)]).shape == (1, 5)


def test_bad_inputs_are_typed_errors(embedder, tmp_path):
    with pytest.raises(ModelError, match="RGB uint8"):
        embedder.embed([np.zeros((8, 8), np.uint8)])
    with pytest.raises(ModelError, match="RGB uint8"):
        embedder.embed([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ModelError, match="batch_size"):
        embedder.embed([picture(0)], batch_size=0)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        Embedder(spec(), broken)
    with pytest.raises(ModelError, match="torchscript"):
        Embedder(spec(format="torchscript", file="x.pt"), broken)
