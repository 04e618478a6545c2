"""A collection of pictures and its index, as one object a notebook can hold.

    import lookalike
    photos = lookalike.Collection.scan("photos/")   # a scratch index: nothing in photos/
    photos.groups()                                  # duplicate groups, largest first
    photos.query("new.jpg")                          # is this picture already there?
    photos.close()                                   # removes the scratch index

Give `index=` to keep the index (a later `scan` reads only what changed, and the command line
can use it); `Collection.open(path)` opens one made before. Search settings are one
SearchOptions (search/options.py): the collection's own, changed per call by keywords.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .actions.keeper import DEFAULT_RULES, marks_of
from .actions.plan import Plan, make_plan
from .arguments import as_paths
from .errors import LookalikeError
from .index.store import open_index
from .report.analysis import DatasetStats, stats
from .report.html import ReportResult, write_report
from .runners import check_runner
from .scan import ScanSummary, scan
from .search.dupes import find_groups, find_pairs
from .search.leakage import Leakage, cross_pairs
from .search.options import SearchOptions
from .search.query import QueryResult, query
from .search.split import Split, plan_split
from .types import Failure, Group, Match

Paths = str | os.PathLike | Iterable[str | os.PathLike]


class Collection:
    """The pictures of one index and what can be asked of them.

    Every method opens the index for its own call, so a Collection may outlive scans made
    by the command line on the same index, and is cheap to keep around.
    """

    def __init__(self, index: str | os.PathLike, *, options: SearchOptions | None = None,
                 runner: str = "local", ray_address: str | None = None,
                 _scratch: str | None = None) -> None:
        self.path = Path(index)
        self.options = options or SearchOptions()
        # where scans and searches run: "ray" sends them to the cluster at ray_address
        self.runner, self.ray_address = check_runner(runner), ray_address
        self.last_scan: ScanSummary | None = None
        self._scratch = _scratch  # a temporary folder holding the index, removed by close()

    @classmethod
    def open(cls, index: str | os.PathLike, *, options: SearchOptions | None = None,
             runner: str = "local", ray_address: str | None = None) -> "Collection":
        """The collection of an existing index file (IndexNotFoundError when there is none)."""
        open_index(index).close()
        return cls(index, options=options, runner=runner, ray_address=ray_address)

    @classmethod
    def scan(cls, folders: Paths, *, index: str | os.PathLike | None = None,
             mode: str = "fast", workers: int | None = None,
             options: SearchOptions | None = None, runner: str = "local",
             ray_address: str | None = None, **scan_options: Any) -> "Collection":
        """Scan `folders` (one path or several) into `index`, or, without it, into a scratch
        index in the system's temporary folder that close() removes: nothing is written into
        the folders. `mode`: "fast" or "thorough"; `runner` "ray": this scan and the
        collection's later scans and searches run on the Ray cluster at `ray_address` (None:
        start or join a local instance); `scan_options` go to lookalike.scan."""
        roots = as_paths(folders, "folders")
        scratch = None
        if index is None:
            scratch = tempfile.mkdtemp(prefix="lookalike-")
            index = Path(scratch) / "index.db"
        collection = cls(index, options=options, runner=runner, ray_address=ray_address,
                         _scratch=scratch)
        try:
            collection.update(roots, mode=mode, workers=workers, **scan_options)
        except BaseException:
            collection.close()
            raise
        return collection

    def update(self, folders: Paths | None = None, *, mode: str | None = "fast",
               workers: int | None = None, **scan_options: Any) -> ScanSummary:
        """Scan again (the folders of earlier scans when `folders` is None): only new and
        changed files are read; files gone from a scanned folder leave the collection."""
        roots = as_paths(folders, "folders") if folders is not None else self.roots()
        if not roots:
            raise LookalikeError("nothing to scan: give the folders")
        scan_options = {"runner": self.runner, "ray_address": self.ray_address,
                        **scan_options}
        self.last_scan = scan(roots, index_path=self.path, mode=mode, workers=workers,
                              **scan_options)
        return self.last_scan

    def _options(self, settings: Mapping[str, Any]) -> SearchOptions:
        return self.options.replace(**settings) if settings else self.options

    def pairs(self, **settings: Any) -> list[Match]:
        """Every duplicate pair of files, most alike first; `settings` change this call's
        SearchOptions fields (method=, max_distance=, where=, ...)."""
        with open_index(self.path) as index:
            return find_pairs(index, options=self._options(settings), runner=self.runner,
                              ray_address=self.ray_address)

    def groups(self, **settings: Any) -> list[Group]:
        """Duplicate groups, largest first (settings as in pairs)."""
        with open_index(self.path) as index:
            return self._groups(index, settings)

    def _groups(self, index, settings: Mapping[str, Any]) -> list[Group]:
        return find_groups(index, options=self._options(settings), runner=self.runner,
                           ray_address=self.ray_address)

    def query(self, pictures: Paths, *, limit: int = 20, nearest: int | None = None,
              **settings: Any) -> list[QueryResult]:
        """For each of `pictures` (files that need not be in the collection), the files it
        duplicates, closest first; `nearest`: the closest ones whatever their distance."""
        with open_index(self.path) as index:
            return query(index, as_paths(pictures, "pictures"), limit=limit, nearest=nearest,
                         options=self._options(settings))

    def cross(self, sets: Mapping[str, str | os.PathLike], **settings: Any) -> Leakage:
        """Duplicates that cross named sets of folders ({"train": "data/train", ...}): the
        pairs, a summary per pair of sets, and the groups spanning sets."""
        with open_index(self.path) as index:
            return cross_pairs(index, sets, options=self._options(settings))

    def split(self, ratios: Sequence[float], *, names: Sequence[str] | None = None,
              seed: int = 0, stratify: str | None = None,
              folders: Sequence[str | os.PathLike] = (), **settings: Any) -> Split:
        """Assign every file to a split in about `ratios`, keeping each duplicate group in one
        split; `stratify`: a metadata key each of whose values is split in those ratios."""
        with open_index(self.path) as index:
            return plan_split(index, ratios, folders, names, seed, stratify=stratify,
                              options=self._options(settings))

    def plan(self, rules: Sequence[str] = DEFAULT_RULES, *, reference: Sequence[str] = (),
             prefer_path: Sequence[str] = (), action: str = "quarantine",
             use_marks: bool = True, **settings: Any) -> Plan:
        """Which file of each group to keep and what to do with the others (the web UI's keep
        and quarantine marks first, with `use_marks`); nothing is done until
        lookalike.apply_plan(plan, execute=True)."""
        with open_index(self.path) as index:
            groups = self._groups(index, settings)
            marks = marks_of(index, [f.path for g in groups for f in g.files]) \
                if use_marks else {}
            return make_plan(index, groups, rules, prefer_path, reference, action, marks)

    def stats(self, by: str | None = None, **settings: Any) -> DatasetStats:
        """Formats, sizes, unreadable files and duplicate rates, split by a metadata key."""
        with open_index(self.path) as index:
            groups = self._groups(index, settings)
            return stats(index, by=by, groups=groups)

    def report(self, out: str | os.PathLike, **settings: Any) -> ReportResult:
        """Write the offline HTML report of the groups to `out`."""
        return write_report(self.path, out, options=self._options(settings))

    def failures(self) -> list[Failure]:
        """The files that could not be used, each with its reason."""
        with open_index(self.path) as index:
            return [Failure(path, stage, reason) for path, stage, reason in index.failures()]

    def roots(self) -> list[str]:
        """The folders and files scanned into this collection so far."""
        with open_index(self.path) as index:
            return index.scanned_roots()

    def __len__(self) -> int:
        with open_index(self.path) as index:
            return sum(len(files) for files in index.live_files().values())

    def close(self) -> None:
        """Remove the scratch index (a kept index stays where it is)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "scratch index" if self._scratch else str(self.path)
        return f"<lookalike.Collection {where}>"
