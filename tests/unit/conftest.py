"""Fixtures for the unit tests (helpers that several test files import live in _imagedata.py)."""

from __future__ import annotations

import pytest

from _imagedata import PHOTOS, decoded_sample, decoded_synthetic


@pytest.fixture(scope="session")
def photos():
    """name -> Decoded: real photographs and textures, plus three synthetic pictures."""
    pictures = {name: decoded_sample(name) for name in PHOTOS}
    pictures.update({f"synthetic-{seed}": decoded_synthetic(seed) for seed in range(3)})
    return pictures
