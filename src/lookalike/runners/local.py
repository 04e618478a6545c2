"""The local runner: a process pool on this machine (the default), or the calling process."""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Iterator, Sequence

from ..methods import embedding
from ..types import FileRef

CHUNK = 48  # files a worker (a process, or a Ray task) is handed at once ...
CHUNK_BYTES = 64 << 20  # ... and at most this many bytes of them (one big file may exceed it)


def chunks(refs: Sequence[FileRef]) -> Iterator[list[FileRef]]:
    """`refs` in runs of at most CHUNK files and CHUNK_BYTES bytes (a run holds at least one
    file), the unit process_chunk works on."""
    chunk: list[FileRef] = []
    size = 0
    for ref in refs:
        if chunk and (len(chunk) >= CHUNK or size + ref.size > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(ref)
        size += ref.size
    if chunk:
        yield chunk


class InProcess(Executor):
    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def make_pool(workers: int, lock_fd: int | None) -> Executor:
    if workers <= 1:
        return InProcess()
    if "cv2" in sys.modules:
        # OpenCV's worker threads do not survive a fork: a child that inherits a running
        # pool hangs in its first parallel call. One thread in the parent stops the pool.
        sys.modules["cv2"].setNumThreads(1)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                               initializer=worker_init, initargs=(lock_fd,))


def limit_threads() -> None:
    """Each worker is one process of several: one thread for its embedding sessions and
    BLAS (a BLAS pool per worker made PDQ's matrix resizes ~7x slower, bench/README.md)."""
    embedding.use_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def worker_init(lock_fd: int | None) -> None:
    """Workers die with the scan, and never keep its writer lock alive after it."""
    limit_threads()
    if lock_fd is not None:
        try:
            os.close(lock_fd)  # a forked copy; the lock stays with the parent's descriptor
        except OSError:
            pass
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
