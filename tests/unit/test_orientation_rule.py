"""dupes.orientation_rule: matches under a flip or turn need a closer hash."""

from __future__ import annotations

import numpy as np

from lookalike.methods.registry import get_spec
from lookalike.search.binary import Hits
from lookalike.search.dupes import Rule, orientation_rule


def _code(bits: list[int]) -> np.ndarray:
    row = np.zeros(64, dtype=np.uint8)
    row[bits] = 1
    return np.packbits(row)


def test_turned_match_beyond_the_turned_radius_falls_back_to_identity():
    rule = Rule(get_spec("phash"), radius=8, turned_radius=4)
    # Hit 0: turned at 2 -> kept. Hit 1: turned at 6, pictures as they are 20 apart -> dropped.
    # Hit 2: turned at 6, as they are 8 apart -> kept as an identity match at 8.
    # Hit 3: identity at 8 -> kept.
    left = np.stack([_code([]), _code([]), _code([]), _code([])])
    right = np.stack([_code([1, 2]), _code(list(range(20))), _code(list(range(8))),
                      _code(list(range(8)))])
    hits = Hits(np.arange(4, dtype=np.int64), np.arange(4, dtype=np.int64) + 10,
                np.array([2, 6, 6, 8], dtype=np.int32), np.array([3, 5, 1, 0], dtype=np.int8))
    out = orientation_rule(rule, hits, left, right)
    assert out.query.tolist() == [0, 2, 3]
    assert out.distance.tolist() == [2, 8, 8]
    assert out.variant.tolist() == [3, 0, 0]
    assert out.item.tolist() == [10, 12, 13]


def test_no_turned_radius_keeps_everything():
    rule = Rule(get_spec("phash"), radius=8)
    hits = Hits(np.arange(2, dtype=np.int64), np.arange(2, dtype=np.int64),
                np.array([7, 8], dtype=np.int32), np.array([1, 2], dtype=np.int8))
    codes = np.stack([_code([]), _code([])])
    assert orientation_rule(rule, hits, codes, codes) is hits
