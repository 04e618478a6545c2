"""The fast mode's colour check on many pairs at once (verify.colours_agree, layouts_agree,
used by dupes.thumbnails_hold) gives each pair the answer the one-pair rule gives it."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.methods.colour import lab_thumbnail
from lookalike.methods.dihedral import variant
from lookalike.search.verify import (GREY_CHROMA, LAYOUT_CELL, LAYOUT_SHARE, SAME_CHROMA,
                                     colours_agree, layouts_agree, same_colours, same_layout)


def _one_colours(a: np.ndarray, b: np.ndarray, k: int) -> bool:
    """The one-pair rule as it was written before the batch version (a reference)."""
    a, b = variant(a.astype(np.float32), k), b.astype(np.float32)
    if min(np.abs(a[1:] - 128).mean(), np.abs(b[1:] - 128).mean()) < GREY_CHROMA:
        return True
    return float(np.abs(a[1:] - b[1:]).mean()) <= SAME_CHROMA


def _one_layout(a: np.ndarray, b: np.ndarray, k: int) -> bool:
    a, b = variant(a.astype(np.float32), k), b.astype(np.float32)
    cells = np.abs((a[0] - a[0].mean()) - (b[0] - b[0].mean()))
    return bool((cells > LAYOUT_CELL).mean() <= LAYOUT_SHARE)


def _pairs(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thumbnails and edits of them near every limit: grey ones, small and large colour
    shifts, changed cells; every transform."""
    a = rng.integers(0, 256, (count, 3, 8, 8), dtype=np.int64)
    a[: count // 4, 1:] = 128 + rng.integers(-4, 5, (count // 4, 2, 8, 8))  # near grey
    k = rng.integers(0, 8, count)
    b = np.stack([variant(x, int(t)) for x, t in zip(a, k)])
    b[:, 1:] += rng.integers(-20, 21, (count, 1, 1, 1))  # colour shifts around SAME_CHROMA
    b[:, 0] += rng.integers(-60, 61, (count, 8, 8)) * (rng.random((count, 8, 8)) < 0.08)
    return a.clip(0, 255).astype(np.uint8), b.clip(0, 255).astype(np.uint8), k


def test_batch_gives_each_pair_its_own_answer() -> None:
    a, b, k = _pairs(np.random.default_rng(7), 3000)
    colours = colours_agree(a, b, k)
    layouts = layouts_agree(a, b, k)
    assert colours.tolist() == [_one_colours(x, y, int(t)) for x, y, t in zip(a, b, k)]
    assert layouts.tolist() == [_one_layout(x, y, int(t)) for x, y, t in zip(a, b, k)]
    # the edits land on both sides of each limit
    assert 0.2 < colours.mean() < 0.9 and 0.2 < layouts.mean() < 0.9
    assert [same_colours(x, y, int(t)) for x, y, t in zip(a[:200], b[:200], k[:200])] == \
        colours[:200].tolist()
    assert [same_layout(x, y, int(t)) for x, y, t in zip(a[:200], b[:200], k[:200])] == \
        layouts[:200].tolist()


@pytest.mark.parametrize("k", range(8))
def test_turned_copy_agrees_and_recoloured_one_does_not(k: int) -> None:
    from skimage import data

    photo = data.astronaut()
    thumb = lab_thumbnail(photo)
    turned = np.moveaxis(variant(np.moveaxis(photo, -1, 0), k), 0, -1).copy()
    recoloured = turned[..., ::-1].copy()  # red and blue swapped
    thumbs = np.stack([lab_thumbnail(turned), lab_thumbnail(recoloured)])
    assert colours_agree(np.stack([thumb, thumb]), thumbs, np.asarray([k, k])).tolist() == \
        [True, False]
    assert layouts_agree(thumb[None], thumbs[:1], np.asarray([k])).tolist() == [True]


def test_thumbnails_hold_in_batches_keeps_the_one_pair_answers(monkeypatch) -> None:
    """dupes.thumbnails_hold over pairs in several batches: a pair is kept when its colours
    agree, and a hub's pair (a picture with HUB_DEGREE or more neighbours) only when its
    layout agrees too; a picture without a thumbnail keeps its pairs."""
    from lookalike.index.records import Codes
    from lookalike.search import dupes

    rng = np.random.default_rng(11)
    a, b, k = _pairs(rng, 400)
    # contents 0..399 are the a's, 400..799 the b's; content 0 is also paired with the first
    # 8 b's (a hub), and content 800 has no thumbnail
    thumbs = np.concatenate([a, b])
    ids_a = np.concatenate([np.arange(400), np.zeros(8, np.int64), [800]])
    ids_b = np.concatenate([np.arange(400, 800), np.arange(400, 408), [5]])
    variant = np.concatenate([k, k[:8], [0]])
    codes = Codes(np.arange(800), thumbs.reshape(800, 1, -1), np.ones(800, np.float32))
    thumb_of = {i: thumbs[i] for i in range(800)}
    degree = np.bincount(np.concatenate([ids_a, ids_b]))
    want = []
    for x, y, t in zip(ids_a.tolist(), ids_b.tolist(), variant.tolist()):
        if x not in thumb_of or y not in thumb_of:
            want.append(True)
            continue
        hub = max(degree[x], degree[y]) >= dupes.HUB_DEGREE
        want.append(_one_colours(thumb_of[x], thumb_of[y], t)
                    and (not hub or _one_layout(thumb_of[x], thumb_of[y], t)))
    whole = dupes.thumbnails_hold(None, ids_a, ids_b, variant, codes)
    monkeypatch.setattr(dupes, "THUMBNAIL_BATCH", 7)
    batched = dupes.thumbnails_hold(None, ids_a, ids_b, variant, codes)
    assert whole.tolist() == want and batched.tolist() == want
    assert 0.2 < np.mean(want) < 0.9 and want[-1] is True
