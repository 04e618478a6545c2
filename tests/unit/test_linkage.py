"""search/group.py link_groups: hand-made graphs whose groups and fields are known."""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.search.group import LINKAGES, Link, canonical_pairs, link_groups, sort_key
from lookalike.search.linkage import _dense_common, common_neighbours, complete_ids, star_ids


def _arrays(pairs):
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    d = np.array([p[2] if len(p) > 2 else 1 for p in pairs])
    return a, b, d


def _sets(n, pairs, linkage, relabel=None):
    """Groups as sets of original labels; `relabel[i]` is the label item i is given."""
    a, b, d = _arrays(pairs)
    if relabel is None:
        relabel = np.arange(n)
    back = np.argsort(relabel)
    groups = link_groups(n, relabel[a], relabel[b], d, linkage)
    return [frozenset(back[g.members].tolist()) for g in groups]


CHAIN = [(0, 1), (1, 2), (2, 3)]  # A~B~C~D, all at one distance


def test_chain_is_one_group_under_connected_and_split_otherwise():
    assert _sets(4, CHAIN, "connected") == [frozenset(range(4))]
    assert _sets(4, CHAIN, "complete") == [frozenset({0, 1}), frozenset({2, 3})]
    star = _sets(4, CHAIN, "star")
    assert len(star) == 1 and star[0] in ({0, 1, 2}, {1, 2, 3})


@pytest.mark.parametrize("relabel", list(permutations(range(4))))
def test_complete_chain_pairs_its_ends_under_every_labelling(relabel):
    # Equal distances: the smaller degree sum (the ends) goes first, whatever the labels.
    assert set(_sets(4, CHAIN, "complete", np.array(relabel))) == {frozenset({0, 1}),
                                                                    frozenset({2, 3})}


def test_star_chain_tie_is_broken_by_label_only():
    # B and C tie on every count and total: the documented label tie-break picks the centre.
    for relabel in permutations(range(4)):
        star = _sets(4, CHAIN, "star", np.array(relabel))
        centre = 1 if relabel[1] < relabel[2] else 2
        assert star == [frozenset({centre - 1, centre, centre + 1})]


def test_complete_keeps_a_clique_whole_against_a_pendant():
    # K5 on 0..4 and 5 hanging off 0, all at one distance: pairs inside the clique share
    # three neighbours, the pendant pair none, so the clique is taken first.
    pairs = list(combinations(range(5), 2)) + [(0, 5)]
    rng = np.random.default_rng(0)
    for _ in range(30):
        relabel = rng.permutation(6)
        assert _sets(6, pairs, "complete", relabel) == [frozenset(range(5))]


def test_complete_hub_does_not_take_the_pairs_apart():
    # Hub 0 is near every Ai (1..4); each Ai has its own copy Bi (5..8); one distance for all.
    pairs = [(0, i) for i in range(1, 5)] + [(i, i + 4) for i in range(1, 5)]
    rng = np.random.default_rng(1)
    for _ in range(30):
        relabel = rng.permutation(9)
        assert set(_sets(9, pairs, "complete", relabel)) == \
            {frozenset({i, i + 4}) for i in range(1, 5)}


def test_distance_decides_before_structure():
    assert _sets(4, [(0, 1, 5), (1, 2, 1), (2, 3, 5)], "complete") == [frozenset({1, 2})]
    assert _sets(4, [(0, 1, 1), (1, 2, 5), (2, 3, 2)], "complete") == \
        [frozenset({0, 1}), frozenset({2, 3})]


def test_fields_of_a_connected_group():
    # 0-1 at 3, 1-2 at 1, 0-2 at 5, 2-3 at 2: the spanning tree is {1-2, 2-3, 0-1}.
    (g,) = link_groups(4, *_arrays([(0, 1, 3), (1, 2, 1), (0, 2, 5), (2, 3, 2)]), "connected")
    assert g.members.tolist() == [0, 1, 2, 3] and g.members.dtype == np.int64
    assert g.size == 4 and g.pairs == 4 and not g.fully_linked
    assert g.distances.tolist() == [1, 2, 3, 5]
    assert g.diameter == 5
    assert g.weakest == Link(0, 1, 3)  # the bottleneck, not the diameter pair
    assert g.medoid == 2  # three pairs inside, more than any other member


def test_fields_of_a_star_group():
    # Centre 0 with leaves 1..4 at distances 1..4, and leaves 1-2 also listed.
    pairs = [(0, i, i) for i in range(1, 5)] + [(1, 2, 1)]
    (g,) = link_groups(5, *_arrays(pairs), "star")
    assert g.members.tolist() == [0, 1, 2, 3, 4]
    assert g.medoid == 0 and g.diameter == 4 and not g.fully_linked
    assert g.weakest == Link(0, 4, 4)


def test_fields_of_complete_groups():
    # Triangle 0,1,2 (distances 1, 2, 3) and 3 listed with 0 and 1 only.
    pairs = [(0, 1, 1), (1, 2, 2), (0, 2, 3), (0, 3, 1), (1, 3, 4)]
    groups = link_groups(4, *_arrays(pairs), "complete")
    assert [g.members.tolist() for g in groups] == [[0, 1, 2]]
    (g,) = groups
    assert g.fully_linked and g.diameter == 3 and g.weakest == Link(0, 2, 3)
    assert g.distances.tolist() == [1, 2, 3]
    assert g.medoid == 1  # total 3, against 4 for 0 and 5 for 2


def test_medoid_ties_go_to_the_smaller_total_then_the_smaller_label():
    pairs = [(0, 1, 2), (1, 2, 2), (0, 2, 2)]
    (g,) = link_groups(3, *_arrays(pairs), "complete")
    assert g.medoid == 0
    (g,) = link_groups(3, *_arrays([(0, 1, 2), (1, 2, 1), (0, 2, 2)]), "complete")
    assert g.medoid == 1


def test_group_order_is_size_then_diameter_then_pairs_then_profile_then_member():
    pairs = [
        (0, 1, 2),                                   # size 2, diameter 2
        (2, 3, 1),                                   # size 2, diameter 1
        (4, 5, 2), (5, 6, 2),                        # size 3, diameter 2, 2 pairs
        (7, 8, 1), (8, 9, 2),                        # size 3, diameter 2, 2 pairs, (1, 2)
        (10, 11, 2), (11, 12, 2), (10, 12, 2),       # size 3, diameter 2, 3 pairs
        (13, 14, 1),                                 # size 2, diameter 1, after 2-3
    ]
    groups = link_groups(15, *_arrays(pairs), "connected")
    assert [int(g.members[0]) for g in groups] == [10, 7, 4, 2, 13, 0]
    keys = [sort_key(g) for g in groups]
    assert keys == sorted(keys)


def test_duplicates_orientation_and_self_pairs():
    pairs = [(1, 0, 7), (0, 1, 3), (0, 1, 5), (2, 2, 0), (2, 1, 4)]
    lo, hi, dist = canonical_pairs(3, *_arrays(pairs))
    assert lo.tolist() == [0, 1] and hi.tolist() == [1, 2] and dist.tolist() == [3, 4]
    for linkage in LINKAGES:
        groups = link_groups(3, *_arrays(pairs), linkage)
        assert groups[0].distances.tolist() in ([3, 4], [3])


def test_float_distances_and_their_types():
    a, b = np.array([0, 1]), np.array([1, 2])
    (g,) = link_groups(3, a, b, np.array([0.25, 0.5], dtype=np.float32), "connected")
    assert g.diameter == 0.5 and isinstance(g.diameter, float)
    (g,) = link_groups(3, a, b, np.array([1, 2], dtype=np.int32), "connected")
    assert g.diameter == 2 and isinstance(g.diameter, int)


def test_empty_inputs():
    empty = np.empty(0, dtype=np.int64)
    for linkage in LINKAGES:
        assert link_groups(0, empty, empty, empty, linkage) == []
        assert link_groups(5, empty, empty, empty, linkage) == []
        assert link_groups(3, np.array([1]), np.array([1]), np.array([0]), linkage) == []


@pytest.mark.parametrize("a, b, d, linkage", [
    ([0], [3], [1], "complete"),            # item out of range
    ([-1], [0], [1], "star"),
    ([0, 1], [1], [1], "connected"),        # lengths differ
    ([0], [1], [np.nan], "complete"),       # not finite
    ([0], [1], ["x"], "connected"),         # not a number
    ([0], [1], [1], "average"),             # unknown linkage
])
def test_bad_inputs_raise_the_library_error(a, b, d, linkage):
    with pytest.raises(LookalikeError):
        link_groups(3, np.array(a), np.array(b), np.array(d), linkage)


def _random_graph(seed, n, fill, levels):
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, 1)
    keep = rng.random(i.size) < fill
    return i[keep], j[keep], rng.integers(0, levels, int(keep.sum()))


def _partition(group_of):
    sets = {}
    for item, g in enumerate(group_of.tolist()):
        if g >= 0:
            sets.setdefault(g, set()).add(item)
    return sorted(sorted(s) for s in sets.values())


@pytest.mark.parametrize("seed", range(4))
def test_complete_engines_agree_on_dense_components(seed):
    # A 150-item component well above the dense threshold, with many tied distances: the
    # SciPy matrix path, the vectorised rounds and the plain loop give the same groups.
    n = 150
    lo, hi, dist = canonical_pairs(n, *_random_graph(seed, n, 0.3, 3))
    dense = complete_ids(n, lo, hi, dist)
    rounds = complete_ids(n, lo, hi, dist, dense_max_nodes=0)
    loop = complete_ids(n, lo, hi, dist, dense_max_nodes=0, rounds=False)
    assert _partition(dense) == _partition(rounds) == _partition(loop)
    assert len(_partition(dense)) > 3


@pytest.mark.parametrize("seed", range(4))
def test_star_rounds_agree_with_the_plain_loop(seed):
    n = 300
    lo, hi, dist = canonical_pairs(n, *_random_graph(seed, n, 0.02, 4))
    assert _partition(star_ids(n, lo, hi, dist)) == \
        _partition(star_ids(n, lo, hi, dist, rounds=False))


def test_common_neighbours_of_a_dense_component_match_the_wedge_count():
    n = 120
    lo, hi, _ = canonical_pairs(n, *_random_graph(5, n, 0.4, 1))
    assert _dense_common(lo, hi).tolist() == common_neighbours(n, lo, hi).tolist()


def test_components_number_as_scipy_does():
    """NumPy's min-label propagation gives SciPy's labels: random graphs with repeated pairs,
    self-pairs and lone items, and a long chain listed in random order."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from lookalike.search.linkage import _components_numpy, components

    def scipy_labels(n, lo, hi):
        graph = coo_matrix((np.ones(lo.size, np.int8), (lo, hi)), shape=(n, n))
        return connected_components(graph, directed=False)[1]

    rng = np.random.default_rng(5)
    graphs = []
    for _ in range(200):
        n = int(rng.integers(1, 200))
        pairs = int(rng.integers(0, 3 * n))
        graphs.append((n, rng.integers(0, n, pairs), rng.integers(0, n, pairs)))
    order = rng.permutation(20_000)
    graphs.append((20_000, order[:-1], order[1:]))
    graphs.append((5, np.array([], np.int64), np.array([], np.int64)))
    for n, lo, hi in graphs:
        expected = scipy_labels(n, lo, hi)
        assert np.array_equal(_components_numpy(n, lo, hi), expected)
        assert np.array_equal(components(n, lo, hi), expected)
