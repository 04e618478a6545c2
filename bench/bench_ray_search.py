"""The Hamming self-join on a local two-node Ray cluster (search/distributed.py) against the
local one (binary.self_join), on the same codes, and `dupes` end to end both ways.

    python bench/bench_ray_search.py --index /work/tmp/raysearch/index.db   # real pHash codes
    python bench/bench_ray_search.py --random 100000                       # random, planted
    python bench/bench_ray_search.py --random 1000000 --blanks 0.001 --only local probed

Codes: the usable pHash codes (8 variants each) of an index, or N random 8x8 bit grids with
their 8 flips and turns, 2% of them replaced by a turned copy of another with 0-9 bits
changed and 1% all zero (--blanks: one huge bucket in every block, the skew case). Radius: 8
(the fast mode's pHash radius) unless --radius.

Each contender runs in a fresh subprocess on the same .npy file of codes:
* local: binary.self_join (its engine chosen by cost, as `dupes` does);
* exact, probed: the distributed join's tasks one after another in one process, no Ray (the
  algorithm's own cost), with exact blocks (radius + 1 blocks, radii 0) and with the plan
  the join chooses itself (mih.best_plan: probed blocks);
* ray, ray-again: search.distributed.self_join_ray (its own plan) against a cluster this
  script starts (a head and a second node, one CPU each, bench_ray.Cluster), the second
  time with warm workers; ray-exact (exact blocks) only if --only names it. "connect s"
  (ray.init) is not in "join s".
With --index, also dupes-local and dupes-ray: find_groups on the index, the whole fast-mode
search (join, orientation rule, dHash check, thumbnails, linkage).

Columns: join s, CPU s of the subprocess (user + system, all its threads; the steady
figure on a shared machine), peak driver MB (getrusage of the subprocess), codes MB (the
subprocess's RSS with its codes loaded, before the join), cluster MB and cluster CPU s
(bench_ray's sampler), the comparisons the plan makes (counted by plan_tasks after the
join, outside the timing) and its blocks, and whether the hits are identical to the local
join's (a digest of all four arrays). It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench_ray import RAY_ENV, Cluster, run_child

CHILD = r"""
import hashlib, json, resource, sys, time
import numpy as np
args = json.loads(sys.argv[1])
from lookalike.search import binary, distributed
codes = np.load(args["codes"]) if args["codes"] else None
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
out = {"codes_mb": rss()}
kind = args["kind"]
if kind in ("ray", "ray-exact", "dupes-ray"):
    import ray
    t = time.perf_counter()
    ray.init(address=args["address"], log_to_driver=False, configure_logging=False)
    out["connect_s"] = time.perf_counter() - t
start = time.perf_counter()
cpu_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
if kind.startswith("dupes"):
    from lookalike.index.store import open_index
    from lookalike.search.dupes import find_groups
    with open_index(args["index"]) as index:
        groups = find_groups(index, runner="ray" if kind == "dupes-ray" else "local",
                             ray_address=args["address"])
    out["join_s"] = time.perf_counter() - start
    out["cpu_s"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_before
    out["driver_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = hashlib.sha1(repr([(tuple(f.path for f in g.files), g.method, g.max_distance)
                                for g in groups]).encode()).hexdigest()
    out |= {"groups": len(groups), "digest": digest}
else:
    blocks = args["radius"] + 1 if kind.endswith("exact") else None
    if kind == "local":
        hits = binary.self_join(codes, args["radius"])
    elif kind in ("exact", "probed"):
        hits = distributed.self_join_local(codes, args["radius"], n_blocks=blocks)
    else:
        hits = distributed.self_join_ray(codes, args["radius"], args["address"],
                                         n_blocks=blocks)
    out["join_s"] = time.perf_counter() - start
    out["cpu_s"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_before
    out["driver_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if kind != "local":  # the plan's comparisons, counted again outside the timing
        words = distributed.as_words(codes)
        plan = distributed.make_plan(words.shape[0] * words.shape[1], words.shape[-1] * 64,
                                     args["radius"], blocks)
        tasks = distributed.plan_tasks(words, plan, 1)
        out |= {"comparisons": sum(t.work for t in tasks), "widths": plan.widths,
                "radii": plan.radii}
    digest = hashlib.sha1()
    for field in ("query", "item", "distance", "variant"):
        digest.update(np.ascontiguousarray(getattr(hits, field)).tobytes())
    out |= {"hits": int(hits.query.size), "digest": digest.hexdigest()}
print("RESULT " + json.dumps(out), flush=True)
"""


def random_codes(n: int, seed: int = 0, blank_share: float = 0.01) -> np.ndarray:
    """(n, 8, 8) uint8: random grids and their dihedral variants, planted copies and blanks."""
    from lookalike.methods.dihedral import variant

    rng = np.random.default_rng(seed)
    grids = rng.integers(0, 2, (n, 8, 8), dtype=np.uint8)
    blanks = int(n * blank_share)
    for b in rng.choice(np.arange(blanks, n), n // 50, replace=False):
        copy = variant(grids[rng.integers(blanks, n)], int(rng.integers(0, 8))).copy()
        copy.reshape(-1)[rng.integers(0, 64, int(rng.integers(0, 10)))] ^= 1
        grids[b] = copy
    grids[:blanks] = 0
    turned = np.stack([variant(grids, k) for k in range(8)], axis=1)
    return np.packbits(turned.reshape(n, 8, 64), axis=-1)


def index_codes(index: Path) -> np.ndarray:
    from lookalike.index.store import open_index
    from lookalike.methods.registry import get_spec

    spec = get_spec("phash")
    with open_index(index) as opened:
        codes = opened.load_codes(spec)
    return codes.codes[codes.quality >= spec.min_quality]


KINDS = ("local", "exact", "probed", "dupes-local", "ray", "ray-again", "dupes-ray")


def run(kind: str, payload: dict, cluster: Cluster | None, env: dict) -> dict:
    return run_child(CHILD, payload | {"kind": kind}, env, cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--index", type=Path)
    source.add_argument("--random", type=int, metavar="N")
    parser.add_argument("--radius", type=int, default=8)
    parser.add_argument("--blanks", type=float, default=0.01,
                        help="share of all-zero pictures among the random codes")
    parser.add_argument("--only", nargs="+", choices=KINDS + ("ray-exact",),
                        help="these contenders (default: all but ray-exact)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-search-", dir="/tmp"))
    codes = index_codes(args.index) if args.index else random_codes(args.random,
                                                                    blank_share=args.blanks)
    kinds = [k for k in KINDS if args.index or not k.startswith("dupes")]
    kinds = [k for k in KINDS + ("ray-exact",) if k in args.only] if args.only else kinds
    np.save(scratch / "codes.npy", codes)
    payload = {"codes": str(scratch / "codes.npy"), "radius": args.radius, "address": None,
               "index": str(args.index) if args.index else None}
    env = {**os.environ, **RAY_ENV}
    env.pop("RAY_ADDRESS", None)
    rows = {}
    on_cluster = [k for k in kinds if k.startswith(("ray", "dupes-ray"))]
    for kind in (k for k in kinds if k not in on_cluster):
        rows[kind] = run(kind, payload | ({"codes": None} if "dupes" in kind else {}), None, env)
    cluster, cluster_s = Cluster(), 0.0
    try:
        if on_cluster:
            cluster_s = cluster.start()
            payload["address"] = cluster.address
        for kind in on_cluster:
            rows[kind] = run(kind.replace("-again", ""),
                             payload | ({"codes": None} if "dupes" in kind else {}), cluster, env)
    finally:
        cluster.stop()
    print(f"{len(codes):,} codes of {codes.shape[2] * 8} bits x {codes.shape[1]} variants, "
          f"radius {args.radius}; cluster start {cluster_s:.1f} s (not in the rows)")
    print(f"{'':12} {'join s':>8} {'cpu s':>7} {'connect s':>9} {'driver MB':>9} "
          f"{'codes MB':>8} {'cluster MB':>10} {'cl. cpu s':>9} {'hits/groups':>11}  same  "
          f"{'comparisons':>14}  blocks (widths/radii)")
    for kind, row in rows.items():
        reference = rows.get("dupes-local" if kind.startswith("dupes") else "local",
                             {}).get("digest")
        plan = (f"{row['comparisons']:14,}  {row['widths']}/{row['radii']}"
                if "comparisons" in row else "")
        print(f"{kind:12} {row['join_s']:8.2f} {row['cpu_s']:7.2f} "
              f"{row.get('connect_s', 0):9.2f} {row['driver_mb']:9.0f} {row['codes_mb']:8.0f} "
              f"{row['cluster_mb']:10.0f} {row['cluster_cpu_s']:9.1f} "
              f"{row.get('hits', row.get('groups')):>11,}  {str(row['digest'] == reference):5} "
              f"{plan}")
    if args.json:
        args.json.write_text(json.dumps({"codes": len(codes), "radius": args.radius,
                                         "cluster_start_s": cluster_s, "rows": rows}, indent=2))
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
