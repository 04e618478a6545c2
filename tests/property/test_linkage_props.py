"""search/group.py link_groups: every linkage's property, plain-Python references, and groups
that depend neither on the order of the pairs nor on the numbering of the items."""

from __future__ import annotations

from itertools import combinations
from unittest import mock

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lookalike.search.group import (LINKAGES, canonical_pairs, connected_groups, link_groups,
                                    sort_key)
from lookalike.search.linkage import common_neighbours, complete_ids, star_ids


@st.composite
def graphs(draw, distances=("tied", "generic", "float"), max_n=30):
    """(n, a, b, distance): random, clustered or chain-shaped, with self-pairs, repeats and
    both orientations. Distances: tied (0..2), generic or float."""
    n = draw(st.integers(0, max_n))
    shape = draw(st.sampled_from(["random", "clustered", "chain"]))
    mode = draw(st.sampled_from(distances))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    a, b = _shape(rng, n, shape)
    if mode in ("tied", "spread"):
        return n, a, b, rng.integers(0, 3 if mode == "tied" else 10, a.size)
    if mode == "float":
        return n, a, b, rng.random(a.size).astype(draw(st.sampled_from([np.float32,
                                                                          np.float64])))
    return (n, *_generic(rng, a, b))


def _generic(rng, a, b):
    """Distinct powers of two, one per pair (at most 60 pairs kept), so that no two sets of
    pairs have the same total: nothing is left for a label to decide. A pair listed again
    gets a larger distance."""
    pair = [(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist())]
    distinct = sorted({p for p in pair if p[0] != p[1]})
    kept = [distinct[i] for i in sorted(rng.permutation(len(distinct))[:60].tolist())]
    power = dict(zip(kept, rng.permutation(len(kept)).tolist()))
    rows = [i for i, p in enumerate(pair) if p in power]
    seen: dict[tuple[int, int], int] = {}
    dist = []
    for i in rows:
        seen[pair[i]] = seen.get(pair[i], -1) + 1
        dist.append(2 ** power[pair[i]] + seen[pair[i]])
    rows = np.array(rows, dtype=np.int64)
    return a[rows], b[rows], np.array(dist, dtype=np.int64)


def _shape(rng, n, shape):
    if n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if shape == "random":
        m = int(rng.integers(0, 3 * n))
        return rng.integers(0, n, m), rng.integers(0, n, m)
    if shape == "chain":  # A~B~C~... in a random numbering, a few shortcuts
        order = rng.permutation(n)
        extra = int(rng.integers(0, 3))
        return (np.concatenate([order[:-1], rng.integers(0, n, extra)]),
                np.concatenate([order[1:], rng.integers(0, n, extra)]))
    cluster = rng.integers(0, max(1, n // 4), n)
    i, j = np.triu_indices(n, 1)
    near = np.where(cluster[i] == cluster[j], rng.uniform(0.5, 1.0), 0.04)
    keep = rng.random(i.size) < near
    return i[keep], j[keep]


def _listed(n, a, b, dist):
    lo, hi, d = canonical_pairs(n, a, b, dist)
    return {(x, y): v for x, y, v in zip(lo.tolist(), hi.tolist(), d.tolist())}


def _pair(x, y):
    return (x, y) if x < y else (y, x)


def _check_groups(n, a, b, dist, linkage, groups):
    listed = _listed(n, a, b, dist)
    seen: set[int] = set()
    for g in groups:
        members = g.members.tolist()
        assert g.members.dtype == np.int64 and len(members) >= 2
        assert members == sorted(set(members)) and not seen & set(members)
        seen |= set(members)
        inside = sorted(v for p, v in listed.items() if p[0] in members and p[1] in members)
        assert g.distances.tolist() == inside and g.diameter == inside[-1]
        assert g.fully_linked == (len(inside) == len(members) * (len(members) - 1) // 2)
        assert _medoid(members, listed) == g.medoid
        weak = g.weakest
        assert weak.a in members and weak.b in members and listed[(weak.a, weak.b)] == \
            weak.distance
        if linkage == "complete":
            assert g.fully_linked and weak.distance == g.diameter
        if linkage == "star":
            spokes = [listed.get(_pair(g.medoid, x)) for x in members if x != g.medoid]
            assert None not in spokes and weak.distance == max(spokes)
            assert g.medoid in (weak.a, weak.b)
    keys = [sort_key(g) for g in groups]
    assert keys == sorted(keys)
    # Nothing left over could join: two ungrouped items are never a listed pair, and under
    # complete linkage no two groups (or a group and an item) are linked all across.
    alone = [x for x in range(n) if x not in seen]
    assert not any(_pair(x, y) in listed for x, y in combinations(alone, 2))
    if linkage == "complete":
        clusters = [g.members.tolist() for g in groups] + [[x] for x in alone]
        for left, right in combinations(clusters, 2):
            assert not all(_pair(x, y) in listed for x in left for y in right)
    if linkage == "connected":
        expected = connected_groups(n, np.asarray(a, dtype=np.int64),
                                    np.asarray(b, dtype=np.int64))
        assert sorted(g.members.tolist() for g in groups) == sorted(c.tolist() for c in expected)
        for g in groups:
            assert _bottleneck(g.members.tolist(), listed) == g.weakest.distance


def _medoid(members, listed):
    def key(x):
        mine = [v for p, v in listed.items() if x in p and p[0] in members and p[1] in members]
        return (-len(mine), sum(sorted(mine)), x)
    return min(members, key=key)


def _bottleneck(members, listed):
    """Smallest d such that the pairs up to d connect the members (Kruskal, by hand)."""
    parent = {x: x for x in members}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    joined, last = 1, None
    for (x, y), v in sorted(((p, v) for p, v in listed.items() if p[0] in parent),
                            key=lambda item: item[1]):
        if find(x) != find(y):
            parent[find(x)] = find(y)
            joined, last = joined + 1, v
    assert joined == len(members)
    return last


@given(graphs(), st.sampled_from(LINKAGES))
def test_groups_hold_their_linkage_property(graph, linkage):
    n, a, b, dist = graph
    _check_groups(n, a, b, dist, linkage, link_groups(n, a, b, dist, linkage))


@given(graphs(), st.sampled_from(LINKAGES), st.randoms(use_true_random=False))
def test_independent_of_pair_order_orientation_and_repeats(graph, linkage, random):
    n, a, b, dist = graph
    order = list(range(a.size))
    random.shuffle(order)
    flip = np.array([random.random() < 0.5 for _ in order], dtype=bool)
    a2, b2 = np.where(flip, b[order], a[order]), np.where(flip, a[order], b[order])
    d2 = dist[order]
    again = [i for i in range(a.size) if random.random() < 0.2]  # listed again, farther
    a2, b2 = np.concatenate([a2, b2[again]]), np.concatenate([b2, a2[again]])
    d2 = np.concatenate([d2, d2[again] + 1]).astype(dist.dtype)
    assert _dump(link_groups(n, a, b, dist, linkage)) == _dump(link_groups(n, a2, b2, d2,
                                                                            linkage))


def _dump(groups, back=None):
    """Everything a group says, in original labels when `back` maps new labels to them."""
    back = np.arange(10 ** 4) if back is None else back
    return [(sorted(back[g.members].tolist()), g.distances.tolist(), g.diameter,
             frozenset(back[[g.weakest.a, g.weakest.b]].tolist()), g.weakest.distance,
             int(back[g.medoid]) if g.size > 2 else None)  # a pair's medoid: the lower label
            for g in groups]


@given(graphs(distances=("generic",)), st.sampled_from(LINKAGES), st.randoms(use_true_random=False))
def test_relabelling_items_gives_the_same_groups_in_the_same_order(graph, linkage, random):
    # Generic distances leave no tie for a label to break (a pair's medoid aside).
    n, a, b, dist = graph
    relabel = np.array(random.sample(range(n), n), dtype=np.int64)
    back = np.argsort(relabel)
    moved = link_groups(n, relabel[a] if n else a, relabel[b] if n else b, dist, linkage)
    assert _dump(link_groups(n, a, b, dist, linkage)) == _dump(moved, back)


@given(graphs(distances=("tied",)), st.randoms(use_true_random=False))
def test_relabelling_with_ties_keeps_connected_groups_and_their_order(graph, random):
    # Components do not depend on labels; groups that tie on every label-free part of the
    # order key may swap places, so within a tie they are compared as sets.
    n, a, b, dist = graph
    relabel = np.array(random.sample(range(n), n), dtype=np.int64)
    back = np.argsort(relabel)
    moved = link_groups(n, relabel[a] if n else a, relabel[b] if n else b, dist, "connected")
    assert _by_tie(link_groups(n, a, b, dist, "connected")) == _by_tie(moved, back)


def _by_tie(groups, back=None):
    back = np.arange(10 ** 4) if back is None else back
    keys = [sort_key(g)[:-1] for g in groups]
    sets: dict[tuple, set] = {}
    for key, g in zip(keys, groups):
        sets.setdefault(key, set()).add(frozenset(back[g.members].tolist()))
    return keys, sets


@given(graphs(distances=("tied", "spread")), st.randoms(use_true_random=False))
def test_complete_consults_labels_only_when_structure_ties(graph, random):
    # With tied distances the common-neighbour and degree tie-breaks order the pairs; when
    # they order all of them, labels are never consulted and relabelling changes nothing.
    n, a, b, dist = graph
    relabel = np.array(random.sample(range(n), n), dtype=np.int64)
    back = np.argsort(relabel)
    moved = link_groups(n, relabel[a] if n else a, relabel[b] if n else b, dist, "complete")
    before = link_groups(n, a, b, dist, "complete")
    if {frozenset(g.members.tolist()) for g in before} != \
            {frozenset(back[g.members].tolist()) for g in moved}:
        lo, hi, d = canonical_pairs(n, a, b, dist)
        keys = list(zip(d.tolist(), (-_common(n, lo, hi)).tolist(), _degree_sums(n, lo, hi)))
        assert len(set(keys)) < len(keys), "labels changed the groups without a tie"


def _common(n, lo, hi):
    adjacency = np.zeros((n, n), dtype=np.int64)
    adjacency[lo, hi] = adjacency[hi, lo] = 1
    return (adjacency @ adjacency)[lo, hi]


def _degree_sums(n, lo, hi):
    degree = np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
    return (degree[lo] + degree[hi]).tolist()


def _reference_complete(n, a, b, dist):
    """Agglomerative complete linkage by hand: merge the two clusters whose worst pair comes
    first in (distance, -common neighbours, degree sum, lo, hi) order, all pairs listed."""
    lo, hi, d = canonical_pairs(n, a, b, dist)
    common, sums = _common(n, lo, hi).tolist(), _degree_sums(n, lo, hi)
    ranked = sorted(range(lo.size), key=lambda e: (d[e], -common[e], sums[e], lo[e], hi[e]))
    rank = {(int(lo[e]), int(hi[e])): r for r, e in enumerate(ranked)}
    clusters = [[x] for x in range(n)]
    while True:
        best = None
        for i, j in combinations(range(len(clusters)), 2):
            cross = [rank.get(_pair(x, y)) for x in clusters[i] for y in clusters[j]]
            if None not in cross and (best is None or max(cross) < best[0]):
                best = (max(cross), i, j)
        if best is None:
            return sorted(sorted(c) for c in clusters if len(c) > 1)
        _, i, j = best
        clusters[i] += clusters.pop(j)


def _reference_star(n, a, b, dist):
    """Greedy star cover by hand: most ungrouped neighbours, then least total distance to
    them, then lowest label."""
    listed = _listed(n, a, b, dist)
    free = set(range(n))
    groups = []
    while True:
        def key(x):
            near = [v for p, v in listed.items() if x in p and p[0] in free and p[1] in free]
            return (-len(near), sum(near), x)
        centre = min(free, key=key, default=None)
        if centre is None or key(centre)[0] == 0:
            return sorted(groups)
        members = {centre} | {y for p in listed if centre in p for y in p if y in free}
        groups.append(sorted(members))
        free -= members


@given(graphs(distances=("tied", "generic"), max_n=18))
def test_complete_matches_the_plain_reference(graph):
    n, a, b, dist = graph
    groups = link_groups(n, a, b, dist, "complete")
    assert sorted(g.members.tolist() for g in groups) == _reference_complete(n, a, b, dist)


@given(graphs(distances=("tied", "generic"), max_n=18))
def test_star_matches_the_plain_reference(graph):
    n, a, b, dist = graph
    groups = link_groups(n, a, b, dist, "star")
    assert sorted(g.members.tolist() for g in groups) == _reference_star(n, a, b, dist)


def _partition(group_of):
    sets: dict[int, list[int]] = {}
    for item, g in enumerate(group_of.tolist()):
        if g >= 0:
            sets.setdefault(g, []).append(item)
    return sorted(sets.values())


@given(graphs(max_n=40))
def test_complete_engines_agree(graph):
    # Matrix path for every component, vectorised rounds, and the plain loop.
    n, a, b, dist = graph
    lo, hi, d = canonical_pairs(n, a, b, dist)
    everything_dense = complete_ids(n, lo, hi, d, dense_min_nodes=3, dense_min_fill=0)
    rounds = complete_ids(n, lo, hi, d, dense_max_nodes=0)
    loop = complete_ids(n, lo, hi, d, dense_max_nodes=0, rounds=False)
    assert _partition(everything_dense) == _partition(rounds) == _partition(loop)


@given(graphs(distances=("tied", "generic"), max_n=40))
def test_star_rounds_agree_with_the_loop(graph):
    n, a, b, dist = graph
    lo, hi, d = canonical_pairs(n, a, b, dist)
    assert _partition(star_ids(n, lo, hi, d)) == _partition(star_ids(n, lo, hi, d, rounds=False))


@given(graphs(distances=("tied",)), st.integers(1, 5))
def test_common_neighbours_match_a_matrix_product(graph, chunk):
    n, a, b, dist = graph
    lo, hi, _ = canonical_pairs(n, a, b, dist)
    with mock.patch("lookalike.search.linkage.WEDGE_CHUNK", chunk):
        assert common_neighbours(n, lo, hi).tolist() == _common(n, lo, hi).tolist()


@given(st.integers(3, 14), st.sampled_from(["equal", "random"]), st.integers(0, 2 ** 32 - 1))
def test_chains_hold_together_only_under_connected(length, mode, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(length)  # the chain visits items in this order
    dist = np.ones(length - 1, dtype=np.int64) if mode == "equal" else \
        rng.integers(0, 5, length - 1)
    a, b = order[:-1], order[1:]
    step = np.argsort(order)  # position of each item along the chain
    (whole,) = link_groups(length, a, b, dist, "connected")
    assert whole.size == length
    for g in link_groups(length, a, b, dist, "complete"):
        assert g.size == 2  # a chain has no triangle
    for g in link_groups(length, a, b, dist, "star"):
        span = step[g.members]
        assert g.size <= 3 and span.max() - span.min() == g.size - 1
    if length >= 4:
        assert link_groups(length, a, b, dist, "complete")
        assert all(g.size < length for g in link_groups(length, a, b, dist, "star"))
