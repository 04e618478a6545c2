"""The distributed self-join's bucket logic (search/distributed.py), run without Ray: its
tasks, one after another in this process, give exactly binary.self_join's Hits."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.methods.dihedral import variant
from lookalike.search import binary, distributed

FIELDS = ("query", "item", "distance", "variant")


def _dihedral_codes(rng, n: int, planted: int, blanks: int, variants: int = 8) -> np.ndarray:
    """(n, variants, 8) codes of random 8x8 bit grids and their flips and turns, with
    `planted` pictures replaced by a turned copy of another with a few bits changed, and
    `blanks` all-zero pictures (one huge bucket in every block)."""
    grids = rng.integers(0, 2, (n, 8, 8)).astype(np.uint8)
    for _ in range(planted):
        a, b = rng.integers(blanks, n, 2)
        copy = variant(grids[a], int(rng.integers(0, 8))).copy()
        copy.reshape(-1)[rng.integers(0, 64, int(rng.integers(0, 10)))] ^= 1
        grids[b] = copy
    grids[:blanks] = 0
    turned = np.stack([variant(grids, k) for k in range(variants)], axis=1)
    return np.packbits(turned.reshape(n, variants, 64), axis=-1)


def _same(local: binary.Hits, ours: binary.Hits) -> None:
    for field in FIELDS:
        expected, got = getattr(local, field), getattr(ours, field)
        assert got.dtype == expected.dtype, field
        np.testing.assert_array_equal(got, expected, err_msg=field)


@pytest.mark.parametrize("n_blocks", [None, "exact", 4])
@pytest.mark.parametrize("radius", [0, 2, 5, 8, 12])
def test_bucket_join_equals_the_local_self_join_with_planted_pairs_and_blanks(radius,
                                                                            n_blocks):
    """The join's own plan, exact blocks (radius + 1, radii 0) and four probed blocks of 16
    bits (radii adding up to radius - 3)."""
    rng = np.random.default_rng(radius)
    codes = _dihedral_codes(rng, 400, planted=60, blanks=25)
    local = binary.self_join(codes, radius)
    blocks = radius + 1 if n_blocks == "exact" else n_blocks
    # many small tasks, so the huge buckets of blanks are split across tasks
    ours = distributed.self_join_local(codes, radius, n_tasks=9, min_work=500,
                                       n_blocks=blocks)
    assert local.query.size >= 25 * 24 // 2  # the blanks pair with each other at least
    _same(local, ours)


@pytest.mark.parametrize("radius", range(0, 65, 4))
def test_probed_blocks_at_every_radius_up_to_the_whole_code(radius):
    """Radii 0-64 on 64-bit codes, with the join's own plan and with probed blocks of 16
    bits (4 blocks: radii up to 61 on a 16-bit block, where probing reaches every value)."""
    rng = np.random.default_rng(300 + radius)
    codes = _dihedral_codes(rng, 90, planted=20, blanks=6)
    local = binary.self_join(codes, radius)
    for n_blocks in (None, 4):
        plan = distributed.make_plan(90 * 8, 64, radius, n_blocks)
        assert n_blocks is None or plan.widths == (16,) * min(4, radius + 1)
        _same(local, distributed.self_join_local(codes, radius, n_tasks=3, min_work=200,
                                                 n_blocks=n_blocks))


@pytest.mark.parametrize("radius", [6, 20, 30])
def test_ties_between_variants_break_as_locally(radius):
    """Random variant codes (not real turns) at wide radii: many pairs tie on distance
    between variants and directions, and the variant kept must be the local one."""
    rng = np.random.default_rng(100 + radius)
    codes = rng.integers(0, 256, (200, 8, 8), dtype=np.uint8)
    codes[100:110] = codes[3]
    local = binary.self_join(codes, radius)
    _same(local, distributed.self_join_local(codes, radius, n_tasks=5, min_work=100))


@pytest.mark.parametrize("nbytes, variants, radius", [(32, 8, 40), (32, 1, 20), (5, 1, 6),
                                                      (8, 8, 64), (8, 1, 3)])
def test_other_code_lengths_variants_and_a_radius_covering_the_code(nbytes, variants, radius):
    rng = np.random.default_rng(nbytes * 100 + radius)
    codes = rng.integers(0, 256, (120, variants, nbytes), dtype=np.uint8)
    codes[60:70] = codes[0]
    codes[80, :, 0] = codes[1, :, 0] ^ 1  # one bit apart
    local = binary.self_join(codes, radius)
    assert local.query.size >= 45
    _same(local, distributed.self_join_local(codes, radius, n_tasks=4, min_work=100))


def test_each_pair_comes_from_one_task_only():
    """Run task by task by hand: no pair is reported twice, and the huge bucket of blanks is
    split across tasks."""
    rng = np.random.default_rng(7)
    codes = _dihedral_codes(rng, 150, planted=30, blanks=40)
    words = distributed.as_words(codes)
    plan = distributed.make_plan(150 * 8, 64, 8, n_blocks=4)
    assert plan.widths == (16, 16, 16, 16) and plan.radii == (2, 1, 1, 1)
    tasks = distributed.plan_tasks(words, plan, n_tasks=6, min_work=50)
    assert any(t.parts > 1 for t in tasks)  # the blanks' bucket is split
    parts = [distributed.run_task(words, plan, 8, t) for t in tasks]
    pairs = np.concatenate([np.stack([p.query, p.item], 1) for p in parts])
    assert len(np.unique(pairs, axis=0)) == len(pairs)
    assert np.all(pairs[:, 0] < pairs[:, 1])
    local = binary.self_join(codes, 8)
    assert len(pairs) == local.query.size


def _block(codes: np.ndarray, start: int, width: int) -> np.ndarray:
    bits = np.unpackbits(codes, axis=-1)[..., start:start + width]
    return bits.astype(np.int64) @ (1 << np.arange(width - 1, -1, -1, dtype=np.int64))


def test_planned_work_is_the_comparisons_and_probed_blocks_make_far_fewer():
    """plan_tasks counts, per block, the (variant code, identity code) pairs whose block
    values are within the block's radius: checked by brute force. On random codes at r = 8
    the probed plan the join picks makes over 10x fewer comparisons than exact blocks."""
    rng = np.random.default_rng(11)
    codes = _dihedral_codes(rng, 300, planted=10, blanks=3)
    words = distributed.as_words(codes)
    for radius, n_blocks in ((8, None), (8, 9), (8, 4), (40, 4)):  # 40: radii 9-10 of 16
        plan = distributed.make_plan(300 * 8, 64, radius, n_blocks)
        tasks = distributed.plan_tasks(words, plan, n_tasks=1)
        for j, (start, width, radius) in enumerate(zip(plan.starts, plan.widths, plan.radii)):
            member, prober = _block(codes, start, width), _block(codes[:, 0], start, width)
            near = np.bitwise_count(member.reshape(-1)[:, None] ^ prober[None, :]) <= radius
            assert sum(t.work for t in tasks if t.block == j) == near.sum()
    big = _dihedral_codes(rng, 20_000, planted=0, blanks=0)
    words = distributed.as_words(big)
    work = {n: sum(t.work for t in distributed.plan_tasks(
        words, distributed.make_plan(20_000 * 8, 64, 8, n), n_tasks=1)) for n in (None, 9)}
    assert work[None] * 10 < work[9]


def test_no_codes_and_no_ray(monkeypatch):
    assert distributed.self_join_ray(np.empty((0, 8, 8), np.uint8), 4).query.size == 0
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    from lookalike.errors import LookalikeError

    with pytest.raises(LookalikeError, match="needs Ray"):
        distributed.self_join_ray(np.zeros((3, 8, 8), np.uint8), 4)
