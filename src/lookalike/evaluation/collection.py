"""The truth of a collection with planted duplicates (bench/make_collection.py's truth.json):
which pairs of files are duplicates and by what transform, and why a wrong pair is wrong.

    {"groups": [{"original": a, "copies": [{"file": b, "transform": t}, ...]}, ...],
     "originals": {a: {"source": ..., ...}, ...},
     "hard_negatives": [{"a": x, "b": y, "kind": "sibling" | "lookalike" | ...}, ...]}

Names are file names inside the collection's images folder. score.py reads the same file as
labels for `lookalike eval`; this is the richer view the benchmarks score against.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

from ..errors import EvaluationError

COPY_COPY = "copy-copy"  # the "transform" of a pair of two copies of one original


def read_json(path: str | os.PathLike, what: str) -> object:
    """A JSON file decoded, or EvaluationError naming `what` it should hold and why not."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise EvaluationError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{what} {path}: not JSON: {exc}") from None


def read_collection_truth(path: str | os.PathLike) -> dict:
    """truth.json decoded, or EvaluationError saying why it cannot be read."""
    data = read_json(path, "the truth")
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise EvaluationError(f'{path} holds no "groups" list (not a make_collection truth)')
    return data


def group_members(group: dict) -> list[str]:
    """A planted group's files: its original first, then its copies."""
    return [group["original"], *(c["file"] for c in group["copies"])]


def group_pairs(data: dict) -> set[frozenset[str]]:
    """Every pair of files inside one planted group (original-copy and copy-copy)."""
    return {frozenset(p) for g in data["groups"] for p in combinations(group_members(g), 2)}


class PlantedTruth:
    """The verdict on pairs of a planted collection's files, limited to `files` (groups with
    a member outside it are left out whole, so a subset is scored fairly)."""

    def __init__(self, data: dict, files: Iterable[str]) -> None:
        files = set(files)
        self.group_of: dict[str, str] = {}  # file -> its group's original
        self.transform: dict[str, str] = {}  # copy -> transform
        self.pairs: dict[frozenset, str] = {}  # truth pair -> transform or COPY_COPY
        for group in data["groups"]:
            members = group_members(group)
            if not set(members) <= files:
                continue
            for member in members:
                self.group_of[member] = group["original"]
            for copy in group["copies"]:
                self.transform[copy["file"]] = copy["transform"]
                self.pairs[frozenset((group["original"], copy["file"]))] = copy["transform"]
            for a, b in combinations([c["file"] for c in group["copies"]], 2):
                self.pairs[frozenset((a, b))] = COPY_COPY
        for name in files:
            self.group_of.setdefault(name, name)
        self.originals: dict[str, dict] = data.get("originals", {})
        self.negatives: dict[frozenset, str] = {}  # listed hard negatives -> kind
        for pair in data.get("hard_negatives", []):
            kind = "sibling" if pair["kind"] == "sibling" else "lookalike"
            self.negatives.setdefault(frozenset((pair["a"], pair["b"])), kind)

    def group(self, name: str) -> set[str]:
        """`name` and every file planted with it."""
        original = self.group_of.get(name, name)
        return {f for f, g in self.group_of.items() if g == original} | {name}

    def wrong_kind(self, a: str, b: str) -> str:
        """Why a found pair that is no duplicate looked like one: a listed hard negative
        ("sibling", "lookalike"), two crops of one source ("same source"), or "other"."""
        original_a, original_b = self.group_of[a], self.group_of[b]
        listed = self.negatives.get(frozenset((original_a, original_b)))
        if listed:
            return listed
        source_a = self.originals.get(original_a, {}).get("source")
        if source_a and source_a == self.originals.get(original_b, {}).get("source"):
            return "same source"
        return "other"

    def score(self, found: Iterable[tuple[str, str]]) -> dict:
        """Precision and recall of `found` pairs, recall per transform, and the wrong pairs
        by kind. An empty side scores 1.0, as the benchmarks have always printed it."""
        found_set = {frozenset(p) for p in found if p[0] != p[1]}
        right = found_set & self.pairs.keys()
        by_kind = Counter(self.pairs[p] for p in right)
        all_kinds = Counter(self.pairs.values())
        wrong = found_set - self.pairs.keys()
        return {"found": len(found_set), "right": len(right),
                "precision": len(right) / len(found_set) if found_set else 1.0,
                "recall": len(right) / len(self.pairs) if self.pairs else 1.0,
                "recall_by_transform": {k: by_kind[k] / n for k, n in all_kinds.items()},
                "wrong_by_kind": dict(Counter(self.wrong_kind(*sorted(p)) for p in wrong)),
                "wrong": sorted(tuple(sorted(p)) for p in wrong)}
