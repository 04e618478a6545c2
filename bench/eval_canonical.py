"""Dihedral search: all 8 query variants against identity codes vs one canonical code each.

A canonical form (the smallest of a picture's 8 codes) would need one code per picture in
the index and one query per picture: 8x less work. This measures what it costs in recall on
flipped and rotated copies, on an index built by `lookalike scan`.

    python bench/eval_canonical.py INDEX --truth truth.json [--method phash] [--radius 8]

truth.json is bench/make_collection.py's (groups of an original and its planted copies);
files are matched by name. Without --truth only the two pair sets are compared.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from lookalike.evaluation.collection import group_pairs, read_collection_truth
from lookalike.index.store import open_index
from lookalike.methods.registry import get_spec
from lookalike.search import binary


def canonical(codes: np.ndarray) -> np.ndarray:
    """(N, V, nbytes) -> (N, 1, nbytes): the lexicographically smallest variant."""
    n, v, nbytes = codes.shape
    flat = codes.reshape(n * v, nbytes)
    keys = np.ascontiguousarray(flat).view(f"V{nbytes}").ravel().reshape(n, v)
    best = np.argsort(keys, axis=1, kind="stable")[:, 0]
    return codes[np.arange(n), best][:, None, :]


def copy_pairs(path: str) -> dict[str, set[frozenset[str]]]:
    """(original, copy) name pairs of truth.json by the copy's transform."""
    out: dict[str, set[frozenset[str]]] = {}
    for g in read_collection_truth(path)["groups"]:
        for c in g["copies"]:
            out.setdefault(c["transform"], set()).add(frozenset((g["original"], c["file"])))
    return out


def _names(infos) -> list[str]:
    return [os.path.basename(f.path) for f in infos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index")
    parser.add_argument("--truth")
    parser.add_argument("--method", default="phash")
    parser.add_argument("--radius", type=int, default=8)
    args = parser.parse_args()
    spec = get_spec(args.method)
    with open_index(args.index) as idx:
        codes = idx.load_codes(spec)
        files = idx.live_files()
    usable = codes.quality >= spec.min_quality
    ids, c = codes.content_ids[usable], codes.codes[usable]
    results = {}
    for name, queries in (("8 variants", c), ("canonical", canonical(c))):
        start = time.perf_counter()
        hits = binary.self_join(queries, args.radius)
        seconds = time.perf_counter() - start
        pairs = {frozenset((p, q)) for a, b in zip(ids[hits.query], ids[hits.item])
                 for p in _names(files[int(a)]) for q in _names(files[int(b)])}
        results[name] = (pairs, seconds)
    truth = group_pairs(read_collection_truth(args.truth)) if args.truth else set()
    print(f"{args.method} radius {args.radius}, {len(ids):,} pictures")
    print(f"{'search':12} {'seconds':>8} {'pairs':>8} {'precision':>10} {'recall':>8}")
    for name, (pairs, seconds) in results.items():
        tp = len(pairs & truth)
        precision = tp / len(pairs) if pairs and truth else float("nan")
        recall = tp / len(truth) if truth else float("nan")
        print(f"{name:12} {seconds:8.2f} {len(pairs):8,} {precision:10.3f} {recall:8.3f}")
    if args.truth:
        print("recall of (original, copy) pairs by transform:")
        by_transform = copy_pairs(args.truth)
        for t, wanted in sorted(by_transform.items()):
            cells = "  ".join(f"{name} {len(wanted & pairs) / len(wanted):.3f}"
                              for name, (pairs, _) in results.items())
            print(f"  {t:14} {len(wanted):5}  {cells}")
    lost = results["8 variants"][0] - results["canonical"][0]
    print(f"pairs found with 8 variants but not with the canonical form: {len(lost):,}")


if __name__ == "__main__":
    main()
