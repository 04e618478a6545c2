"""search/group.py connected_groups against a plain union-find, and order independence."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lookalike.search.group import connected_groups


def _union_find_groups(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in range(n):
        members.setdefault(find(x), []).append(x)
    groups = [sorted(g) for g in members.values() if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


@st.composite
def graphs(draw):
    n = draw(st.integers(0, 60))
    if n == 0:
        return 0, []
    node = st.integers(0, n - 1)
    # Self-pairs and repeated pairs included: neither may change the groups.
    pairs = draw(st.lists(st.tuples(node, node), max_size=3 * n))
    return n, pairs


def _run(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    groups = connected_groups(n, a, b)
    return [g.tolist() for g in groups]


@given(graphs())
def test_matches_union_find(graph):
    n, pairs = graph
    assert _run(n, pairs) == _union_find_groups(n, pairs)


@given(graphs(), st.randoms(use_true_random=False))
def test_independent_of_pair_order_and_direction(graph, random):
    n, pairs = graph
    shuffled = [(b, a) if random.random() < 0.5 else (a, b) for a, b in pairs]
    random.shuffle(shuffled)
    assert _run(n, shuffled) == _run(n, pairs)


@given(graphs())
def test_groups_are_sorted_disjoint_and_ordered(graph):
    n, pairs = graph
    groups = connected_groups(n, np.array([p[0] for p in pairs], dtype=np.int64),
                              np.array([p[1] for p in pairs], dtype=np.int64))
    seen: set[int] = set()
    for group in groups:
        assert group.size >= 2
        assert np.all(np.diff(group) > 0)  # sorted, no repeats
        assert not seen & set(group.tolist())
        seen |= set(group.tolist())
    keys = [(-g.size, int(g[0])) for g in groups]
    assert keys == sorted(keys)
    # Every node in a pair with another node is in some group.
    assert {x for a, b in pairs if a != b for x in (a, b)} == seen


def test_duplicated_pair_many_times_is_still_one_edge():
    a = np.zeros(300, dtype=np.int64)
    b = np.ones(300, dtype=np.int64)
    assert [g.tolist() for g in connected_groups(4, a, b)] == [[0, 1]]


def test_empty_inputs():
    empty = np.empty(0, dtype=np.int64)
    assert connected_groups(0, empty, empty) == []
    assert connected_groups(5, empty, empty) == []
    assert connected_groups(3, np.array([1]), np.array([1])) == []
