"""The copy descriptors on the copy-detection collection (make_copydetect.py): input size,
raw against normalised scores, and which background normalises them.

    .venv/bin/python bench/eval_descriptor.py /work/copydetect \
        [--models sscd-distilled,sscd,lookalike-copy-v1] [--sizes 224,288,320] \
        [--background /work/benchimg/images --background-count 1000] [--k 10]

Every picture of the collection is embedded (lookalike's Embedder, squashed to a square of
each size); each picture's 20 nearest others are its candidate pairs. Positive pairs are two
pictures of one family (an original and its copies); every other candidate pair is wrong.
Printed per split (tune, holdout: never tuned on), for each model and size:
- µAP over the candidate pairs ranked by score (as DISC21), and recall at precision 0.99;
- with raw cosine, normalised by the collection itself (score less the mean of both
  pictures' similarity to their k-th nearest other picture), and normalised by a fixed
  background (the k-th nearest among `--background-count` pictures of `--background` that
  are not sources of the collection);
- embedding throughput (pictures/s, 2 threads, batches of 32, decoded pictures in memory).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from copydetect_truth import read_truth

from lookalike.evaluation import metrics


def _pictures(paths: list[Path], side: int = 512) -> list[np.ndarray]:
    from lookalike.decode import decode

    out = []
    for path in paths:
        image = decode(path.read_bytes(), draft_size=side).image
        out.append(np.asarray(image))
    return out


def _embedder(model: str, size: int):
    from lookalike.models.onnx import Embedder
    from lookalike.models.registry import resolve_model

    spec, path = resolve_model(model)
    return Embedder(replace(spec, input_size=size), path, threads=2)


def _knn(vectors: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from lookalike.search import vectors as vsearch

    found = vsearch.build(base).knn(vectors, k)
    return found.ids, found.similarity


def _metrics(scores: np.ndarray, positive: np.ndarray, total_positive: int) -> tuple[float, float]:
    """(µAP, recall at precision 0.99) of pairs ranked by score."""
    return (metrics.micro_average_precision(scores, positive, max(total_positive, 1)),
            metrics.recall_at_precision(scores, positive, max(total_positive, 1), 0.99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", type=Path)
    parser.add_argument("--models", default="sscd-distilled,sscd")
    parser.add_argument("--sizes", default="224,288")
    parser.add_argument("--background", type=Path, default=Path("/work/benchimg/images"))
    parser.add_argument("--background-count", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=20)
    args = parser.parse_args()

    truth, _, sources = read_truth(args.collection)
    rows = [t for t in truth if (args.collection / "pictures" / t.file).exists()]
    files = [args.collection / "pictures" / t.file for t in rows]
    family = np.asarray([t.family_id for t in rows])
    split = np.asarray([t.split for t in rows])
    used = {s.source for s in sources}
    background_files = sorted(p for p in args.background.iterdir()
                              if p.name not in used)[:args.background_count]
    t0 = time.perf_counter()
    pictures, background = _pictures(files), _pictures(background_files)
    print(f"{len(pictures)} pictures, {len(background)} background pictures "
          f"(decoded in {time.perf_counter() - t0:.0f} s)")
    print(f"{'model':16} {'size':>4} {'img/s':>6}  {'split':8} {'raw µAP':>8} {'R@P99':>6}  "
          f"{'coll µAP':>8} {'R@P99':>6}  {'fixed µAP':>9} {'R@P99':>6}  {'median bg':>9}")
    for model in args.models.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            embedder = _embedder(model, size)
            embedder.embed(pictures[:8])
            start = time.perf_counter()
            units = embedder.embed(pictures)
            rate = len(pictures) / (time.perf_counter() - start)
            base = embedder.embed(background)
            k = args.k
            ids, sims = _knn(units, units, args.candidates + 1)
            own = np.arange(len(units))[:, None]
            others = np.where(ids != own, sims, -np.inf)
            others = -np.sort(-others, axis=1)
            collection_bg = others[:, k - 1]
            _, fixed_sims = _knn(units, base, k)
            fixed_bg = fixed_sims[:, k - 1]
            a = np.repeat(np.arange(len(units)), ids.shape[1])
            b = ids.ravel()
            keep = (b >= 0) & (b != a)
            a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
            pair = np.unique(a * len(units) + b)
            a, b = pair // len(units), pair % len(units)
            raw = np.einsum("ij,ij->i", units[a], units[b])
            positive = family[a] == family[b]
            for part in ("tune", "holdout"):
                inside = (split[a] == part) & (split[b] == part)
                members = split == part
                fam, counts = np.unique(family[members], return_counts=True)
                total = int((counts * (counts - 1) // 2).sum())
                line = [f"{model:16} {size:4} {rate:6.0f}  {part:8}"]
                for bg in (None, collection_bg, fixed_bg):
                    score = raw if bg is None else raw - (bg[a] + bg[b]) / 2
                    uap, recall = _metrics(score[inside], positive[inside], total)
                    line.append(f"{uap:8.3f} {recall:6.3f}")
                line.append(f"{float(np.median(collection_bg[members])):9.3f}")
                print("  ".join(line))


if __name__ == "__main__":
    main()
