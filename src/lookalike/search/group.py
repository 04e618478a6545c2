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

The complete and star engines are in linkage.py; this module holds the data types, the
connected grouping, and the describing and ordering of groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LookalikeError
from .linkage import _degree_and_total, _dense_rank, _sort_by, complete_ids, components, star_ids

LINKAGES = ("connected", "complete", "star")


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
    if n == 0 or a.size == 0:
        return []
    labels = components(n, a, b)
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


def _connected_ids(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Group number of each item (-1: in no group)."""
    group_of = np.full(n, -1, dtype=np.int64)
    if lo.size:
        labels = components(n, lo, hi)
        group_of[lo] = labels[lo]
        group_of[hi] = labels[hi]
    return group_of


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
