"""Each result type has one to_dict(), and JSON, CSV, DataFrames and the API all take their
fields from it: a CSV column or an API field that no to_dict names would be empty or missing,
so these tests fail when one of them drifts from the result's own dict."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from lookalike.index.paths import display_path
from lookalike.report import output
from lookalike.scan import ScanSummary
from lookalike.search.find_in import FindInResult, PartialMatch
from lookalike.search.leakage import CrossPair, LeakGroup, Leakage, SetLeak
from lookalike.search.partial import PartialPair
from lookalike.search.query import QueryResult
from lookalike.search.split import Assigned, Split
from lookalike.search.verify import Verification
from lookalike.types import Failure, FileInfo, Group, Match, Skipped

# A name that is not UTF-8: every to_dict shows it as \xNN, as display_path does.
BAD = os.fsdecode(b"/data/caf\xe9.jpg")
SHOWN_BAD = "/data/caf\\xe9.jpg"
FILES = (FileInfo("/data/a.jpg", 640, 480, 1000), FileInfo(BAD, 32, 16, 20))
GROUP = Group(FILES, "phash", 6, "complete", 9, ("/data/a.jpg", BAD, 9), False)
PAIRS = [Match("/data/a.jpg", BAD, "phash", 3, 0.953125, "rot90"),
         Match(BAD, "/data/b.jpg", "pdq", 0, 1.0, "identity", "pdq+local")]
FIT = Verification(True, 40, 55, 0.498765, 12.3456, True, (10.04, 20.06, 300.0, 400.56))
QUERIES = [QueryResult("/q/one.jpg", tuple(PAIRS)),
           QueryResult(BAD, (), Failure(BAD, "decode", "not a picture"))]
FOUND = [FindInResult("/q/page.jpg", (PartialMatch(BAD, FIT),
                                      PartialMatch("/data/c.jpg", FIT, "pdq", 12))),
         FindInResult("/q/gone.jpg", (), Failure("/q/gone.jpg", "read", "no such file"))]
PARTIAL = [PartialPair("/data/crop.jpg", BAD, "inside", (1.0, 2.0, 3.0, 4.0), FIT),
           PartialPair("/data/a.jpg", "/data/b.jpg", "same", None, FIT, "phash", 2)]


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_printable_path_is_display_path():
    assert display_path(BAD) == SHOWN_BAD
    assert Failure(BAD, "read", "x").to_dict()["path"] == SHOWN_BAD
    assert Skipped(BAD, "fifo").to_dict() == {"path": SHOWN_BAD, "reason": "fifo"}
    assert FILES[1].to_dict()["path"] == SHOWN_BAD


def test_match_to_dict_rounds_the_score_and_names_its_evidence():
    assert PAIRS[0].to_dict() == {"a": "/data/a.jpg", "b": SHOWN_BAD, "method": "phash",
                                  "distance": 3, "score": 0.9531, "transform": "rot90",
                                  "evidence": "phash"}
    assert PAIRS[1].to_dict()["evidence"] == "pdq+local"


def test_group_to_dict_holds_its_files_and_weakest_pair():
    d = GROUP.to_dict()
    assert list(d) == ["files", "method", "max_distance", "linkage", "diameter", "weakest",
                       "fully_linked"]
    assert d["files"] == [f.to_dict() for f in FILES]
    assert d["weakest"] == {"a": "/data/a.jpg", "b": SHOWN_BAD, "distance": 9}
    assert Group(FILES, "bytes", 0).to_dict()["weakest"] is None


def test_json_is_the_to_dicts():
    assert json.loads(output.groups_json([GROUP], [(BAD, "read", "gone")])) == {
        "groups": [GROUP.to_dict()], "failures": [Failure(BAD, "read", "gone").to_dict()]}
    assert json.loads(output.pairs_json(PAIRS)) == {"pairs": [m.to_dict() for m in PAIRS]}
    assert json.loads(output.query_json(QUERIES)) == {
        "queries": [r.to_dict() for r in QUERIES]}
    assert json.loads(output.find_in_json(FOUND)) == {"queries": [r.to_dict() for r in FOUND]}
    assert json.loads(output.partial_json(PARTIAL)) == {
        "partial": [p.to_dict() for p in PARTIAL]}


def test_query_to_dict_names_each_match_by_the_indexed_file():
    d = QUERIES[0].to_dict()
    assert d["error"] is None and d["path"] == "/q/one.jpg"
    assert d["matches"][0] == {"path": SHOWN_BAD, "method": "phash", "distance": 3,
                               "score": 0.9531, "transform": "rot90", "evidence": "phash"}
    assert QUERIES[1].to_dict() == {"path": SHOWN_BAD, "matches": [],
                                    "error": "not a picture"}


@pytest.mark.parametrize("columns, text, rows", [
    (output.PAIR_COLUMNS, output.pairs_csv(PAIRS), [m.to_dict() for m in PAIRS]),
    (output.PARTIAL_COLUMNS, output.partial_csv(PARTIAL), [p.to_dict() for p in PARTIAL]),
])
def test_csv_cells_are_the_to_dict_values(columns, text, rows):
    read = _csv(text)
    assert list(read[0]) == list(columns)
    for got, d in zip(read, rows, strict=True):
        for column in columns:
            value = d[column]
            if column == "box":
                value = " ".join(map(str, value or []))
            assert got[column] == ("" if value is None else str(value)), column


def test_group_csv_is_one_row_per_file_from_the_group_dict():
    read = _csv(output.groups_csv([GROUP]))
    d = GROUP.to_dict()
    assert [r["path"] for r in read] == [f["path"] for f in d["files"]]
    for row, f in zip(read, d["files"]):
        assert row["group"] == "1"
        for column in output.GROUP_COLUMNS[1:]:
            assert row[column] == str(f[column] if column in f else d[column])


def test_lookup_csv_rows_come_from_the_result_dicts():
    read = _csv(output.query_csv(QUERIES))
    assert [(r["query"], r["match"], r["error"]) for r in read] == [
        ("/q/one.jpg", SHOWN_BAD, ""), ("/q/one.jpg", "/data/b.jpg", ""),
        (SHOWN_BAD, "", "not a picture")]
    assert read[0]["score"] == "0.9531"
    found = _csv(output.find_in_csv(FOUND))
    assert found[0]["box"] == "10.0 20.1 300.0 400.6" and found[0]["scale"] == "0.4988"
    assert found[1]["distance"] == "12" and found[2]["error"] == "no such file"


def test_leakage_and_split_dicts_feed_their_csv():
    from lookalike.cli.leakage import leakage_csv, leakage_json, split_csv, split_json

    pair = CrossPair("train", "/d/tr/a.jpg", "test", BAD, "phash", 2, 0.96875, "mirror")
    found = Leakage({"train": "/d/tr", "test": "/d/te"}, {"train": 4, "test": 2}, [pair],
                    [SetLeak("train", "test", 1, 3)],
                    [LeakGroup((("train", "/d/tr/a.jpg"), ("test", BAD)), "phash")])
    d = json.loads(leakage_json(found))
    assert d == found.to_dict()
    assert d["summary"] == [{"earlier": "train", "later": "test", "leaked": 1,
                             "later_files": 3, "fraction": 0.333333}]
    assert d["groups"][0] == {"sets": ["train", "test"], "method": "phash",
                              "files": [{"set": "train", "path": "/d/tr/a.jpg"},
                                        {"set": "test", "path": SHOWN_BAD}]}
    assert _csv(leakage_csv(found)) == [{k: str(v) for k, v in pair.to_dict().items()}]

    split = Split(("train", "test"), (0.5, 0.5),
                  [Assigned("/d/a.jpg", "train", 1, "/d"), Assigned(BAD, "test", 2)], 1)
    assert json.loads(split_json(split)) == split.to_dict()
    assert split.to_dict()["splits"] == {"train": 1, "test": 1}
    assert _csv(split_csv(split)) == [{k: str(v) for k, v in a.to_dict().items()}
                                      for a in split.files]


def test_scan_summary_to_dict_adds_the_files_to_the_counts(tmp_path: Path):
    summary = ScanSummary(1, tmp_path / "index.db", seen=3, scanned=2,
                          failures=[Failure(BAD, "decode", "truncated")],
                          skipped=[Skipped("/d/fifo", "not a regular file")], skipped_count=5)
    d = summary.to_dict()
    assert {k: d[k] for k in summary.as_dict()} == summary.as_dict()
    assert d["failed"] == 1 and d["skipped"] == 5
    assert d["failures"] == [{"path": SHOWN_BAD, "stage": "decode", "reason": "truncated"}]
    assert d["skipped_files"] == [{"path": "/d/fifo", "reason": "not a regular file"}]
    assert d["index"] == str((tmp_path / "index.db").resolve())


def test_frames_take_the_dict_values():
    pytest.importorskip("pandas")
    from lookalike.report.frames import groups_frame, pairs_frame

    groups = groups_frame([GROUP])
    assert list(groups["path"]) == [f["path"] for f in GROUP.to_dict()["files"]]
    assert list(groups["group_size"]) == [2, 2] and not groups["fully_linked"].any()
    pairs = pairs_frame(PAIRS)
    assert list(pairs["b"]) == [m.to_dict()["b"] for m in PAIRS]
    assert pairs["score"][0] == 0.953125  # unrounded, unlike JSON and CSV


def test_the_api_bodies_take_the_dict_values():
    pytest.importorskip("fastapi")
    from lookalike.service import models
    from lookalike.service.routes_groups import _group_out

    out = _group_out(GROUP, 7, {"/data/a.jpg": 1, BAD: 2}, {2: "keep"}, {})
    d = GROUP.to_dict()
    assert out.number == 7 and out.max_distance == d["max_distance"]
    assert [f.path for f in out.files] == [f["path"] for f in d["files"]]
    assert out.files[1].mark == "keep" and out.files[1].bytes == 20
    # a file gone from the index since the groups were computed is left out
    assert [f.file_id for f in _group_out(GROUP, 1, {BAD: 2}, {}, {}).files] == [2]
    shown = QUERIES[0].to_dict()["matches"][0]
    match = models.MatchOut(file_id=5, words="copy", **shown)  # the API adds id and words
    assert match.model_dump() == {"file_id": 5} | {k: v for k, v in shown.items()
                                                   if k != "evidence"} | {"words": "copy"}
