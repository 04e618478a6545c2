"""Runners: who executes a scan's per-picture work (worker.process_chunk). `local`: this
machine's process pool; `ray`: tasks on a Ray cluster, one per shard (shards.py)."""

from __future__ import annotations

from ..errors import SourceError

RUNNERS = ("local", "ray")


def check_runner(name: str) -> str:
    """`name` if it is a known runner, else SourceError naming the known ones."""
    if name not in RUNNERS:
        raise SourceError(f"unknown runner {name!r}: choose {' or '.join(RUNNERS)}")
    return name
