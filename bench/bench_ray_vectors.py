"""The descriptor self-join on a local two-node Ray cluster (search/distributed_vectors.py)
against the local one (vectors.self_join), on the same vectors.

    python bench/bench_ray_vectors.py                      # 100,000 x 512, float32 and float16
    python bench/bench_ray_vectors.py --n 20000 --dtypes float32 --knn

Vectors: N rows of the thorough mode's stored dimension (512, the SSCD student's), standard
normal, 2% of them replaced by a near copy of another (similarity spread over ~0.3-1.0), in
each --dtypes (the index stores float16; `dupes` searches them as float32). Threshold 0.75
(the student's default least similarity) unless --threshold.

Each contender runs in a fresh subprocess on the same .npy file:
* local: vectors.self_join (the search `dupes --method embed` runs), and local-1t the same
  with one BLAS thread (a Ray task's setting: on a loaded machine two BLAS threads spend
  CPU waiting for each other);
* blocks: with --in-process, the Ray join's tasks one after another in one process, no Ray
  (the algorithm's own cost);
* ray, ray-again: distributed_vectors.self_join_ray against a cluster this script starts (a
  head and a second node, one CPU each, bench_ray.Cluster), the second time with warm
  workers. "connect s" (ray.init) is not in "join s".
* blocks-ivf: with --ivf, the tasks in one process with IVF shard indexes (approximate:
  "same" is then the share of the exact pairs found);
* with --block-pair N: only one block pair of two N-row shards in this process, one
  thread, flat against IVF shard indexes at 8, 16 and the library's probes;
* with --knn: knn-local (a flat index's knn, k = 11, as decide.py asks for) and knn-ray.

Columns: join s, CPU s of the subprocess (user + system, all threads: the steady figure on a
shared machine), peak driver MB (getrusage), vectors MB (its RSS with the vectors loaded),
cluster MB and cluster CPU s (bench_ray's sampler), shards, pairs, and whether the result is
identical to the local one (a digest of a, b and the similarities' bytes; for knn, ids equal
and similarities within 1e-6). It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_ray import RAY_ENV, Cluster, run_child

CHILD = r"""
import hashlib, json, resource, sys, time
import numpy as np
args = json.loads(sys.argv[1])
from lookalike.search import distributed_vectors as dv, vectors
array = np.load(args["vectors"])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
out = {"vectors_mb": rss()}
kind = args["kind"]
if "ray" in kind:
    import ray
    t = time.perf_counter()
    ray.init(address=args["address"], log_to_driver=False, configure_logging=False)
    out["connect_s"] = time.perf_counter() - t
    out["shards"] = dv.shard_count(len(array), array.shape[1],
                                   int(ray.cluster_resources().get("CPU", 1)),
                                   not kind.startswith("knn"))
start = time.perf_counter()
cpu_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
if kind == "local":
    result = vectors.self_join(array, args["threshold"])
elif kind == "local-1t":
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        result = vectors.self_join(array, args["threshold"])
elif kind in ("blocks", "blocks-ivf"):
    out["shards"] = args["shards"]
    result = dv.self_join_local(array, args["threshold"], args["shards"],
                                "ivf" if kind == "blocks-ivf" else "flat")
elif kind == "ray":
    result = dv.self_join_ray(array, args["threshold"], args["address"])
elif kind == "knn-local":
    result = vectors.build(array, "flat").knn(array, args["k"])
else:
    result = dv.knn_ray(array, args["k"], args["address"])
out["join_s"] = time.perf_counter() - start
out["cpu_s"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_before
out["driver_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if kind.startswith("knn"):
    np.save(args["knn_out"] + kind + ".npy", np.stack([result.ids.astype(np.float64),
                                                       result.similarity.astype(np.float64)]))
    out["pairs"] = int((result.ids >= 0).sum())
else:
    digest = hashlib.sha1()
    for field in ("a", "b", "similarity"):
        digest.update(np.ascontiguousarray(getattr(result, field)).tobytes())
    out |= {"pairs": int(result.a.size), "digest": digest.hexdigest()}
    np.save(args["knn_out"] + kind + "-pairs.npy", np.stack([result.a, result.b]))
print("RESULT " + json.dumps(out), flush=True)
"""


def planted_vectors(n: int, dim: int, dtype: str, seed: int = 0) -> np.ndarray:
    """Standard normal rows, 2% replaced by a near copy of another row."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    copies = rng.choice(n, n // 50, replace=False)
    sources = rng.integers(0, n, copies.size)
    noise = rng.standard_normal((copies.size, dim), dtype=np.float32)
    scale = rng.uniform(0.0, 1.5, (copies.size, 1)).astype(np.float32)
    rows[copies] = (rows[sources] / np.linalg.norm(rows[sources], axis=1, keepdims=True)
                    + scale * noise / np.linalg.norm(noise, axis=1, keepdims=True))
    return rows.astype(dtype)


def run(kind: str, payload: dict, cluster: Cluster | None, env: dict) -> dict:
    result = run_child(CHILD, payload | {"kind": kind}, env, cluster)
    return result | {"load": os.getloadavg()[0]}


def same_knn(prefix: str) -> bool:
    local, ours = np.load(prefix + "knn-local.npy"), np.load(prefix + "knn-ray.npy")
    close = np.abs(local[1] - ours[1]) <= 1e-6
    ids_ok = (local[0] == ours[0]) | (np.abs(local[1] - ours[1]) <= 1e-6)
    return bool(close.all() and ids_ok.all())


def recall(prefix: str, reference: str) -> float:
    """Share of the exact pairs the IVF shards found (they find no others)."""
    def keys(name):
        a, b = np.load(prefix + name + "-pairs.npy")
        return set(zip(a.tolist(), b.tolist()))
    exact = keys(reference)
    return len(exact & keys("blocks-ivf")) / max(1, len(exact))


def block_pair(n: int, dim: int, threshold: float) -> None:
    """One block pair (two n-row shards) in this process, one thread: a flat task against
    IVF shard indexes at several probe counts (the library's: the last one)."""
    import resource

    from threadpoolctl import threadpool_limits

    from lookalike.search import distributed_vectors as dv

    def cpu() -> float:
        return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])

    array = planted_vectors(2 * n, dim, "float32", seed=1)
    left, right = array[:n], array[n:]
    with threadpool_limits(1):
        before = cpu()
        flat = dv.join_blocks(left, 0, right, n, threshold, "flat")
        flat_s = cpu() - before
        print(f"flat {n:,} x {n:,}: {flat_s:.1f} CPU s, {flat_s / n / n * 1e9:.2f} ns a pair, "
              f"{len(flat.a)} pairs")
        want = set(zip(flat.a.tolist(), flat.b.tolist()))
        before = cpu()
        index = dv._index(dv.shard_index(right, "ivf"), "ivf")
        print(f"ivf build: {cpu() - before:.1f} CPU s, {index.faiss_index.nlist} lists")
        for nprobe in (8, 16, index.faiss_index.nprobe):
            index.faiss_index.nprobe = nprobe
            before = cpu()
            hits = index.range(left, threshold)
            got = set(zip(hits.query.tolist(), (hits.ids + n).tolist()))
            print(f"ivf, {nprobe} probes: {cpu() - before:.1f} CPU s, recall "
                  f"{len(got & want) / max(1, len(want)):.3f}, {len(got - want)} not exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--dtypes", default="float32,float16")
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--in-process", action="store_true",
                        help="also the Ray join's tasks in one process (no Ray)")
    parser.add_argument("--shards", type=int, default=3, help="shards of --in-process")
    parser.add_argument("--knn", action="store_true", help="also the knn (k = 11)")
    parser.add_argument("--ivf", action="store_true",
                        help="also the tasks in one process with IVF shard indexes")
    parser.add_argument("--kinds", help="comma-separated contenders instead of the list "
                        "above (the first exact one, local or local-1t, is the reference)")
    parser.add_argument("--block-pair", type=int, metavar="N",
                        help="only one block pair of two N-row shards, flat against IVF")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.block_pair:
        block_pair(args.block_pair, args.dim, args.threshold)
        return

    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-vectors-", dir="/tmp"))
    env = {**os.environ, **RAY_ENV}
    env.pop("RAY_ADDRESS", None)
    rows: dict[str, dict] = {}
    kinds = ["local", "local-1t"] + (["blocks"] if args.in_process else [])
    kinds += (["blocks-ivf"] if args.ivf else []) + ["ray", "ray-again"]
    kinds += ["knn-local", "knn-ray"] if args.knn else []
    kinds = args.kinds.split(",") if args.kinds else kinds
    cluster = Cluster() if any("ray" in kind for kind in kinds) else None
    cluster_s = 0.0
    try:
        cluster_s = cluster.start() if cluster else 0.0
        for dtype in args.dtypes.split(","):
            path = scratch / f"vectors-{dtype}.npy"
            np.save(path, planted_vectors(args.n, args.dim, dtype))
            payload = {"vectors": str(path), "threshold": args.threshold, "k": 11,
                       "address": cluster.address if cluster else None,
                       "shards": args.shards, "knn_out": str(scratch / f"{dtype}-")}
            for kind in kinds:
                on_ray = "ray" in kind
                rows[f"{dtype} {kind}"] = run(kind.replace("-again", ""), payload,
                                              cluster if on_ray else None, env)
                print(f"{dtype} {kind}: {rows[f'{dtype} {kind}']}", file=sys.stderr, flush=True)
            reference = "local" if "local" in kinds else "local-1t"
            if "knn-ray" in kinds:
                rows[f"{dtype} knn-ray"]["same_knn"] = same_knn(payload["knn_out"])
            if "blocks-ivf" in kinds:
                rows[f"{dtype} blocks-ivf"]["recall"] = recall(payload["knn_out"], reference)
            for kind in kinds:
                if "knn" not in kind:
                    rows[f"{dtype} {kind}"]["same"] = (rows[f"{dtype} {kind}"]["digest"] ==
                                                       rows[f"{dtype} {reference}"]["digest"])
    finally:
        if cluster:
            cluster.stop()
    print(f"{args.n:,} x {args.dim} vectors, 2% planted, threshold {args.threshold}; cluster "
          f"start {cluster_s:.1f} s (not in the rows)")
    print(f"{'':18} {'join s':>8} {'cpu s':>7} {'connect s':>9} {'driver MB':>9} "
          f"{'vectors MB':>10} {'cluster MB':>10} {'cl. cpu s':>9} {'shards':>6} "
          f"{'pairs':>10}  same  load")
    for name, row in rows.items():
        same = row.get("same_knn", row.get("same", ""))
        same = f"recall {row['recall']:.3f}" if "recall" in row else same
        print(f"{name:18} {row['join_s']:8.2f} {row['cpu_s']:7.2f} "
              f"{row.get('connect_s', 0):9.2f} {row['driver_mb']:9.0f} {row['vectors_mb']:10.0f} "
              f"{row['cluster_mb']:10.0f} {row['cluster_cpu_s']:9.1f} {row.get('shards', 1):>6} "
              f"{row['pairs']:10,}  {str(same):5} {row['load']:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "dim": args.dim,
                                         "threshold": args.threshold,
                                         "cluster_start_s": cluster_s, "rows": rows}, indent=2))
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
