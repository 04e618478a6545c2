"""Vector search over embeddings: query latency against a large index, and the exact
self-join side by side with imagededup's CNN duplicate search, fed the same vectors.

    python bench/bench_vectors.py --part query            # 1,000,000 x 256-d: flat and hnsw
    python bench/bench_vectors.py --part join             # 100,000 x 256-d at 0.9 vs imagededup
    python bench/bench_vectors.py --n 20000 --queries 200 # both parts, small and quick

Data: random-but-clustered float32 embeddings (seeded): 70 % lone Gaussian rows, 30 % rows
near one of N/20 Gaussian centres (centre + s * noise, s uniform in 0.05..0.6, so a member's
cosine to its centre spreads over ~0.86..0.999 and many pairs fall on either side of 0.9).
Queries are items plus a little noise (near-duplicate look-ups).

query part, per index kind: build seconds; index MB (RSS after the build less RSS before;
the embeddings themselves are not counted); peak build MB (peak RSS less RSS before, sampled);
p50 / p99 latency of one query (lookalike's `knn(q, k)`, normalisation included, and FAISS's
own `search` on an already normalised query); batch throughput; recall@k against flat, and
recall of those true neighbours whose similarity is >= --threshold (the near-duplicates: in
256-d most of a lone point's top 10 are unrelated points at similarity ~0.2, whose order an
approximate index does not keep, and a duplicate finder does not need).

join part: lookalike's `self_join` (projection chosen from a sample, and with projection=0:
plain full-width tiles) and imagededup's CNN duplicate search in the same process on the same
vectors: seconds, vectors/second, peak extra memory (summed PSS of this process and its
workers, less the PSS before; sampled), pairs found and how the two sets agree, and the
ratio of the times. imagededup's CNN path cannot be imported without torch (its
`methods/cnn.py` imports torch at the top), so `_imagededup_find_duplicates` below is its
`CNN._find_duplicates_dict` copied line for line (scores=False, no outfile); the similarity
matrix comes from imagededup's own `handlers.search.retrieval.get_cosine_similarity`,
with its defaults (float16 chunks of 1000 rows above 10,000 rows, a Pool of cpu_count()
workers). Its N x N matrix is held twice at the end (the chunks and their vstack): where
that does not fit in the memory available it is skipped and the need is printed.

The script measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np

from common import MB, TreeMemory, import_imagededup, rss_mb

SAMPLE_EVERY_S = 0.02


def make_embeddings(n: int, dim: int, seed: int) -> np.ndarray:
    """(n, dim) float32, random but clustered (see the module docstring), in 100k blocks."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 20), dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        block = rng.standard_normal((rows, dim), dtype=np.float32)
        member = rng.random(rows) < 0.3
        spread = rng.uniform(0.05, 0.6, (int(member.sum()), 1)).astype(np.float32)
        block[member] = centres[rng.integers(0, len(centres), int(member.sum()))] + \
            spread * block[member]
        out[start:start + rows] = block
    return out


def make_queries(items: np.ndarray, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picked = items[rng.integers(0, len(items), count)]
    noise = rng.standard_normal(picked.shape, dtype=np.float32)
    return picked + 0.1 * noise * np.linalg.norm(picked, axis=1, keepdims=True) / \
        np.sqrt(items.shape[1])


def _ms(seconds: list[float], q: float) -> float:
    return float(np.quantile(np.asarray(seconds), q) * 1e3)


def query_part(n: int, dim: int, n_queries: int, k: int, kinds: list[str], threshold: float,
               seed: int) -> None:
    from lookalike.search import vectors

    items = make_embeddings(n, dim, seed)
    queries = make_queries(items, n_queries, seed + 1)
    units = vectors.normalise(queries)
    print(f"\n== query latency: index of {n:,} x {dim}-d float32 "
          f"(embeddings {items.nbytes / MB:.0f} MB), {n_queries} single queries, k={k}")
    print(f"{'kind':6} {'build s':>8} {'index MB':>9} {'peak MB':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'faiss p50':>9} {'faiss p99':>9} {'batch q/s':>10} "
          f"{'recall@k':>8} {'recall>=t':>9}")
    truth = close = None
    for kind in kinds:
        gc.collect()
        before = rss_mb()
        with TreeMemory(every=SAMPLE_EVERY_S) as memory:
            started = time.perf_counter()
            index = vectors.build(items, kind)
            build_s = time.perf_counter() - started
        index_mb = rss_mb() - before
        index.knn(queries[:10], k)  # warm: first-call allocations, FAISS thread pool
        latency, raw = [], []
        for q, u in zip(queries, units):
            started = time.perf_counter()
            index.knn(q[None], k)
            latency.append(time.perf_counter() - started)
            started = time.perf_counter()
            index.faiss_index.search(u[None], k)
            raw.append(time.perf_counter() - started)
        started = time.perf_counter()
        neighbours = index.knn(queries, k)
        batch_qps = n_queries / (time.perf_counter() - started)
        found = neighbours.ids
        if kind == "flat":
            truth, close = found, neighbours.similarity >= threshold
        recall = close_recall = ""
        if truth is not None:
            recall = f"{np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found)]):.4f}"
            hits = [np.isin(t[c], f).sum() for t, c, f in zip(truth, close, found)]
            close_recall = f"{sum(hits) / max(1, int(close.sum())):.4f}"
        print(f"{kind:6} {build_s:8.2f} {index_mb:9.0f} {memory.extra_mb:8.0f} "
              f"{_ms(latency, 0.5):7.2f} {_ms(latency, 0.99):7.2f} {_ms(raw, 0.5):9.2f} "
              f"{_ms(raw, 0.99):9.2f} {batch_qps:10.0f} {recall:>8} {close_recall:>9}",
              flush=True)
        del index
    if truth is None:
        print("(recall@k needs flat in --kinds)")


def _import_imagededup_retrieval():
    """imagededup's retrieval module, without torch (common.import_imagededup)."""
    import logging

    retrieval = import_imagededup("imagededup.handlers.search.retrieval")
    logging.getLogger(retrieval.__name__).setLevel(logging.WARNING)  # its "in chunks" note
    return retrieval


def _imagededup_find_duplicates(encoding_map: dict, min_similarity_threshold: float,
                                num_sim_workers: int) -> dict:
    """imagededup CNN._find_duplicates_dict (imagededup 0.3.x), scores=False, no outfile."""
    get_cosine_similarity = _import_imagededup_retrieval().get_cosine_similarity
    image_ids = np.array([*encoding_map.keys()])
    features = np.array([*encoding_map.values()])
    cosine_scores = get_cosine_similarity(features, False, num_workers=num_sim_workers)
    np.fill_diagonal(cosine_scores, 2.0)
    results = {}
    for i, j in enumerate(cosine_scores):
        duplicates_bool = (j >= min_similarity_threshold) & (j < 2)
        duplicates = list(image_ids[duplicates_bool])
        results[image_ids[i]] = duplicates
    return results


def _imagededup_need_bytes(n: int, dim: int) -> int:
    """Peak of get_cosine_similarity: above 10,000 rows the float16 chunks and their vstack
    (2 x 2 N^2 bytes); at or below, sklearn's float32 N x N and its normalised copies."""
    return 4 * n * n + 8 * n * dim if n > 10_000 else 4 * n * n + 16 * n * dim


def join_part(n: int, dim: int, threshold: float, seed: int, peer: bool,
              peer_workers: int) -> None:
    import psutil

    from lookalike.search import vectors

    items = make_embeddings(n, dim, seed)
    print(f"\n== self-join: {n:,} x {dim}-d float32 (embeddings {items.nbytes / MB:.0f} MB), "
          f"all pairs with cosine >= {threshold}")
    print(f"{'contender':34} {'seconds':>8} {'vectors/s':>10} {'extra MB':>9} {'pairs':>9}")
    rows: dict[str, float] = {}
    ours = None
    for name, projection in (("lookalike self_join", None),
                             ("lookalike self_join projection=0", 0)):
        gc.collect()
        with TreeMemory(every=SAMPLE_EVERY_S) as memory:
            started = time.perf_counter()
            pairs = vectors.self_join(items, threshold, projection=projection)
            seconds = time.perf_counter() - started
        rows[name] = seconds
        ours = set(zip(pairs.a.tolist(), pairs.b.tolist()))
        print(f"{name:34} {seconds:8.2f} {n / seconds:10.0f} {memory.extra_mb:9.0f} "
              f"{len(ours):9,}", flush=True)
        del pairs
    if not peer:
        return
    name = f"imagededup CNN find_duplicates ({peer_workers} w)"
    need = _imagededup_need_bytes(n, dim)
    available = psutil.virtual_memory().available
    if need > 0.8 * available:
        print(f"{name:34} skipped: needs ~{need / 2 ** 30:.1f} GB for its N x N similarity "
              f"matrices, {available / 2 ** 30:.1f} GB available")
        return
    encoding_map = {f"img{i:08d}.jpg": items[i] for i in range(n)}
    gc.collect()
    try:
        with TreeMemory(every=SAMPLE_EVERY_S) as memory:
            started = time.perf_counter()
            found = _imagededup_find_duplicates(encoding_map, threshold, peer_workers)
            seconds = time.perf_counter() - started
    except MemoryError:
        print(f"{name:34} MemoryError (needs ~{need / 2 ** 30:.1f} GB)")
        return
    number = {key: i for i, key in enumerate(encoding_map)}
    theirs = {(number[key], number[dup]) for key, dups in found.items() for dup in dups
              if number[key] < number[dup]}
    print(f"{name:34} {seconds:8.2f} {n / seconds:10.0f} {memory.extra_mb:9.0f} "
          f"{len(theirs):9,}")
    fastest = min(rows.values())
    print(f"ratio imagededup / lookalike (projection chosen): "
          f"{seconds / rows['lookalike self_join']:.1f}x; / plain tiles: "
          f"{seconds / rows['lookalike self_join projection=0']:.1f}x "
          f"(fastest lookalike {fastest:.2f} s)")
    print(f"pairs: both {len(ours & theirs):,}, lookalike only {len(ours - theirs):,}, "
          f"imagededup only {len(theirs - ours):,}"
          + (" (imagededup keeps float16 similarities above 10,000 rows: rounding near the "
             "threshold)" if ours != theirs else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["query", "join", "all"], default="all")
    parser.add_argument("--n", type=int, default=None,
                        help="vectors (default 1,000,000 for query, 100,000 for join)")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000, help="single queries timed")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--kinds", default="flat,hnsw", help="index kinds for the query part")
    parser.add_argument("--threshold", type=float, default=0.9,
                        help="min cosine: the join's, and the query part's recall>=t")
    parser.add_argument("--no-peer", action="store_true", help="join: lookalike only")
    parser.add_argument("--peer-workers", type=int, default=os.cpu_count() or 1,
                        help="imagededup num_sim_workers (its default: cpu_count())")
    parser.add_argument("--threads", type=int, default=None,
                        help="FAISS and BLAS threads (default: leave both at their default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import faiss

    if args.threads:
        from threadpoolctl import threadpool_limits

        faiss.omp_set_num_threads(args.threads)
        threadpool_limits(args.threads)

    print(f"cores {os.cpu_count()}, FAISS threads {faiss.omp_get_max_threads()}, "
          f"numpy {np.__version__}, faiss {faiss.__version__}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.part in ("query", "all"):
        query_part(args.n or 1_000_000, args.dim, args.queries, args.k,
                   args.kinds.split(","), args.threshold, args.seed)
    if args.part in ("join", "all"):
        join_part(args.n or 100_000, args.dim, args.threshold, args.seed, not args.no_peer,
                  args.peer_workers)
    print(f"\nload average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
