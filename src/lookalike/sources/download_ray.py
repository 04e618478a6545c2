"""ingest's downloads on a Ray cluster: the jobs cut into batches, each batch one Ray task
that runs the same `download()` as a local ingest, on a worker node.

Each task writes its files into the output folder itself (one every node must see, at the
same path, as a scan's shard folder) and hands back only its `Fetched` records, which the
driver records as the local path does. A task whose worker dies is run again by Ray (up to
TASK_RETRIES times); a batch that still fails becomes failed rows (the run goes on, a
re-run retries them).

Every attempt of a batch downloads into its own staging folder inside the output folder
(hidden: a scan skips it) and moves each finished file to its final name with one rename.
download() alone names its partial file after the row (`.STEM.part`), so two attempts of
one batch running at once (Ray retries a task whose node it lost, while that node may still
be running it) would write the same partial file and could rename a mix of both; in
folders of their own each attempt renames only a whole file of its own.

Politeness: `concurrency` and `per_host` of DownloadOptions hold per task, in its own
process. A task takes one CPU, so at most one task per CPU of the cluster runs at once, and
the driver keeps at most `RayDownloadOptions.tasks` batches in flight: one host gets at most
min(tasks, the cluster's CPUs) x per_host requests at once.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import RunnerError
from ..runners.ray import first_to_claim, import_ray, one_cpu_task, ray_session
from ..settings import setting
from .download import DownloadOptions, Fetched, Job, OnResult, download
from .options import check_bound

log = logging.getLogger(__name__)

STAGING_PREFIX = ".ray-download-"  # a run's staging folder in the output folder
BATCH_BOUNDS = (1, 100_000)
TASK_BOUNDS = (1, 100_000)


@dataclass(frozen=True)
class RayDownloadOptions:
    """How ingest cuts its downloads into Ray tasks; BoundError for a value out of range."""

    batch_urls: int = 256  # URLs one task downloads: the unit of retry and of recording
    tasks: int | None = None  # batches in flight at most (None: 2 x the cluster's CPUs + 2)

    def __post_init__(self) -> None:
        check_bound("batch_urls", self.batch_urls, True, BATCH_BOUNDS)
        if self.tasks is not None:
            check_bound("tasks", self.tasks, True, TASK_BOUNDS)


@dataclass(frozen=True)
class BatchNote:
    """Where a batch ran: the worker process, told back to the driver."""

    host: str
    pid: int
    node: str  # Ray's node id


def download_on_ray(jobs: Sequence[Job], out_dir: str | os.PathLike,
                    options: DownloadOptions = DownloadOptions(),
                    on_result: OnResult | None = None, address: str | None = None,
                    ray_options: RayDownloadOptions = RayDownloadOptions()) -> list[Fetched]:
    """download() with the jobs run as Ray tasks of `ray_options.batch_urls` jobs each;
    results in the order of the jobs, `on_result` called with each (in this thread) as its
    batch comes back. `out_dir` must be a folder every node sees at the same path (a task
    on a node that does not see it fails: RunnerError). `address` as for scan's runner:
    None starts or joins a local Ray instance, "auto" joins RAY_ADDRESS."""
    jobs, out = list(jobs), Path(out_dir)
    if not jobs:
        return []
    staging = _make_staging(out)
    results: list[Fetched | None] = [None] * len(jobs)
    notes: set[BatchNote] = set()
    try:
        with ray_session(address) as ray:
            _run(ray, jobs, str(out), str(staging), options, ray_options, results, notes,
                 on_result)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%d URLs downloaded on Ray in batches of %d by %d worker processes on %d "
             "nodes", len(jobs), ray_options.batch_urls, len(notes),
             len({note.node for note in notes}), extra={"workers": sorted(notes, key=str)})
    return results  # type: ignore[return-value]  (every position is filled by now)


def _run(ray, jobs: list[Job], out: str, staging: str, options: DownloadOptions,
         ray_options: RayDownloadOptions, results: list, notes: set[BatchNote],
         on_result: OnResult | None) -> None:
    """Submit the batches, at most `tasks` in flight, and take each back as it finishes."""
    task = one_cpu_task(ray, _batch_task)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    limit = ray_options.tasks or 2 * cpus + 2
    kill_marker = setting("LOOKALIKE_TEST_KILL_SHARD")
    size = ray_options.batch_urls
    starts = iter(range(0, len(jobs), size))
    running: dict[object, int] = {}  # task -> its first job's position
    while True:
        for start in starts:
            batch = jobs[start:start + size]
            running[task.remote(batch, out, staging, options, kill_marker)] = start
            if len(running) >= limit:
                break
        if not running:
            return
        [ref], _ = ray.wait(list(running), num_returns=1)
        start = running.pop(ref)
        batch = jobs[start:start + size]
        try:
            fetched, note = ray.get(ref)
            notes.add(note)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, RunnerError):  # the output folder is not shared
                raise exc.cause from None
            fetched = _failed(batch, f"the Ray task downloading it failed: {exc.cause}")
        except ray.exceptions.RayError as exc:  # its worker died more than TASK_RETRIES times
            fetched = _failed(batch, f"the Ray task downloading it failed: "
                                     f"{type(exc).__name__}")
        for position, result in enumerate(fetched, start):
            results[position] = result
            if on_result is not None:
                on_result(result)


def _failed(batch: Sequence[Job], reason: str) -> list[Fetched]:
    log.warning("a batch of %d downloads failed on Ray: %s", len(batch), reason)
    return [Fetched(job.key, job.url, False, reason) for job in batch]


def _batch_task(jobs: list[Job], out: str, staging: str, options: DownloadOptions,
                kill_marker: str = "") -> tuple[list[Fetched], BatchNote]:
    """The Ray task: one batch's records, and where it ran."""
    return download_batch(jobs, out, staging, options, kill_marker), _note()


def download_batch(jobs: list[Job], out: str, staging: str, options: DownloadOptions,
                   kill_marker: str = "") -> list[Fetched]:
    """One attempt at a batch: download() of `jobs` into a folder of this attempt's own in
    `staging`, each finished file renamed into `out` as it comes; the records, with their
    final paths, in the order of the jobs. RunnerError where this node does not see the
    driver's `staging` folder (`out` is not a folder every node sees)."""
    if not os.path.isdir(staging):
        raise RunnerError(f"the Ray node {socket.gethostname()} does not see the output "
                          f"folder {out}: it must be a folder every node sees at that path")
    mine = os.path.join(staging, uuid.uuid4().hex)
    os.mkdir(mine)
    placed: dict[int, Fetched] = {}
    half = (len(jobs) + 1) // 2

    def place(fetched: Fetched) -> None:
        placed[fetched.key] = _place(fetched, out)
        if kill_marker and len(placed) == half and first_to_claim(kill_marker):
            # tests only (LOOKALIKE_TEST_KILL_SHARD): this worker dies in the middle of a batch
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        download(jobs, mine, options, place)
    finally:
        shutil.rmtree(mine, ignore_errors=True)
    return [placed[job.key] for job in jobs]


def _place(fetched: Fetched, out: str) -> Fetched:
    """A downloaded file moved to its final name in `out` (whole: one rename in one file
    system), its record saying so; a failure to move it is the row's failure."""
    if not fetched.ok:
        return fetched
    final = os.path.join(out, os.path.basename(fetched.path))
    try:
        os.replace(fetched.path, final)
    except OSError as exc:
        return replace(fetched, ok=False, path=None, reason=f"cannot write the file: "
                       f"{exc.strerror or exc}")
    return replace(fetched, path=final)


def _note() -> BatchNote:
    ray = import_ray()
    return BatchNote(socket.gethostname(), os.getpid(), ray.get_runtime_context().get_node_id())


def _make_staging(out: Path) -> Path:
    """This run's staging folder in `out`: the tasks' attempts download into folders of
    their own in it, and a task that does not see it is on a node that does not see `out`."""
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    return staging


def remove_staging(out_dir: str | os.PathLike) -> int:
    """Delete the staging folders a killed Ray ingest left in `out_dir` (as remove_parts
    its .part files; only while no other ingest writes there); returns how many."""
    removed = 0
    for entry in Path(out_dir).glob(f"{STAGING_PREFIX}*"):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
