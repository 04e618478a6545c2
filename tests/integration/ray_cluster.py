"""A two-node Ray cluster on 127.0.0.1 for the tests that need one, started once per test
session (a head and a second node, one CPU each, `ray start --block` in sessions of their
own) and stopped at the end: SIGTERM to those two commands (which stop what they started),
then SIGKILL to what is left of their process groups and to any process whose command line
names this cluster's own temp folder. tests/integration/conftest.py
imports `cluster`, so any integration test can ask for it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lookalike.runners.ray import free_port, node_ports

RAY = Path(sys.executable).parent / "ray"
# Token authentication (Ray's default) would write a token into the home folder.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _alive_nodes(address: str) -> int:
    import ray

    ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        return sum(1 for node in ray.nodes() if node["Alive"])
    finally:
        ray.shutdown()


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def _descendants(roots: list[int]) -> list[tuple[int, int]]:
    """(pid, start time) of the processes below `roots` (Ray's workers are the raylet's
    children); the start time tells a process from a later one given the same pid."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _kill_ours(folder: str, groups: list[subprocess.Popen]) -> None:
    """Stop only the processes this module started: the two `ray start --block` (each stops
    its own daemons on SIGTERM), then their process groups, then what is left of their
    descendants and anything that names our temp folder on its command line."""
    below = _descendants([proc.pid for proc in groups])
    for proc in groups:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in groups:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    named = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if folder in cmdline and stat:
            named.append((int(entry.name), stat[1]))
    for pid, started in below + named:
        stat = _stat(pid)
        if stat and stat[1] == started:  # still the same process
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _wait_for(ready, proc: subprocess.Popen, logs: list[Path], seconds: float = 90,
              fail: bool = True) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if ready():
            return True
        time.sleep(0.5)
    if not fail:
        return False
    shown = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                      for log in logs if log.exists())
    pytest.fail(f"the Ray cluster did not come up\n{shown}")


@pytest.fixture(scope="session")
def cluster():
    """host:port of a running two-node Ray cluster, both nodes started by this fixture."""
    pytest.importorskip("ray", reason="the 'ray' extra is not installed "
                                      "(pip install -e '.[ray]'; make test installs it)")
    if not RAY.exists():
        pytest.skip(f"no `ray` command beside the interpreter ({RAY})")
    patch = pytest.MonkeyPatch()
    for name, value in RAY_ENV.items():
        patch.setenv(name, value)
    patch.delenv("RAY_ADDRESS", raising=False)
    # Short: Ray puts Unix sockets under it, and their names are limited to ~107 bytes.
    folder = tempfile.mkdtemp(prefix="lkray-", dir="/tmp")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--disable-usage-stats", "--block"]
    started: list[subprocess.Popen] = []
    logs = [Path(folder) / "head.log", Path(folder) / "node.log"]
    try:
        with open(logs[0], "wb") as log:
            started.append(subprocess.Popen(
                [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                 "--include-dashboard=false", f"--temp-dir={folder}", *common,
                 *node_ports()],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: b"Ray runtime started" in logs[0].read_bytes(), started[0], logs)
        _wait_for(lambda: _alive_nodes(address) == 1, started[0], logs)  # its GCS answers
        for attempt in (1, 2):  # on a loaded machine the GCS may answer a first join late
            with open(logs[1], "wb") as log:
                started.append(subprocess.Popen(
                    [RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1",
                     *common, *node_ports()], stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, "RAY_raylet_start_wait_time_s": "60"}))
            if _wait_for(lambda: b"Ray runtime started" in logs[1].read_bytes(), started[-1],
                         logs, fail=attempt == 2):
                break
        _wait_for(lambda: _alive_nodes(address) == 2, started[-1], logs)
        yield address
    finally:
        _kill_ours(folder, started)
        patch.undo()
        shutil.rmtree(folder, ignore_errors=True)
