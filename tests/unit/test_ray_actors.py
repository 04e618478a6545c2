"""The Ray runner's model sessions, their plain-Python parts (runners/actors.py): which methods
hold a model, how many GPU actors, which onnxruntime provider, how calls are spread over the
actors, and what the driver makes of the workers' notes. No Ray here
(tests/integration/test_ray_thorough.py runs them on Ray)."""

from __future__ import annotations

import pytest

from lookalike.errors import RunnerError
from lookalike.runners.actors import (CPU, CUDA, Pool, WorkerNote, gpu_actors, model_methods,
                                      providers)
from lookalike.runners.ray import ShardStats
from lookalike.scan import MODES


def test_only_the_learned_descriptor_holds_a_model():
    assert model_methods(["pixels", *MODES["fast"]]) == []
    assert model_methods(["pixels", *MODES["thorough"]]) == ["embed@sscd-distilled"]
    assert model_methods(["phash", "embed", "local"]) == ["embed"]


@pytest.mark.parametrize("resources, gpus, actors", [
    ({"CPU": 16.0, "GPU": 2.0}, 2, 2),  # one actor per GPU asked for
    ({"CPU": 16.0, "GPU": 2.0}, 1, 1),  # fewer than the cluster has
    ({"CPU": 16.0, "GPU": 2.0}, 0, 0),  # 0: no actors, the CPU tasks
    ({"CPU": 2.0}, 0, 0),
    ({"CPU": 16.0, "GPU": 2.0}, None, 2),  # None (the default): every GPU the cluster has
    ({"CPU": 16.0, "GPU": 1.5}, None, 1),  # whole GPUs only
    ({"CPU": 16.0}, None, 0),  # none: the CPU tasks
])
def test_gpu_actors(resources, gpus, actors):
    assert gpu_actors(resources, gpus) == actors


@pytest.mark.parametrize("resources, gpus, message", [
    ({"CPU": 4.0, "GPU": 2.0}, 3, "--ray-gpus 3: the Ray cluster has 2 GPUs"),
    ({"CPU": 4.0}, 1, "--ray-gpus 1: the Ray cluster has 0 GPUs"),
    ({"CPU": 4.0, "GPU": 1.5}, 2, "has 1 GPU$"),  # half a GPU holds no actor
])
def test_more_gpus_than_the_cluster_has_is_a_runner_error(resources, gpus, message):
    with pytest.raises(RunnerError, match=message):
        gpu_actors(resources, gpus)


def test_cuda_only_on_a_gpu_actor_whose_onnxruntime_has_it():
    assert providers([CUDA, CPU], on_gpu=True) == [CUDA, CPU]
    assert providers([CUDA, CPU], on_gpu=False) == [CPU]
    assert providers(["AzureExecutionProvider", CPU], on_gpu=True) == [CPU]  # CPU-only wheel


class _Handle:
    def __init__(self, name: str) -> None:
        self.name = name
        self.scan = self  # handle.scan.remote(...), as on a Ray actor handle

    def remote(self, rows, kill_marker):
        return (self.name, rows[0][0])


def test_each_call_goes_to_the_actor_with_the_fewest_outstanding():
    pool = Pool([_Handle("a"), _Handle("b")])
    refs = [pool.submit([(f"/{n}.jpg", 1, 1)]) for n in range(4)]
    assert [owner for owner, _ in refs] == ["a", "b", "a", "b"]
    pool.done(refs[1])
    pool.done(refs[3])  # b is idle, a still has two
    assert pool.submit([("/4.jpg", 1, 1)])[0] == "b"
    assert pool.outstanding == [2, 1]


def test_the_driver_counts_each_process_load_once():
    stats = ShardStats(actors=2)
    for note in (WorkerNote("h", 10, 1, CPU), WorkerNote("h", 10, 1, CPU),
                 WorkerNote("h", 11, 1, CPU, restarted=True), WorkerNote("g", 10, 1, CPU)):
        stats.note(note)
    assert sum(stats.loads.values()) == 3 and len(stats.loads) == 3
    assert stats.describe() == ("3 model loads in 3 processes of a pool of 2 GPU actors, "
                                "1 of them restarted (CPUExecutionProvider)")
    assert ShardStats().describe() == "0 model loads in 0 processes"  # plain tasks, hashes


class _Session:
    def __init__(self) -> None:
        self.providers = [CPU]

    def set_providers(self, wanted):
        self.providers = list(wanted)

    def get_providers(self):
        return self.providers


def test_a_gpu_actor_moves_its_session_to_cuda_where_onnxruntime_has_it(monkeypatch):
    import onnxruntime

    from lookalike.runners import actors

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CUDA, CPU])
    assert actors._place(_Session(), on_gpu=True) == CUDA
    assert actors._place(_Session(), on_gpu=False) == CPU  # a CPU actor stays on the CPU
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU])
    assert actors._place(_Session(), on_gpu=True) == CPU  # the CPU-only wheel: no CUDA
