"""lookalike: find duplicate and near-duplicate images.

The public names below, but `scan`, are imported when first used (PEP 562), so `import
lookalike` and a scan's start do not load the report's templates, the downloader or the
actions they do not use: 0.33 -> 0.21 s with bytecode cached (-X importtime).
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata
from typing import TYPE_CHECKING

# The one name that is also a module's: imported now, as before, so that a later import of the
# module lookalike.scan (by the CLI, say) cannot leave the module where the function should be.
from .scan import scan

_WHERE = {
    "apply_plan": "actions", "make_plan": "actions", "read_plan": "actions",
    "undo_run": "actions", "write_plan": "actions",
    "find_duplicates": "api",
    "Collection": "collection",
    "LookalikeError": "errors",
    "open_index": "index.store",
    "list_methods": "methods.registry",
    "stats": "report.analysis",
    "write_report": "report.html",
    "find_groups": "search.dupes", "find_pairs": "search.dupes",
    "search_shards": "search.in_shards",
    "cross_pairs": "search.leakage",
    "SearchOptions": "search.options",
    "query": "search.query",
    "materialise": "search.split", "plan_split": "search.split",
    "ingest": "sources.ingest",
}

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from .actions import apply_plan, make_plan, read_plan, undo_run, write_plan
    from .api import find_duplicates
    from .collection import Collection
    from .errors import LookalikeError
    from .index.store import open_index
    from .methods.registry import list_methods
    from .report.analysis import stats
    from .report.html import write_report
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


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'lookalike' has no attribute {name!r}")
    value = getattr(_import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
