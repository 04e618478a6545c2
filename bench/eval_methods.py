"""Pair precision and recall of each signature method and radius on planted duplicates.

    python bench/eval_methods.py /work/benchdata/images --sources 600 --planted 300

Takes `--sources` real images (sorted names), writes an edited copy of the first `--planted`
of them (cycling through lookalike.evaluation.transforms.EDITS), scans everything with every
hash method, and prints, for each method and radius, the pairs found, precision and recall.
The unedited sources double as hard negatives (textures, map tiles, look-alike renders).
Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image

import lookalike
from lookalike.evaluation.transforms import EDITS, apply, encode
from lookalike.scan import scan

METHODS = ["phash", "dhash", "ahash", "whash", "pdq", "phash256", "dhash256"]


def build(source: Path, dest: Path, n_sources: int, n_planted: int) -> set[frozenset[str]]:
    files = sorted(p for p in source.iterdir() if p.is_file())[:n_sources]
    truth = set()
    edits = [e for e in EDITS if e not in ("copy", "metadata", "png")]  # exact ones are trivial
    for number, path in enumerate(files):
        image = Image.open(path).convert("RGB")
        if max(image.size) > 1024:
            image.thumbnail((1024, 1024))
        data = encode(image)
        original = dest / f"{number:05d}.jpg"
        original.write_bytes(data)
        if number < n_planted:
            edit = edits[number % len(edits)]
            edited, suffix = apply(edit, image, data)
            copy = dest / f"{number:05d}_{edit}{suffix}"
            copy.write_bytes(edited)
            truth.add(frozenset((str(original), str(copy))))
    return truth


def evaluate(found, truth) -> tuple[int, float, float]:
    pairs = {frozenset((m.a, m.b)) for m in found}
    hits = len(pairs & truth)
    precision = hits / len(pairs) if pairs else 1.0
    return len(pairs), precision, hits / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", type=Path)
    parser.add_argument("--sources", type=int, default=600)
    parser.add_argument("--planted", type=int, default=300)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        truth = build(args.images, folder, args.sources, args.planted)
        started = time.perf_counter()
        methods = args.methods.split(",")
        summary = scan([folder], methods=methods, workers=2)
        print(f"scanned {summary.scanned} files in {time.perf_counter() - started:.1f} s; "
              f"{len(truth)} planted pairs")
        with lookalike.open_index(summary.index_path) as index:
            for method in methods:
                bits = 256 if method in ("pdq",) or method.endswith("256") else 64
                for radius in range(0, bits // 4 + 1, max(1, bits // 64)):
                    found = [m for m in lookalike.find_pairs(index, method, radius)
                             if m.method == method]
                    n, p, r = evaluate(found, truth)
                    rows.append({"method": method, "radius": radius, "pairs": n,
                                 "precision": p, "recall": r})
            for rp in (6, 8, 10, 12, 14, 16):
                for rd in (8, 10, 12, 14, 16):
                    found = _auto(index, rp, rd)
                    n, p, r = evaluate(found, truth)
                    rows.append({"method": f"auto(phash<={rp},dhash<={rd})", "radius": rp,
                                 "pairs": n, "precision": p, "recall": r})
    print(f"{'method':34} {'radius':>6} {'pairs':>6} {'precision':>9} {'recall':>7}")
    for row in rows:
        print(f"{row['method']:34} {row['radius']:6} {row['pairs']:6} "
              f"{row['precision']:9.3f} {row['recall']:7.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _auto(index, phash_radius: int, dhash_radius: int):
    return [m for m in lookalike.find_pairs(index, "auto", phash_radius, dhash_radius)
            if m.method not in ("bytes", "pixels")]


if __name__ == "__main__":
    main()
