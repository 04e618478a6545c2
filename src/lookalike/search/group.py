"""Pairs -> groups, with a choice of linkage.

The input is a pair graph: items 0..n-1 and the listed pairs (a, b, distance) that a search
found within its threshold; a pair that is not listed is "farther than the threshold".

- ``connected`` (single link): a group is a connected component. Nothing is ever split, so a
  chain of small steps A~B~C~D joins A and D however unlike they are. Use it for exact and
  near-exact evidence (bytes, pixels, tight radii), where every step is a copy.
- ``complete``: every two members of a group are a listed pair, so a group's diameter is
  within the threshold. It breaks chains and never joins images that do not match each other;
  an image that matches most but not all of a group stays out of it. Use it when a wrong group
  costs more than a missed pair (deleting files, training-set dedup at wide radii).
- ``star``: every member is a listed pair with the group's medoid, so members are within two
  thresholds of each other. It keeps a near copy that misses one sibling, and still cuts long
  chains. Use it for review: one original, its variants around it.

Complete linkage is agglomerative complete-link clustering in which unlisted pairs are
infinitely far, cut at the threshold. Pairs of equal distance are taken with more common
neighbours first (pairs inside a clique before a pair that hangs off it), then smaller degree
sum (the ends of a chain before its middle), then by label. Star linkage is greedy: take the
item with the most ungrouped neighbours (ties: smaller total distance to them, then label),
group it with them, repeat. Groups come largest first, then by smallest diameter (see
sort_key). Groups and their order depend on labels only through these last tie-breaks, and on
the order of the pairs not at all.

Cost: O(pairs log pairs) in vectorised passes for the common case; what they leave (ties
running along long chains numbered in order) goes through a plain loop at about a microsecond
a pair. A component that is one clique is one group at once under every linkage.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ..errors import LookalikeError

LINKAGES = ("connected", "complete", "star")
# Complete linkage of a component with at most this many items and at least this share of its
# possible pairs listed runs on a dense matrix in SciPy (O(k^2) time and memory, in C); listing
# its triangles pair by pair would cost O(k^3).
DENSE_MAX_NODES = 4096
DENSE_MIN_NODES = 64
DENSE_MIN_FILL = 1 / 32
WEDGE_CHUNK = 1 << 22  # neighbour pairs examined at once when counting triangles


@dataclass(frozen=True)
class Link:
    """A listed pair, `a` < `b`."""

    a: int
    b: int
    distance: float


@dataclass(frozen=True, eq=False)
class LinkedGroup:
    """A group of items and the evidence that holds it together.

    members: sorted item numbers (int64), two or more.
    distances: the distances of every listed pair between members, ascending.
    diameter: the largest of them. When `fully_linked` is false some member pairs are not
        listed (farther than the threshold, so the true diameter is larger).
    weakest: the pair of largest distance among those that hold the group together: the pairs
        of a minimum spanning tree (connected), all member pairs (complete), the pairs with the
        medoid (star). Ties: the pair that comes last in (distance, a, b) order.
    medoid: the member with the most listed pairs inside the group, then the smallest total
        distance over them, then the smallest number. For star linkage every other member is
        a listed pair with it.
    """

    members: np.ndarray
    distances: np.ndarray
    diameter: float
    weakest: Link
    medoid: int

    @property
    def size(self) -> int:
        return int(self.members.size)

    @property
    def pairs(self) -> int:
        return int(self.distances.size)

    @property
    def fully_linked(self) -> bool:
        return self.pairs == self.size * (self.size - 1) // 2


def sort_key(group: LinkedGroup) -> tuple:
    """Largest first, then smallest diameter, then most listed pairs, then the pair distances
    compared smallest first, then smallest member. Only the last step looks at labels."""
    return (-group.size, group.diameter, -group.pairs, tuple(group.distances.tolist()),
            int(group.members[0]))


def connected_groups(n: int, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Connected components with two or more members, each sorted, largest first, then by
    smallest member: independent of the order in which the pairs arrive."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0 or a.size == 0:
        return []
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    groups = [g for g in np.split(order, cuts) if g.size > 1]
    groups.sort(key=lambda g: (-g.size, int(g[0])))
    return groups


def link_groups(n: int, a: np.ndarray, b: np.ndarray, distance: np.ndarray,
                linkage: str = "connected") -> list[LinkedGroup]:
    """Groups of the pair graph under `linkage` ("connected", "complete" or "star"), in
    `sort_key` order. Each item is in at most one group; a pair listed twice counts once, at
    its smaller distance; self-pairs are ignored."""
    if linkage not in LINKAGES:
        raise LookalikeError(f"unknown linkage {linkage!r}; choose one of {', '.join(LINKAGES)}")
    lo, hi, dist = canonical_pairs(n, a, b, distance)
    # Renumber the items that are in some pair 0..k-1 in their order: what follows then
    # scales with the pairs, not with n, and every tie-break by label comes out the same.
    seen = np.zeros(n, dtype=bool)
    seen[lo] = seen[hi] = True
    items = np.flatnonzero(seen)
    number = np.cumsum(seen) - 1
    lo, hi, k = number[lo], number[hi], items.size
    if linkage == "connected":
        group_of = _connected_ids(k, lo, hi)
    elif linkage == "complete":
        group_of = complete_ids(k, lo, hi, dist)
    else:
        group_of = star_ids(k, lo, hi, dist)
    return _describe(group_of, lo, hi, dist, linkage, items)


def canonical_pairs(n: int, a: np.ndarray, b: np.ndarray,
                    distance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, distance) with lo < hi, each pair once at its smallest distance, sorted by
    (distance, lo, hi). Integer distances come back as int64, others as float64."""
    a = np.asarray(a, dtype=np.int64).ravel()
    b = np.asarray(b, dtype=np.int64).ravel()
    dist = np.asarray(distance).ravel()
    if not (a.size == b.size == dist.size):
        raise LookalikeError(f"pair arrays differ in length: {a.size}, {b.size}, {dist.size}")
    if dist.dtype.kind not in "iuf":
        raise LookalikeError(f"distances must be numbers, not {dist.dtype}")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
        raise LookalikeError(f"pair items must lie in 0..{n - 1}")
    dist = dist.astype(np.int64 if dist.dtype.kind in "iu" else np.float64)
    if not np.all(np.isfinite(dist)):
        raise LookalikeError("distances must be finite")
    keep = a != b
    lo, hi, dist = np.minimum(a, b)[keep], np.maximum(a, b)[keep], dist[keep]
    if lo.size == 0:
        return lo, hi, dist
    step, values = _dense_rank(dist)
    if float(values.size) * n * n < 2.0 ** 62:  # one sort of packed values, nothing to gather
        packed = np.sort((step * np.int64(n) + lo) * np.int64(n) + hi)
        pair = packed % (np.int64(n) * n)
        lo, hi, dist = pair // n, pair % n, values[packed // (np.int64(n) * n)]
    else:
        order = np.lexsort((hi, lo, step))
        lo, hi, dist = lo[order], hi[order], dist[order]
        pair = lo * np.int64(n) + hi
    ordered = np.sort(pair)
    if np.any(ordered[1:] == ordered[:-1]):  # listed twice: keep the first, smallest distance
        _, first = np.unique(pair, return_index=True)
        first.sort()
        lo, hi, dist = lo[first], hi[first], dist[first]
    return lo, hi, dist


def _dense_rank(values: np.ndarray, ascending: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Integer steps that order like `values` (`ascending`: already sorted), and the value of
    each step."""
    if ascending:
        rises = np.concatenate([[False], values[1:] != values[:-1]])
        return np.cumsum(rises), values[np.concatenate([[True], rises[1:]])]
    if values.dtype.kind == "i":
        low, high = int(values.min()), int(values.max())
        if high - low < values.size * 4:  # small range: the shifted values will do
            return values - low, np.arange(low, high + 1, dtype=np.int64)
    distinct, rank = np.unique(values, return_inverse=True)
    return rank.ravel().astype(np.int64), distinct


def _stable_order(keys: list[np.ndarray], bounds: list[int]) -> np.ndarray:
    """Stable sort order by non-negative integer keys, the first most significant: one sort
    of a packed key when the ranges fit in 63 bits, else a lexsort."""
    span = np.prod([float(max(b, 1)) for b in bounds])
    if span < 2.0 ** 62:
        packed = np.zeros(keys[0].size, dtype=np.int64)
        for key, bound in zip(keys, bounds):
            packed = packed * np.int64(max(bound, 1)) + key
        return _sort_by(packed, int(span))
    return np.lexsort(keys[::-1])


def _sort_by(key: np.ndarray, bound: int) -> np.ndarray:
    """Stable argsort of integers in 0..bound-1: a plain sort of key * size + index when that
    fits in 63 bits (several times faster than argsort), else argsort."""
    m = max(key.size, 1)
    if float(bound) * m < 2.0 ** 62:
        return np.sort(key * np.int64(m) + np.arange(key.size)) % m
    return np.argsort(key, kind="stable")


def _components(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(lo.size, dtype=np.int8), (lo, hi)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _connected_ids(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Group number of each item (-1: in no group)."""
    group_of = np.full(n, -1, dtype=np.int64)
    if lo.size:
        labels = _components(n, lo, hi)
        group_of[lo] = labels[lo]
        group_of[hi] = labels[hi]
    return group_of


def _split_cliques(n: int, lo: np.ndarray, hi: np.ndarray, group_of: np.ndarray):
    """Give each component that is one clique its group number (such a component is one group
    under complete and star linkage alike); return the component labels, sizes, pair counts,
    and the indices of the pairs left to decide."""
    labels = _components(n, lo, hi)
    sizes = np.bincount(labels)
    pairs = np.bincount(labels[lo], minlength=sizes.size)
    whole = (pairs == sizes * (sizes - 1) // 2)[labels[lo]]
    group_of[lo[whole]] = labels[lo[whole]]
    group_of[hi[whole]] = labels[hi[whole]]
    return labels, sizes, pairs, np.flatnonzero(~whole)


def complete_ids(n: int, lo: np.ndarray, hi: np.ndarray, dist: np.ndarray,
                 dense_max_nodes: int = DENSE_MAX_NODES, dense_min_nodes: int = DENSE_MIN_NODES,
                 dense_min_fill: float = DENSE_MIN_FILL, rounds: bool = True) -> np.ndarray:
    """Group number of each item under complete linkage (-1: in no group), for canonical pairs.

    Pairs are taken in order of (distance, more common neighbours, smaller degree sum, lo, hi);
    two clusters merge when the last of the pairs between them is taken, if all are listed.
    The keyword arguments choose the engines (all give the same groups); tests use them.
    """
    group_of = np.full(n, -1, dtype=np.int64)
    if lo.size == 0:
        return group_of
    labels, sizes, comp_pairs, rest = _split_cliques(n, lo, hi, group_of)
    if rest.size == 0:
        return group_of
    lo, hi, dist, comp = lo[rest], hi[rest], dist[rest], labels[lo[rest]]
    fill = comp_pairs / np.maximum(sizes * (sizes - 1) // 2, 1)
    dense = ((sizes >= max(dense_min_nodes, 3)) & (sizes <= dense_max_nodes) &
             (fill >= dense_min_fill))[comp]
    common = np.zeros(lo.size, dtype=np.int64)
    sparse = np.flatnonzero(~dense)
    common[sparse] = common_neighbours(n, lo[sparse], hi[sparse])
    by_comp = np.flatnonzero(dense)
    by_comp = by_comp[_sort_by(comp[by_comp], sizes.size)]
    dense_parts = np.split(by_comp, np.flatnonzero(np.diff(comp[by_comp])) + 1) \
        if by_comp.size else []
    for part in dense_parts:
        common[part] = _dense_common(lo[part], hi[part])
    degree = np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
    step, values = _dense_rank(dist, ascending=True)
    most = int(common.max())
    order = _stable_order([step, most - common, degree[lo] + degree[hi]],
                          [values.size, most + 1, 2 * int(degree.max()) + 1])
    position = np.empty(lo.size, dtype=np.int64)
    position[order] = np.arange(lo.size)
    next_id = int(labels.max()) + 1
    if sparse.size:
        cluster = _merge_complete(n, lo[sparse], hi[sparse], position[sparse], rounds)
        seen = np.concatenate([lo[sparse], hi[sparse]])
        group_of[seen] = cluster[seen] + next_id
        next_id += n
    for part in dense_parts:
        nodes, local = _dense_complete(lo[part], hi[part], position[part])
        group_of[nodes] = local + next_id
        next_id += nodes.size + 1
    return _drop_singletons(group_of)


def _drop_singletons(group_of: np.ndarray) -> np.ndarray:
    grouped = np.flatnonzero(group_of >= 0)
    counts = np.bincount(group_of[grouped])
    group_of[grouped[counts[group_of[grouped]] == 1]] = -1
    return group_of


def _merge_complete(n: int, lo: np.ndarray, hi: np.ndarray, position: np.ndarray,
                    rounds: bool = True) -> np.ndarray:
    """Complete-link clusters of pairs taken in `position` order: a representative item per
    item. With distinct positions, merging every two clusters that are each other's nearest
    (complete linkage is reducible) gives the same clusters as merging one at a time; such
    rounds run vectorised while they shrink the work by a quarter, the rest goes pair by pair.
    Between rounds only complete cluster pairs are kept: an incomplete one never completes."""
    target = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    c1, c2, weight, top = lo, hi, np.ones(lo.size, dtype=np.int64), position
    while rounds and c1.size:
        before = c1.size
        best = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(best, c1, top)
        np.minimum.at(best, c2, top)
        mutual = (best[c1] == top) & (best[c2] == top)
        keep, gone = c1[mutual], c2[mutual]
        target[gone] = keep
        size[keep] += size[gone]
        rest = ~mutual
        if not rest.any():
            c1 = c1[:0]
            break
        x, y = target[c1[rest]], target[c2[rest]]
        x, y = np.minimum(x, y), np.maximum(x, y)
        pair = x * np.int64(n) + y
        order = np.argsort(pair)
        pair = pair[order]
        heads = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]]))
        x, y = x[order][heads], y[order][heads]
        weight = np.add.reduceat(weight[rest][order], heads)
        top = np.maximum.reduceat(top[rest][order], heads)
        whole = weight == size[x] * size[y]
        c1, c2, weight, top = x[whole], y[whole], weight[whole], top[whole]
        if c1.size * 4 > before * 3:
            break
    if c1.size:
        order = _sort_by(top, lo.size)
        nodes, roots = _agglomerate(c1[order], c2[order], weight[order], size)
        target[nodes] = roots
    while True:
        jumped = target[target]
        if np.array_equal(jumped, target):
            return target
        target = jumped


def _agglomerate(c1: np.ndarray, c2: np.ndarray, weight: np.ndarray,
                 size_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-at-a-time merging: cluster pairs (c1, c2) standing for `weight` item pairs,
    taken in order. Counts, for each two clusters, the item pairs taken between them; they
    merge when the count reaches the product of their sizes. Count tables merge small into
    large, so the loop is O(pairs log pairs). Returns the clusters seen and a root for each."""
    seen = np.zeros(size_of.size, dtype=bool)
    seen[c1] = seen[c2] = True
    nodes = np.flatnonzero(seen)
    number = np.cumsum(seen) - 1
    us, vs = number[c1].tolist(), number[c2].tolist()
    parent = list(range(nodes.size))
    size = size_of[nodes].tolist()
    links: dict[int, dict[int, int]] = {}  # root -> {other root: item pairs taken between}
    for u, v, w in zip(us, vs, weight.tolist()):
        while parent[u] != u:
            parent[u] = u = parent[parent[u]]
        while parent[v] != v:
            parent[v] = v = parent[parent[v]]
        lu = links.get(u)
        taken = (lu.get(v, 0) if lu else 0) + w
        if taken < size[u] * size[v]:
            if lu is None:
                links[u] = lu = {}
            lu[v] = taken
            links.setdefault(v, {})[u] = taken
            continue
        lu, lv = links.pop(u, {}), links.pop(v, {})
        lu.pop(v, None)
        lv.pop(u, None)
        if len(lu) < len(lv):
            u, v, lu, lv = v, u, lv, lu
        parent[v] = u
        size[u] += size[v]
        for other, count in lv.items():
            theirs = links[other]
            del theirs[v]
            lu[other] = theirs[u] = lu.get(other, 0) + count
        if lu:
            links[u] = lu
    for x in range(len(parent)):
        root = x
        while parent[root] != root:
            root = parent[root]
        parent[x] = root
    return nodes, nodes[np.asarray(parent, dtype=np.int64)]


def _dense_complete(lo: np.ndarray, hi: np.ndarray,
                    position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same clusters for one component, by SciPy's complete linkage on a matrix of pair
    positions (unlisted pairs after every listed one), cut after the last listed pair."""
    from scipy.cluster.hierarchy import fcluster, linkage

    nodes = np.unique(np.concatenate([lo, hi]))
    k = nodes.size
    i, j = np.searchsorted(nodes, lo), np.searchsorted(nodes, hi)
    unlisted = float(position.max()) + 2
    condensed = np.full(k * (k - 1) // 2, unlisted)
    condensed[i * k - i * (i + 1) // 2 + (j - i - 1)] = position + 1.0
    tree = linkage(condensed, method="complete")
    clusters = fcluster(tree, t=unlisted - 1, criterion="distance")
    return nodes, clusters.astype(np.int64)


def _dense_common(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Common neighbours of each pair of one dense component: popcounts of the AND of two
    rows of a bit matrix, about pairs * items / 64 word operations."""
    nodes = np.unique(np.concatenate([lo, hi]))
    k = nodes.size
    i, j = np.searchsorted(nodes, lo), np.searchsorted(nodes, hi)
    adjacency = np.zeros((k, -(-k // 64) * 64), dtype=bool)
    adjacency[i, j] = adjacency[j, i] = True
    rows = np.packbits(adjacency, axis=1).view(np.uint64)
    counts = np.empty(lo.size, dtype=np.int64)
    step = max(1, (1 << 18) // rows.shape[1])  # two blocks of rows stay in cache
    for start in range(0, lo.size, step):
        both = rows[i[start:start + step]] & rows[j[start:start + step]]
        counts[start:start + step] = _popcount(both).sum(axis=1)
    return counts


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # NumPy 2
        return np.bitwise_count(words)
    table = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
    return table[words.view(np.uint8)].reshape(*words.shape, 8).sum(axis=-1)


def common_neighbours(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each pair (lo, hi) of a pair list without repeats, how many items are listed with
    both. Each pair points from its endpoint of lower (degree, number) to the other, so no
    item has more than sqrt(2 * pairs) pointing out, and the triangles are found among the
    pairs of those: O(pairs^1.5) in all, however large a hub."""
    m = lo.size
    counts = np.zeros(m, dtype=np.int64)
    if m == 0:
        return counts
    degree = np.bincount(lo, minlength=n) + np.bincount(hi, minlength=n)
    up = degree[lo] <= degree[hi]
    src, dst = np.where(up, lo, hi), np.where(up, hi, lo)
    by_src = _sort_by(src, n)
    src, dst = src[by_src], dst[by_src]
    keys = lo * np.int64(n) + hi
    key_order = np.argsort(keys)
    sorted_keys = keys[key_order]
    later = np.searchsorted(src, src, side="right") - np.arange(m) - 1
    total = np.cumsum(later)
    start = 0
    while start < m:
        done = int(total[start - 1]) if start else 0
        stop = max(int(np.searchsorted(total, done + WEDGE_CHUNK, side="right")), start + 1)
        per = later[start:stop]
        first = np.repeat(np.arange(start, stop), per)
        offset = np.arange(first.size) - np.repeat(np.cumsum(per) - per, per)
        second = first + 1 + offset
        y, z = dst[first], dst[second]
        key = np.minimum(y, z) * np.int64(n) + np.maximum(y, z)
        at = np.minimum(np.searchsorted(sorted_keys, key), m - 1)
        hit = sorted_keys[at] == key
        found = np.concatenate([by_src[first[hit]], by_src[second[hit]], key_order[at[hit]]])
        counts += np.bincount(found, minlength=m)
        start = stop
    return counts


def star_ids(n: int, lo: np.ndarray, hi: np.ndarray, dist: np.ndarray,
             rounds: bool = True) -> np.ndarray:
    """Group number of each item under star linkage (-1: in no group), for canonical pairs.

    Greedy: the item with the most ungrouped neighbours (ties: smaller total distance to them,
    then smaller number) forms a group with them; repeat. An item that beats every item
    within two steps is picked by that loop with its neighbours as they are now (keys only
    get worse), so all such items are taken at once in vectorised rounds while the rounds
    take many; the rest goes one at a time. `rounds=False` (tests) goes one at a time.
    Float totals are running sums there, so totals within a rounding may tie either way.
    """
    group_of = np.full(n, -1, dtype=np.int64)
    if lo.size == 0:
        return group_of
    labels, _, _, rest = _split_cliques(n, lo, hi, group_of)
    lo, hi, dist = lo[rest], hi[rest], dist[rest]
    next_id = int(labels.max()) + 1
    while rounds and lo.size:
        count, total = _degree_and_total(n, lo, hi, dist)
        nodes = np.flatnonzero(count)
        rank = np.full(n, np.iinfo(np.int64).max)
        rank[nodes[np.lexsort((nodes, total[nodes], -count[nodes]))]] = np.arange(nodes.size)
        near = rank.copy()
        np.minimum.at(near, lo, rank[hi])
        np.minimum.at(near, hi, rank[lo])
        near2 = near.copy()
        np.minimum.at(near2, lo, near[hi])
        np.minimum.at(near2, hi, near[lo])
        centres = nodes[near2[nodes] == rank[nodes]]
        group_of[centres] = centres + next_id
        is_centre = np.zeros(n, dtype=bool)
        is_centre[centres] = True
        from_lo, from_hi = is_centre[lo], is_centre[hi]  # a neighbour has one centre at most
        group_of[hi[from_lo]] = group_of[lo[from_lo]]
        group_of[lo[from_hi]] = group_of[hi[from_hi]]
        alive = (group_of[lo] < 0) & (group_of[hi] < 0)
        before = lo.size
        lo, hi, dist = lo[alive], hi[alive], dist[alive]
        if lo.size * 4 > before * 3:
            break
    next_id += n
    if lo.size:
        nodes, stars = _greedy_stars(n, lo, hi, dist)
        for number, members in enumerate(stars):
            group_of[nodes[members]] = next_id + number
    return group_of


def _degree_and_total(n: int, lo: np.ndarray, hi: np.ndarray,
                      dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item, its listed pairs and the sum of their distances. Pairs come in distance
    order, so each float sum adds the same values in the same order whatever the labels."""
    ends = np.stack([lo, hi], axis=1).ravel()
    lengths = np.repeat(dist, 2)
    if dist.dtype.kind == "i":  # exact, also past 2**53
        total = np.zeros(n, dtype=np.int64)
        np.add.at(total, ends, lengths)
    else:
        total = np.bincount(ends, weights=lengths, minlength=n)
    return np.bincount(ends, minlength=n), total


def _greedy_stars(n: int, lo: np.ndarray, hi: np.ndarray,
                  dist: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """The one-at-a-time star loop, with a lazy heap; returns the items seen and the groups
    as lists of indices into them."""
    degree_all, total_all = _degree_and_total(n, lo, hi, dist)
    nodes = np.flatnonzero(degree_all)
    k = nodes.size
    ends = np.concatenate([np.searchsorted(nodes, lo), np.searchsorted(nodes, hi)])
    others = np.concatenate([ends[lo.size:], ends[:lo.size]])
    by_node = _stable_order([ends, others], [k, k])
    starts = np.searchsorted(ends[by_node], np.arange(k + 1)).tolist()
    neighbour = others[by_node].tolist()
    length = np.concatenate([dist, dist])[by_node].tolist()
    degree = degree_all[nodes].tolist()
    total = total_all[nodes].tolist()
    if dist.dtype.kind == "i":  # the key (-degree, total, item) packed in one int: faster
        most, offset = max(degree), int(_degree_and_total(n, lo, hi, np.abs(dist))[1].max())

        def entry(v: int):
            return ((most - degree[v]) * (2 * offset + 1) + total[v] + offset) * k + v

        def item(e) -> int:
            return e % k
    else:
        def entry(v: int):
            return (-degree[v], total[v], v)

        def item(e) -> int:
            return e[2]
    heap = [entry(v) for v in range(k)]
    heapq.heapify(heap)
    taken = bytearray(k)
    groups: list[list[int]] = []
    while heap:
        e = heapq.heappop(heap)
        v = item(e)
        if taken[v]:
            continue
        if e != entry(v):  # a neighbour was taken since this entry was pushed
            if degree[v]:
                heapq.heappush(heap, entry(v))
            continue
        members = [v] + [w for w in neighbour[starts[v]:starts[v + 1]] if not taken[w]]
        for u in members:
            taken[u] = 1
        for u in members:
            for p in range(starts[u], starts[u + 1]):
                w = neighbour[p]
                if not taken[w]:
                    degree[w] -= 1
                    total[w] -= length[p]  # float totals may drift by a rounding here
        groups.append(members)
    return nodes, groups


def _describe(group_of: np.ndarray, lo: np.ndarray, hi: np.ndarray, dist: np.ndarray,
              linkage: str, items: np.ndarray) -> list[LinkedGroup]:
    """LinkedGroup values for a group number per item, in sort_key order; `items` maps the
    item numbers used here back to the caller's."""
    grouped = np.flatnonzero(group_of >= 0)
    if grouped.size == 0:
        return []
    present = np.bincount(group_of[grouped]) > 0
    dense_ids = (np.cumsum(present) - 1)[group_of[grouped]]
    group_of = np.full(group_of.size, -1, dtype=np.int64)
    group_of[grouped] = dense_ids
    count = int(present.sum())
    sizes = np.bincount(dense_ids, minlength=count)
    inside = np.flatnonzero((group_of[lo] >= 0) & (group_of[lo] == group_of[hi]))
    owner = group_of[lo[inside]]
    # Pairs are in (distance, lo, hi) order; a stable sort by group keeps that order inside.
    by_group = inside[_sort_by(owner, count)]
    pairs = np.bincount(owner, minlength=count)
    pair_starts = np.concatenate([[0], np.cumsum(pairs)])
    last = by_group[pair_starts[1:] - 1]
    medoid = _medoids(group_of, grouped, count, lo[inside], hi[inside], dist[inside])
    if linkage == "connected":
        weakest = _spanning_weakest(group_of, count, lo, hi)
    elif linkage == "star":
        spoke = inside[(lo[inside] == medoid[owner]) | (hi[inside] == medoid[owner])]
        weakest = np.zeros(count, dtype=np.int64)
        np.maximum.at(weakest, group_of[lo[spoke]], spoke)
    else:
        weakest = last
    member_order = grouped[_sort_by(group_of[grouped], count)]
    member_starts = np.concatenate([[0], np.cumsum(sizes)])
    first = member_order[member_starts[:-1]]
    diameter = dist[last]
    order = _group_order(sizes, diameter, pairs, first, dist[by_group], pair_starts)
    weak = weakest[order]
    return [LinkedGroup(members=m, distances=p, diameter=dm, weakest=Link(a, b, wd), medoid=c)
            for m, p, dm, a, b, wd, c in zip(
                _rows(items[member_order], member_starts[order], sizes[order]),
                _rows(dist[by_group], pair_starts[order], pairs[order]),
                dist[last[order]].tolist(), items[lo[weak]].tolist(), items[hi[weak]].tolist(),
                dist[weak].tolist(), items[medoid[order]].tolist())]


def _rows(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """flat[start:start + length] for each start and length, gathered a block of one length
    at a time (far cheaper than one slice per group when there are many small groups)."""
    out: list[np.ndarray] = [flat[:0]] * lengths.size
    by_length = _sort_by(lengths, int(lengths.max()) + 1)
    for at in np.split(by_length, np.flatnonzero(np.diff(lengths[by_length])) + 1):
        block = flat[starts[at][:, None] + np.arange(lengths[at[0]])]
        for i, row in zip(at.tolist(), block):
            out[i] = row
    return out


def _medoids(group_of: np.ndarray, grouped: np.ndarray, count: int, lo: np.ndarray,
             hi: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Per group, the member with most pairs inside, then least total distance, then lowest
    number; pairs come in distance order, so each float total is summed the same way."""
    degree, total = _degree_and_total(group_of.size, lo, hi, dist)
    degree, total = degree[grouped], total[grouped]
    best = np.lexsort((grouped, total, -degree, group_of[grouped]))
    ranked = group_of[grouped][best]
    heads = np.ones(ranked.size, dtype=bool)
    heads[1:] = ranked[1:] != ranked[:-1]
    medoid = np.empty(count, dtype=np.int64)
    medoid[ranked[heads]] = grouped[best][heads]
    return medoid


def _spanning_weakest(group_of: np.ndarray, count: int, lo: np.ndarray,
                      hi: np.ndarray) -> np.ndarray:
    """Per group, the index of the last pair Kruskal's algorithm needs to join it, pairs
    taken in (distance, lo, hi) order."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    n = group_of.size
    rank = np.arange(1, lo.size + 1, dtype=np.float64)  # distinct and never 0 (0 = no edge)
    tree = minimum_spanning_tree(coo_matrix((rank, (lo, hi)), shape=(n, n)).tocsr()).tocoo()
    used = np.rint(tree.data).astype(np.int64) - 1
    weakest = np.zeros(count, dtype=np.int64)
    np.maximum.at(weakest, group_of[lo[used]], used)
    return weakest


def _group_order(sizes: np.ndarray, diameter: np.ndarray, pairs: np.ndarray,
                 first: np.ndarray, distances: np.ndarray,
                 pair_starts: np.ndarray) -> np.ndarray:
    """Group numbers in sort_key order. Groups that tie on size, diameter and pair count have
    profiles of one length, so each run of ties is ordered by a lexsort over their columns."""
    order = np.lexsort((first, -pairs, diameter, -sizes))
    s, d, p = sizes[order], diameter[order], pairs[order]
    tied = (s[1:] == s[:-1]) & (d[1:] == d[:-1]) & (p[1:] == p[:-1]) & (p[1:] > 1)
    if not tied.any():  # with one pair, the profile is the diameter itself
        return order
    run = np.concatenate([[0], np.cumsum(~tied)])
    in_run = np.zeros(order.size, dtype=bool)
    in_run[1:] |= tied
    in_run[:-1] |= tied
    slots = np.flatnonzero(in_run)
    for count in np.unique(p[slots]).tolist():
        at = slots[p[slots] == count]
        groups = order[at]
        if count > 64:  # long profiles: few such groups, compare them as tuples
            key = {g: (r, tuple(distances[pair_starts[g]:pair_starts[g + 1]].tolist()),
                       first[g]) for g, r in zip(groups.tolist(), run[at].tolist())}
            order[at] = sorted(key, key=key.__getitem__)
            continue
        table = distances[pair_starts[groups][:, None] + np.arange(count)]
        columns = [table[:, c] for c in range(count - 1, -1, -1)]
        order[at] = groups[np.lexsort([first[groups], *columns, run[at]])]
    return order
