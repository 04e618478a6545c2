"""`lookalike eval` on a tiny hand-made index: its numbers equal the ones computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.evaluation.transforms import EDITS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, cli):
    """a.jpg and a brighter copy of it; b.jpg and a byte copy; c.jpg (in sub/), a stranger.
    Under auto the index holds exactly two pairs: (b, b_copy) by bytes at score 1, and
    (a, a_bright) by hash at a score below 1 (checked here, the hand computations rely on
    it)."""
    from lookalike.sample import synthetic_picture
    from lookalike.evaluation.transforms import encode

    root = tmp_path_factory.mktemp("eval") / "photos"
    (root / "sub").mkdir(parents=True)
    a, b, c = (synthetic_picture(seed, (240, 180)) for seed in (41, 812, 813))
    data_a = encode(a)
    (root / "a.jpg").write_bytes(data_a)
    (root / "a_bright.jpg").write_bytes(EDITS["brighter"](a, data_a)[0])  # pHash 2, dHash 4
    (root / "b.jpg").write_bytes(encode(b))
    (root / "b_copy.jpg").write_bytes(encode(b))
    (root / "sub" / "c.jpg").write_bytes(encode(c))
    assert cli("scan", root, "--workers", "1").code == 0
    index = root / ".lookalike" / "index.db"
    for radius in ([], ["--max-distance", "16"]):  # the radius and the wide radius of eval
        pairs = cli("dupes", "--index", index, "--pairs", "--format", "json",
                    *radius).json()["pairs"]
        names = {frozenset(Path(p[k]).name for k in "ab"): p for p in pairs}
        assert set(names) == {frozenset({"a.jpg", "a_bright.jpg"}),
                              frozenset({"b.jpg", "b_copy.jpg"})}, pairs
        assert names[frozenset({"a.jpg", "a_bright.jpg"})]["score"] < 1.0
    return root, index


def _eval(cli, index, labels: dict, tmp_path: Path, *options):
    truth = tmp_path / "labels.json"
    truth.write_text(json.dumps(labels))
    return cli("eval", "--truth", truth, "--index", index, *options)


def test_pairs_labels_by_hand(tiny, cli, tmp_path):
    root, index = tiny
    # Labelled duplicates: (b, b_copy) and (b, c); (a, a_bright) is labelled as distinct.
    # Found: (b, b_copy) right, (a, a_bright) wrong. The ranked list is (b, b_copy) at 1.0,
    # then (a, a_bright): AP = (1/1 at rank 1) / 2 positives.
    labels = {"pairs": [[str(root / "b.jpg"), "b_copy.jpg"], ["b.jpg", "sub/c.jpg"],
                        ["sub/c.jpg", "ghost.jpg"]],
              "files": ["a.jpg", "elsewhere/a_bright.jpg"]}
    result = _eval(cli, index, labels, tmp_path, "--format", "json")
    assert result.code == 0, str(result)
    report = result.json()
    assert report["matched"] == {"exact": 1, "relative": 4, "name": 1}
    assert report["not_found"] == ["ghost.jpg"]
    assert report["positives"] == 2 and report["incomplete_pairs"] == 1
    assert (report["tp"], report["fp"]) == (1, 1)
    assert report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["f1"] == pytest.approx(0.5)
    assert report["micro_ap"] == pytest.approx(0.5)
    assert report["recall_at_precision"] == {"precision": 0.99, "recall": 0.5}
    assert report["wide_radius"] == 16 and report["radius"] == 8
    table = _eval(cli, index, labels, tmp_path)
    assert table.code == 0 and "precision 0.500" in table.stdout
    assert "ghost.jpg" in table.stderr


def test_bench_truth_by_hand_with_recall_per_transform(tiny, cli, tmp_path):
    _, index = tiny
    # Positives: (a, a_bright), (b, b_copy), (b, c), (b_copy, c): 4; found the first two,
    # both right. Ranked: (b, b_copy) then (a, a_bright), both positives: AP = (1 + 1) / 4.
    truth = {"format": "lookalike-bench-collection/1",
             "groups": [{"original": "a.jpg",
                         "copies": [{"file": "a_bright.jpg", "transform": "brighter"}]},
                        {"original": "b.jpg",
                         "copies": [{"file": "b_copy.jpg", "transform": "copy"},
                                    {"file": "sub/c.jpg", "transform": "fake"}]}],
             "originals": {"a.jpg": {}, "b.jpg": {}}}
    report = _eval(cli, index, truth, tmp_path, "--format", "json").json()
    assert report["labels"] == {"shape": "bench", "files": 5}
    assert (report["positives"], report["tp"], report["fp"]) == (4, 2, 0)
    assert report["precision"] == 1.0 and report["recall"] == 0.5
    assert report["f1"] == pytest.approx(2 / 3)
    assert report["micro_ap"] == pytest.approx(0.5)
    assert report["per_transform"] == {
        "brighter": {"found": 1, "pairs": 1, "recall": 1.0},
        "copy": {"found": 1, "pairs": 1, "recall": 1.0},
        "fake": {"found": 0, "pairs": 1, "recall": 0.0}}


def test_groups_labels_and_stored_radius(tiny, cli, tmp_path):
    _, index = tiny
    labels = {"groups": [["a.jpg", "a_bright.jpg"], ["b.jpg", "b_copy.jpg"]],
              "files": ["sub/c.jpg"]}
    report = _eval(cli, index, labels, tmp_path, "--format", "json").json()
    assert (report["positives"], report["tp"], report["fp"]) == (2, 2, 0)
    assert report["micro_ap"] == pytest.approx(1.0) and not report["calibrated"]


@pytest.mark.parametrize("labels, message", [
    ({"images": ["a.jpg"]}, '{"pairs"'),
    ([["a.jpg", "b.jpg"]], '{"pairs"'),
    ({"pairs": [["a.jpg"]]}, "exactly two"),
    ({"pairs": [["x/none1.jpg", "none2.jpg"]]}, "none of the 2 labelled files"),
])
def test_bad_labels_are_clear_errors(tiny, cli, tmp_path, labels, message):
    _, index = tiny
    result = _eval(cli, index, labels, tmp_path)
    assert result.code == 2, str(result)
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def test_labels_that_are_not_json(tiny, cli, tmp_path):
    _, index = tiny
    truth = tmp_path / "labels.json"
    truth.write_text("pairs: a, b")
    result = cli("eval", "--truth", truth, "--index", index)
    assert result.code == 2 and "not JSON" in " ".join(result.stderr.split())
