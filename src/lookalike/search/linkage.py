"""The complete- and star-linkage engines behind link_groups (search/group.py, whose docstring
says what each linkage means and how ties break): a group number per item for canonical pairs,
and the sorting and counting helpers that group.py shares."""

from __future__ import annotations

import heapq

import numpy as np

# Complete linkage of a component with at most this many items and at least this share of its
# possible pairs listed runs on a dense matrix in SciPy (O(k^2) time and memory, in C); listing
# its triangles pair by pair would cost O(k^3).
DENSE_MAX_NODES = 4096
DENSE_MIN_NODES = 64
DENSE_MIN_FILL = 1 / 32
WEDGE_CHUNK = 1 << 22  # neighbour pairs examined at once when counting triangles
# Connected components by NumPy up to this many pairs, by SciPy above: importing SciPy's graph
# module costs 0.19 s, more than NumPy's whole run below it (3 ms at 20,000 pairs, where
# SciPy takes 2; 0.35 s at 500,000, where SciPy takes 0.11).
NUMPY_COMPONENTS_MAX_PAIRS = 200_000


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


def components(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The connected component of each of n items joined by the pairs (lo[i], hi[i]), numbered
    by their smallest item, as SciPy's connected_components numbers them. Up to
    NUMPY_COMPONENTS_MAX_PAIRS pairs (and while SciPy's graph module is not loaded yet) by
    NumPy's min-label propagation, else by SciPy: the same labels (tests/unit/test_linkage.py)."""
    import sys

    if lo.size > NUMPY_COMPONENTS_MAX_PAIRS or "scipy.sparse.csgraph" in sys.modules:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(lo.size, dtype=np.int8), (lo, hi)), shape=(n, n))
        return connected_components(graph, directed=False)[1]
    return _components_numpy(n, lo, hi)


def _components_numpy(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """components() without SciPy: each pair hooks its endpoints' roots onto the smaller
    label, then labels jump to their label's label until they settle; rounds until every pair
    has one label, which is then its component's smallest item."""
    label = np.arange(n, dtype=np.int64)
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    while True:
        low = np.minimum(label[lo], label[hi])
        np.minimum.at(label, label[lo], low)
        np.minimum.at(label, label[hi], low)
        while not np.array_equal(jumped := label[label], label):
            label = jumped
        if np.array_equal(label[lo], label[hi]):
            return np.unique(label, return_inverse=True)[1]


def _split_cliques(n: int, lo: np.ndarray, hi: np.ndarray, group_of: np.ndarray):
    """Give each component that is one clique its group number (such a component is one group
    under complete and star linkage alike); return the component labels, sizes, pair counts,
    and the indices of the pairs left to decide."""
    labels = components(n, lo, hi)
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
