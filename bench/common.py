"""Plumbing every benchmark shares: memory of this process and of child processes, CPU time
of the machine, a printed timer, and imagededup's hashing code without torch.

Scripts run as `python bench/X.py`: Python puts bench/ first on sys.path, so `import common`
and the scripts' imports of each other need no sys.path line, and lookalike comes from the
venv it is installed in. Measures; never asserts.
"""

from __future__ import annotations

import importlib
import os
import resource
import sys
import threading
import time
import types
from pathlib import Path
from typing import Callable, NamedTuple, TypeVar

MB = 2 ** 20
SAMPLE_EVERY_S = 0.1

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# memory


def rss_mb() -> float:
    """This process's resident memory now (psutil, else /proc/self/statm)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / MB
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (getrusage; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pid_peak_rss_mb(pid: int) -> float | None:
    """Another process's peak resident memory (VmHWM of /proc/PID/status); None off Linux or
    once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def usage() -> dict:
    """Peak RSS of this process and of its largest waited-for child, and the CPU seconds of
    both (getrusage). Forked children share pages with their parent: do not add the two."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"main_mb": own.ru_maxrss / 1024, "worker_mb": kids.ru_maxrss / 1024,
            "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime}


class TreeMemory:
    """Peaks of a process tree (process `pid`, this one by default, and all its descendants),
    sampled with psutil every `every` s on a thread, once more on stopping:

    - `peak`: the summed PSS (RSS where PSS is unknown): the memory the tree needed;
    - `peak_rss`: the summed RSS (counts pages forked workers share more than once);
    - `main`, `worker`: RSS of the root process and of its largest descendant.

    All in bytes, 0 without psutil. `pss=False` reads RSS only (cheaper: no smaps), and then
    `peak` is the summed RSS. A context manager, or start() / stop()."""

    def __init__(self, pid: int | None = None, every: float = SAMPLE_EVERY_S,
                 pss: bool = True) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.every = every
        self.pss = pss
        self.peak = self.peak_rss = self.main = self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._root = self._process()
        self.before = self.sample()

    @property
    def extra_mb(self) -> float:
        """How far the tree's PSS rose above what it held when this was made."""
        return (self.peak - self.before) / MB

    def start(self) -> "TreeMemory":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def __enter__(self) -> "TreeMemory":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _process(self):
        try:
            import psutil

            return psutil.Process(self.pid)
        except Exception:  # no psutil, or the process is gone already: nothing to sample
            return None

    def sample(self) -> int:
        """Take one sample into the peaks; the tree's summed PSS (or RSS) now."""
        if self._root is None:
            return 0
        import psutil

        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = rss_total = 0
        for proc in tree:
            try:
                info = proc.memory_full_info() if self.pss else proc.memory_info()
            except psutil.Error:
                continue
            total += getattr(info, "pss", info.rss)
            rss_total += info.rss
            if proc.pid == self.pid:
                self.main = max(self.main, info.rss)
            else:
                self.worker = max(self.worker, info.rss)
        self.peak = max(self.peak, total)
        self.peak_rss = max(self.peak_rss, rss_total)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)


# ---------------------------------------------------------------------------------------------
# time


class MachineCpu(NamedTuple):
    """CPU seconds the whole machine has spent so far, by kind (/proc/stat's first line)."""

    user: float
    nice: float
    system: float
    irq: float
    softirq: float
    steal: float

    @property
    def busy(self) -> float:
        return self.user + self.nice + self.system + self.irq + self.softirq


def machine_cpu() -> MachineCpu | None:
    """The machine's CPU seconds so far (Linux only; None elsewhere): taken before and after a
    run, less the run's own CPU time, it shows whether a neighbour competed for the cores."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return MachineCpu(user / tick, nice / tick, system / tick, irq / tick, softirq / tick,
                      steal / tick)


def timed(label: str, fn: Callable[[], T], width: int = 44) -> T:
    """fn(), printing its wall time and this process's peak RSS so far."""
    start = time.perf_counter()
    value = fn()
    print(f"{label:<{width}} {time.perf_counter() - start:7.2f} s   peak {peak_rss_mb():6.0f} MB",
          flush=True)
    return value


# ---------------------------------------------------------------------------------------------
# peers


def import_imagededup(module: str) -> types.ModuleType:
    """An imagededup module (e.g. "imagededup.methods.hashing") without torch: the package
    __init__ files of imagededup.methods and imagededup.utils import torch (for the CNN
    method), so their real folders are registered as bare packages, those two files not run.
    Nothing is stubbed: the code that runs is imagededup's own."""
    import imagededup

    for package in ("methods", "utils"):
        name = f"imagededup.{package}"
        if name not in sys.modules:
            bare = types.ModuleType(name)
            bare.__path__ = [str(Path(imagededup.__file__).parent / package)]
            sys.modules[name] = bare
    return importlib.import_module(module)


def import_test_helper(name: str) -> types.ModuleType:
    """A helper module of tests/integration (bench_ingest.py runs the tests' image server).
    tests/ is no package, so its folder goes on sys.path: the one sys.path line of bench/,
    kept (rather than loading the file by path) so that a spawned child can import it too."""
    folder = str(Path(__file__).resolve().parents[1] / "tests" / "integration")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)
