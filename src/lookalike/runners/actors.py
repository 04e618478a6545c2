"""Model sessions on the Ray runner: counted loads, and a pool of GPU actors.

The methods that hold a model (a learned descriptor, such as the thorough mode's SSCD student
in onnxruntime) build their session once per process (methods/registry.shared_method), and
Ray reuses a task's worker process for the next task, so plain CPU tasks load a model once
per worker process; `load_models` builds and counts them, so the driver can say how many.

GPUs (`scan --ray-gpus N`) need more: Ray never reuses a GPU task's process (max_calls=1 by
default, to free the GPU's memory), so each shard would load the model again. There a fixed
pool of N actors, each holding one GPU for its life (num_gpus=1; onnxruntime's CUDA provider
where the node's onnxruntime has it), builds its sessions once and signs shard after shard.
A shard stays the unit of retry: an actor that dies is restarted by Ray (it builds its
sessions again) and the calls it held run again; each shard's file is written whole, once.

Everything here but the actor's own methods is plain Python, testable without Ray.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..errors import RunnerError
from ..methods.registry import LEARNED_EVIDENCE, registration, shared_method
from .local import limit_threads

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
MAX_GPUS = 1024  # --ray-gpus: far above any cluster this runs on, low enough to be a typo

# The model sessions this process built (method name -> the method object holding them), and
# how many: a method object builds its one session once, so a new object is a new load.
_built: dict[str, object] = {}
_loads = 0
_provider = ""
_restarted = False  # this process is an actor Ray restarted (its first process died)


@dataclass(frozen=True)
class WorkerNote:
    """What a shard's worker process tells the driver besides the records."""

    host: str
    pid: int
    loads: int  # model sessions this process has built since it started
    provider: str  # onnxruntime's provider of its sessions ("" when it holds none)
    restarted: bool = False  # an actor Ray restarted: a process before it died (unseen)


def model_methods(names: Sequence[str]) -> list[str]:
    """The methods of `names` that hold a model session: those registered as learned
    evidence (the "embed" family, and a plugin's descriptor registered the same way)."""
    return [name for name in names if registration(name).evidence_rank == LEARNED_EVIDENCE]


def gpu_actors(resources: Mapping[str, float], gpus: int | None) -> int:
    """How many GPU actors to start for `gpus` (--ray-gpus) on a cluster of `resources`
    (ray.cluster_resources()): None, one per whole GPU the cluster has; else `gpus` itself,
    RunnerError when the cluster has fewer (a fraction of a GPU holds no actor). 0: none,
    the model runs in the CPU tasks."""
    available = int(resources.get("GPU", 0))
    if gpus is None:
        return available
    if gpus > available:
        raise RunnerError(f"--ray-gpus {gpus}: the Ray cluster has {available} GPU"
                          f"{'' if available == 1 else 's'}")
    return gpus


def providers(available: Sequence[str], on_gpu: bool) -> list[str]:
    """onnxruntime providers for a session: CUDA first on a GPU actor whose onnxruntime has
    it (onnxruntime-gpu), else the CPU."""
    return [CUDA, CPU] if on_gpu and CUDA in available else [CPU]


def load_models(names: Sequence[str], on_gpu: bool = False) -> int:
    """Build now the sessions of the model methods of `names` that this process has not
    built yet (on the GPU when `on_gpu`); returns how many it built."""
    global _loads, _provider
    built = 0
    for name in model_methods(names):
        method = shared_method(name)  # one per process (methods/registry.py)
        if _built.get(name) is method:
            continue
        # EmbeddingMethod builds its session on first use; build it here, counted, so that
        # a shard's time holds no model load and the session can be moved to the GPU.
        session_of = getattr(method, "_session", None)
        session = getattr(session_of(), "session", None) if session_of else None
        if session is not None:
            _provider = _place(session, on_gpu)
        _built[name] = method
        built += 1
    _loads += built
    return built


def _place(session, on_gpu: bool) -> str:
    """Move an onnxruntime session to CUDA where asked and possible; its provider."""
    if on_gpu:
        import onnxruntime as ort

        wanted = providers(ort.get_available_providers(), on_gpu)
        if wanted[0] == CUDA:
            session.set_providers(wanted)  # rebuilds the session on the GPU Ray gave us
    return session.get_providers()[0]


def worker_note() -> WorkerNote:
    return WorkerNote(socket.gethostname(), os.getpid(), _loads, _provider, _restarted)


class ShardActor:
    """One GPU actor of the pool (wrapped by ray.remote in ray.py): its sessions are built
    when it starts, then `scan` signs one shard at a time with `work` (ray.scan_shard)."""

    def __init__(self, names: list[str],
                 work: Callable[[list, list[str], str, str, str], Any]) -> None:
        import ray

        global _restarted
        limit_threads()  # the CPU work of the shard (decode, hashes) runs on one core
        self.names, self.work = names, work
        _restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        load_models(names, on_gpu=True)

    def scan(self, rows: list[tuple[str, int, int]], kill_marker: str = "", out: str = "",
             seen: str = ""):
        # out: the shard's file; seen: the driver's marker beside it (ray.scan_shard)
        return self.work(rows, self.names, kill_marker, out, seen)


class Pool:
    """Actor handles, each call sent to the one with the fewest calls outstanding."""

    def __init__(self, handles: Sequence[Any]) -> None:
        self.handles = list(handles)
        self.outstanding = [0] * len(self.handles)
        self.owner: dict[Any, int] = {}

    def submit(self, rows: list[tuple[str, int, int]], kill_marker: str = "", *more: str):
        which = min(range(len(self.handles)), key=self.outstanding.__getitem__)
        ref = self.handles[which].scan.remote(rows, kill_marker, *more)
        self.owner[ref] = which
        self.outstanding[which] += 1
        return ref

    def done(self, ref) -> None:
        self.outstanding[self.owner.pop(ref)] -= 1

    def owns(self, ref) -> bool:
        return ref in self.owner

    def waiting(self) -> int:
        """Calls sent to the pool and not yet done."""
        return sum(self.outstanding)
