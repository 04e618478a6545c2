"""The routes that act: decisions (keep / quarantine / not a duplicate), plans built from the
groups, the keep rules and those decisions, apply (a dry run unless asked), runs and undo.

As everywhere in the service, files are named by their id in the index only. The folders a
plan may prefer or treat as references must be folders the index holds files in (GET
/folders), plans are written by the server itself (a client names one by its id), and runs are
named by id: no request value is ever used as a path. The web never deletes: a plan made here
only quarantines, into the index's quarantine folder, with the journal `lookalike undo` uses.
"""

from __future__ import annotations

import os
import re
import secrets
from collections import Counter
from itertools import combinations
from pathlib import Path

from fastapi import APIRouter, Query

from ..actions.apply import apply_plan, quarantine_for
from ..actions.follow import after_apply, after_undo
from ..actions.journal import new_run_id
from ..actions.keeper import marks_of
from ..actions.plan import Plan, make_plan, read_plan, write_plan
from ..actions.undo import find_runs, run_summary, undo_run
from ..index.decisions import MARKS
from ..index.store import Index, display_path
from ..sources.remote import is_remote
from . import models
from .limits import Refused
from .state import (ERRORS, GroupCache, StateCache, WriteLock, flagged_groups, live, opened,
                    parse_where, select_groups, writing)

PLANS_DIR = "plans"  # next to the index: the plans this server made, by id
PLANS_KEPT = 20  # the newest plans kept there (undo needs none: a run's journal says it all)
SHOWN_DECISIONS = 500  # GET /decisions lists this many of each kind by default


def review_routes(index_path: Path, writes: WriteLock, cache: GroupCache,
                  *others: StateCache) -> APIRouter:
    """The routes of this module over the index at `index_path` (absolute); `writes` is the
    server's one write lock (shared with POST /index: a second write waits instead of
    meeting the writer lock, and 409 is left for a scan in another process); `cache` holds
    the groups, `others` more values computed from the index (kept over a mark)."""
    router = APIRouter(responses=ERRORS)

    @router.post("/decisions", response_model=models.DecisionOut, tags=["review"])
    async def decide_route(body: models.DecisionIn) -> models.DecisionOut:
        """Record a decision on files (per file, or a whole group: give all its ids)."""
        return await writes.run(_decide, index_path, body, (cache, *others))

    @router.get("/decisions", response_model=models.DecisionsOut, tags=["review"])
    def decisions_route(limit: int = Query(SHOWN_DECISIONS, ge=1, le=10_000)
                        ) -> models.DecisionsOut:
        """The marks and pair decisions made so far, newest first."""
        with opened(index_path) as index:
            return _decisions(index, limit)

    @router.get("/folders", response_model=models.FoldersOut, tags=["review"])
    def folders_route() -> models.FoldersOut:
        """Folders of the indexed files: what a plan may prefer or keep as references."""
        with opened(index_path) as index:
            folders = _folders(index, cache)
        return models.FoldersOut(folders=[models.FolderOut(path=shown, files=count)
                                          for shown, (_, count) in folders.items()])

    @router.post("/plan", response_model=models.PlanOut, tags=["actions"])
    def plan_route(body: models.PlanIn) -> models.PlanOut:
        """Build a plan (quarantine only) from the groups of these filters, the keep rules
        and the files' marks; it is stored next to the index and nothing is touched."""
        return _plan(index_path, cache, body)

    @router.post("/apply", response_model=models.ApplyOut, tags=["actions"])
    async def apply_route(body: models.ApplyIn) -> models.ApplyOut:
        """Run a plan: a dry run unless `execute` is true. Files are re-checked just before
        they are moved; moved files go to the index's quarantine folder, with a journal."""
        return await writes.run(_apply, index_path, body)

    @router.get("/runs", response_model=models.RunsOut, tags=["actions"])
    def runs_route() -> models.RunsOut:
        """The apply runs of the index's quarantine folder, newest first."""
        runs = [run_summary(r) for r in reversed(find_runs(_quarantine(index_path)))]
        return models.RunsOut(runs=[models.RunOut(**{k: r[k] for k in models.RunOut.model_fields})
                                    for r in runs])

    @router.post("/undo", response_model=models.UndoOut, tags=["actions"])
    async def undo_route(body: models.UndoIn) -> models.UndoOut:
        """Put back everything a run moved (safe to repeat)."""
        return await writes.run(_undo, index_path, body.run)

    return router


# --- decisions -------------------------------------------------------------------------------

def _decide(index_path: Path, body: models.DecisionIn, caches: tuple[StateCache, ...]
            ) -> models.DecisionOut:
    ids = list(dict.fromkeys(body.file_ids))
    others = [i for i in dict.fromkeys(body.others) if i not in ids]
    with writing(index_path) as index:
        before = caches[0].version()
        contents = _contents(index, ids + others)
        marked = pairs = 0
        if body.decision in MARKS:
            marked = index.set_marks(ids, body.decision)
        else:
            wanted = [(contents[a], contents[b]) for a in ids for b in others] if others else \
                [(contents[a], contents[b]) for a, b in combinations(ids, 2)]
            if body.decision == "clear":
                marked = index.set_marks(ids, None)
                pairs = index.forget_decisions(wanted)
            else:
                if not any(a != b for a, b in wanted):
                    raise Refused(422, "not-duplicate needs files of different contents: "
                                  "byte copies are always duplicates")
                pairs = index.record_decisions(wanted, "not-duplicate")
        if not pairs:  # marks only: the groups (and the rest cached) are what they were
            after = caches[0].version()
            for cache in caches:
                cache.carry_over(before, after)
    return models.DecisionOut(decision=body.decision, file_ids=ids, marked=marked, pairs=pairs)


def _contents(index: Index, file_ids: list[int]) -> dict[int, int]:
    """file id -> content id, for live files; 404 for any other id."""
    paths = {file_id: live(index, file_id).path for file_id in file_ids}
    states = index.file_states(list(paths.values()))
    return {file_id: states[path][2] for file_id, path in paths.items()}


def _decisions(index: Index, limit: int) -> models.DecisionsOut:
    marks = list(index.marks().values())
    pairs = index.pair_decisions()
    files = index.files_of_contents([c for p in pairs[:limit] for c in (p.content_a,
                                                                        p.content_b)])
    shown_marks = []
    for mark in marks[:limit]:
        record = index.file_record(mark.file_id)
        shown_marks.append(models.MarkOut(file_id=mark.file_id, mark=mark.mark,
                                          path=display_path(record.path) if record else "?",
                                          created=mark.created))
    shown_pairs = []
    for pair in pairs[:limit]:
        a, b = files.get(pair.content_a), files.get(pair.content_b)
        shown_pairs.append(models.PairOut(
            file_a=a and a[0], path_a=a and display_path(a[1]), file_b=b and b[0],
            path_b=b and display_path(b[1]), decision=pair.decision, created=pair.created))
    return models.DecisionsOut(marks=shown_marks, pairs=shown_pairs, total_marks=len(marks),
                               total_pairs=len(pairs))


# --- plans -----------------------------------------------------------------------------------

def _folders(index: Index, cache: GroupCache) -> dict[str, tuple[str, int]]:
    """display path -> (path, live files under it): every folder holding indexed files, and
    its parents down to the folder they all share."""
    def make() -> dict[str, tuple[str, int]]:
        # URLs (s3://...) have no folders here: plans act on local files only
        direct = Counter(os.path.dirname(f.path) for files in index.live_files().values()
                         for f in files if not is_remote(f.path))
        common = os.path.commonpath(list(direct)) if direct else ""
        under: Counter = Counter()
        for folder, count in direct.items():
            while True:
                under[folder] += count
                if len(folder) <= len(common) or folder == os.path.dirname(folder):
                    break
                folder = os.path.dirname(folder)
        return {display_path(f): (f, n) for f, n in sorted(under.items())}

    return cache.get(("folders",), make)


def _chosen_folders(folders: dict[str, tuple[str, int]], asked: list[str], what: str
                    ) -> list[str]:
    unknown = [a for a in asked if a not in folders]
    if unknown:
        raise Refused(422, f"{what}: {', '.join(unknown)} is not a folder of the index (see "
                      "GET /folders)")
    return [folders[a][0] for a in asked]


def _plan(index_path: Path, cache: GroupCache, body: models.PlanIn) -> models.PlanOut:
    where = parse_where(body.where)
    with opened(index_path) as index:
        folders = _folders(index, cache)
        prefer = _chosen_folders(folders, body.prefer_path, "prefer_path")
        reference = _chosen_folders(folders, body.reference, "reference")
        found = cache.groups(index, body.method, where)
        chosen = flagged_groups(cache, index, select_groups(found.groups, body.min_size,
                                                            body.max_size), body.health)
        ids = index.live_file_ids(f.path for g in chosen for f in g.files)
        marks = marks_of(index, list(ids)) if body.use_marks else {}
        plan = make_plan(index, chosen, body.rules, prefer, reference, "quarantine", marks)
    plan_id = f"{new_run_id()}-{secrets.token_hex(3)}"
    folder = index_path.parent / PLANS_DIR
    folder.mkdir(exist_ok=True)
    write_plan(plan, folder / f"{plan_id}.json")
    for old in sorted(folder.glob("*.json"))[:-PLANS_KEPT]:  # ids sort by time
        old.unlink(missing_ok=True)
    return _plan_out(plan_id, plan, ids)


def _plan_out(plan_id: str, plan: Plan, ids: dict[str, int]) -> models.PlanOut:
    def ref(path: str, size: int | None = None, reason: str | None = None) -> models.PlanFileOut:
        return models.PlanFileOut(file_id=ids.get(path), path=display_path(path), bytes=size,
                                  reason=reason)

    groups = [models.PlannedGroupOut(
        keep=ref(g.keep, g.keep_size, g.keep_reason),  # as the views say it (actions/keeper.py)
        kept=[ref(p, reason="marked keep") for p in g.kept],
        reference=[ref(p, reason="in a reference folder") for p in g.reference if p != g.keep],
        quarantine=[ref(a.path, a.size) for a in g.actions],
        skipped=[ref(s["path"], reason=s["reason"]) for s in g.skipped], method=g.method)
        for g in plan.groups]
    return models.PlanOut(plan_id=plan_id, created=plan.created, rules=plan.rules,
                          prefer_path=[display_path(p) for p in plan.prefer_path],
                          reference=[display_path(p) for p in plan.reference], groups=groups,
                          actions=len(plan.actions), bytes=sum(a.size for a in plan.actions))


def _stored_plan(index_path: Path, plan_id: str) -> Plan:
    """A plan this server wrote, by id (the id's pattern admits no path separator)."""
    if not re.fullmatch(models.PLAN_ID[1:-1], plan_id):
        raise Refused(422, "not a plan id")
    path = index_path.parent / PLANS_DIR / f"{plan_id}.json"
    if not path.is_file():
        raise Refused(404, f"no plan {plan_id}; build one with POST /plan")
    plan = read_plan(path)
    if Path(plan.index) != index_path.resolve():
        raise Refused(409, f"plan {plan_id} was made for another index")
    if any(a.action != "quarantine" for a in plan.actions):
        raise Refused(422, f"plan {plan_id} holds actions other than quarantine; the web "
                      "only quarantines (use lookalike apply)")
    return plan


def _apply(index_path: Path, body: models.ApplyIn) -> models.ApplyOut:
    plan = _stored_plan(index_path, body.plan_id)
    # the plan is this index's (_stored_plan): its default quarantine is the index's
    report = apply_plan(plan, execute=body.execute)
    with opened(index_path) as index:
        ids = index.live_file_ids(o.path for o in report.outcomes)
    after_apply(report, index_path)  # a scan holding the index: its next scan updates it
    counts = Counter(o.status for o in report.outcomes)
    return models.ApplyOut(
        plan_id=body.plan_id, executed=report.executed, run=report.run_id,
        counts={s: counts.get(s, 0) for s in ("would", "done", "skipped", "failed")},
        outcomes=[models.OutcomeOut(file_id=ids.get(o.path), path=display_path(o.path),
                                    action=o.action, status=o.status, reason=o.reason)
                  for o in report.outcomes])


def _quarantine(index_path: Path) -> Path:
    return quarantine_for(index_path.resolve())


def _undo(index_path: Path, run: str) -> models.UndoOut:
    runs = {p.name: p for p in find_runs(_quarantine(index_path))}
    if run not in runs:
        raise Refused(404, f"no run {run!r}; GET /runs lists them")
    report = undo_run(runs[run])
    after_undo(report, runs[run])
    with opened(index_path) as index:
        ids = index.live_file_ids(report.restored)
    return models.UndoOut(
        run=report.run_id, unchanged=len(report.unchanged),
        restored=[models.PlanFileOut(file_id=ids.get(p), path=display_path(p))
                  for p in report.restored],
        problems=[models.UndoProblemOut(path=display_path(p), reason=r)
                  for p, r in report.problems])
