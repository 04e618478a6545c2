"""The thorough mode on the Ray runner (runners/actors.py): on CPUs its descriptor (the SSCD
student in onnxruntime) is loaded once per worker process, which Ray reuses from shard to
shard; with --ray-gpus the shards go to a pool of actors, one per GPU, each loading the model
once, and an actor killed in the middle of a shard is restarted with no row lost or doubled.
Either way the index holds the local scan's signatures, byte for byte.

The CPU cluster (a head and a second node, one CPU each) is the `cluster` fixture of
ray_cluster.py, started once per test session; the GPU pool runs on a Ray instance in this
process told that it has two GPUs (Ray schedules by the count it is given; this machine's
onnxruntime has no CUDA provider, so the sessions stay on the CPU provider).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the 'ray' extra is not installed "
                                  "(pip install -e '.[ray]'; make test installs it)")
pytest.importorskip("pyarrow", reason="the 'ray' extra (pyarrow) is not installed")

from lookalike.evaluation.transforms import EDITS, encode  # noqa: E402
from lookalike.sample import synthetic_picture  # noqa: E402
from lookalike.scan import scan  # noqa: E402

PICTURES = 24
SHARD_FILES = 4  # 8 shards of 4 files (a chunk is 48): every shard lands on another batch
LOADS = re.compile(r"(\d+) model loads in (\d+) processes")


@pytest.fixture(scope="module")
def sscd_ready():
    """The thorough mode's model, as tests/integration/test_thorough_mode.py gets it."""
    from lookalike.errors import ModelError
    from lookalike.models.registry import resolve_model

    try:
        resolve_model("sscd-distilled")
    except ModelError as exc:
        pytest.skip(f"the SSCD student is not available here: {exc}")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, sscd_ready) -> Path:
    """24 small pictures and 8 edited copies of some of them (JPEG, PNG)."""
    folder = tmp_path_factory.mktemp("ray-thorough") / "pictures"
    folder.mkdir()
    edits = ("resize50", "mirror", "jpeg70", "png")
    for seed in range(PICTURES):
        image = synthetic_picture(700 + seed, (160, 120))
        data = encode(image, "JPEG", quality=90)
        (folder / f"p{seed:02d}.jpg").write_bytes(data)
        if seed < 8:
            copy, suffix = EDITS[edits[seed % len(edits)]](image, data)
            (folder / f"c{seed:02d}{suffix}").write_bytes(copy)
    return folder


@pytest.fixture(scope="module")
def local_index(pictures, tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("thorough-local") / "index.db"
    summary = scan([pictures], index_path=index, mode="thorough", workers=2)
    assert summary.scanned == PICTURES + 8 and summary.failed == 0
    return index


def _signatures(index: Path) -> dict[str, list[tuple]]:
    """file name -> every signature's (method, version, params, value, quality)."""
    conn = sqlite3.connect(index)
    try:
        rows = conn.execute(
            "SELECT f.path, s.method, s.version, s.params, s.value, s.quality FROM files f "
            "JOIN signatures s ON s.content_id = f.content_id "
            "ORDER BY f.path, s.method, s.version, s.params").fetchall()
    finally:
        conn.close()
    found: dict[str, list[tuple]] = {}
    for path, *signature in rows:
        found.setdefault(Path(path).name, []).append(tuple(signature))
    return found


def _shard_paths(index: Path) -> list[str]:
    import pyarrow.parquet as pq

    shards = sorted((index.parent / "shards").glob("*/shard-*.parquet"))
    return [path for shard in shards for path in pq.read_table(shard)["path"].to_pylist()]


def _loads(log_text: str) -> tuple[int, int]:
    found = LOADS.findall(log_text)
    assert len(found) == 1, log_text
    return int(found[0][0]), int(found[0][1])


def _local_ray(monkeypatch, **resources):
    """A Ray instance of this process with the resources it is told it has (GPUs that are
    not there), under the cluster fixture's environment; the caller shuts it down."""
    import ray

    from .ray_cluster import RAY_ENV

    for name, value in RAY_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.init(**resources, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    return ray


def _scan(pictures: Path, index: Path, caplog, **ray) -> object:
    with caplog.at_level(logging.INFO, logger="lookalike.runners.ray"):
        caplog.clear()
        return scan([pictures], index_path=index, mode="thorough", runner="ray",
                    shard_files=SHARD_FILES, **ray)


def test_on_cpus_the_model_loads_once_per_worker_process(cluster, pictures, local_index,
                                                         tmp_path, caplog):
    index = tmp_path / "ray" / "index.db"
    summary = _scan(pictures, index, caplog, ray_address=cluster)
    assert summary.scanned == PICTURES + 8 and summary.failed == 0
    assert "8 computed, 0 reused" in caplog.text
    # 8 shards as plain tasks on two one-CPU nodes: at most two worker processes (one, when
    # one node's worker took every shard before the other's started), one load each, not one
    # a shard. How Ray spreads the tasks is Ray's business, not asserted.
    loads, processes = _loads(caplog.text)
    assert loads == processes and 1 <= processes <= 2
    assert "actors" not in caplog.text
    expected = _signatures(local_index)
    assert {s[0] for rows in expected.values() for s in rows} >= {"embed", "local", "phash"}
    assert _signatures(index) == expected  # the descriptor's bytes too


def test_gpu_actors_load_the_model_once_and_survive_a_killed_actor(
        pictures, local_index, tmp_path, monkeypatch, caplog):
    from lookalike.errors import RunnerError

    ray = _local_ray(monkeypatch, num_cpus=2, num_gpus=2)
    try:
        index = tmp_path / "gpu" / "index.db"
        summary = _scan(pictures, index, caplog, ray_gpus=2)
        assert summary.scanned == PICTURES + 8 and summary.failed == 0
        assert ("2 model loads in 2 processes of a pool of 2 GPU actors "
                "(CPUExecutionProvider)") in caplog.text
        assert _signatures(index) == _signatures(local_index)

        marker = tmp_path / "kill-marker"
        monkeypatch.setenv("LOOKALIKE_TEST_KILL_SHARD", str(marker))
        index = tmp_path / "killed" / "index.db"
        summary = _scan(pictures, index, caplog, ray_gpus=2)
        victim = int(marker.read_text())  # an actor's process, killed by its own pid
        with pytest.raises(ProcessLookupError):
            os.kill(victim, 0)
        # It died before it returned a shard; Ray restarted the actor in a new process,
        # which loaded the model again and ran the shards the dead one held.
        assert "of a pool of 2 GPU actors, 1 of them restarted" in caplog.text
        assert _loads(caplog.text) == (2, 2)
        assert summary.scanned == PICTURES + 8 and summary.failed == 0
        assert _signatures(index) == _signatures(local_index)
        shard_paths = _shard_paths(index)
        assert len(shard_paths) == len(set(shard_paths)) == PICTURES + 8

        with pytest.raises(RunnerError, match="--ray-gpus 3: the Ray cluster has 2 GPUs"):
            _scan(pictures, tmp_path / "three" / "index.db", caplog, ray_gpus=3)
        assert ray.is_initialized()  # the runner used this instance and left it running
    finally:
        ray.shutdown()


def test_by_default_the_clusters_gpus_sign_beside_its_other_cpus(
        pictures, local_index, tmp_path, monkeypatch, caplog):
    """No --ray-gpus: a cluster with a GPU (here a Ray instance told it has one, and 3 CPUs)
    gets one GPU actor, and the two CPUs it leaves run plain tasks at the same time; the
    index is the local one. --ray-gpus 0 keeps to the CPU tasks."""
    ray = _local_ray(monkeypatch, num_cpus=3, num_gpus=1)
    try:
        index = tmp_path / "auto" / "index.db"
        summary = _scan(pictures, index, caplog)
        assert summary.scanned == PICTURES + 8 and summary.failed == 0
        assert "of a pool of 1 GPU actors" in caplog.text
        loads, processes = _loads(caplog.text)
        assert processes >= 2 and loads == processes  # the actor and at least one task
        assert _signatures(index) == _signatures(local_index)

        summary = _scan(pictures, tmp_path / "cpu" / "index.db", caplog, ray_gpus=0)
        assert summary.scanned == PICTURES + 8 and "actors" not in caplog.text
    finally:
        ray.shutdown()
