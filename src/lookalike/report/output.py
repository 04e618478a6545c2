"""The output contract of `dupes`, `query` and `find-in` (documented in the README).

Every value comes from the result's own to_dict(), which also feeds the DataFrames
(frames.py) and the HTTP API, so a field is named and formatted in one place. JSON is those
dicts as they are; a CSV names its columns (their order is the contract) and takes each
column's value from them, flattened where a row is one file of a group or one match of a
query.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

from ..search.query import QueryResult
from ..types import Failure, Group, Match

if TYPE_CHECKING:
    from ..search.find_in import FindInResult
    from ..search.partial import PartialPair

GROUP_COLUMNS = ("group", "path", "width", "height", "bytes", "method", "max_distance",
                 "diameter")
PAIR_COLUMNS = ("a", "b", "method", "distance", "score", "transform", "evidence")
QUERY_COLUMNS = ("query", "match", "method", "distance", "score", "transform", "error")
PARTIAL_COLUMNS = ("inner", "outer", "relation", "box", "method", "distance", "inliers",
                   "scale", "rotation", "mirror")
FIND_IN_COLUMNS = ("query", "match", "box", "method", "distance", "inliers", "scale",
                   "rotation", "mirror", "error")
CROSS_PAIR_COLUMNS = ("set_a", "path_a", "set_b", "path_b", "method", "distance", "score",
                      "transform")  # `cross --format csv`
SPLIT_COLUMNS = ("path", "split", "group")  # `split --out FILE.csv`


def csv_text(columns: Sequence[str], rows: Iterable[Mapping]) -> str:
    """`rows` as CSV with `columns` in this order; a column a row lacks is empty, and keys
    that are no column are left out."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def failures_json(failures: Sequence[tuple[str, str, str]]) -> list[dict]:
    """Index.failures() rows (path, stage, reason) as Failure.to_dict shows them."""
    return [Failure(*f).to_dict() for f in failures]


def groups_json(groups: Sequence[Group], failures: Sequence[tuple[str, str, str]]) -> str:
    return json.dumps({"groups": [g.to_dict() for g in groups],
                       "failures": failures_json(failures)}, indent=2)


def group_rows(groups: Sequence[Group]) -> Iterator[dict]:
    """One flat row per file of each group (groups numbered from 1, as given): `group`,
    `group_size`, the file's fields, then the group's (for CSV and DataFrames)."""
    for number, g in enumerate(groups, 1):
        shared = g.to_dict()
        files = shared.pop("files")
        for f in files:
            yield {"group": number, "group_size": len(files)} | f | shared


def groups_csv(groups: Sequence[Group]) -> str:
    return csv_text(GROUP_COLUMNS, group_rows(groups))


def pairs_json(pairs: Sequence[Match]) -> str:
    return json.dumps({"pairs": [m.to_dict() for m in pairs]}, indent=2)


def pairs_csv(pairs: Sequence[Match]) -> str:
    return csv_text(PAIR_COLUMNS, (m.to_dict() for m in pairs))


def query_json(results: Sequence[QueryResult]) -> str:
    return json.dumps({"queries": [r.to_dict() for r in results]}, indent=2)


def query_csv(results: Sequence[QueryResult]) -> str:
    return csv_text(QUERY_COLUMNS, _lookup_rows(results))


def partial_json(pairs: Sequence["PartialPair"]) -> str:
    return json.dumps({"partial": [p.to_dict() for p in pairs]}, indent=2)


def partial_csv(pairs: Sequence["PartialPair"]) -> str:
    return csv_text(PARTIAL_COLUMNS, (_flat(p.to_dict()) for p in pairs))


def find_in_json(results: Sequence["FindInResult"]) -> str:
    return json.dumps({"queries": [r.to_dict() for r in results]}, indent=2)


def find_in_csv(results: Sequence["FindInResult"]) -> str:
    return csv_text(FIND_IN_COLUMNS, _lookup_rows(results))


def _lookup_rows(results: Sequence[QueryResult | "FindInResult"]) -> Iterator[dict]:
    """A query (or find-in) as CSV rows: one for a query that could not be read (its
    `error`), then one per match (`match` is the indexed file's path)."""
    for r in results:
        d = r.to_dict()
        if d["error"] is not None:
            yield {"query": d["path"], "error": d["error"]}
        for m in d["matches"]:
            yield {"query": d["path"], "match": m["path"]} | _flat(m)


def _flat(row: dict) -> dict:
    """A CSV cell for a box: its numbers separated by spaces (empty for none)."""
    if "box" not in row:
        return row
    return row | {"box": " ".join(map(str, row["box"] or []))}
