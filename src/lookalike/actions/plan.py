"""Keep rules: which file of each duplicate group stays, and what becomes of the others.

A plan is plain JSON meant to be read (and edited) by a person before `apply` runs it. Every
action carries the size, modification time and bytes hash the index saw, so apply can refuse
a file that changed since.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import PlanError
from ..index.store import Index
from ..types import Group
# The keep rules and the choice of the kept file live in keeper.py; imported from here too.
from .keeper import (DEFAULT_RULES, KEEP_RULES, Candidate, choose, candidates,  # noqa: F401
                     is_under, parse_rules)

log = logging.getLogger(__name__)

PLAN_VERSION = 1
ACTIONS = ("quarantine", "hardlink", "symlink", "delete")
LINKS = ("hardlink", "symlink")


@dataclass(frozen=True)
class PlannedAction:
    path: str
    action: str  # quarantine, hardlink, symlink, delete
    target: str  # the kept file
    size: int
    mtime_ns: int
    hash: str


@dataclass(frozen=True)
class PlannedGroup:
    keep: str
    keep_size: int
    keep_mtime_ns: int
    keep_hash: str
    method: str
    reference: list[str] = field(default_factory=list)  # files of the group never touched
    actions: list[PlannedAction] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {path, reason}
    kept: list[str] = field(default_factory=list)  # other files kept by a person's mark
    keep_reason: str = ""  # why `keep` is the kept file, in words (keeper.choose)


@dataclass(frozen=True)
class Plan:
    index: str
    created: str
    rules: list[str]
    action: str
    prefer_path: list[str]
    reference: list[str]
    groups: list[PlannedGroup]
    version: int = PLAN_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def actions(self) -> list[PlannedAction]:
        return [a for g in self.groups for a in g.actions]


def make_plan(index: Index, groups: Sequence[Group], rules: Sequence[str] = DEFAULT_RULES,
              prefer_path: Sequence[str] = (), reference: Sequence[str] = (),
              action: str = "quarantine", marks: Mapping[str, str] | None = None) -> Plan:
    """One kept file per group and `action` for the others.

    Files under `reference` folders are always kept and never acted on; when a group holds
    one, the kept file (the target of links) is the best reference file by `rules`. Else files
    under `prefer_path` folders come first, then `rules` in order, then the path. A link
    action needs a byte copy of the kept file: other members are listed as skipped.

    `marks` (path -> "keep" or "quarantine", a person's triage) come before the rules: files
    marked keep are kept (the best of them is the group's kept file), files marked quarantine
    are not kept unless every file of the group is (then the rules choose, as unmarked)."""
    if action not in ACTIONS:
        raise PlanError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    rules = parse_rules(list(rules))
    marks = marks or {}
    prefer = [os.path.abspath(p) for p in prefer_path]
    refs = [os.path.abspath(p) for p in reference]
    planned = [_plan_group(members, group.method, rules, prefer, refs, action, marks)
               for group, members in zip(groups, candidates(index, groups))
               if len(members) >= 2]
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    log.info("planned %d actions in %d groups", sum(len(g.actions) for g in planned),
             len(planned))
    return Plan(str(Path(index.path).resolve()), created, rules, action, prefer, refs, planned)


def _plan_group(members: list[Candidate], method: str, rules: list[str], prefer: list[str],
                refs: list[str], action: str, marks: Mapping[str, str]) -> PlannedGroup:
    in_ref = [c for c in members if is_under(c.path, refs)]
    marked_keep = [c for c in members if marks.get(c.path) == "keep"]
    unwanted = {c.path for c in members if marks.get(c.path) == "quarantine"}
    keeper = choose(members, rules, prefer, refs, marks)
    keep = next(c for c in members if c.path == keeper.path)
    actions, skipped, kept = [], [], []
    for c in members:
        if c is keep or c in in_ref:
            if c.path in unwanted:
                why = "in a reference folder" if c in in_ref else \
                    "every file of the group was marked quarantine; the keep rules chose it"
                skipped.append({"path": c.path, "reason": f"marked quarantine, but {why}"})
            continue
        if c in marked_keep:
            kept.append(c.path)
            continue
        if action in LINKS and c.hash != keep.hash:
            skipped.append({"path": c.path, "reason": "not a byte copy of the kept file; a "
                            "link needs identical bytes"})
            continue
        actions.append(PlannedAction(c.path, action, keep.path, c.size, c.mtime_ns, c.hash))
    return PlannedGroup(keep.path, keep.size, keep.mtime_ns, keep.hash, method,
                        sorted(c.path for c in in_ref), actions, skipped, kept, keeper.reason)


def write_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Write the plan atomically (a temp file renamed over `path`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    # A name that is not valid UTF-8 keeps its raw bytes in the file (surrogateescape), so
    # the plan names exactly the file the index saw.
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
        json.dump(plan.to_json(), fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_plan(path: str | os.PathLike) -> Plan:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8", errors="surrogateescape"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
        raise PlanError(f"{path} is not a lookalike plan of version {PLAN_VERSION}")
    try:
        groups = [PlannedGroup(**{**g, "actions": [PlannedAction(**a) for a in g["actions"]]})
                  for g in data["groups"]]
        plan = Plan(**{**data, "groups": groups})
    except (KeyError, TypeError) as exc:
        raise PlanError(f"{path} is not a valid plan: {exc}") from None
    for a in plan.actions:
        if a.action not in ACTIONS:
            raise PlanError(f"{path}: unknown action {a.action!r} for {a.path}")
    return plan
