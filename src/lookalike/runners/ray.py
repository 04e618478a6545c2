"""The Ray runner: one Ray task per shard, each running the same per-picture work as the
local pool (worker.process_chunk), so the signatures are the same bytes.

Why tasks and not Ray Data: a shard is the unit of retry and resume, and one task per shard
maps onto it one to one (Ray retries a task whose worker died; its file is written whole or
not at all). Ray Data's `map_batches` would add its streaming executor (seconds to start, its
own block sizes and output names) with no source for it to read: the shards come from the
driver's walk.

The driver streams shards from its walk (shards.cut_shards) and keeps a bounded number of
tasks in flight; each task writes its shard's Parquet file into the shard folder (one every
node sees) and returns only a ShardReport, so the driver's memory does not grow with the
collection and it never carries the records. A model (the thorough mode's descriptor) is
loaded once per worker process, which Ray reuses from task to task; where the cluster has
GPUs (or `gpus` of them), a fixed pool of actors, one per GPU (actors.py), takes shards too,
first whenever it has room, and the plain tasks run on the CPUs the actors leave.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from ..errors import LookalikeError, RunnerError
from ..types import FileRef, Scanned
from ..worker import process_chunk
from .actors import Pool, ShardActor, WorkerNote, gpu_actors, load_models, model_methods
from .actors import worker_note
from .local import chunks, limit_threads
from . import store
from .shards import Shard, ShardReport, report_of, shard_report, to_table, write_shard

log = logging.getLogger(__name__)

TASK_RETRIES = 3  # a shard whose worker process dies is run again, up to this many times
_threads_limited = False


@dataclass
class ShardStats:
    computed: int = 0  # shards computed by Ray tasks this run
    reused: int = 0  # shards read back from their files (a resumed job)
    returned: int = 0  # computed shards whose records came back (node without the folder)
    actors: int = 0  # GPU actors of the pool (0: plain tasks)
    loads: dict[tuple[str, int], int] = field(default_factory=dict)  # (host, pid) -> models
    providers: set[str] = field(default_factory=set)  # onnxruntime's, of those models
    restarted: set[tuple[str, int]] = field(default_factory=set)  # actors Ray restarted

    def note(self, note: WorkerNote) -> None:
        """What a shard's worker process said: its model loads so far, its provider."""
        key = (note.host, note.pid)
        self.loads[key] = max(self.loads.get(key, 0), note.loads)
        if note.provider:
            self.providers.add(note.provider)
        if note.restarted:
            self.restarted.add(key)

    def describe(self) -> str:
        """The models' part of the log line: loads, processes, restarts, providers."""
        text = f"{sum(self.loads.values())} model loads in {len(self.loads)} processes"
        if self.actors:
            text += f" of a pool of {self.actors} GPU actors"
        if self.restarted:
            text += f", {len(self.restarted)} of them restarted"
        return text + (f" ({', '.join(sorted(self.providers))})" if self.providers else "")


def run_shards(shards: Iterable[Shard], names: Sequence[str], address: str | None = None,
               stats: ShardStats | None = None, kill_marker: str = "",
               gpus: int | None = 0) -> Iterator[tuple[Shard, ShardReport]]:
    """(shard, its report) for every shard of `shards` (a stream: taken as the tasks have
    room, never listed) that has files to compute, once its file is written: those whose file
    exists at once, the others as their tasks finish. The tasks write the files themselves
    (the shard folder must be one every node sees). `address`: None starts or joins a local
    Ray instance, "auto" joins RAY_ADDRESS, else that address. Where methods hold a model,
    `gpus` GPU actors (None: one per GPU of the cluster; actors.py) sign shards beside the
    CPU tasks."""
    stats = stats if stats is not None else ShardStats()
    run = _Run(names, address, stats, kill_marker, gpus)
    held, where = 0, "no shard"
    try:
        waiting = iter(shards)
        while True:
            for shard in waiting:
                where = os.path.dirname(shard.path)
                if shard.held:  # every file already in the index, unchanged: no task
                    held += 1
                    continue
                report = shard_report(shard.path, shard.refs)
                if report is not None:
                    stats.reused += 1
                    yield shard, report
                    continue
                run.submit(shard)
                if run.full():
                    break
            if not run.running:
                break
            yield run.next_done()
    finally:
        run.close()
    sent = (f"; {stats.returned} computed by nodes that do not see that folder, written here"
            if stats.returned else "")
    log.info("shards in %s: %d computed, %d reused, %d already in the index; %s%s", where,
             stats.computed, stats.reused, held, stats.describe(), sent)


class _Run:
    """The Ray side of run_shards: joined (or started) at the first shard that needs a task,
    its calls in flight (at most 2 x the cluster's CPUs, or GPU actors, + 2: bounded driver
    memory, and the stream of shards is read no further ahead than that)."""

    def __init__(self, names: Sequence[str], address: str | None, stats: ShardStats,
                 kill_marker: str, gpus: int | None) -> None:
        self.names, self.address, self.stats = list(names), address, stats
        self.kill_marker, self.gpus = kill_marker, gpus
        self.ray = None
        self.joined = False
        self.running: dict[object, Shard] = {}
        self.limit = 1
        self.cpus = 0  # the cluster's CPUs left to plain tasks
        self.pool: Pool | None = None
        self.task = None
        self.handles: list = []
        self.markers: dict[str, str] = {}  # shard folder -> this run's marker in it

    def _start(self) -> None:
        ray = import_ray()
        self.joined = _connect(ray, self.address)
        self.ray = ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if model_methods(self.names):
            self.stats.actors = gpu_actors(ray.cluster_resources(), self.gpus)
        if self.stats.actors:
            # A pool of actors, one GPU each, that build the model once (actors.py). An actor
            # that dies is restarted and its calls run again, up to TASK_RETRIES times.
            actor = ray.remote(num_cpus=1, num_gpus=1, max_restarts=TASK_RETRIES,
                               max_task_retries=TASK_RETRIES)(ShardActor)
            self.handles = [actor.remote(self.names, scan_shard)
                            for _ in range(self.stats.actors)]
            self.pool = Pool(self.handles)
        # Plain tasks on the CPUs the actors leave (a model: loaded once per worker process),
        # retried by Ray; the GPU actors take a shard first whenever they have room.
        self.cpus = max(0, cpus - self.stats.actors)
        if self.cpus or not self.pool:
            self.task = one_cpu_task(ray, scan_shard)
        self.limit = 2 * (self.stats.actors + self.cpus) + 2

    def submit(self, shard: Shard) -> None:
        if self.ray is None:
            self._start()
        rows, out, seen = _rows(shard), shard.path, self._marker(shard.path)
        on_gpu = self.pool is not None and (self.task is None or self.pool.waiting()
                                            < 2 * len(self.pool.handles))
        ref = (self.pool.submit(rows, self.kill_marker, out, seen) if on_gpu
               else self.task.remote(rows, self.names, self.kill_marker, out, seen))
        self.running[ref] = shard

    def _marker(self, path: str) -> str:
        """A file of this run in the shard's folder: a task that sees it writes the shard
        itself, one that does not (its node does not share the folder) sends the records."""
        folder = store.parent(path)
        if folder not in self.markers:
            marker = store.join(folder, f".driver-{uuid.uuid4().hex}")
            store.write_whole(marker, lambda out: None)
            self.markers[folder] = marker
        return self.markers[folder]

    def full(self) -> bool:
        return len(self.running) >= self.limit

    def next_done(self) -> tuple[Shard, ShardReport]:
        """The next call to finish: its shard and report (RunnerError when it failed)."""
        ray = self.ray
        [ref], _ = ray.wait(list(self.running), num_returns=1)
        shard = self.running.pop(ref)
        if self.pool is not None and self.pool.owns(ref):
            self.pool.done(ref)
        try:
            report, note, table = ray.get(ref)
        except ray.exceptions.RayError as exc:
            # the shards written so far stay: a re-run computes only the others
            raise RunnerError(f"shard {shard.number} ({os.path.basename(shard.path)}) "
                              f"failed on the Ray cluster: {exc}") from None
        if table is not None:  # its node does not see the shard folder: written here
            write_shard(table, shard.path)
            self.stats.returned += 1
        self.stats.note(note)
        self.stats.computed += 1
        return shard, report

    def close(self) -> None:
        for marker in self.markers.values():
            store.remove(marker)
        for handle in self.handles:  # the actors go now, also when Ray itself stays
            self.ray.kill(handle)
        if self.joined:
            self.ray.shutdown()


def _rows(shard: Shard) -> list[tuple[str, int, int]]:
    return [(r.path, r.size, r.mtime_ns) for r in shard.refs]


def import_ray():
    """The ray module, or LookalikeError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise LookalikeError("--runner ray needs Ray: pip install 'lookalike[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None) -> Iterator:
    """The ray module, joined to (or starting) the Ray instance at `address` for the block,
    and shut down after it only where the block was the one to join (_connect)."""
    ray = import_ray()
    joined = _connect(ray, address)
    try:
        yield ray
    finally:
        if joined:
            ray.shutdown()


def one_cpu_task(ray, function):
    """`function` as a Ray task on one CPU, retried when its worker process dies."""
    return ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(function)


def _connect(ray, address: str | None) -> bool:
    """Join (or start) Ray unless this process already has; True when we did."""
    if ray.is_initialized():
        return False
    if address not in (None, "auto") and "://" not in address:
        _check_reachable(address)
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RunnerError(f"cannot join or start Ray at {address or 'this machine'}: "
                             f"{exc}") from None
    return True


def _check_reachable(address: str, seconds: float = 10.0) -> None:
    """Fail at once on an address nothing answers at (ray.init would wait for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds).close()
    except (OSError, ValueError) as exc:
        raise RunnerError(f"no Ray cluster answers at {address}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None


def scan_shard(rows: list[tuple[str, int, int]], names: list[str], kill_marker: str = "",
               out: str = "", seen: str = "") -> tuple[ShardReport, WorkerNote, object]:
    """A Ray task (or a model actor's call): one shard's records written to its file `out`
    (whole or absent: write_shard), and its report and the WorkerNote of this process handed
    back, so the driver never carries the records. Where this node cannot see the driver's
    marker `seen` in the shard folder (not a shared folder), the records go back instead, as
    an Arrow table, and the driver writes them. No index path: a cluster's workers need not
    see the index, so every picture of the shard is signed."""
    global _threads_limited
    if not _threads_limited:
        limit_threads()
        _threads_limited = True
    load_models(names)  # counted; a no-op where this process has its models already
    refs = [FileRef(path, size, mtime_ns) for path, size, mtime_ns in rows]
    results: list[Scanned] = []
    for chunk in chunks(refs):
        results.extend(process_chunk(chunk, names, None))
        if kill_marker and first_to_claim(kill_marker):
            # tests only (LOOKALIKE_TEST_KILL_SHARD): this worker dies in the middle of a shard
            os.kill(os.getpid(), signal.SIGKILL)
    table = to_table(results)
    if out and seen and store.exists(seen):
        write_shard(table, out)
        table = None
    return report_of(results), worker_note(), table


def first_to_claim(marker: str) -> bool:
    """Create `marker` holding this process's id; False when another task did first."""
    try:
        handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(handle, str(os.getpid()).encode())
    os.close(handle)
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for a node started on this machine)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def node_ports() -> list[str]:
    """`ray start` options for the ports two nodes on one host must not share (Ray's defaults
    are fixed numbers, so a second node on the same machine fails to start without them)."""
    return [f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}"]

