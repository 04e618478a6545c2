"""evidence.from_first: each member's flip or turn from the group's first file, composed along
the strongest links, checked on a grid turned by NumPy."""

from __future__ import annotations

import numpy as np

from lookalike.methods import dihedral
from lookalike.search.evidence import from_first

HASH, EMBED = 2, 3  # evidence ranks (search/dupes.evidence_rank)


def test_turns_compose_along_the_strongest_links_from_the_first_row():
    grid = np.arange(20, dtype=np.uint8).reshape(4, 5)
    # the member at row r is the grid under variant seen[r]
    seen = {5: dihedral.NAMES.index("rot90"), 2: dihedral.NAMES.index("mirror+rot270"),
            9: dihedral.NAMES.index("rot180")}
    picture = {r: dihedral.variant(grid, k) for r, k in seen.items()}

    def link(a, b):  # the variant that turns row a's picture into row b's
        k, = [k for k in range(8) if np.array_equal(dihedral.variant(picture[a], k), picture[b])]
        return k

    links = {(2, 5): (HASH, 3, link(2, 5)), (2, 9): (HASH, 4, link(2, 9)),
             (5, 9): (EMBED, 1, 0)}  # an embedding says nothing of the turn: not followed
    turned = from_first([5, 2, 9], links)
    assert sorted(turned) == [2, 5, 9] and turned[5] == 0
    for row, k in turned.items():
        assert np.array_equal(dihedral.variant(picture[5], k), picture[row]), row


def test_a_row_no_link_reaches_is_left_out():
    assert from_first([1, 4, 7], {(1, 4): (HASH, 0, 4)}) == {1: 0, 4: 4}
    assert from_first([], {}) == {}
