"""`scan --runner ray` on a local two-node Ray cluster against the local process pool, side by
side on the same pictures, and the time a killed Ray job takes to resume.

    python bench/bench_ray.py /work/tmp/raybench20k/images --limit 20000 [--json out.json]

The first N files of the folder by sorted name are hard-linked into a scratch folder and read
once (a warm page cache for every contender). Then, each scan in a fresh subprocess:

* local: `lookalike.scan(folder, workers=2)`, the default process pool;
* ray: the same with runner="ray" against a cluster this script starts on 127.0.0.1 (a head
  and a second node, one CPU each, as tests/integration/test_ray_runner.py does) and stops at
  the end; the cluster is up before the timing starts, so "wall s" holds the driver's start,
  its connection, the tasks and the merge, but not the cluster's start (shown on its own);
* ray-again: the same scan, a second time, into a fresh index (Ray's workers are warm now);
* resume: a ray scan whose driver is killed (SIGKILL) once half of its shards are on disk,
  then run again: "wall s" is the second run, shards reused/computed from its log;
* shards-only: a ray scan into a fresh index with shards_only=True (the tasks write their
  shards, the driver merges nothing).

    python bench/bench_ray.py --plan-files 1000000

    python bench/bench_ray.py /work/tmp/raybench20k/images --limit 20000 --search

runs instead the local scan and the shards-only scan, then searches: `dupes` over the local
index (find_groups, this machine), and the shards-only scan's shards searched where they lie
(search/in_shards.py) on the cluster and here; each search in a fresh subprocess, with the
groups' digest (equal digests: equal groups).

    python bench/bench_ray.py --plan-files 1000000

measures instead the driver's memory for cutting the shards of N files (synthetic refs made as
a walk would yield them, half of them "already in the index"): the peak RSS of a fresh process
over its RSS before the walk, and tracemalloc's peak.

Columns: wall s (parent's clock, subprocess start to its end, interpreter start included),
img/s, driver MB (peak RSS of the scanning process, getrusage), driver ms a picture (its CPU
time, getrusage, over the pictures), cluster MB (the largest summed
RSS of this cluster's Ray processes, sampled every 0.5 s with psutil: workers count pages
they share), cluster cpu s (CPU time of the cluster's processes during the run, psutil) and
the machine's other CPU (neighbours' load). It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import machine_cpu

from lookalike.runners.ray import free_port, node_ports

RAY = Path(sys.executable).parent / "ray"
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

CHILD = r"""
import json, logging, resource, sys, time
args = json.loads(sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
logging.getLogger("lookalike.runners.ray").setLevel(logging.INFO)
from lookalike.scan import scan
start = time.perf_counter()
summary = scan([args["folder"]], index_path=args["index"], workers=args["workers"],
               runner=args["runner"], ray_address=args["address"],
               shard_files=args["shard_files"], **args["extra"])
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print("RESULT " + json.dumps({"scan_s": time.perf_counter() - start,
      "driver_mb": own.ru_maxrss / 1024, "pool_worker_mb": kids.ru_maxrss / 1024,
      "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
      "summary": summary.as_dict()}), flush=True)
"""

SEARCH_CHILD = r"""
import hashlib, json, resource, sys, time
args = json.loads(sys.argv[1])
start = time.perf_counter()
if args["index"]:
    from lookalike.index.store import open_index
    from lookalike.search.dupes import find_groups
    with open_index(args["index"]) as index:
        groups, tasks = find_groups(index), {}
else:
    from lookalike.search.in_shards import search_shards
    found = search_shards(args["shards"], runner=args["runner"], ray_address=args["address"])
    groups, tasks = found.groups(), found.tasks
seconds = time.perf_counter() - start
digest = hashlib.sha256(repr([(sorted(f.path for f in g.files), g.method, g.max_distance)
                              for g in groups]).encode()).hexdigest()[:12]
own = resource.getrusage(resource.RUSAGE_SELF)
print("RESULT " + json.dumps({"search_s": seconds, "driver_mb": own.ru_maxrss / 1024,
      "cpu_s": own.ru_utime + own.ru_stime, "groups": len(groups), "digest": digest,
      "tasks": tasks}), flush=True)
"""


class Cluster:
    """A head and a second node on this machine, one CPU each, in a temp folder of its own;
    stopped by SIGTERM to the two `ray start --block` commands, then SIGKILL to what is left
    that names the folder (only processes of this cluster)."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="lkray-bench-", dir="/tmp")
        self.address = f"127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, **RAY_ENV, "RAY_raylet_start_wait_time_s": "60"}
        self.env.pop("RAY_ADDRESS", None)

    def start(self) -> float:
        started = time.perf_counter()
        common = ["--num-cpus=1", "--disable-usage-stats", "--block",
                  "--node-ip-address=127.0.0.1"]
        self._start("head", ["--head", f"--port={self.address.split(':')[1]}",
                             "--include-dashboard=false", f"--temp-dir={self.folder}", *common])
        self._start("node", [f"--address={self.address}", *common])
        while self.alive_nodes() < 2:
            time.sleep(0.5)
        return time.perf_counter() - started

    def _start(self, name: str, args: list[str]) -> None:
        log = Path(self.folder) / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([RAY, "start", *args, *node_ports()], stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray start ({name}) failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)

    def alive_nodes(self) -> int:
        code = ("import ray; ray.init(address=%r, log_to_driver=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))" % self.address)
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                             text=True)
        return int(out.stdout.strip() or 0)

    def processes(self) -> list:
        """The two `ray start` commands and their descendants (daemons, then workers: these
        rename themselves `ray::...`, so their command lines do not name the folder)."""
        import psutil

        found = []
        for proc in self.procs:
            try:
                root = psutil.Process(proc.pid)
                found += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        return found

    def stop(self) -> None:
        descendants = self.processes()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        import psutil

        left = [p for p in psutil.process_iter(["cmdline"])  # what still names our folder
                if self.folder in " ".join(p.info["cmdline"] or ())]
        for proc in descendants + left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


class ClusterSampler:
    """Peak summed RSS and CPU seconds of the cluster's processes over a run."""

    def __init__(self, cluster: Cluster | None) -> None:
        self.cluster = cluster
        self.peak_mb = 0.0
        self.cpu: dict[int, float] = {}
        self.start_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ClusterSampler":
        if self.cluster:
            self.start_cpu = self._sample()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cluster:
            self._stop.set()
            self._thread.join()
            self._sample()

    def _sample(self) -> dict[int, float]:
        total, now = 0.0, {}
        for proc in self.cluster.processes():
            try:
                total += proc.memory_info().rss / 2**20
                times = proc.cpu_times()
                now[proc.pid] = times.user + times.system
            except Exception:  # noqa: BLE001  (a worker that just ended)
                continue
        self.peak_mb = max(self.peak_mb, total)
        self.cpu.update(now)
        return now

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    @property
    def cpu_s(self) -> float:
        return sum(value - self.start_cpu.get(pid, 0.0) for pid, value in self.cpu.items())


def run_scan(folder: Path, index: Path, runner: str, address: str | None, shard_files: int,
             env: dict, cluster: Cluster | None, kill_after_shards: int = 0,
             **extra) -> dict:
    payload = json.dumps({"folder": str(folder), "index": str(index), "workers": 2,
                          "runner": runner, "address": address, "shard_files": shard_files,
                          "extra": extra})
    cpu_before = machine_cpu()
    started = time.perf_counter()
    with ClusterSampler(cluster) as sampler:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, payload], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kill_after_shards:
            shards = index.parent / "shards"
            while proc.poll() is None:
                if len(list(shards.glob("*/shard-*.parquet"))) >= kill_after_shards:
                    proc.kill()  # the driver, by its pid: its tasks die with its job
                    break
                time.sleep(0.05)
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    cpu_after = machine_cpu()
    result = {"wall_s": wall, "code": proc.returncode, "cluster_mb": sampler.peak_mb,
              "cluster_cpu_s": sampler.cpu_s}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result |= json.loads(line[len("RESULT "):])
    for line in stderr.splitlines():
        if "shards in " in line:
            result["shards"] = line.split(":", 1)[1].strip()
    if "summary" not in result and not kill_after_shards:
        raise SystemExit(f"scan failed ({proc.returncode}):\n{stderr[-3000:]}")
    if cpu_before and cpu_after:
        result["machine_cpu_s"] = cpu_after.busy - cpu_before.busy
    return result


PLAN = r"""
import json, resource, sys, tracemalloc
from lookalike.runners.shards import cut_shards
from lookalike.types import FileRef
count, shard_files = int(sys.argv[1]), int(sys.argv[2])

def walked():  # as the driver's walk hands them on: (file, whether to compute it)
    for i in range(count):
        yield (FileRef(f"/pictures/folder{i // 1000:05d}/picture-{i:09d}.jpg", 20_000 + i,
                       1_700_000_000_000_000_000 + i), i >= count // 2)

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
shards = sum(1 for _ in cut_shards(walked(), ["pixels", "phash"], "/s", shard_files))
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"files": count, "shards": shards, "rss_growth_mb": (after - before) / 1024,
                  "peak_rss_mb": after / 1024, "traced_peak_mb": traced / 2**20}))
"""


def plan_memory(count: int, shard_files: int) -> None:
    """The driver's memory for the shards of `count` files, in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", PLAN, str(count), str(shard_files)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    print(f"{result['files']:,} files, {result['shards']:,} shards: driver peak RSS "
          f"{result['peak_rss_mb']:.0f} MB, {result['rss_growth_mb']:.1f} MB of it while "
          f"cutting; tracemalloc peak {result['traced_peak_mb']:.2f} MB "
          f"({_cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(before):.1f} s CPU)")


def run_search(index: Path | None, shards: Path | None, runner: str, address: str | None,
               env: dict, cluster: Cluster | None) -> dict:
    payload = {"index": str(index) if index else None, "shards": str(shards),
               "runner": runner, "address": address}
    return run_child(SEARCH_CHILD, payload, env, cluster)


def run_child(code: str, payload: dict, env: dict, cluster: Cluster | None) -> dict:
    """`code` in a fresh Python given `payload` (JSON, argv[1]): its RESULT line, with the
    wall time, the cluster's CPU and memory (sampled) and the machine's CPU around it."""
    cpu_before = machine_cpu()
    started = time.perf_counter()
    with ClusterSampler(cluster) as sampler:
        out = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], env=env,
                             capture_output=True, text=True)
    result = {"wall_s": time.perf_counter() - started, "cluster_mb": sampler.peak_mb,
              "cluster_cpu_s": sampler.cpu_s}
    cpu_after = machine_cpu()
    if cpu_before and cpu_after:
        result["machine_cpu_s"] = cpu_after.busy - cpu_before.busy
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return result | json.loads(line[len("RESULT "):])
    raise SystemExit(f"the child failed ({out.returncode}):\n{out.stderr[-3000:]}")


def searches(folder: Path, scratch: Path, count: int, shard_files: int, env: dict,
             cluster: Cluster) -> None:
    """--search: the local index's dupes against the shards searched where they lie."""
    rows = {"local scan": run_scan(folder, scratch / "local" / "index.db", "local", None,
                                   shard_files, env, None)}
    cluster.start()
    rows["shards-only scan"] = run_scan(folder, scratch / "alone" / "index.db", "ray",
                                        cluster.address, shard_files, env, cluster,
                                        shards_only=True)
    shards = scratch / "alone" / "shards"
    for _ in range(2):
        rows["dupes (index)"] = run_search(scratch / "local" / "index.db", None, "local",
                                           None, env, None)
        rows["shards on ray"] = run_search(None, shards, "ray", cluster.address, env, cluster)
        rows["shards here"] = run_search(None, shards, "local", None, env, None)
        print(json.dumps(rows, indent=1), flush=True)
    print(f"{'run':<18} {'wall s':>7} {'driver MB':>9} {'driver cpu s':>12} "
          f"{'cluster MB':>10} {'cl. cpu s':>9} {'others cpu s':>12}  groups")
    for name, row in rows.items():
        others = row.get("machine_cpu_s", 0) - row.get("cpu_s", 0) - row["cluster_cpu_s"]
        print(f"{name:<18} {row['wall_s']:7.2f} {row.get('driver_mb', 0):9.0f} "
              f"{row.get('cpu_s', 0):12.2f} {row['cluster_mb']:10.0f} "
              f"{row['cluster_cpu_s']:9.1f} {others:12.1f}  "
              f"{row.get('groups', '')} {row.get('digest', '')} {row.get('tasks', '')}")


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def prepare(source: Path, limit: int, scratch: Path) -> Path:
    files = sorted(p for p in source.iterdir() if p.is_file())[:limit]
    folder = scratch / "pictures"
    folder.mkdir()
    for path in files:
        os.link(path, folder / path.name)
        path.read_bytes()  # warm the page cache
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--plan-files", type=int, default=0,
                        help="measure only the driver's memory for cutting N files' shards")
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--shard-files", type=int, default=512)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--scratch", type=Path, default=Path("/work/tmp"))
    parser.add_argument("--search", action="store_true",
                        help="the shards searched where they lie against dupes on the index")
    args = parser.parse_args()
    if args.plan_files:
        plan_memory(args.plan_files, args.shard_files)
        return
    if args.folder is None:
        parser.error("give the folder of pictures (or --plan-files N)")

    scratch = Path(tempfile.mkdtemp(prefix="bench-ray-", dir=args.scratch))
    cluster = Cluster()
    rows = {}
    try:
        folder = prepare(args.folder, args.limit, scratch)
        count = len(list(folder.iterdir()))
        env = {**os.environ, **RAY_ENV}
        env.pop("RAY_ADDRESS", None)
        print(f"{count:,} files; load {os.getloadavg()[0]:.1f}", flush=True)
        if args.search:
            searches(folder, scratch, count, args.shard_files, env, cluster)
            return
        rows["local"] = run_scan(folder, scratch / "local" / "index.db", "local", None,
                                 args.shard_files, env, None)
        rows["cluster_start_s"] = cluster.start()
        for name in ("ray", "ray-again"):
            rows[name] = run_scan(folder, scratch / name / "index.db", "ray", cluster.address,
                                  args.shard_files, env, cluster)
        shards = -(-count // args.shard_files)
        index = scratch / "resume" / "index.db"
        rows["killed"] = run_scan(folder, index, "ray", cluster.address, args.shard_files,
                                  env, cluster, kill_after_shards=max(1, shards // 2))
        rows["killed"]["shards_on_disk"] = len(list((index.parent / "shards").glob("*/*.parquet")))
        rows["resume"] = run_scan(folder, index, "ray", cluster.address, args.shard_files, env,
                                  cluster)
        rows["shards-only"] = run_scan(folder, scratch / "alone" / "index.db", "ray",
                                       cluster.address, args.shard_files, env, cluster,
                                       shards_only=True)
        rows["local-again"] = run_scan(folder, scratch / "local2" / "index.db", "local", None,
                                       args.shard_files, env, None)
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"cluster start (2 nodes): {rows['cluster_start_s']:.1f} s")
    print(f"{'run':<12} {'wall s':>7} {'img/s':>7} {'driver MB':>9} {'drv ms/pic':>10} "
          f"{'cluster MB':>10} {'cl. cpu s':>9} {'others cpu s':>12}  shards")
    for name in ("local", "ray", "ray-again", "killed", "resume", "shards-only",
                 "local-again"):
        row = rows[name]
        others = row.get("machine_cpu_s", 0) - row.get("cpu_s", 0) - row["cluster_cpu_s"]
        print(f"{name:<12} {row['wall_s']:7.2f} {count / row['wall_s']:7.0f} "
              f"{row.get('driver_mb', 0):9.0f} {1000 * row.get('cpu_s', 0) / count:10.3f} "
              f"{row['cluster_mb']:10.0f} "
              f"{row['cluster_cpu_s']:9.1f} {others:12.1f}  "
              f"{row.get('shards', row.get('shards_on_disk', ''))}")
    for name in ("ray", "ray-again"):
        print(f"overhead {name} / local: {rows[name]['wall_s'] / rows['local']['wall_s']:.2f}x"
              f" (against local-again: "
              f"{rows[name]['wall_s'] / rows['local-again']['wall_s']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps({"files": count, **rows}, indent=2))


if __name__ == "__main__":
    main()
