"""lookalike: find duplicate and near-duplicate images."""

from importlib import metadata as _metadata

from .actions import apply_plan, make_plan, read_plan, undo_run, write_plan
from .api import find_duplicates
from .collection import Collection
from .errors import LookalikeError
from .index.store import open_index
from .methods.registry import list_methods
from .report.analysis import stats
from .report.html import write_report
from .scan import scan
from .search.dupes import find_groups, find_pairs
from .search.in_shards import search_shards
from .search.leakage import cross_pairs
from .search.options import SearchOptions
from .search.query import query
from .search.split import materialise, plan_split
from .sources.ingest import ingest

try:  # pyproject.toml holds the version; the installed metadata carries it here
    __version__ = _metadata.version("lookalike")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["Collection", "LookalikeError", "SearchOptions", "apply_plan", "cross_pairs",
           "find_duplicates", "find_groups", "find_pairs", "ingest", "list_methods",
           "make_plan", "materialise", "open_index", "plan_split", "query", "read_plan",
           "scan", "search_shards", "stats", "undo_run", "write_plan", "write_report"]
