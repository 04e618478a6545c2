"""The pieces of the analysis that need no index: distributions, failure reasons, the pandas
error. (The escaping of the report's cards, now Jinja2 templates with autoescape, is checked
on a hostile file name in tests/integration/test_report_html.py.)"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.report.analysis import _reason_kind, distribution


def test_distribution_matches_numpy():
    rng = np.random.default_rng(3)
    values = rng.integers(50, 5000, 1001).astype(float)
    d = distribution(values)
    assert d.count == 1001 and d.median == float(np.median(values))
    assert d.percentiles["p95"] == pytest.approx(np.percentile(values, 95), abs=1e-4)
    assert (d.min, d.max) == (values.min(), values.max())
    assert sum(d.counts) == 1001 and d.edges[0] == values.min() and d.edges[-1] == values.max()


def test_distribution_log_bins_and_edge_cases():
    d = distribution(np.array([10.0, 100.0, 1000.0, 10000.0]), log_bins=True, bins=3)
    assert d.edges == pytest.approx((10, 100, 1000, 10000))
    assert d.counts == (1, 1, 2)
    same = distribution(np.full(7, 256.0))
    assert same.median == 256 and same.counts == (7,) and same.edges == (255.5, 256.5)
    assert distribution(np.array([])) is None


def test_reason_kind_drops_details():
    assert _reason_kind("truncated file (image file is truncated (59 bytes not processed))") \
        == "truncated file"
    assert _reason_kind("not an image: named .jpg but the content is text") == "not an image"
    assert _reason_kind("") == "unknown"


def test_frames_say_how_to_get_pandas(monkeypatch):
    from lookalike.report import frames

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(LookalikeError, match=r"pip install 'lookalike\[report\]'"):
        frames.pairs_frame([])
