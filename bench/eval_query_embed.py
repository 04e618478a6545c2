"""`query --method embed` with and without the query's 8 flips and turns (issue 6).

    python bench/eval_query_embed.py /work/benchdata/images --sources 1000 --planted 500
    python bench/eval_query_embed.py --pictures DIR     # a folder kept by eval_embed.py --keep

eval_embed.py's held-out pictures: its sources are indexed (embeddings only) and each planted
copy is a query. Per transform: top-1 (the source is the nearest indexed picture) and
recall at the model's least similarity (the source among the matches), with the wrong
matches at that similarity and the time per query, for the query as it is and for the best
of its 8 variants. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import tempfile
import time
from pathlib import Path

from lookalike import open_index
from lookalike.methods.embedding import method_name
from lookalike.scan import scan
from lookalike.search import embed
from lookalike.search.query import PreparedQuery

COPY = re.compile(r"c(\d+)_(\w+)\.jpg$")


def pictures(args, tmp: Path) -> Path:
    if args.pictures:
        return args.pictures
    from eval_embed import build_in_child

    folder = tmp / "pictures"
    folder.mkdir()
    build_in_child(args.images, folder, args.sources, args.planted, args.seed)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, nargs="?", help="bench-images.sh's images/")
    parser.add_argument("--pictures", type=Path, help="eval_embed.py --keep's folder")
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--planted", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="an ONNX model with its sidecar (default: shipped)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = pictures(args, tmp)
        indexed = tmp / "sources"
        indexed.mkdir()
        copies = []
        for name in sorted(os.listdir(folder)):
            if name.startswith("s") and name.endswith(".jpg"):
                os.link(folder / name, indexed / name)
            elif COPY.match(name):
                copies.append(folder / name)
        started = time.perf_counter()
        scan([indexed], index_path=tmp / "index.db", methods=[method_name(args.model)],
             workers=2)
        print(f"{len(os.listdir(indexed))} sources indexed in "
              f"{time.perf_counter() - started:.1f} s; {len(copies)} copies as queries")
        with open_index(tmp / "index.db") as index:
            threshold = embed.min_similarity(index, embed.index_spec(index), None, True)
            rows = {}
            for variants in (False, True):
                rows[variants] = run(index, copies, indexed, variants)
    report(rows, threshold)
    return 0


def run(index, copies: list[Path], indexed: Path, variants: bool) -> dict:
    prepared = PreparedQuery(index, "embed", variants=variants)
    top1, found, wrong, count = (collections.Counter() for _ in range(4))
    started = time.perf_counter()
    for path in copies:
        number, transform = COPY.search(path.name).groups()
        source = str(indexed / f"s{number}.jpg")
        count[transform] += 1
        nearest = prepared.run(index, [str(path)], limit=1, nearest=1)[0].matches
        top1[transform] += bool(nearest) and nearest[0].b == source
        matches = prepared.run(index, [str(path)], limit=1000)[0].matches
        found[transform] += any(m.b == source for m in matches)
        wrong[transform] += sum(m.b != source for m in matches)
    seconds = (time.perf_counter() - started) / max(len(copies), 1) / 2
    return {"top1": top1, "found": found, "wrong": wrong, "count": count, "seconds": seconds}


def report(rows: dict, threshold: float) -> None:
    plain, turned = rows[False], rows[True]
    print(f"\nper transform: top-1 and recall at similarity {threshold:g} (wrong matches), "
          "the query as it is / the best of its 8 flips and turns")
    print(f"{'transform':12} {'n':>3}  {'top-1':>13}  {'recall':>13}  {'wrong':>9}")
    for name in sorted(plain["count"]):
        n = plain["count"][name]
        print(f"{name:12} {n:3}  {plain['top1'][name] / n:6.2f}/{turned['top1'][name] / n:<6.2f}"
              f"  {plain['found'][name] / n:6.2f}/{turned['found'][name] / n:<6.2f}"
              f"  {plain['wrong'][name]:4}/{turned['wrong'][name]:<4}")
    total = sum(plain["count"].values())
    for label, row in (("as it is", plain), ("8 variants", turned)):
        print(f"{label:10}: top-1 {sum(row['top1'].values()) / total:.3f}, recall "
              f"{sum(row['found'].values()) / total:.3f}, {sum(row['wrong'].values())} wrong "
              f"matches, {row['seconds'] * 1000:.1f} ms a query")


if __name__ == "__main__":
    raise SystemExit(main())
