"""Local features at collection scale (issue 5): the cascade with and without --verify,
`dupes --partial`, and `find-in`, on make_collection.py's 20,000 pictures.

    python bench/bench_partial.py /work/bench20k --index /tmp/b20k-local.db [--queries 300]

1. Scans DEST/images with phash,dhash,local into --index (skipped if it exists): time,
   and bytes stored per picture for `local`.
2. Pair precision and recall against DEST/truth.json, recall per transform, for: `auto`
   (the default cascade), `auto --verify`, `local` alone (every verified pair of
   `dupes --partial`, at the inlier count that gives precision >= 0.99, and at the default),
   and the cascade plus local pairs. Verification throughput is printed.
3. find-in: --queries query pictures, each holding one to four indexed originals (pasted at
   20-60% of the width onto a flat or gradient page with text, or a 2x2 collage); recall,
   precision and mean box IoU against where they were pasted, and the time per query.
Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from lookalike.evaluation.collection import PlantedTruth, read_collection_truth
from lookalike.evaluation.metrics import box_iou
from lookalike.index.store import open_index
from lookalike.methods.registry import get_spec
from lookalike.search import find_in, partial
from lookalike.search.dupes import find_pairs


def scan(images: Path, index: Path) -> None:
    started = time.perf_counter()
    cmd = [str(Path(sys.executable).parent / "lookalike"), "scan", str(images), "--index",
           str(index), "--method", "phash,dhash,local", "--format", "json"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    summary = json.loads(result.stdout)
    print(f"scan phash,dhash,local: {summary['scanned']:,} pictures in "
          f"{time.perf_counter() - started:.1f} s ({summary['failed']} failed)")


def stored_bytes(index) -> None:
    spec = get_spec("local")
    row = index.conn.execute("SELECT COUNT(*), AVG(LENGTH(value)), AVG(quality) FROM signatures "
                             "WHERE method=?", (spec.name,)).fetchone()
    print(f"local: {row[0]:,} signatures, {row[1]:,.0f} bytes each on average "
          f"({row[2]:.0f} features per orientation), index file "
          f"{os.path.getsize(index.path) / 1e6:,.0f} MB")


def names_of(pairs) -> list[tuple[str, str]]:
    return [(os.path.basename(a), os.path.basename(b)) for a, b in pairs]


def report(label: str, score: dict, seconds: float) -> None:
    print(f"{label:34} pairs {score['found']:7,}  precision {score['precision']:.3f}  "
          f"recall {score['recall']:.3f}  ({seconds:.1f} s)")


def recall_table(rows: dict[str, dict]) -> None:
    kinds = sorted({k for s in rows.values() for k in s["recall_by_transform"]})
    print(f"{'transform':12}" + "".join(f"{label[:14]:>15}" for label in rows))
    for kind in kinds:
        print(f"{kind:12}" + "".join(f"{s['recall_by_transform'].get(kind, 0):15.3f}"
                                     for s in rows.values()))


def local_pairs(index, files) -> tuple[list, float]:
    started = time.perf_counter()
    found = partial.partial_pairs(index)
    seconds = time.perf_counter() - started
    out = []
    for r in found:
        for x in files.get(r.a, []):
            for y in files.get(r.b, []):
                out.append((x.path, y.path, r.verification))
    return out, seconds


def at_precision(truth: PlantedTruth, scored: list, target: float) -> tuple[int, dict]:
    """The smallest inlier count whose pair precision is >= target, and its score."""
    best = None
    for threshold in range(4, 200):
        chosen = [(a, b) for a, b, v in scored if v.confirmed and v.inliers >= threshold]
        score = truth.score(names_of(chosen))
        if score["precision"] >= target:
            best = (threshold, score)
            break
    return best or (-1, truth.score([]))


def make_queries(truth_data: dict, images: Path, count: int, seed: int, out: Path):
    rng = random.Random(seed)
    originals = sorted(truth_data["originals"])
    queries = []
    font = ImageFont.load_default(size=26)
    for q in range(count):
        kind = rng.choice(("paste", "paste", "collage"))
        if kind == "paste":
            name = rng.choice(originals)
            share = rng.choice((0.2, 0.3, 0.45, 0.6))
            width, height = 1200, 900
            top = np.asarray([rng.randint(0, 255) for _ in range(3)], np.float32)
            low = np.asarray([rng.randint(0, 255) for _ in range(3)], np.float32)
            y = np.linspace(0, 1, height)[:, None, None]
            page = Image.fromarray((top * (1 - y) + low * y).astype(np.uint8).repeat(width, 1))
            draw = ImageDraw.Draw(page)
            draw.text((30, 30), "New arrivals - spring lookbook", font=font, fill=(20, 20, 20))
            with Image.open(images / name) as im:
                tile = im.convert("RGB")
            w = round(width * share)
            tile = tile.resize((w, max(1, round(tile.height * w / tile.width))))
            tile = ImageOps.contain(tile, (w, height - 100))
            x, yy = rng.randint(0, width - tile.width), rng.randint(90, height - tile.height)
            page.paste(tile, (x, yy))
            truth = {name: (x, yy, x + tile.width, yy + tile.height)}
        else:
            page = Image.new("RGB", (800, 800), (255, 255, 255))
            truth = {}
            for k, name in enumerate(rng.sample(originals, 4)):
                with Image.open(images / name) as im:
                    tile = ImageOps.contain(im.convert("RGB"), (390, 390))
                x, yy = (k % 2) * 400 + 5, (k // 2) * 400 + 5
                page.paste(tile, (x, yy))
                truth[name] = (x, yy, x + tile.width, yy + tile.height)
        path = out / f"query_{q:04d}_{kind}.jpg"
        page.save(path, "JPEG", quality=88)
        queries.append((path, kind, truth))
    return queries


def bench_find_in(index, truth, data, images: Path, count: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        queries = make_queries(data, images, count, seed, Path(tmp))
        started = time.perf_counter()
        words = partial.build_word_index(index)
        print(f"\nfind-in: inverted file of {words.size:,} rows built in "
              f"{time.perf_counter() - started:.1f} s")
        # every match, not the CLI's first 20: a collage of four originals has many copies
        paths = [str(q[0]) for q in queries]
        for looks in (("tiles",), find_in.LOOKS):
            results = find_in.find_in(index, paths, limit=10_000, looks=looks)
            print(f"-- looks: {', '.join(looks)}")
            find_in_scores(index, truth, queries, results)
            if "local" in looks:
                print("-- of which found by local features")
                find_in_scores(index, truth, queries, [replace(r, matches=tuple(
                    m for m in r.matches if m.method == "local")) for r in results])


def find_in_scores(index, truth, queries, results) -> None:
    per_kind = defaultdict(lambda: [0, 0, 0, 0, []])  # expected, found, wrong, shared, ious
    times = []
    ids = {os.path.basename(f.path): cid for cid, fs in index.live_files().items() for f in fs}
    for (path, kind, expected), result in zip(queries, results):
        times.append(result.seconds)
        found = {os.path.basename(m.path): m.verification.box_in_b for m in result.matches}
        stats = per_kind[kind]
        stats[0] += len(expected)
        for name, box in expected.items():
            if name in found:
                stats[1] += 1
                stats[4].append(box_iou(found[name], box))
        # A match of a byte or planted copy of the pasted original is right too.
        allowed = {m for name in expected for m in truth.group(name)}
        wrong = [name for name in found if name not in allowed]
        shared = _sharing(index, ids, wrong, expected)
        stats[2] += len(wrong)
        stats[3] += len(shared)
    for kind, (expected, hit, wrong, shared, ious) in sorted(per_kind.items()):
        print(f"find-in {kind:8} recall {hit / expected:.3f} ({hit}/{expected})  precision "
              f"{hit / max(hit + wrong, 1):.3f}, {hit / max(hit + wrong - shared, 1):.3f} "
              f"without the {shared} of {wrong} wrong that share content with a pasted "
              f"original  mean IoU {np.mean(ious) if ious else 0:.3f}")
    times = np.asarray(times) * 1000
    print(f"find-in time per query: p50 {np.percentile(times, 50):.0f} ms, p99 "
          f"{np.percentile(times, 99):.0f} ms (inverted file built once per call, not counted)")


SHARED_INLIERS = 8  # an indexed picture verified against a pasted one shares its content


def _sharing(index, ids: dict[str, int], wrong: list[str], expected: dict) -> list[str]:
    """The wrongly found pictures that local features confirm against one of the pasted
    originals at SHARED_INLIERS or more: the packages hold many pictures twice under other
    names (the same aerial photo, texture or dialog), which the truth cannot know."""
    pairs = {(min(ids[w], ids[e]), max(ids[w], ids[e])): w for w in wrong for e in expected
             if w in ids and e in ids and ids[w] != ids[e]}
    done = partial.verify_content_pairs(index, pairs)
    return sorted({pairs[(r.a, r.b)] for r in done
                   if r.verification.confirmed and r.verification.inliers >= SHARED_INLIERS})


def bench_verify(index, seed: int, count: int = 20_000) -> None:
    """Verification alone: random pairs of indexed pictures, on all cores (threads)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(sorted(index.live_files()))
    pairs = {(int(a), int(b)) for a, b in rng.choice(ids, (count, 2)) if a != b}
    started = time.perf_counter()
    done = partial.verify_content_pairs(index, pairs)
    seconds = time.perf_counter() - started
    print(f"verification alone: {len(done):,} random pairs in {seconds:.1f} s, "
          f"{len(done) / seconds:,.0f} pairs/s on {partial._cpu_count()} cores "
          "(signatures read from the index included)")


def wrong_pairs(truth: PlantedTruth, scored: list, dump: Path | None) -> None:
    """local's wrong pairs by kind, as file pairs and as pairs of originals (a shared texture
    between two originals is wrong for every pair of their copies)."""
    wrong = {}
    for a, b, v in scored:
        key = frozenset(names_of([(a, b)])[0])
        if v.confirmed and len(key) == 2 and key not in truth.pairs:
            wrong[key] = v
    files = Counter(truth.wrong_kind(*sorted(k)) for k in wrong)
    originals = {}
    for key, v in wrong.items():
        a, b = sorted(key)
        pair = frozenset((truth.group_of[a], truth.group_of[b]))
        if pair not in originals or originals[pair][1].inliers < v.inliers:
            originals[pair] = ((a, b), v)
    kinds = Counter(truth.wrong_kind(*names) for names, _ in originals.values())
    print(f"local wrong pairs by kind: files {dict(files)}; pairs of originals {dict(kinds)}")
    inliers = np.asarray([v.inliers for _, v in originals.values()])
    if len(inliers):
        print("inliers of the best wrong pair per pair of originals: "
              + ", ".join(f"p{q} {np.percentile(inliers, q):.0f}" for q in (10, 25, 50, 75, 90)))
    if dump:
        rows = [{"a": names[0], "b": names[1], "kind": truth.wrong_kind(*names),
                 "inliers": v.inliers, "scale": v.scale, "relation": v.relation}
                for names, v in originals.values()]
        dump.write_text(json.dumps(sorted(rows, key=lambda r: r["inliers"]), indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dest", type=Path)
    p.add_argument("--index", type=Path, default=Path("/tmp/b20k-local.db"))
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", default="", help="parts to skip: pairs,verify,find-in")
    p.add_argument("--dump-wrong", type=Path, help="write local's wrong pairs (JSON) here")
    args = p.parse_args()
    images = args.dest / "images"
    data = read_collection_truth(args.dest / "truth.json")
    if not args.index.exists():
        scan(images, args.index)
    truth = PlantedTruth(data, {p.name for p in images.iterdir()})
    with open_index(args.index) as index:
        stored_bytes(index)
        files = index.live_files()
        if "pairs" not in args.skip:
            rows = {}
            for label, verify in (("auto", False), ("auto --verify", True)):
                started = time.perf_counter()
                found = find_pairs(index, "auto", verify=verify)
                seconds = time.perf_counter() - started
                rows[label] = truth.score(names_of((m.a, m.b) for m in found))
                report(label, rows[label], seconds)
            scored, seconds = local_pairs(index, files)
            print(f"local: {len(scored):,} candidate pairs verified in {seconds:.1f} s "
                  f"({len(scored) / seconds:,.0f} pairs/s including candidate search)")
            confirmed = [(a, b) for a, b, v in scored if v.confirmed]
            rows["local (default)"] = truth.score(names_of(confirmed))
            report("local, default threshold", rows["local (default)"], seconds)
            threshold, rows["local @0.99"] = at_precision(truth, scored, 0.99)
            report(f"local, >= {threshold} inliers (P>=0.99)", rows["local @0.99"], 0)
            auto = [(m.a, m.b) for m in find_pairs(index, "auto", verify=True)]
            rows["auto+verify+local"] = truth.score(names_of(auto + confirmed))
            report("auto --verify + local pairs", rows["auto+verify+local"], 0)
            recall_table(rows)
            wrong_pairs(truth, scored, args.dump_wrong)
        if "verify" not in args.skip:
            bench_verify(index, args.seed)
        if "find-in" not in args.skip:
            bench_find_in(index, truth, data, images, args.queries, args.seed)


if __name__ == "__main__":
    main()
