"""`scan --runner ray` with shards cut from the walk as it streams and written by the tasks
themselves (runners/ray.py): the driver never writes a shard, yet the index, groups and pairs
are the local pool's; `--shards-only` leaves the shards unmerged, and a later run (as after a
driver killed mid-job) merges the workers' files, computing only the missing shards.

The cluster is the session's `cluster` fixture (ray_cluster.py): two one-CPU nodes on
127.0.0.1, which share this machine's folders as a cluster's nodes share a file system.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the 'ray' extra is not installed")
pytest.importorskip("pyarrow", reason="the 'ray' extra (pyarrow) is not installed")

from lookalike.runners import ray as ray_runner  # noqa: E402
from lookalike.runners import shards as shard_files  # noqa: E402
from lookalike.scan import scan  # noqa: E402

from . import test_ray_runner  # noqa: E402
from .test_ray_runner import ORIGINALS, SHARD_FILES, _answers, _signatures  # noqa: E402

# The same collection and local index as test_ray_runner (its fixtures, made for this module)
pictures, local_index = test_ray_runner.pictures, test_ray_runner.local_index


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/shard-*.parquet"))


def _paths(shards: list[Path]) -> list[str]:
    import pyarrow.parquet as pq

    return [path for shard in shards for path in pq.read_table(shard)["path"].to_pylist()]


def _driver_never_writes(monkeypatch) -> None:
    """The driver's own write_shard raises: only the tasks' processes may write a shard."""
    def refuse(*args, **kwargs):
        raise AssertionError("the driver wrote a shard")

    monkeypatch.setattr(shard_files, "write_shard", refuse)
    monkeypatch.setattr(ray_runner, "write_shard", refuse)


def test_workers_write_the_streamed_shards_and_the_index_is_the_local_one(
        cluster, pictures, local_index, tmp_path, monkeypatch):
    _driver_never_writes(monkeypatch)
    index, shared = tmp_path / "ray" / "index.db", tmp_path / "shared"
    summary = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                   shard_files=SHARD_FILES, shard_dir=shared)
    assert summary.scanned == ORIGINALS + 20 and summary.failed == 1 and summary.other == 1
    expected = _signatures(local_index)
    assert _signatures(index) == expected
    assert _answers(index) == _answers(local_index)
    shards = _shards(shared)
    assert len(shards) == 8 and not (index.parent / "shards").exists()
    assert sorted(_paths(shards)) == sorted(expected)  # every file once, none twice


def test_shards_only_then_a_resumed_run_merges_the_workers_shards(
        cluster, pictures, local_index, tmp_path, monkeypatch, caplog):
    _driver_never_writes(monkeypatch)
    index = tmp_path / "ray" / "index.db"
    alone = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                 shard_files=SHARD_FILES, shards_only=True)
    assert (alone.scanned, alone.failed, alone.other) == (ORIGINALS + 20, 1, 1)
    assert _signatures(index) == {}  # nothing merged: the records are in the shards only
    shards = _shards(index.parent / "shards")
    assert len(shards) == 8 and len(_paths(shards)) == ORIGINALS + 22

    # As a driver killed after five shards were written: three missing, none merged.
    for lost in shards[1::3]:
        lost.unlink()
    kept = {shard: shard.stat().st_mtime_ns for shard in shards if shard.exists()}
    with caplog.at_level(logging.INFO, logger="lookalike.runners.ray"):
        resumed = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                       shard_files=SHARD_FILES)
    assert "3 computed, 5 reused, 0 already in the index" in caplog.text
    assert {shard: shard.stat().st_mtime_ns for shard in kept} == kept  # not rewritten
    assert all(shard.exists() for shard in shards)
    assert resumed.scanned == ORIGINALS + 20 and resumed.failed == 1
    assert _signatures(index) == _signatures(local_index)
    assert _answers(index) == _answers(local_index)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lookalike.runners.ray"):
        again = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                     shard_files=SHARD_FILES)
    assert "0 computed, 0 reused, 8 already in the index" in caplog.text  # no task at all
    assert again.scanned == 0 and again.unchanged == ORIGINALS + 20
    assert _signatures(index) == _signatures(local_index)


def test_nodes_that_do_not_see_the_shard_folder_send_their_records_back(
        cluster, pictures, local_index, tmp_path, monkeypatch, caplog):
    """The tasks look for the driver's marker in the shard folder; where it is not there (a
    node that does not share that folder: here the marker is a path no node has), they send
    the records back and the driver writes the shard: the same index as a local scan."""
    monkeypatch.setattr(ray_runner._Run, "_marker",
                        lambda self, path: str(tmp_path / "no-node-sees-this"))
    index = tmp_path / "ray" / "index.db"
    with caplog.at_level(logging.INFO, logger="lookalike.runners.ray"):
        summary = scan([pictures], index_path=index, runner="ray", ray_address=cluster,
                       shard_files=SHARD_FILES)
    assert summary.scanned == ORIGINALS + 20 and summary.failed == 1
    assert _signatures(index) == _signatures(local_index)
    assert "8 computed by nodes that do not see that folder, written here" in caplog.text
    assert len(_shards(index.parent / "shards")) == 8
