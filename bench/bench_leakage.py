"""Time `cross` (leakage between two sets) and `split` on the 20k benchmark collection.

    python bench/bench_leakage.py /tmp/b20k-report.db /tmp/bench20k

The collection is one folder; the two sets are its halves by file name (the names are
random hex, so each planted group falls on both sides about as often as a coin says). The
index is copied into a scratch folder and the copy's paths are moved to SCRATCH/a/... and
SCRATCH/b/..., so nothing is rescanned and the given index is never written. The planted
groups of truth.json give the pairs that truly cross, to count how many cross finds and how
many it reports that are not planted (those may still be real look-alikes of the sources).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import common

from lookalike.evaluation.collection import group_pairs, read_collection_truth
from lookalike.index.store import open_index
from lookalike.search.leakage import cross_pairs
from lookalike.search.split import plan_split


def timed(label: str, fn):
    return common.timed(label, fn, width=36)


def halves(copy: Path, scratch: Path) -> dict[str, str]:
    """Move the copy's paths into two set folders, by sorted file name; name -> set."""
    conn = sqlite3.connect(copy)
    names = sorted(os.path.basename(p) for (p,) in conn.execute("SELECT path FROM files"))
    side = {name: ("a" if k < len(names) // 2 else "b") for k, name in enumerate(names)}
    with conn:
        for (path,) in conn.execute("SELECT path FROM files").fetchall():
            name = os.path.basename(path)
            conn.execute("UPDATE files SET path=? WHERE path=?",
                         (str(scratch / side[name] / name), path))
    conn.close()
    return side


def truth_pairs(collection: Path, side: dict[str, str]) -> set[frozenset[str]]:
    """The planted pairs whose two files ended up in different sets."""
    return {pair for pair in group_pairs(read_collection_truth(collection / "truth.json"))
            if all(side.get(name) for name in pair) and len({side[n] for n in pair}) == 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("collection", type=Path, help="folder holding truth.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-leakage-") as tmp:
        scratch = Path(tmp)
        copy = scratch / "index.db"
        shutil.copyfile(args.index, copy)
        side = halves(copy, scratch)
        planted = truth_pairs(args.collection, side)
        sets = {"a": scratch / "a", "b": scratch / "b"}
        with open_index(copy) as index:
            timed("cross (first: compiles kernels)", lambda: cross_pairs(index, sets))
            found = timed("cross", lambda: cross_pairs(index, sets))
            split = timed("split 0.8,0.1,0.1", lambda: plan_split(index, [0.8, 0.1, 0.1]))
        reported = {frozenset((os.path.basename(p.path_a), os.path.basename(p.path_b)))
                    for p in found.pairs}
        hit = len(reported & planted)
        print(f"files: a {found.files['a']:,}, b {found.files['b']:,}")
        for s in found.summary:
            print(f"{s.leaked:,} of {s.later_files:,} {s.later} images ({s.fraction:.1%}) "
                  f"have a duplicate in {s.earlier}")
        print(f"crossing pairs {len(found.pairs):,}, groups spanning {len(found.groups):,}")
        print(f"planted pairs crossing {len(planted):,}: found {hit:,} "
              f"({hit / max(len(planted), 1):.1%}); reported but not planted "
              f"{len(reported - planted):,}")
        print(f"split counts {split.counts()} (largest group {split.largest_group})")


if __name__ == "__main__":
    main()
