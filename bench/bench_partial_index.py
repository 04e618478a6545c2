"""`dupes --partial` on pages and collages stored in the index itself (issue 5, index side).

    python bench/bench_partial_index.py /work/bench20k [--pictures 2000] [--pages 300]

Takes --pictures pictures of make_collection.py's collection (every original that a page
uses among them), adds --pages pages built as in bench_partial.py (an original pasted at
20-60% of the width onto a graded page with a caption, or a 2x2 collage of four), scans
them with phash,dhash,local into a temporary index, runs `dupes --partial` (the library
call), and prints, per page kind: recall of (original inside page) pairs, found by local
features and by layout tiles, the wrong pairs that involve a page, and mean box IoU; then
the scan and search times. Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench_partial import make_queries

from lookalike.evaluation.collection import PlantedTruth, read_collection_truth
from lookalike.evaluation.metrics import box_iou
from lookalike.index.store import open_index
from lookalike.search.partial import containment_pairs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dest", type=Path)
    p.add_argument("--pictures", type=int, default=2000)
    p.add_argument("--pages", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    images = args.dest / "images"
    data = read_collection_truth(args.dest / "truth.json")
    truth = PlantedTruth(data, {f.name for f in images.iterdir()})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "collection"
        root.mkdir()
        pages = make_queries(data, images, args.pages, args.seed, root)
        used = {name for _, _, expected in pages for name in expected}
        rng = random.Random(args.seed)
        others = sorted({f.name for f in images.iterdir()} - used)
        chosen = used | set(rng.sample(others, max(0, args.pictures - len(used))))
        for name in chosen:
            os.link(images / name, root / name) if _same_device(images, root) else \
                shutil.copy(images / name, root / name)
        index_path = Path(tmp) / "index.db"
        started = time.perf_counter()
        cmd = [str(Path(sys.executable).parent / "lookalike"), "scan", str(root), "--index",
               str(index_path), "--method", "phash,dhash,local", "--format", "json"]
        summary = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                            check=True).stdout)
        scan_s = time.perf_counter() - started
        with open_index(index_path) as index:
            started = time.perf_counter()
            pairs = containment_pairs(index)
            search_s = time.perf_counter() - started
        score(pages, pairs, truth)
        print(f"scan of {summary['scanned']:,} pictures ({len(chosen):,} of the collection, "
              f"{len(pages)} pages): {scan_s:.1f} s; dupes --partial {search_s:.1f} s, "
              f"{len(pairs):,} pairs")


def score(pages, pairs, truth: PlantedTruth) -> None:
    by_outer = defaultdict(list)
    for p in pairs:
        by_outer[os.path.basename(p.outer)].append(p)
        if p.relation == "same" or p.relation == "overlap":
            by_outer[os.path.basename(p.inner)].append(p)
    stats = defaultdict(lambda: defaultdict(int))
    ious = defaultdict(list)
    for path, kind, expected in pages:
        page = os.path.basename(str(path))
        found = {os.path.basename(p.inner): p for p in by_outer.get(page, [])
                 if os.path.basename(p.outer) == page}
        allowed = {m for name in expected for m in truth.group(name)}
        for name, box in expected.items():
            s = stats[kind]
            s["expected"] += 1
            if name in found:
                s["found"] += 1
                s[f"by {found[name].method}"] += 1
                ious[kind].append(box_iou(found[name].box, box))
        for name, pair in found.items():
            if name.startswith("query_"):  # pages share their caption: real shared content
                stats[kind]["pages sharing the caption"] += 1
            elif name not in allowed:
                stats[kind]["wrong"] += 1
                stats[kind][f"wrong by {pair.method}"] += 1
    for kind, s in sorted(stats.items()):
        methods = ", ".join(f"{k} {v}" for k, v in sorted(s.items()) if k.startswith("by "))
        wrong = ", ".join(f"{k[6:]} {v}" for k, v in sorted(s.items()) if k.startswith("wrong "))
        print(f"dupes --partial {kind:8} recall {s['found'] / s['expected']:.3f} "
              f"({s['found']}/{s['expected']}; {methods})  precision "
              f"{s['found'] / max(s['found'] + s['wrong'], 1):.3f} ({s['wrong']} wrong: {wrong})  "
              f"mean IoU {np.mean(ious[kind]) if ious[kind] else 0:.3f}; "
              f"{s['pages sharing the caption']} pairs of pages sharing the caption")


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


if __name__ == "__main__":
    main()
