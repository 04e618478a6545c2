"""The routes that describe the collection: GET /groups (duplicate groups, a page at a time,
with how each file matched and its mark) and GET /info (files, methods, metadata keys)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable

from fastapi import APIRouter, Query

from ..actions.keeper import DEFAULT_RULES, KEEP_RULES, Keeper, keepers
from ..errors import LookalikeError
from ..index.store import Index, display_path
from ..methods.registry import registration
from ..report.words import evidence_words
from ..search.evidence import Evidence
from ..sources.remote import is_remote
from ..types import Group
from . import models
from .state import ERRORS, GroupCache, flagged_groups, opened, parse_where, select_groups

META_VALUES = 50  # values of each metadata key listed by GET /info

IndexInfo = Callable[[Index], models.InfoOut]


def index_info(cache: GroupCache, index_path: Path, token: bool) -> IndexInfo:
    """GET /info's answer for an open index, kept in `cache` until the index changes (a
    server started with warm=True computes it at once)."""
    def info(index: Index) -> models.InfoOut:
        return cache.get(("info",), lambda: _info(index, index_path, token))

    return info


def group_routes(index_path: Path, cache: GroupCache, info: IndexInfo) -> APIRouter:
    """GET /groups and GET /info over the index at `index_path` (absolute)."""
    router = APIRouter()

    @router.get("/groups", response_model=models.GroupsPage, responses=ERRORS)
    def groups_route(page: int = Query(1, ge=1, le=models.MAX_PAGE),
                     page_size: int = Query(50, ge=1, le=models.MAX_PAGE_SIZE),
                     min_size: int = Query(2, ge=2, le=models.MAX_GROUP_SIZE),
                     max_size: int | None = Query(None, ge=2, le=models.MAX_GROUP_SIZE),
                     method: str = Query("auto", max_length=models.MAX_NAME),
                     where: list[models.Where] = Query(
                         [], max_length=models.MAX_WHERE, description="KEY:VALUE (or "
                         "KEY=VALUE) of the files' metadata; repeat: all must hold"),
                     health: models.HealthCheck | None = Query(
                         None, description="Only the groups with a file this health check "
                         "flags (GET /health)."),
                     keep: list[models.KeepRule] = Query(
                         list(DEFAULT_RULES), max_length=len(models.KEEP_RULES),
                         description="The keep rules, in order, that choose each group's "
                         "keeper (as POST /plan's rules); the files' marks come first.")
                     ) -> models.GroupsPage:
        """Duplicate groups, largest first, a page at a time, with how each file matched
        (in words too), the marks a person made and the file a plan would keep, and why.
        Pairs marked not-duplicate are left apart."""
        conditions = parse_where(where)
        with opened(index_path) as index:
            found = cache.groups(index, method, conditions)
            chosen = flagged_groups(cache, index, select_groups(found.groups, min_size,
                                                                max_size), health)
            start = (page - 1) * page_size
            shown = chosen[start:start + page_size]
            ids = index.live_file_ids(f.path for g in shown for f in g.files)
            marks = {i: m.mark for i, m in index.marks(ids.values()).items()}
            # Per page, not per cached search: the keeper follows marks, which a person
            # changes without changing the groups.
            kept = keepers(index, shown, keep)
            formats = {path: state[4] for path, state in index.file_states(
                [f.path for g in shown for f in g.files]).items()}
        return models.GroupsPage(
            groups=[_group_out(g, start + n, ids, marks, found.evidence, keeper, formats)
                    for n, (g, keeper) in enumerate(zip(shown, kept), 1)],
            page=page, page_size=page_size, total=len(chosen),
            pages=-(-len(chosen) // page_size))

    @router.get("/info", response_model=models.InfoOut, responses=ERRORS)
    def info_route() -> models.InfoOut:
        """What the index holds: files, methods, metadata keys (for the UI's filters)."""
        with opened(index_path) as index:
            return info(index)

    return router


def _group_out(group: Group, number: int, ids: dict[str, int], marks: dict[int, str],
               evidence: dict[str, Evidence], keeper: Keeper | None = None,
               formats: dict[str, str] | None = None) -> models.GroupOut:
    """Group.to_dict names the fields; the API adds ids, evidence (in words too), marks,
    formats, presence and the keeper, and leaves out the files gone from the index since the
    groups were computed."""
    shown = group.to_dict()
    formats = formats or {}
    files = []
    for f, file_shown in zip(group.files, shown.pop("files")):
        if f.path not in ids:
            continue
        ev = evidence.get(f.path)
        files.append(models.GroupFileOut(
            file_id=ids[f.path], **file_shown, method=ev and ev.method,
            distance=ev and ev.distance, transform=ev and ev.transform,
            from_first=ev and ev.from_first, mark=marks.get(ids[f.path]),
            present=is_remote(f.path) or os.path.isfile(f.path),  # an object: not asked
            format=formats.get(f.path) or None,
            score=ev and ev.score, words=ev and _words(f.path, ev, formats)))
    return models.GroupOut(number=number, files=files, keeper=_keeper_out(keeper, ids),
                           **shown)


def _words(path: str, ev: Evidence, formats: dict[str, str]) -> str:
    """'mirrored copy of a.png · similarity 97%', as the `dupes` table says it."""
    return evidence_words(ev, (formats.get(path, ""), formats.get(ev.other, "")))


def _keeper_out(keeper: Keeper | None, ids: dict[str, int]) -> models.KeeperOut | None:
    if keeper is None or keeper.path not in ids:
        return None
    return models.KeeperOut(
        file_id=ids[keeper.path], path=display_path(keeper.path), reason=keeper.reason,
        best={value: [ids[p] for p in paths if p in ids]
              for value, paths in keeper.best.items()})


def matches(method: str) -> bool:
    """Whether `method` finds duplicates, for the UI's method menus: not a measurement stored
    for checks (MethodSpec.matches: "colour", "health"). A name no longer registered stays
    offered (as before), and a family (embed@MODEL) is a matcher."""
    try:
        entry = registration(method)
        if entry.variants:
            return True
        spec = entry.spec(None)
    except LookalikeError:
        return True
    return spec.matches


def _info(index: Index, index_path: Path, token: bool) -> models.InfoOut:
    values: dict[str, Counter] = {}
    for meta in index.file_meta().values():
        for key, value in meta.items():
            if value is not None and value != "":
                values.setdefault(key, Counter())[str(value).lower() if isinstance(
                    value, bool) else str(value)] += 1
    files = sum(len(v) for v in index.live_files().values())
    return models.InfoOut(index=display_path(str(index_path)), files=files,
                          methods=["auto", *filter(matches, index.methods_present())],
                          token=token, keep_rules=list(KEEP_RULES),
                          default_keep_rules=list(DEFAULT_RULES),
                          meta={k: [v for v, _ in c.most_common(META_VALUES)]
                                for k, c in sorted(values.items())})
