"""`lookalike ingest` of N URLs from a local image server: the local downloader against
`--runner ray` on a two-node cluster on 127.0.0.1 (one CPU each), side by side.

    python bench/bench_ray_ingest.py --urls 2000 --rounds 2

The server (tests/integration/image_server.py: 64 x 48 JPEGs, ~1.2 KB) runs in a process of
its own; the cluster is bench_ray.py's (started before the timing, stopped at the end). Each
ingest is the console script in a fresh subprocess into a fresh folder: local with
--per-host 8 and 16, and ray with --per-host 8 (which holds per task). Columns: wall s,
driver CPU s (the ingest process, getrusage), cluster CPU s (its processes, sampled with
psutil) and the server's CPU. It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_ray import RAY_ENV, Cluster, ClusterSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from image_server import ImageServer, image_bytes  # noqa: E402


def serve(count: int, conn, stop) -> None:
    for seed in range(count):  # made before the port is told: not in any timing
        image_bytes(seed)
    with ImageServer() as server:
        conn.send(server.port)
        stop.wait()


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-ray-ingest-", dir=args.scratch))
    recv, send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(args.urls, send, stop), daemon=True)
    server.start()
    cluster = Cluster()
    try:
        port = recv.recv()
        source = root / "urls.csv"
        with open(source, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "url"])
            writer.writerows([f"p{n:05d}", f"http://127.0.0.1:{port}/img/{n}.jpg"]
                             for n in range(args.urls))
        print(f"cluster up in {cluster.start():.1f} s", flush=True)
        env = {**os.environ, **RAY_ENV}
        env.pop("RAY_ADDRESS", None)
        script = str(Path(sys.executable).parent / "lookalike")
        base = [script, "ingest", str(source), "--url-column", "url", "--id-column", "id",
                "--allow-private", "--retries", "0", "--format", "json"]
        print(f"{'runner':<8} {'per-host':>8} {'wall s':>7} {'driver cpu s':>12} "
              f"{'cluster cpu s':>13} {'server cpu s':>12}  statuses")
        for round_ in range(args.rounds):
            for runner, per_host in (("local", 8), ("local", 16), ("ray", 8)):
                out = root / f"{runner}{per_host}-{round_}"
                argv = base + ["--out", str(out), "--per-host", str(per_host)]
                if runner == "ray":
                    argv += ["--runner", "ray", "--ray-address", cluster.address]
                time.sleep(1)  # the cluster idle again
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                served = _cpu(server.pid)
                started = time.perf_counter()
                with ClusterSampler(cluster) as sampler:
                    done = subprocess.run(argv, capture_output=True, text=True, env=env)
                wall = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                driver = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                statuses = (json.loads(done.stdout).get("statuses") if done.returncode == 0
                            else done.stderr[-300:])
                print(f"{runner:<8} {per_host:8} {wall:7.2f} {driver:12.2f} "
                      f"{sampler.cpu_s:13.2f} {_cpu(server.pid) - served:12.2f}  {statuses}",
                      flush=True)
    finally:
        cluster.stop()
        stop.set()
        server.join(5)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
