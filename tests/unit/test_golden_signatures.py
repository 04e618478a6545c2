"""Pinned signatures of three fixture pictures (regenerate with tests/unit/make_golden.py)."""

from __future__ import annotations

import json

import pytest

from make_golden import FIXTURES, GOLDEN, compute_golden

CORE = ("phash", "dhash", "ahash", "whash", "pdq")


@pytest.fixture(scope="module")
def pinned():
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def current():
    return compute_golden()


def test_golden_file_covers_the_fixtures_and_core_methods(pinned):
    assert set(pinned["fixtures"]) == set(FIXTURES)
    for entry in pinned["fixtures"].values():
        assert set(CORE) <= set(entry["methods"])
    # The fixtures must differ from each other, or the pins prove little.
    identities = {entry["methods"]["phash"]["identity"] for entry in pinned["fixtures"].values()}
    assert len(identities) == len(FIXTURES)


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_fixture_pixels_unchanged(fixture, pinned, current):
    """If this fails, the fixture picture itself changed (NumPy RNG, Pillow drawing or
    decoding), not a method: the signature pins below are then meaningless."""
    assert current["fixtures"][fixture]["size"] == pinned["fixtures"][fixture]["size"]
    assert (current["fixtures"][fixture]["pixels_sha256"]
            == pinned["fixtures"][fixture]["pixels_sha256"])


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_signatures_unchanged(fixture, pinned, current):
    want = pinned["fixtures"][fixture]
    have = current["fixtures"][fixture]
    if have["pixels_sha256"] != want["pixels_sha256"]:
        pytest.skip("fixture pixels changed; see test_fixture_pixels_unchanged")
    changed = []
    for method, expected in sorted(want["methods"].items()):
        got = have["methods"].get(method)
        if got is None:
            changed.append(f"{method}: no longer registered")
            continue
        same_key = (got["version"], got["params"]) == (expected["version"], expected["params"])
        if same_key and got["identity"] != expected["identity"]:
            changed.append(f"{method}: identity {got['identity']} != pinned "
                           f"{expected['identity']}")
        elif same_key and got["value"] != expected["value"]:
            changed.append(f"{method}: identity same, other variants changed")
        elif same_key and got["quality"] != pytest.approx(expected["quality"], abs=1e-3):
            changed.append(f"{method}: quality {got['quality']} != {expected['quality']}")
        elif not same_key:
            changed.append(f"{method}: version/params changed to {got['version']}/"
                           f"{got['params']}; regenerate the golden file")
    assert not changed, ("signatures changed without a version bump (an index built before "
                         "would mix old and new codes):\n" + "\n".join(changed))
