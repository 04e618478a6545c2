"""The Ray runner: one Ray task per shard, each running the same per-picture work as the
local pool (worker.process_chunk), so the signatures are the same bytes.

Why tasks and not Ray Data: a shard is the unit of retry and resume, and one task per shard
maps onto it one to one (Ray retries a task whose worker died; the driver writes its shard
once, whole). Ray Data's `map_batches` would add its streaming executor (seconds to start,
its own block sizes and output names) with no source for it to read: the file list is
already in the driver's hands.

The tasks return their records to the driver, which writes the shard files beside the index:
the workers need to read the pictures, but not to reach the index's folder. A model (the
thorough mode's descriptor) is loaded once per worker process, which Ray reuses from task to
task; on GPUs (`gpus`) the shards go to a fixed pool of actors, one per GPU (actors.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from ..errors import LookalikeError, RunnerError
from ..types import FileRef, Scanned
from ..worker import process_chunk
from .actors import Pool, ShardActor, WorkerNote, gpu_actors, load_models, model_methods
from .actors import worker_note
from .local import chunks, limit_threads
from .shards import Shard, ShardPlan, from_table, read_shard, to_table, write_shard

log = logging.getLogger(__name__)

TASK_RETRIES = 3  # a shard whose worker process dies is run again, up to this many times
_threads_limited = False


@dataclass
class ShardStats:
    computed: int = 0  # shards computed by Ray tasks this run
    reused: int = 0  # shards read back from their files (a resumed job)
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


def run_shards(plan: ShardPlan, names: Sequence[str], address: str | None = None,
               stats: ShardStats | None = None, kill_marker: str = "",
               gpus: int = 0) -> Iterator[list[Scanned]]:
    """The records of every shard of `plan`: those whose file exists first, then the others
    as their tasks finish (each written to its file before it is handed on). `address`:
    None starts or joins a local Ray instance, "auto" joins RAY_ADDRESS, else that address.
    With `gpus`, methods with a model run on that many GPU actors (actors.py)."""
    stats = stats if stats is not None else ShardStats()
    pending = []
    for shard in plan.shards:
        records = read_shard(plan.path(shard), shard.refs)
        if records is None:
            pending.append(shard)
        else:
            stats.reused += 1
            yield records
    if not pending:
        log.info("shards of scan %s: 0 computed, %d reused, %d already in the index",
                 plan.scan_id, stats.reused, plan.total - len(plan.shards))
        return
    try:
        import ray
    except ImportError:
        raise LookalikeError("--runner ray needs Ray: pip install 'lookalike[ray]'") from None

    joined = _connect(ray, address)
    done: Iterator[tuple[Shard, object]] | None = None
    try:
        if gpus and model_methods(names):
            stats.actors = gpu_actors(ray.cluster_resources(), gpus)
            done = _on_gpu_actors(ray, pending, names, stats.actors, kill_marker)
        else:
            done = _on_tasks(ray, pending, names, kill_marker)
        for shard, ref in done:
            try:
                table, note = ray.get(ref)
            except ray.exceptions.RayError as exc:
                # the shards written so far stay: a re-run computes only the others
                raise RunnerError(f"shard {shard.number} of scan {plan.scan_id} failed "
                                     f"on the Ray cluster: {exc}") from None
            stats.note(note)
            write_shard(table, plan.path(shard))
            stats.computed += 1
            yield from_table(table)
    finally:
        if done is not None:
            done.close()  # the actors go now, also when the caller's Ray instance stays
        if joined:
            ray.shutdown()
    log.info("shards of scan %s: %d computed, %d reused, %d already in the index; %s",
             plan.scan_id, stats.computed, stats.reused, plan.total - len(plan.shards),
             stats.describe())


def _in_flight(ray, shards: Sequence[Shard], submit: Callable[[Shard], object], limit: int,
               done: Callable[[object], None] = lambda ref: None) -> Iterator[tuple[Shard, object]]:
    """(shard, its finished call) as calls finish, at most `limit` in flight (bounded driver
    memory: a finished shard's records wait in the object store until the driver takes them)."""
    waiting, running = deque(shards), {}
    while waiting or running:
        while waiting and len(running) < limit:
            shard = waiting.popleft()
            running[submit(shard)] = shard
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            done(ref)
            yield running.pop(ref), ref


def _rows(shard: Shard) -> list[tuple[str, int, int]]:
    return [(r.path, r.size, r.mtime_ns) for r in shard.refs]


def _on_tasks(ray, shards: Sequence[Shard], names: Sequence[str],
              kill_marker: str) -> Iterator[tuple[Shard, object]]:
    """One plain task per shard, retried by Ray (a model: loaded once per worker process)."""
    task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(scan_shard)
    limit = 2 * int(ray.cluster_resources().get("CPU", 1)) + 2
    yield from _in_flight(ray, shards, lambda s: task.remote(_rows(s), list(names), kill_marker),
                          limit)


def _on_gpu_actors(ray, shards: Sequence[Shard], names: Sequence[str], actors: int,
                   kill_marker: str) -> Iterator[tuple[Shard, object]]:
    """A pool of `actors` actors, one GPU each, that build the model once (actors.py). An
    actor that dies is restarted and its calls run again, up to TASK_RETRIES times; the pool
    is killed when the shards are done."""
    actor = ray.remote(num_cpus=1, num_gpus=1, max_restarts=TASK_RETRIES,
                       max_task_retries=TASK_RETRIES)(ShardActor)
    handles = [actor.remote(list(names), scan_shard) for _ in range(actors)]
    pool = Pool(handles)
    try:
        yield from _in_flight(ray, shards, lambda s: pool.submit(_rows(s), kill_marker),
                              2 * actors + 2, pool.done)
    finally:
        for handle in handles:
            ray.kill(handle)


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


def scan_shard(rows: list[tuple[str, int, int]], names: list[str], kill_marker: str = ""):
    """A Ray task (or a model actor's call): one shard's records as an Arrow table, and the
    WorkerNote of this process. No index path: a cluster's workers need not see the index,
    so every picture of the shard is signed."""
    global _threads_limited
    if not _threads_limited:
        limit_threads()
        _threads_limited = True
    load_models(names)  # counted; a no-op where this process has its models already
    refs = [FileRef(path, size, mtime_ns) for path, size, mtime_ns in rows]
    results: list[Scanned] = []
    for chunk in chunks(refs):
        results.extend(process_chunk(chunk, names, None))
        if kill_marker and _first_to_claim(kill_marker):
            # tests only (LOOKALIKE_TEST_KILL_SHARD): this worker dies in the middle of a shard
            os.kill(os.getpid(), signal.SIGKILL)
    return to_table(results), worker_note()


def _first_to_claim(marker: str) -> bool:
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

