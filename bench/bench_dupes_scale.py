"""`lookalike dupes` at scale: a synthetic index of N pictures, timed end to end.

Scanning a million real images takes hours here, so this writes an index directly: N contents
with random pHash and dHash codes (8 orientation variants each) and one file each, of which
5% are near copies of another picture (a few bits flipped). Then `lookalike dupes` runs in a
fresh process and its wall time, CPU time and peak RSS are printed: the search side of the
per-item costs in docs/scaling.md. It prints figures and asserts nothing.

    python bench/bench_dupes_scale.py --n 1000000 [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from lookalike.index.store import open_index
from lookalike.methods.registry import get_spec


def build(path: str, n: int, seed: int = 0, copies: float = 0.05) -> int:
    """Write the synthetic index; return the number of planted copies."""
    rng = np.random.default_rng(seed)
    n_copies = int(n * copies)
    with open_index(path, create=True) as idx:
        conn = idx.conn
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO contents (id, hash, bytes, width, height, format, mode, "
                         "frames) VALUES (?, ?, 20000, 256, 256, 'JPEG', 'RGB', 1)",
                         ((i + 1, i.to_bytes(16, "little")) for i in range(n)))
        conn.executemany("INSERT INTO files (path, size, mtime_ns, content_id, status) "
                         "VALUES (?, 20000, 0, ?, 'ok')",
                         ((f"/synthetic/{i:08d}.jpg", i + 1) for i in range(n)))
        src = rng.integers(0, n, n_copies)  # dst is a near copy of src, in both hashes
        dst = rng.choice(n, n_copies, replace=False)
        for name in ("phash", "dhash"):
            spec = get_spec(name)
            codes = rng.integers(0, 256, (n, spec.variants, spec.nbytes), dtype=np.uint8)
            bits = np.unpackbits(codes[src], axis=-1)
            flips = rng.random(bits.shape) < 3 / 64  # about 3 bits per code
            codes[dst] = np.packbits(bits ^ flips, axis=-1)
            conn.executemany(
                "INSERT INTO signatures VALUES (?, ?, ?, ?, ?, 100.0)",
                ((i + 1, *spec.key, codes[i].tobytes()) for i in range(n)))
        conn.execute("COMMIT")
    return n_copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--keep", help="folder for the index (default: a temporary one)")
    parser.add_argument("--linkage", default="complete")
    args = parser.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="lookalike-scale-")
    path = os.path.join(folder, "index.db")
    if not os.path.exists(path):
        start = time.perf_counter()
        copies = build(path, args.n)
        print(f"built {args.n:,} pictures ({copies:,} near copies) in "
              f"{time.perf_counter() - start:.1f} s, {os.path.getsize(path) / 1e6:.0f} MB")
    for extra in ([], ["--pairs"]):
        command = [sys.executable, "-m", "lookalike", "dupes", "--index", path,
                   "--linkage", args.linkage, "--format", "json", *extra]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        found = done.stdout.count(b'"path"') if not extra else done.stdout.count(b'"a"')
        print(f"dupes {' '.join(extra) or '(groups)':10} n={args.n:,}  exit {done.returncode}  "
              f"wall {wall:.1f} s  cpu {cpu:.1f} s  peak RSS {after.ru_maxrss / 1024:.0f} MB  "
              f"{'files in groups' if not extra else 'pairs'} {found:,}  "
              f"({args.n / wall:,.0f} pictures/s)")
        if done.returncode not in (0, 1):
            print(done.stderr.decode()[-2000:])


if __name__ == "__main__":
    main()
