"""Which linkage makes the best groups? Pair precision and recall of `dupes` groups.

Every two files in one group count as a found pair; truth is bench/make_collection.py's
truth.json (an original and its planted copies). Run on an index built by `lookalike scan`:

    python bench/eval_linkage.py INDEX --truth truth.json [--method auto] [--radius R ...]
"""

from __future__ import annotations

import argparse
import os
import time

from lookalike.evaluation.collection import group_pairs as planted_pairs
from lookalike.evaluation.collection import read_collection_truth
from lookalike.index.store import open_index
from lookalike.search.dupes import find_groups
from lookalike.search.group import LINKAGES


def group_pairs(groups) -> set[frozenset[str]]:
    out = set()
    for g in groups:
        names = [os.path.basename(f.path) for f in g.files]
        out |= {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index")
    parser.add_argument("--truth", required=True)
    parser.add_argument("--method", default="auto")
    parser.add_argument("--radius", type=int, nargs="*", default=[None])
    args = parser.parse_args()
    truth = planted_pairs(read_collection_truth(args.truth))
    print(f"{'method':8} {'radius':>6} {'linkage':10} {'groups':>7} {'largest':>7} {'pairs':>8} "
          f"{'precision':>9} {'recall':>7} {'F1':>6} {'seconds':>7}")
    with open_index(args.index) as idx:
        for radius in args.radius:
            for linkage in LINKAGES:
                start = time.perf_counter()
                groups = find_groups(idx, args.method, radius, linkage=linkage)
                seconds = time.perf_counter() - start
                found = group_pairs(groups)
                tp = len(found & truth)
                p = tp / len(found) if found else 0.0
                r = tp / len(truth)
                f1 = 2 * p * r / (p + r) if p + r else 0.0
                largest = max((len(g.files) for g in groups), default=0)
                print(f"{args.method:8} {str(radius or 'dflt'):>6} {linkage:10} {len(groups):7,} "
                      f"{largest:7} {len(found):8,} {p:9.3f} {r:7.3f} {f1:6.3f} {seconds:7.2f}")


if __name__ == "__main__":
    main()
