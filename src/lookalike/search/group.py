"""Pairs -> groups."""

from __future__ import annotations

import numpy as np


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
