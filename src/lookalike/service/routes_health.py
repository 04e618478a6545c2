"""GET /health: the dataset health checks (report/health.py, as `lookalike stats` counts
them) with the files each flags, by id so that the UI shows their thumbnails."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query

from ..index.store import display_path
from ..report.health import CHECKS, MAX_LISTED, CheckResult
from . import models
from .state import ERRORS, GroupCache, HealthState, opened

# Why a check that looked at no file could not run, by what it needs (health.Check.needs).
NOT_RUN = {
    "health": "no picture has health measurements: 'lookalike scan DIR --method health' "
              "stores them",
    "size": "no picture size is known",
    "embed": "the index holds no embeddings: 'lookalike scan DIR --mode thorough' (or "
             "'--method embed') stores them",
}
NEEDS = {c.name: c.needs for c in CHECKS}


def health_routes(index_path: Path, cache: GroupCache) -> APIRouter:
    """GET /health over the index at `index_path` (absolute)."""
    router = APIRouter()

    @router.get("/health", response_model=models.HealthOut, responses=ERRORS)
    def health_route(check: models.HealthCheck | None = Query(
                         None, description="Only this check (default: all)."),
                     limit: int = Query(100, ge=1, le=MAX_LISTED,
                                        description="Flagged files listed per check."),
                     offset: int = Query(0, ge=0, le=MAX_LISTED,
                                         description="Flagged files skipped per check "
                                         "(the worst first).")) -> models.HealthOut:
        """Blurry, dark, bright, blank, low-information, extreme-aspect, tiny, huge and
        outlier pictures: per check its threshold, how many files it looked at and flagged,
        and the flagged files, the worst first, a page at a time. Computed once per state of
        the index."""
        with opened(index_path) as index:
            state = cache.health(index)
        report = state.report
        return models.HealthOut(
            images=report.images, measured=report.measured, by=report.by,
            notes=list(report.notes),
            checks=[_check_out(result, state, limit, offset)
                    for name, result in report.checks.items() if check in (None, name)])

    return router


def _check_out(result: CheckResult, state: HealthState, limit: int,
               offset: int) -> models.HealthCheckOut:
    listed = [f for f in result.flagged if f.path in state.ids]  # still live
    return models.HealthCheckOut(
        name=result.name, value=result.value, flags=result.flags,
        threshold=None if result.threshold < 0 else result.threshold,
        checked=result.checked, count=result.count,
        note=NOT_RUN[NEEDS[result.name]] if result.checked == 0 else None,
        by_category=result.by_category, listed=len(listed),
        files=[models.HealthFileOut(file_id=state.ids[f.path], path=display_path(f.path),
                                    value=f.value)
               for f in listed[offset:offset + limit]])
