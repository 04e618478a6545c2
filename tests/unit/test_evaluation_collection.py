"""evaluation/collection.py: the truth of a planted collection (make_collection's truth.json)."""

from __future__ import annotations

import json

import pytest

from lookalike.errors import EvaluationError
from lookalike.evaluation.collection import (COPY_COPY, PlantedTruth, group_pairs,
                                             read_collection_truth)

TRUTH = {
    "groups": [
        {"original": "a.jpg", "copies": [{"file": "a1.jpg", "transform": "jpeg70"},
                                         {"file": "a2.jpg", "transform": "mirror"}]},
        {"original": "b.jpg", "copies": [{"file": "b1.jpg", "transform": "crop10"}]},
    ],
    "originals": {"a.jpg": {"source": "s1.png"}, "b.jpg": {"source": "s2.png"},
                  "c.jpg": {"source": "s1.png"}, "d.jpg": {"source": "s3.png"},
                  "e.jpg": {"source": "s4.png"}},
    "hard_negatives": [{"a": "d.jpg", "b": "e.jpg", "kind": "sibling"},
                       {"a": "b.jpg", "b": "e.jpg", "kind": "lookalike-same-source"}],
}
FILES = ["a.jpg", "a1.jpg", "a2.jpg", "b.jpg", "b1.jpg", "c.jpg", "d.jpg", "e.jpg"]


def test_group_pairs_are_every_pair_inside_a_group():
    assert group_pairs(TRUTH) == {frozenset(p) for p in [
        ("a.jpg", "a1.jpg"), ("a.jpg", "a2.jpg"), ("a1.jpg", "a2.jpg"), ("b.jpg", "b1.jpg")]}


def test_pairs_carry_their_transform_and_copy_copy():
    truth = PlantedTruth(TRUTH, FILES)
    assert truth.pairs[frozenset(("a.jpg", "a2.jpg"))] == "mirror"
    assert truth.pairs[frozenset(("a1.jpg", "a2.jpg"))] == COPY_COPY
    assert truth.group("a1.jpg") == {"a.jpg", "a1.jpg", "a2.jpg"}
    assert truth.group("c.jpg") == {"c.jpg"}


def test_a_group_cut_by_the_subset_is_left_out_whole():
    truth = PlantedTruth(TRUTH, ["a.jpg", "a1.jpg", "b.jpg", "b1.jpg"])  # a2 missing
    assert set(truth.pairs) == {frozenset(("b.jpg", "b1.jpg"))}


def test_score_counts_right_wrong_and_why():
    truth = PlantedTruth(TRUTH, FILES)
    found = [("a.jpg", "a1.jpg"), ("a1.jpg", "a2.jpg"), ("b1.jpg", "b1.jpg"),  # self: ignored
             ("c.jpg", "a2.jpg"),  # c and a were cut from one source
             ("d.jpg", "e.jpg"),  # listed sibling
             ("b1.jpg", "e.jpg"),  # listed through b1's original: lookalike
             ("d.jpg", "a.jpg")]  # nothing in common
    score = truth.score(found)
    assert (score["found"], score["right"]) == (6, 2)
    assert score["precision"] == pytest.approx(2 / 6) and score["recall"] == pytest.approx(2 / 4)
    assert score["recall_by_transform"] == {"jpeg70": 1.0, "mirror": 0.0, COPY_COPY: 1.0,
                                            "crop10": 0.0}
    assert score["wrong_by_kind"] == {"same source": 1, "sibling": 1, "lookalike": 1,
                                      "other": 1}
    assert ("a2.jpg", "c.jpg") in score["wrong"]


def test_read_collection_truth_refuses_what_is_not_one(tmp_path):
    good = tmp_path / "truth.json"
    good.write_text(json.dumps(TRUTH))
    assert read_collection_truth(good)["groups"] == TRUTH["groups"]
    (tmp_path / "pairs.json").write_text(json.dumps({"pairs": [["a", "b"]]}))
    with pytest.raises(EvaluationError, match="groups"):
        read_collection_truth(tmp_path / "pairs.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(EvaluationError, match="not JSON"):
        read_collection_truth(tmp_path / "bad.json")
    with pytest.raises(EvaluationError, match="cannot read"):
        read_collection_truth(tmp_path / "missing.json")
