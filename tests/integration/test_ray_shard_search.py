"""Shards searched where they lie on a real two-node Ray cluster on 127.0.0.1: `scan --runner
ray --shards-only` leaves the shards unmerged, and `dupes --shards DIR --runner ray` gives the
groups and pairs of the local pool's index without one, the shards read by the cluster's
worker processes, not the driver.

The cluster is the session's `cluster` fixture (ray_cluster.py).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the 'ray' extra is not installed")
pytest.importorskip("pyarrow", reason="the 'ray' extra (pyarrow) is not installed")

from lookalike.errors import RunnerError  # noqa: E402
from lookalike.index.store import open_index  # noqa: E402
from lookalike.search import in_shards  # noqa: E402
from lookalike.search.dupes import find_groups, find_pairs  # noqa: E402
from lookalike.search.options import SearchOptions  # noqa: E402

from .conftest import cli_env, run_cli  # noqa: E402
from .ray_cluster import RAY_ENV  # noqa: E402
from . import test_ray_runner  # noqa: E402
from .test_ray_runner import SHARD_FILES  # noqa: E402

pictures, local_index = test_ray_runner.pictures, test_ray_runner.local_index  # its fixtures


@pytest.fixture(scope="module")
def shared(cluster, pictures, tmp_path_factory) -> Path:
    """The shard folder of a --shards-only scan on the cluster (its index holds no file)."""
    base = tmp_path_factory.mktemp("ray-shards")
    result = run_cli("scan", pictures, "--index", base / "index.db", "--runner", "ray",
                     "--ray-address", cluster, "--shard-files", str(SHARD_FILES),
                     "--shards-only", "--shard-dir", base / "shared", env=cli_env(**RAY_ENV),
                     timeout=180)
    assert result.code == 0, result
    told = " ".join(result.stderr.split())  # the hint, however the console wrapped it
    assert f"search them where they lie with: lookalike dupes --shards {base / 'shared'}" \
        f" --runner ray --ray-address {cluster}" in told, result.stderr
    with open_index(base / "index.db") as opened:
        assert not opened.live_files()
    return base / "shared"


def test_cli_groups_of_the_shards_are_the_local_index_groups(cluster, shared,
                                                             local_index):
    env = cli_env(**RAY_ENV)
    searched = run_cli("dupes", "--shards", shared, "--runner", "ray", "--ray-address",
                       cluster, "--format", "json", env=env, timeout=180)
    indexed = run_cli("dupes", "--index", local_index, "--format", "json", env=env)
    assert searched.code == 0 and indexed.code == 0, (searched, indexed)
    groups = searched.json()["groups"]
    assert groups == indexed.json()["groups"] and len(groups) >= 10
    table = run_cli("dupes", "--shards", shared, env=env)  # here: the table's path
    assert table.code == 0 and f"{len(groups)} groups" in table.stdout, table
    assert "here in" in table.stderr, table


def test_the_cluster_reads_and_searches_the_shards(cluster, shared,
                                                  local_index):
    found = in_shards.search_shards(shared, SearchOptions(), runner="ray",
                                    ray_address=cluster)
    with open_index(local_index) as opened:
        assert found.groups() == find_groups(opened)
        assert found.pairs() == find_pairs(opened)
    assert found.shards == 8 and found.tasks["load"] == 1 and found.tasks["join"] >= 1
    assert found.loaders and (socket.gethostname(), os.getpid()) not in found.loaders


def test_an_unreadable_shard_is_named(cluster, shared, tmp_path):
    copy = tmp_path / "shards"
    shutil.copytree(shared, copy)
    broken = sorted(copy.glob("*/shard-*.parquet"))[3]
    broken.write_bytes(b"PAR1 not a shard")
    with pytest.raises(RunnerError, match=f"shard {broken} cannot be read on "):
        in_shards.search_shards(copy, runner="ray", ray_address=cluster)
