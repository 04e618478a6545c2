"""Ingest throughput (issue 7): `lookalike.sources.ingest.ingest` on a CSV of --count URLs
served by a local HTTP server (tests/integration/image_server.py, a threaded http.server on
127.0.0.1, in its own process) with about --fail-rate of them failing (404, 500, connection
reset, an HTML page sent as image/jpeg, mixed), then the same command again (a resume with
nothing left to do).

    python bench/bench_ingest.py [--count 5000] [--fail-rate 0.05] [--concurrency 32]
                                 [--per-host 16] [--scan]

Prints images per second, rows by status, and whether every row is accounted for (one
result per row, every failing URL failed, every good one downloaded). Measures and prints;
asserts nothing. On a small machine the server competes with the downloader for the same
cores: the rate is a lower bound of the downloader's.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import random
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import import_test_helper

from lookalike.sources.download import DownloadOptions
from lookalike.sources.ingest import ingest

image_server = import_test_helper("image_server")
ImageServer, image_bytes = image_server.ImageServer, image_server.image_bytes

FAILURES = ("/status/404", "/status/500", "/reset", "/html")


def _serve(count: int, port_out, stop) -> None:
    """The server's process: its threads do not share a GIL with the downloader."""
    for seed in range(count):
        image_bytes(seed)  # generated before timing: the server only sends bytes
    with ImageServer() as server:
        port_out.send(server.port)
        stop.wait()


class _Remote:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--per-host", type=int, default=16)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--scan", action="store_true", help="also scan (ingest --scan)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    started = time.perf_counter()
    receive, send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=_serve, args=(args.count, send, stop), daemon=True)
    process.start()
    server = _Remote(receive.recv())
    print(f"server ready with {args.count:,} generated pictures in "
          f"{time.perf_counter() - started:.1f} s ({len(image_bytes(0)):,} bytes each)")
    try:
        _bench(args, rng, server)
    finally:
        stop.set()
        process.join(5)


def _bench(args, rng: random.Random, server: _Remote) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        expected: dict[str, str] = {}
        rows = []
        for number in range(args.count):
            if rng.random() < args.fail_rate:
                # A distinct URL for each failing row (the query), so none is a duplicate.
                url = server.url(f"{rng.choice(FAILURES)}?row={number}")
                expected[str(number)] = "failed"
            else:
                url = server.url(f"/img/{number}.jpg")
                expected[str(number)] = "ok"
            rows.append([str(number), url, f"category_{number % 7}"])
        source = Path(scratch) / "urls.csv"
        with open(source, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "image_url", "category"])
            writer.writerows(rows)
        options = DownloadOptions(allow_private=True, concurrency=args.concurrency,
                                  per_host=args.per_host,
                                  retries=args.retries, backoff=0.05, max_backoff=0.2,
                                  timeout=10.0)
        out = Path(scratch) / "out"
        for label in ("first run", "re-run"):
            began, cpu = time.perf_counter(), _cpu_seconds()
            summary = ingest(source, "image_url", out, id_column="id",
                             keep_columns=["category"], options=options, scan=args.scan,
                             workers=2)
            seconds, cpu = time.perf_counter() - began, _cpu_seconds() - cpu
            _report(label, summary, seconds, cpu, expected)


def _cpu_seconds() -> float:
    """CPU time of this process (the downloader; the server is another process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(label: str, summary, seconds: float, cpu: float,
            expected: dict[str, str]) -> None:
    got = {r.id: r.status for r in summary.rows}
    reasons = Counter(r.reason.split(" (")[0] for r in summary.rows if r.status != "ok")
    rate = summary.downloaded / seconds if seconds else 0.0
    print(f"\n{label}: {len(summary.rows):,} rows in {seconds:.2f} s; downloaded "
          f"{summary.downloaded:,} ({rate:,.0f} images/s), already there {summary.already:,}")
    print(f"  downloader CPU {cpu:.1f} s ({1000 * cpu / max(len(summary.rows), 1):.2f} ms a "
          "row)")
    print("  rows by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(
        summary.statuses.items())))
    print("  failure reasons: " + ", ".join(f"{k}: {v:,}" for k, v in reasons.most_common()))
    print(f"  accounted for: {len(got) == len(expected)} (one result per row), "
          f"{got == expected} (every status as planted)")
    if summary.scan is not None:
        print(f"  scan: {summary.scan.as_dict()}")


if __name__ == "__main__":
    main()
