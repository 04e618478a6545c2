"""A bounded load test of `POST /query` of `lookalike serve`, on loopback only.

    python bench/bench_serve.py /tmp/b20k-report.db --images /tmp/bench20k/images
    python bench/bench_serve.py INDEX --clients 8 --seconds 30 --sample 200

The index is copied into a scratch folder (the server never writes next to the given one),
`lookalike serve` is started on it in a subprocess on 127.0.0.1 and a free port, and
`--clients` threads (one httpx client each) upload pictures for `--seconds`: half are indexed
files as they are (byte copies), half are edited in memory (re-encoded at q80 and turned a
quarter or mirrored), so both the exact and the hash paths of a query are exercised. It prints
latency percentiles, requests a second, errors (any status but 200, or a transport error) and
the server's peak memory. It never asserts a time. Client and server share the machine's
cores, so the figures are those of a machine doing both.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

import httpx
from PIL import Image

from common import pid_peak_rss_mb

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def query_pictures(images: Path, sample: int, seed: int) -> list[bytes]:
    names = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    chosen = random.Random(seed).sample(names, min(sample, len(names)))
    out = []
    for i, path in enumerate(chosen):
        data = path.read_bytes()
        if i % 2:
            with Image.open(io.BytesIO(data)) as image:
                turned = image.convert("RGB").transpose(
                    Image.Transpose.ROTATE_90 if i % 4 == 1 else Image.Transpose.FLIP_LEFT_RIGHT)
            buffer = io.BytesIO()
            turned.save(buffer, "JPEG", quality=80)
            data = buffer.getvalue()
        out.append(data)
    return out


def start_server(index: Path, port: int, options: Sequence[str] = ()) -> subprocess.Popen:
    """`lookalike serve` on 127.0.0.1:`port`, once it answers."""
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.pop("LOOKALIKE_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "lookalike", "serve", "--index", str(index),
                                "--host", "127.0.0.1", "--port", str(port), *options], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not start")
        time.sleep(0.2)


def client(url: str, pictures: list[bytes], offset: int, deadline: float,
           latencies: list[float], errors: list[str], matched: list[int]) -> None:
    with httpx.Client(timeout=60) as http:
        i = offset
        while time.monotonic() < deadline:
            data = pictures[i % len(pictures)]
            i += 1
            start = time.perf_counter()
            try:
                reply = http.post(url, files={"file": ("q.jpg", data, "image/jpeg")})
                ok = reply.status_code == 200
                if ok and reply.json()["matches"]:
                    matched.append(1)
                reason = f"HTTP {reply.status_code}: {reply.text[:120]}"
            except httpx.HTTPError as exc:
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - start)
            if not ok:
                errors.append(reason)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, nargs="?", default=Path("/tmp/b20k-report.db"))
    parser.add_argument("--images", type=Path, default=Path("/tmp/bench20k/images"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sample", type=int, default=200, help="distinct query pictures")
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries first "
                        "(the first query of a process compiles the numba kernels)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pictures = query_pictures(args.images, args.sample, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        index = Path(scratch) / "index.db"
        shutil.copyfile(args.index, index)
        if Path(f"{args.index}-wal").exists():
            shutil.copyfile(f"{args.index}-wal", f"{index}-wal")
        port = free_port()
        server = start_server(index, port)
        url = f"http://127.0.0.1:{port}/query"
        try:
            for data in pictures[:args.warmup]:
                httpx.post(url, files={"file": ("q.jpg", data)}, timeout=120)
            latencies: list[float] = []
            errors: list[str] = []
            matched: list[int] = []
            start = time.monotonic()
            deadline = start + args.seconds
            threads = [threading.Thread(target=client, args=(url, pictures, k * 17, deadline,
                                                             latencies, errors, matched))
                       for k in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - start
            rss = pid_peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(20)
    print(f"index {args.index} ({args.sample} query pictures, half edited), "
          f"{args.clients} clients, {elapsed:.1f} s, {os.cpu_count()} cores")
    if not latencies:
        raise SystemExit("no request finished")
    print(f"requests {len(latencies):,}  errors {len(errors):,}  "
          f"{len(latencies) / elapsed:.1f} requests/s  "
          f"with a match {len(matched) / len(latencies):.0%}")
    print(f"latency ms: p50 {percentile(latencies, 0.5) * 1000:.0f}  "
          f"p90 {percentile(latencies, 0.9) * 1000:.0f}  "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f}  max {max(latencies) * 1000:.0f}  "
          f"mean {statistics.fmean(latencies) * 1000:.0f}")
    if rss is not None:
        print(f"server peak RSS {rss:.0f} MB")
    for reason in sorted(set(errors))[:5]:
        print(f"  error: {reason}")


if __name__ == "__main__":
    main()
