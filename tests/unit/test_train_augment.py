"""The training augmentations: uint8 RGB in and out, the network's square size at the end, and
the same pictures for the same generator seed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from lookalike.train import augment as A  # noqa: E402


def picture(seed: int = 0, h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], axis=2)
    noise = rng.integers(0, 40, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


OPS = {
    "hflip": lambda im, rng: A.hflip(im),
    "vflip": lambda im, rng: A.vflip(im),
    "rot90": A.rot90,
    "rotate": A.rotate,
    "perspective": A.perspective,
    "pad": A.pad,
    "paste_into": lambda im, rng: A.paste_into(im, picture(9, 200, 150), rng),
    "text_overlay": A.text_overlay,
    "emoji_overlay": lambda im, rng: A.emoji_overlay(im, rng, picture(8)),
    "colour_jitter": A.colour_jitter,
    "channel_swap": A.channel_swap,
    "greyscale": lambda im, rng: A.greyscale(im),
    "blur": A.blur,
    "jpeg": A.jpeg,
    "crop": lambda im, rng: A.random_resized_crop(im, rng, 48),
}
SAME_SHAPE = {"hflip", "vflip", "rotate", "perspective", "text_overlay", "emoji_overlay",
              "colour_jitter", "channel_swap", "greyscale", "blur", "jpeg"}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_keeps_dtype_and_channels_and_is_deterministic(name):
    image = picture()
    first = OPS[name](image, np.random.default_rng(5))
    again = OPS[name](image, np.random.default_rng(5))
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    if name in SAME_SHAPE:
        assert first.shape == image.shape
    np.testing.assert_array_equal(first, again)


def test_ops_change_the_picture():
    image = picture()
    for name in ("rotate", "perspective", "text_overlay", "colour_jitter", "blur", "jpeg"):
        assert not np.array_equal(OPS[name](image, np.random.default_rng(1)), image), name


def test_rot90_is_a_quarter_turn():
    image = picture(h=30, w=50)
    turned = A.rot90(image, np.random.default_rng(0))
    assert any(np.array_equal(turned, np.rot90(image, k)) for k in (1, 2, 3))


def test_pad_stays_within_its_share():
    image = picture(h=100, w=100)
    for seed in range(20):
        padded = A.pad(image, np.random.default_rng(seed), max_pad=0.3)
        assert 100 <= padded.shape[0] <= 160 and 100 <= padded.shape[1] <= 160


def test_random_resized_crop_keeps_its_share_of_the_area():
    # A picture of unique pixel values: the crop's source area is read from the values kept.
    h, w = 100, 100
    codes = np.arange(h * w, dtype=np.int64).reshape(h, w)
    image = np.stack([codes % 256, codes // 256, np.zeros_like(codes)], axis=2).astype(np.uint8)
    for seed in range(20):
        crop = A.random_resized_crop(image, np.random.default_rng(seed), 100, area=(0.2, 1.0))
        rows = np.unique(crop[..., 1].astype(int) * 256 + crop[..., 0]) // w
        cols = np.unique(crop[..., 1].astype(int) * 256 + crop[..., 0]) % w
        share = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) / (h * w)
        assert 0.15 <= share <= 1.0


@pytest.mark.parametrize("size", [32, 128])
def test_augment_gives_the_input_square_and_repeats_per_seed(size):
    image, others = picture(), [picture(3, 90, 200), picture(4, 200, 90)]
    everything = A.AugmentConfig(p_hflip=1, p_vflip=1, p_rot90=1, p_rotate=1, p_perspective=1,
                                 p_pad=1, p_paste=1, p_text=1, p_emoji=1, p_colour=1, p_grey=1,
                                 p_blur=1, p_jpeg=1)
    for config in (A.DEFAULT, everything):
        outs = [A.augment(image, np.random.default_rng(seed), size, config, others)
                for seed in (7, 7, 8)]
        assert outs[0].shape == (size, size, 3) and outs[0].dtype == np.uint8
        np.testing.assert_array_equal(outs[0], outs[1])
        assert not np.array_equal(outs[0], outs[2])


def test_augment_of_a_tiny_or_thin_picture():
    for shape in ((3, 3, 3), (8, 200, 3), (200, 8, 3)):
        image = np.full(shape, 100, np.uint8)
        for seed in range(5):
            assert A.augment(image, np.random.default_rng(seed), 32).shape == (32, 32, 3)


def test_channel_swap_reorders_the_channels_never_as_they_were():
    image = picture()
    seen = set()
    for seed in range(40):
        out = A.channel_swap(image, np.random.default_rng(seed))
        order = tuple(int(np.flatnonzero([(out[..., c] == image[..., k]).all()
                                          for k in range(3)])[0]) for c in range(3))
        assert order != (0, 1, 2)
        seen.add(order)
    assert len(seen) == 5


def test_augment_swaps_channels_when_asked():
    """With only the channel swap on, augment returns the picture with its channels in
    another order (and the v1 recipe, p_channels 0, never does)."""
    from dataclasses import fields

    off = {f.name: 0.0 for f in fields(A.AugmentConfig) if f.name.startswith("p_")}
    image = picture(h=64, w=64)
    swapped = A.augment(image, np.random.default_rng(2), 64,
                        A.AugmentConfig(**{**off, "p_channels": 1.0}, crop_area=(1.0, 1.0),
                                        crop_ratio=(1.0, 1.0)))
    plain = A.augment(image, np.random.default_rng(2), 64,
                      A.AugmentConfig(**off, crop_area=(1.0, 1.0), crop_ratio=(1.0, 1.0)))
    assert not np.array_equal(swapped, plain)
    sums = [sorted(x.reshape(-1, 3).sum(0).tolist()) for x in (swapped, plain)]
    assert sums[0] == sums[1]  # the same channels, in another order
    assert A.DEFAULT.p_channels == 0.0
