"""GET /partial: partial copies, the pictures that are a crop of another or were placed inside
a larger one (search/partial.py, as `dupes --partial` and the HTML report find them), with the
frame of the smaller picture in the larger one, by file id so that the UI draws it on the
larger picture's thumbnail.

Finding them verifies every picture's best candidates geometrically: about 14 CPU seconds for
660 pictures. So the search runs once per state of the index, in a thread of its own; a
request waits for it a few seconds at most, and meanwhile answers `computing` (the UI asks
again) rather than hold a connection for minutes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..index.store import Index, display_path
from ..methods.registry import get_spec
from ..report.words import partial_words
from ..search.partial import PartialPair, containment_pairs
from . import models
from .state import ERRORS, StateCache, opened

DEFAULT_PAGE_SIZE = 50
WAIT_S = 5.0  # a request waits this long for a search under way, then says `computing`
# Pairs kept per state of the index, the strongest first: tiles cut from one texture can
# pair with one another by the thousand, far more than anyone pages through.
MAX_PAIRS = 10_000
NO_FEATURES = ("this index has no local features{older}, which finding crops and pictures "
               "placed inside others needs: scan with 'lookalike scan DIR --method local' (or "
               "'--mode thorough') to find them")


class PartialFileOut(BaseModel):
    file_id: int
    path: str
    width: int = Field(description="Pixels, upright (as the thumbnail shows it).")
    height: int


class PartialPairOut(BaseModel):
    """A partial copy, as `dupes --partial --format json` prints it, with the files' ids."""
    number: int = Field(description="Its place in the whole list, from 1.")
    inner: PartialFileOut = Field(description="The smaller picture (the crop).")
    outer: PartialFileOut = Field(description="The larger picture it appears inside.")
    relation: str = Field(description='"inside", or "overlap" (they share a part, neither '
                          "holds the other whole).")
    box: list[float] | None = Field(description="Where inner appears in outer: x0, y0, x1, "
                                    "y1 in outer's pixels.")
    box_fraction: list[float] | None = Field(
        description="The same box as fractions (0 to 1) of outer's width and height, cut to "
                    "outer's frame: what to draw on outer's thumbnail.")
    words: str = Field(description="The pair in plain words (as the HTML report says it).")
    detail: str = Field(description="The evidence in the search's terms.")
    method: str
    distance: int | None
    inliers: int
    scale: float
    rotation: float
    mirror: bool


class PartialPage(BaseModel):
    pairs: list[PartialPairOut]
    page: int
    page_size: int
    total: int = Field(description="Partial copies found, over all pages.")
    pages: int
    capped: bool = Field(description=f"Whether more than {MAX_PAIRS:,} were found (the "
                         "first ones by evidence are listed).")
    reason: str | None = Field(description="Why none can be found in this index, if so.")
    computing: bool = Field(description="The search is still under way (it runs once per "
                            "state of the index): ask again; the list is empty meanwhile.")


@dataclass(frozen=True)
class FoundPartial:
    pairs: list[PartialPairOut]
    capped: bool
    reason: str | None


@dataclass
class _Slot:
    """The search for one state of the index: a StateCache keeps one a state, and carries it
    over a commit that changes no picture (a mark)."""
    future: Future | None = None


class Background:
    """One search per state of the index, each in a thread of its own (a daemon: a server
    that stops does not wait for it), one at a time: while a scan commits, the search under
    way is finished before the next one starts, rather than piling them up. A request waits
    a bounded time. A search that failed is not kept: the next request tries again."""

    def __init__(self, cache: StateCache) -> None:
        self._cache = cache
        self._lock = threading.Lock()
        self._running: Future | None = None

    def result(self, make: Callable[[], FoundPartial], wait: float) -> FoundPartial | None:
        """The value for the index as it is now, or None if it is not ready within `wait`
        seconds (it goes on being computed)."""
        deadline = time.monotonic() + wait
        while True:
            slot = self._cache.get(("partial",), _Slot)
            with self._lock:
                failed = slot.future is not None and slot.future.done() and \
                    slot.future.exception() is not None
                if (slot.future is None or failed) and (
                        self._running is None or self._running.done()):
                    slot.future = self._running = Future()
                    threading.Thread(target=_run, args=(slot.future, make), daemon=True,
                                     name="lookalike-partial").start()
                ours, running = slot.future, self._running
            awaited = ours if ours is not None and not failed else running
            done, _ = futures_wait([awaited], max(0.0, deadline - time.monotonic()))
            if not done:
                return None
            if awaited is ours:
                return ours.result()  # raises what the search raised
            # the search of an earlier state is done: start this state's


def _run(future: Future, make: Callable[[], FoundPartial]) -> None:
    try:
        future.set_result(make())
    except BaseException as exc:  # noqa: BLE001  (handed to the request that waits)
        future.set_exception(exc)


def partial_routes(index_path: Path, cache: StateCache) -> APIRouter:
    """GET /partial over the index at `index_path` (absolute); the searches are kept in
    `cache` (one a state of the index)."""
    router = APIRouter()
    found_by_state = Background(cache)

    def search() -> FoundPartial:
        with opened(index_path) as index:  # a connection of the search's own thread
            return find_partial(index)

    @router.get("/partial", response_model=PartialPage, responses=ERRORS)
    def partial_route(page: int = Query(1, ge=1, le=models.MAX_PAGE),
                      page_size: int = Query(DEFAULT_PAGE_SIZE, ge=1,
                                             le=models.MAX_PAGE_SIZE)) -> PartialPage:
        """Crops and pictures placed inside larger ones (and pictures that share a part),
        containments first, the strongest evidence first, a page at a time; each with the
        frame of the smaller picture in the larger one. Needs the index's `local` features;
        without them the list is empty and `reason` says how to get them. Searched once per
        state of the index; until that is done, `computing` is true: ask again."""
        found = found_by_state.result(search, WAIT_S)
        if found is None:
            return PartialPage(pairs=[], page=page, page_size=page_size, total=0, pages=0,
                               capped=False, reason=None, computing=True)
        start = (page - 1) * page_size
        return PartialPage(pairs=found.pairs[start:start + page_size], page=page,
                           page_size=page_size, total=len(found.pairs),
                           pages=-(-len(found.pairs) // page_size), capped=found.capped,
                           reason=found.reason, computing=False)

    return router


def find_partial(index: Index) -> FoundPartial:
    """Every containment and overlap of the index (the same pictures, "same", are the
    duplicate groups' business), with the live files' ids and sizes, of one state."""
    spec = get_spec("local")
    with index.snapshot():
        if not index.has_signatures(spec):
            older = " of this version" if "local" in index.methods_present() else ""
            return FoundPartial([], False, NO_FEATURES.format(older=older))
        pairs = [p for p in containment_pairs(index) if p.relation != "same"]
        capped = len(pairs) > MAX_PAIRS
        pairs = pairs[:MAX_PAIRS]
        paths = {p.inner for p in pairs} | {p.outer for p in pairs}
        ids = index.live_file_ids(paths)
        sizes = {f.path: (f.width, f.height) for files in index.live_files().values()
                 for f in files if f.path in paths}
    live = [p for p in pairs if p.inner in ids and p.outer in ids]
    return FoundPartial([_pair_out(n, p, ids, sizes) for n, p in enumerate(live, 1)],
                        capped, None)


def box_fraction(box: tuple[float, float, float, float] | None, width: int,
                 height: int) -> list[float] | None:
    """`box` (pixels of a width x height picture) as fractions of it, cut to its frame; None
    when nothing of it is left (as the report draws it: report/page.py partial_cards)."""
    if box is None or width <= 0 or height <= 0:
        return None
    x0, y0, x1, y1 = (max(0.0, min(1.0, v / side))
                      for v, side in zip(box, (width, height, width, height)))
    if x1 <= x0 or y1 <= y0:
        return None
    return [round(v, 4) for v in (x0, y0, x1, y1)]


def _pair_out(number: int, pair: PartialPair, ids: dict[str, int],
              sizes: dict[str, tuple[int, int]]) -> PartialPairOut:
    shown = pair.to_dict()
    inner_size, outer_size = sizes.get(pair.inner, (0, 0)), sizes.get(pair.outer, (0, 0))
    fraction = box_fraction(pair.box, *outer_size)
    return PartialPairOut(
        number=number,
        inner=PartialFileOut(file_id=ids[pair.inner], path=display_path(pair.inner),
                             width=inner_size[0], height=inner_size[1]),
        outer=PartialFileOut(file_id=ids[pair.outer], path=display_path(pair.outer),
                             width=outer_size[0], height=outer_size[1]),
        relation=shown["relation"], box=shown["box"], box_fraction=fraction,
        words=partial_words(pair.relation, fraction and fraction[2] - fraction[0]),
        detail=pair.describe(), method=shown["method"], distance=shown["distance"],
        inliers=shown["inliers"], scale=shown["scale"], rotation=shown["rotation"],
        mirror=shown["mirror"])
