"""Query latency in the thorough mode: a new picture against an index scanned with
`scan --mode thorough`, as the HTTP service runs it (one PreparedQuery kept warm).

    .venv/bin/python bench/bench_query_thorough.py /work/copydetect2 \
        [--index /work/copydetect2/runs/thorough/index.db] [--queries 40] [--stored 50000]

1. Real queries: `--queries` originals of the collection, re-encoded at JPEG 70 and cropped
   by 10% (files that are not in the index), asked one at a time; p50/p90 per query and the
   share whose first match is their original or one of its indexed copies.
2. The search part alone at a larger size: search/decide.query_scores (the query's 8 flips
   and turns against `--stored` random unit vectors of 512 floats, a FAISS flat index, and
   the backgrounds of its candidates), which is what grows with the collection; decoding,
   the descriptor and local features of the query do not.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from copydetect_truth import read_truth


def _percentiles(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (f"p50 {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, "
            f"max {ms[-1]:.0f} ms")


def real_queries(collection: Path, index_path: Path, count: int) -> None:
    from lookalike.index.store import open_index
    from lookalike.search.query import PreparedQuery

    truth, _, _ = read_truth(collection)
    family = {t.file: t.family_id for t in truth}
    originals = [t for t in truth if t.role == "original"][:count]
    with tempfile.TemporaryDirectory() as scratch, open_index(index_path) as index:
        paths = []
        for t in originals:
            image = Image.open(collection / "pictures" / t.file).convert("RGB")
            w, h = image.size
            image = image.crop((w // 20, h // 20, w - w // 20, h - h // 20))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=70)
            path = Path(scratch) / f"q_{t.file}.jpg"
            path.write_bytes(buffer.getvalue())
            paths.append((path, t.file))
        start = time.perf_counter()
        prepared = PreparedQuery(index)
        prepared.run(index, [str(paths[0][0])])  # builds the searches once, as serve does
        print(f"first query (reads the index, builds the searches): "
              f"{time.perf_counter() - start:.2f} s")
        times, right = [], 0
        for path, original in paths:
            t0 = time.perf_counter()
            result = prepared.run(index, [str(path)])[0]
            times.append(time.perf_counter() - t0)
            right += bool(result.matches) and \
                family.get(Path(result.matches[0].b).name) == family[original]
        print(f"{len(paths)} queries against {len(prepared.files):,} indexed contents: "
              f"{_percentiles(times)}; first match is the original or one of its copies for "
              f"{right}/{len(paths)}")


def search_only(stored: int) -> None:
    from lookalike.search import vectors
    from lookalike.search.decide import DecisionRule, query_scores

    rng = np.random.default_rng(0)
    units = vectors.normalise(rng.normal(size=(stored, 512)).astype(np.float32))
    start = time.perf_counter()
    search = vectors.build(units)
    built = time.perf_counter() - start
    times = []
    for _ in range(30):
        queries = vectors.normalise(rng.normal(size=(8, 512)).astype(np.float32))
        t0 = time.perf_counter()
        query_scores(units, search, queries, DecisionRule(), np.arange(3))
        times.append(time.perf_counter() - t0)
    print(f"query_scores against {stored:,} stored vectors (index built in {built:.1f} s): "
          f"{_percentiles(times)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", type=Path)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--stored", type=int, default=50_000)
    args = parser.parse_args()
    real_queries(args.collection, args.index or args.collection / "runs" / "thorough" /
                 "index.db", args.queries)
    search_only(args.stored)


if __name__ == "__main__":
    main()
