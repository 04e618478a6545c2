"""Signatures are read from the index a block at a time: same answers for any block size."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.index import store
from lookalike.index.store import open_index
from lookalike.methods.registry import get_spec
from lookalike.search.dupes import find_groups, find_pairs


@pytest.mark.parametrize("method", ["phash", "dhash", "pixels"])
def test_blocks_put_together_equal_the_whole(planted, method):
    spec = get_spec(method)
    with open_index(planted.index) as idx:
        whole = idx.load_codes(spec)
        parts = list(idx.iter_codes(spec, block=5))
        identity = idx.load_codes(spec, identity_only=True)
    assert len(parts) == -(-len(whole.content_ids) // 5) and len(parts) > 1
    assert np.array_equal(np.concatenate([p.content_ids for p in parts]), whole.content_ids)
    assert np.array_equal(np.concatenate([p.codes for p in parts]), whole.codes)
    assert np.array_equal(identity.codes[:, 0], whole.codes[:, 0])
    assert identity.codes.shape[1] == 1 and whole.codes.shape[1] == spec.variants
    assert np.all(np.diff(whole.content_ids) > 0)


def test_groups_and_pairs_do_not_depend_on_the_block_size(planted, monkeypatch):
    with open_index(planted.index) as idx:
        groups, pairs = find_groups(idx), find_pairs(idx)
        monkeypatch.setattr(store, "CODE_BLOCK", 3)
        assert find_groups(idx) == groups
        assert find_pairs(idx) == pairs
    assert len(groups) >= 10  # the planted collection has real groups to compare


def test_dupes_reports_time_and_peak_memory(cli, planted):
    result = cli("dupes", "--index", planted.index)
    assert result.code == 0, str(result)
    assert "peak memory" in result.stderr and "MB" in result.stderr
    assert "peak memory" not in cli("dupes", "--index", planted.index, "--format",
                                    "json").stdout
