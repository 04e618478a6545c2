"""A load probe of `lookalike serve`: a mix of the routes the web UI uses, many at once.

    python bench/probe_serve.py                       # 1,000 requests, 20 at a time
    python bench/probe_serve.py --requests 5000 --concurrency 50 --pictures 400

It writes a generated sample collection (lookalike.sample: synthetic pictures and planted
edited copies) into a scratch folder, scans it, starts `lookalike serve` on it on 127.0.0.1
and a free port, and sends `--requests` requests, `--concurrency` at a time, drawn at random
(seeded) from: GET /groups (a random page), GET /files/{id}, GET /files/{id}/thumbnail and
POST /query with a picture of the collection (re-encoded, so it is a hash match, not a byte
copy). It prints the errors (any status but 200, or a transport error), p50/p95 latency per
kind and over all, requests a second, and the server's resident memory before and after.
It measures and never asserts. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from PIL import Image

from bench_serve import free_port, start_server

KINDS = ("groups", "file", "thumbnail", "query")


def build_collection(folder: Path, pictures: int) -> tuple[Path, list[bytes]]:
    """The sample collection scanned into folder/.lookalike/index.db, and query pictures."""
    from lookalike.sample import build_sample
    from lookalike.scan import scan

    build_sample(folder, count=pictures, seed=11)
    index = folder / ".lookalike" / "index.db"
    scan([folder], index_path=index, workers=2)
    queries = []
    for path in sorted(folder.glob("picture_*.jpg"))[:50]:
        with Image.open(path) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=80)
        queries.append(buffer.getvalue())
    return index, queries


def live_ids(index: Path) -> list[int]:
    from lookalike.index.store import open_index

    with open_index(index) as opened:
        paths = [f.path for files in opened.live_files().values() for f in files]
        return sorted(opened.live_file_ids(paths).values())


def one(client: httpx.Client, kind: str, ids: list[int], queries: list[bytes],
        pages: int, rng: random.Random) -> tuple[str, float, str | None]:
    """(kind, seconds, error or None) of one request."""
    started = time.perf_counter()
    try:
        if kind == "groups":
            reply = client.get("/groups", params={"page": rng.randint(1, pages),
                                                  "page_size": 48})
        elif kind == "file":
            reply = client.get(f"/files/{rng.choice(ids)}")
        elif kind == "thumbnail":
            reply = client.get(f"/files/{rng.choice(ids)}/thumbnail")
        else:
            reply = client.post("/query", files={"file": ("q.jpg", rng.choice(queries),
                                                          "image/jpeg")})
        error = None if reply.status_code == 200 else f"{reply.status_code} {reply.text[:120]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return kind, time.perf_counter() - started, error


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1] \
        if len(values) > 1 else (values[0] if values else float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--pictures", type=int, default=200, help="distinct sample pictures")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="lookalike-probe-"))
    try:
        started = time.perf_counter()
        index, queries = build_collection(scratch / "photos", args.pictures)
        print(f"collection: {args.pictures} pictures scanned in "
              f"{time.perf_counter() - started:.1f} s")
        port = free_port()
        server = start_server(index, port, ["--no-warm"])
        try:
            run(server, f"http://127.0.0.1:{port}", live_ids(index), queries, args)
        finally:
            server.terminate()
            server.wait(30)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(server: subprocess.Popen, url: str, ids: list[int], queries: list[bytes],
        args) -> None:
    process = psutil.Process(server.pid)
    rss_before = process.memory_info().rss
    with httpx.Client(base_url=url, timeout=120) as client:
        first = client.get("/groups", params={"page_size": 500}).json()
        info = client.get("/info").json()
    pages = max(1, -(-first["total"] // 48))
    print(f"server pid {server.pid}: {info['files']} files, {first['total']} groups, "
          f"{len(ids)} file ids; RSS {rss_before / 2**20:.0f} MiB before")
    rng = random.Random(args.seed)
    plan = [(rng.choice(KINDS), random.Random(args.seed * 100_003 + n))
            for n in range(args.requests)]
    limits = httpx.Limits(max_connections=args.concurrency)
    peak = rss_before
    with httpx.Client(base_url=url, timeout=120, limits=limits) as client, \
            ThreadPoolExecutor(args.concurrency) as pool:
        started = time.perf_counter()
        futures = [pool.submit(one, client, kind, ids, queries, pages, r) for kind, r in plan]
        results = []
        for future in futures:
            results.append(future.result())
            peak = max(peak, process.memory_info().rss)
        wall = time.perf_counter() - started
    rss_after = process.memory_info().rss
    report(results, wall, rss_before, rss_after, peak, args)


def report(results: list[tuple[str, float, str | None]], wall: float, rss_before: int,
           rss_after: int, peak: int, args) -> None:
    by_kind: dict[str, list[float]] = defaultdict(list)
    errors: Counter = Counter()
    for kind, seconds, error in results:
        by_kind[kind].append(seconds)
        if error:
            errors[f"{kind}: {error}"] += 1
    print(f"{len(results)} requests, {args.concurrency} at a time, in {wall:.1f} s "
          f"({len(results) / wall:.0f} a second)")
    print(f"{'kind':10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind in (*KINDS, "all"):
        values = [s for _, s, _ in results] if kind == "all" else by_kind[kind]
        if values:
            print(f"{kind:10} {len(values):5} {percentile(values, .5) * 1e3:8.1f} "
                  f"{percentile(values, .95) * 1e3:8.1f} {max(values) * 1e3:8.1f}")
    print(f"errors: {sum(errors.values())}")
    for line, count in errors.most_common(10):
        print(f"  {count} x {line}")
    print(f"server RSS: {rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB "
          f"after, {peak / 2**20:.0f} MiB peak (sampled)")


if __name__ == "__main__":
    os.environ.pop("LOOKALIKE_TOKEN", None)
    main()
