"""The keeper (actions/keeper.py) and match words (report/words.py): the reasons a person
reads where they review, and the same choice plan makes."""

from __future__ import annotations

import pytest

from lookalike.actions.keeper import Candidate, best_values, choose
from lookalike.errors import PlanError
from lookalike.report.words import match_words, partial_words, percent, turn_words


def member(path, width=100, height=100, size=1000, mtime=5, fmt="JPEG") -> Candidate:
    return Candidate(path, width, height, size, mtime, "00", fmt)


BIG = member("/p/big.jpg", 200, 200, 900, 9)
HEAVY = member("/p/heavy.png", 100, 100, 5000, 3, "PNG")
OLD = member("/p/sub/old.jpg", 100, 100, 1000, 1)


def test_the_rule_that_decided_is_named():
    assert choose([HEAVY, BIG, OLD]) == choose([OLD, HEAVY, BIG])  # order does not matter
    keeper = choose([HEAVY, BIG, OLD])
    assert (keeper.path, keeper.reason) == ("/p/big.jpg", "largest resolution")
    # the default: of one resolution, the oldest (the original), not the biggest re-encode
    assert (choose([HEAVY, OLD]).path, choose([HEAVY, OLD]).reason) == \
        ("/p/sub/old.jpg", "oldest file")
    assert choose([HEAVY, OLD], rules=["largest-file"]).reason == "largest file"
    assert choose([HEAVY, OLD], rules=["oldest"]).path == "/p/sub/old.jpg"
    assert choose([HEAVY, OLD], rules=["oldest"]).reason == "oldest file"
    twin = member("/p/a.jpg")
    assert choose([member("/p/b.jpg"), twin]).reason == "first by path (the rules tie)"
    with pytest.raises(PlanError, match="unknown keep rule"):
        choose([BIG, OLD], rules=["prettiest"])


def test_folders_and_marks_come_before_the_rules():
    keeper = choose([HEAVY, BIG, OLD], refs=["/p/sub"])
    assert (keeper.path, keeper.reason) == ("/p/sub/old.jpg", "in a reference folder")
    keeper = choose([HEAVY, BIG, OLD], prefer=["/p/sub"])
    assert (keeper.path, keeper.reason) == ("/p/sub/old.jpg", "in a preferred folder")
    keeper = choose([HEAVY, BIG, OLD], marks={"/p/heavy.png": "keep"})
    assert (keeper.path, keeper.reason) == ("/p/heavy.png", "marked keep")
    keeper = choose([HEAVY, BIG, OLD], marks={"/p/big.jpg": "quarantine"})
    assert (keeper.path, keeper.reason) == ("/p/sub/old.jpg", "oldest file")
    keeper = choose([HEAVY, BIG], marks={"/p/big.jpg": "quarantine"})
    assert (keeper.path, keeper.reason) == ("/p/heavy.png", "the others are marked quarantine")
    every = {"/p/big.jpg": "quarantine", "/p/heavy.png": "quarantine"}
    assert choose([HEAVY, BIG], marks=every).path == "/p/big.jpg"  # then the rules choose


def test_best_values_name_the_members_to_highlight():
    best = best_values([HEAVY, BIG, OLD])
    assert best == {"resolution": ["/p/big.jpg"], "bytes": ["/p/heavy.png"],
                    "format": ["/p/heavy.png"], "date": ["/p/sub/old.jpg"],
                    "path": ["/p/big.jpg"]}
    assert best_values([member("/p/a.jpg"), member("/p/b.jpg")]) == {}  # all tie: nobody


def test_matches_in_plain_words():
    assert match_words("bytes") == "identical file (same bytes)"
    assert match_words("bytes", other="a.png") == "same bytes as a.png"
    assert match_words("pixels", formats=("PNG", "JPEG")) == \
        "same pixels, other file format (PNG and JPEG)"
    assert match_words("pixels", formats=("PNG", "PNG"), other="a.png") == "same pixels as a.png"
    assert match_words("phash", 0.97, "mirror") == "mirrored copy · similarity 97%"
    assert match_words("phash", 1.0, "identity", other="a.png") == \
        "resized or re-encoded copy of a.png · similarity 100%"
    assert match_words("pdq", 0.9, "rot270") == "copy, rotated 90° clockwise · similarity 90%"
    assert match_words("embed", 0.934, "mirror+rot90", other="a.png") == \
        "edited copy of a.png, mirrored and rotated 90° counter-clockwise · similarity 93%"
    assert turn_words("rot180") == "rotated 180°" and turn_words("identity") == ""
    assert percent(0.9996) == "99%" and percent(1.0) == "100%" and percent(-0.2) == "0%"
    assert partial_words("inside", 0.4) == "a crop of it, or placed inside it, at 40% of its width"
