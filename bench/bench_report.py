"""Time `stats` and `report` on an index and give the report's size.

    python bench/bench_report.py /tmp/b20k.db
    python bench/bench_report.py /tmp/b20k.db --max-groups 1000 3000 --categories 12

The index is copied into a scratch folder first, so the thumbnail cache starts empty (a cold
report) and nothing is written next to the given index; the report is then made again with
the cache warm. `--categories K` writes a made-up category (one of K, by file id) into the
copy's files.meta, to time the per-category numbers. Each step runs in this process, one
after the other; the first find_groups of a process compiles the numba kernels, so stats runs
once untimed first.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
from pathlib import Path

from common import timed

from lookalike.index.store import open_index
from lookalike.report.analysis import stats
from lookalike.report.html import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--max-groups", type=int, nargs="+", default=[1000])
    parser.add_argument("--categories", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        copy = Path(scratch) / "index" / "index.db"
        copy.parent.mkdir()
        shutil.copyfile(args.index, copy)
        if args.categories:
            conn = sqlite3.connect(copy)
            with conn:
                conn.execute("UPDATE files SET meta = json_object('category', 'c' || (id % ?))",
                             (args.categories,))
            conn.close()
        with open_index(copy) as idx:
            files = idx.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            print(f"index {args.index}: {files:,} files, {args.index.stat().st_size / 1e6:.1f} "
                  "MB", flush=True)
            stats(idx)  # untimed: numba compiles its kernels on the first search
            timed("stats, no duplicates", lambda: stats(idx, duplicates=False))
            result = timed("stats with duplicates (find_groups)", lambda: stats(idx))
            d = result.duplicates
            print(f"  {result.images:,} images, {d.groups:,} groups, {d.redundant:,} redundant "
                  f"({100 * d.rate:.1f}%), median width {result.width.median:g}")
            for limit in args.max_groups:
                for state in ("cold", "warm"):
                    out = Path(scratch) / f"report-{limit}.html"
                    made = timed(f"report --max-groups {limit} ({state} thumbnail cache)",
                                 lambda: write_report(idx, out, max_groups=limit))
                    print(f"  {made.bytes / 1e6:.1f} MB HTML, {made.groups_shown:,} of "
                          f"{made.groups_total:,} groups, {made.files_shown:,} files, "
                          f"thumbnails made {made.thumbs.made:,}, cached {made.thumbs.cached:,}, "
                          f"failed {made.thumbs.failed:,}", flush=True)
                shutil.rmtree(copy.parent / "thumbs", ignore_errors=True)


if __name__ == "__main__":
    main()
