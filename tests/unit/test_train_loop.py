"""A tiny training run end to end: the loss falls, checkpoints are written, a stopped run
resumes at its checkpoint's step and trains on the same batches, and the ONNX export gives
torch's output under onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from PIL import Image, ImageDraw  # noqa: E402

from lookalike.train.augment import AugmentConfig  # noqa: E402
from lookalike.train.loop import CHECKPOINT, load_checkpoint, net_from_checkpoint, train  # noqa: E402
from lookalike.train.net import TINY  # noqa: E402

# Mild augmentations, so that a few steps of a tiny net visibly learn something.
MILD = AugmentConfig(crop_area=(0.5, 1.0), p_rot90=0, p_vflip=0, p_rotate=0.2,
                     p_perspective=0, p_pad=0.1, p_paste=0, p_text=0.1, p_emoji=0.1,
                     p_colour=0.5, p_grey=0.1, p_blur=0.2, p_jpeg=0.2)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Eight generated pictures: shapes of random colours on a gradient, PNG and JPEG."""
    folder = tmp_path_factory.mktemp("train_images")
    files = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        w, h = int(rng.integers(60, 140)), int(rng.integers(60, 140))
        base = np.linspace(rng.integers(0, 255, 3), rng.integers(0, 255, 3), w)
        image = Image.fromarray(np.broadcast_to(base, (h, w, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
            box = (x0, y0, x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        path = folder / f"p{seed}.{'png' if seed % 2 else 'jpg'}"
        image.save(path)
        files.append(path)
    (folder / "broken.png").write_bytes(b"not a picture")
    return [*files, folder / "broken.png"]


def run(files, out_dir, **kwargs):
    options = dict(steps=24, batch_size=8, lr=3e-3, net_config=TINY, augment_config=MILD,
                   workers=0, max_side=128, tile=64, checkpoint_every=4, seed=1,
                   out_dir=out_dir, model_name="tiny")
    options.update(kwargs)
    return train(files, **options)


@pytest.fixture(scope="module")
def full_run(image_files, tmp_path_factory):
    return run(image_files, tmp_path_factory.mktemp("full"))


def test_loss_falls_and_checkpoint_is_written(full_run):
    losses = np.array([loss for _, loss in full_run.history])
    assert full_run.steps == full_run.total_steps == 24 and len(losses) == 24
    assert losses[-6:].mean() < losses[:6].mean()
    assert full_run.checkpoint.exists() and not full_run.stopped
    state = load_checkpoint(full_run.checkpoint)
    assert state["step"] == 24 and {"optimiser", "scheduler", "torch_rng"} <= set(state)


def test_stopped_run_resumes_at_its_checkpoint(image_files, tmp_path, full_run):
    seen = []

    def stop_after_six(progress):
        seen.append(progress.step)
        return progress.step < 6  # a "kill" at step 6: the checkpoint of step 4 stays

    first = run(image_files, tmp_path, progress=stop_after_six, progress_every=1, workers=1)
    assert first.stopped and first.onnx is None and first.steps == 6
    assert load_checkpoint(tmp_path / CHECKPOINT)["step"] == 4

    resumed_steps = []
    second = run(image_files, tmp_path, progress=lambda p: resumed_steps.append(p.step),
                 progress_every=1)
    assert resumed_steps[0] == 5 and second.steps == 24 and not second.stopped
    assert [s for s, _ in second.history] == list(range(1, 25))
    # The same batches as the uninterrupted run (one loader worker or none): the same losses.
    np.testing.assert_allclose([l for _, l in second.history],
                               [l for _, l in full_run.history], rtol=1e-4, atol=1e-5)
    # Done: a further call trains no more.
    third = run(image_files, tmp_path)
    assert third.steps == 24 and third.history == second.history


def test_fresh_run_ignores_the_checkpoint(image_files, tmp_path):
    run(image_files, tmp_path, steps=4)
    again = run(image_files, tmp_path, steps=4, resume=False)
    assert [s for s, _ in again.history] == [1, 2, 3, 4]


def test_fine_tune_from_a_checkpoint(image_files, tmp_path, full_run):
    tuned = run(image_files, tmp_path, steps=2, init=full_run.checkpoint)
    assert tuned.steps == 2
    before = net_from_checkpoint(full_run.checkpoint).state_dict()
    assert set(net_from_checkpoint(tuned.checkpoint).state_dict()) == set(before)


def test_onnx_export_matches_torch(full_run):
    assert full_run.onnx is not None and full_run.onnx.exists()
    net = net_from_checkpoint(full_run.checkpoint)
    batch = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = net(batch).numpy()
    session = ort.InferenceSession(str(full_run.onnx), providers=["CPUExecutionProvider"])
    for n in (1, 5):  # the batch axis is dynamic
        got = session.run(None, {session.get_inputs()[0].name: batch[:n].numpy()})[0]
        np.testing.assert_allclose(got, expected[:n], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    meta = json.loads(full_run.onnx.with_name(full_run.onnx.name + ".json").read_text())
    assert {"name", "file", "input_size", "resize", "mean", "std", "colour", "dim", "licence",
            "description"} <= set(meta)
    assert meta["input_size"] == 32 and meta["dim"] == TINY.dim and meta["colour"] == "RGB"
    assert meta["resize"] in {"squash", "center-crop", "letterbox"}


def test_weights_file_rebuilds_the_net_and_seeds_fine_tuning(image_files, tmp_path, full_run):
    from lookalike.train.export import save_weights

    net = net_from_checkpoint(full_run.checkpoint)
    path = save_weights(net, tmp_path / "weights.pt")
    again = net_from_checkpoint(path)
    batch = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        np.testing.assert_allclose(again(batch).numpy(), net(batch).numpy(), atol=2e-2)
    assert path.stat().st_size < full_run.checkpoint.stat().st_size / 2
    # Fine-tuning from it without naming a network takes the file's network.
    tuned = run(image_files, tmp_path / "tuned", steps=2, init=path, net_config=None)
    assert net_from_checkpoint(tuned.checkpoint).config == TINY


def test_fine_tuning_from_another_network_is_a_training_error(image_files, tmp_path, full_run):
    from lookalike.train.loop import TrainingError
    from lookalike.train.net import NetConfig

    other = NetConfig(widths=(8, 32), depths=(1, 1), stem_width=8, dim=16, input_size=32)
    with pytest.raises(TrainingError):
        run(image_files, tmp_path, steps=2, init=full_run.checkpoint, net_config=other)
