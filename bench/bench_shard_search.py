"""The shard search (`dupes --shards`, search/in_shards.py) at a size where its join, not its
fixed costs, is the work: synthetic shards of N pictures, searched on a two-node Ray cluster
on 127.0.0.1 (bench_ray.py's, one CPU each) and here, side by side.

    python bench/bench_shard_search.py --pictures 1000000

The shards hold what a scan writes (the default methods' signature records) with random
codes, and planted copies: every 100th picture repeats an earlier one's pHash and dHash
codes (its 8 variants each) with 0-4 bits flipped, and its colour thumbnail (another
picture, another byte hash and pixels hash), and every 1,000th is a byte copy (the same
byte hash and codes). Each search runs in a fresh subprocess; columns: wall s, the
driver's peak RSS and CPU s (getrusage), the cluster's CPU s and peak summed RSS (psutil), the
groups and pairs found and the planted ones. The driver's peak is its VmHWM (the child's own,
from its exec). It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_ray import RAY_ENV, Cluster, run_child

SHARD_FILES = 512
EVERY_COPY = 100  # a near copy of an earlier picture
EVERY_BYTES = 1000  # a byte copy

CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])
from lookalike.search.in_shards import search_shards
start = time.perf_counter()
found = search_shards(args["shards"], runner=args["runner"], ray_address=args["address"])
groups, pairs = found.groups(), found.pairs()
seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would count the pages of the
# parent (which made the shards) that this child had before it ran Python.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("RESULT " + json.dumps({"search_s": seconds, "driver_mb": hwm / 1024,
      "cpu_s": own.ru_utime + own.ru_stime, "groups": len(groups), "pairs": len(pairs),
      "hash_pairs": sum(1 for m in pairs if m.method == "phash"),
      "byte_pairs": sum(1 for m in pairs if m.method == "bytes"), "tasks": found.tasks}),
      flush=True)
"""


def write_shards(folder: Path, pictures: int, seed: int = 0) -> dict:
    """Synthetic shards of `pictures` and their walk file; the planted counts."""
    import pyarrow as pa

    from lookalike.methods.registry import get_spec
    from lookalike.runners.shards import WALK_FILE, WALK_HEADER, _schema, write_shard

    rng = np.random.default_rng(seed)
    specs = {name: get_spec(name) for name in ("phash", "dhash", "colour", "pixels")}
    phash = rng.integers(0, 256, (pictures, 8, 8), dtype=np.uint8)
    dhash = rng.integers(0, 256, (pictures, 8, 8), dtype=np.uint8)
    colour = rng.integers(0, 256, (pictures, 192), dtype=np.uint8)
    pixels = rng.integers(0, 256, (pictures, 16), dtype=np.uint8)
    content = rng.integers(0, 256, (pictures, 32), dtype=np.uint8)
    near = np.arange(EVERY_COPY, pictures, EVERY_COPY)
    source = rng.integers(0, near, dtype=np.int64)  # an earlier picture each
    flips = np.zeros((len(near), 8), np.uint8)
    for row, count in enumerate(rng.integers(0, 5, len(near))):
        for bit in rng.choice(64, count, replace=False):
            flips[row, bit // 8] |= np.uint8(1 << (7 - bit % 8))
    phash[near] = phash[source] ^ flips[:, None, :]  # the same flips on every variant
    dhash[near], colour[near] = dhash[source], colour[source]
    same = np.arange(EVERY_BYTES // 2, pictures, EVERY_BYTES)  # byte copies
    same_source = same - EVERY_BYTES // 4
    for array in (phash, dhash, colour, pixels, content):
        array[same] = array[same_source]
    quality = rng.uniform(20, 60, pictures)
    lines = [WALK_HEADER]
    for start in range(0, pictures, SHARD_FILES):
        rows = range(start, min(pictures, start + SHARD_FILES))
        signatures = [[{"method": name, "version": spec.version, "params": spec.params,
                        "value": array[k].tobytes(), "quality": float(quality[k])}
                       for name, spec, array in (("phash", specs["phash"], phash),
                                                 ("dhash", specs["dhash"], dhash),
                                                 ("colour", specs["colour"], colour),
                                                 ("pixels", specs["pixels"], pixels))]
                      for k in rows]
        n = len(rows)
        table = pa.table({
            "path": [f"/pictures/{k // 10_000:04d}/p{k:08d}.jpg" for k in rows],
            "size": [20_000 + k % 997 for k in rows], "mtime_ns": [0] * n,
            "content": [content[k].tobytes() for k in rows], "kind": ["image"] * n,
            "width": [256] * n, "height": [192] * n, "format": ["JPEG"] * n,
            "mode": ["RGB"] * n, "frames": [1] * n, "stage": [None] * n,
            "reason": [None] * n, "signatures": signatures}, schema=_schema())
        name = f"shard-{start // SHARD_FILES:08d}.parquet"
        write_shard(table, folder / name)
        lines.append(f"{name}\t{n}\t{n}\n")
    (folder / WALK_FILE).write_text("".join(lines))
    return {"near_copies": int(len(near)), "byte_copies": int(len(same))}


def run(shards: Path, runner: str, address: str | None, env: dict,
        cluster: Cluster | None) -> dict:
    return run_child(CHILD, {"shards": str(shards), "runner": runner, "address": address},
                     env, cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-shard-search-", dir=args.scratch))
    cluster = Cluster()
    try:
        shards = scratch / "shards"
        shards.mkdir()
        started = time.perf_counter()
        planted = write_shards(shards, args.pictures)
        print(f"{args.pictures:,} pictures in {-(-args.pictures // SHARD_FILES):,} shards, "
              f"written in {time.perf_counter() - started:.1f} s; planted {planted}",
              flush=True)
        print(f"cluster up in {cluster.start():.1f} s", flush=True)
        env = {**os.environ, **RAY_ENV}
        env.pop("RAY_ADDRESS", None)
        print(f"{'run':<6} {'wall s':>7} {'driver MB':>9} {'driver cpu s':>12} "
              f"{'cluster cpu s':>13} {'cluster MB':>10} {'groups':>7} {'pairs':>7} "
              f"{'phash':>6} {'bytes':>6}  tasks")
        for _ in range(args.rounds):
            for runner in ("ray", "local"):
                row = run(shards, runner, cluster.address if runner == "ray" else None, env,
                          cluster if runner == "ray" else None)
                print(f"{runner:<6} {row['wall_s']:7.1f} {row['driver_mb']:9.0f} "
                      f"{row['cpu_s']:12.1f} {row['cluster_cpu_s']:13.1f} "
                      f"{row['cluster_mb']:10.0f} {row['groups']:7} {row['pairs']:7} "
                      f"{row['hash_pairs']:6} {row['byte_pairs']:6}  {row['tasks']}",
                      flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
