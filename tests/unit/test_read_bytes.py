"""sources.remote.read_bytes on local files: all of a file up to the limit, sized by fstat,
and all of a file that grew after fstat was asked, still up to the limit."""

from __future__ import annotations

import os

import lookalike.sources.remote as remote
from lookalike.worker import read_file
from lookalike.types import FileRef


def test_whole_file_and_limit(tmp_path):
    path = tmp_path / "f.bin"
    data = os.urandom(300_000)
    path.write_bytes(data)
    assert remote.read_bytes(str(path), 10**9) == data
    assert remote.read_bytes(str(path), len(data)) == data
    assert remote.read_bytes(str(path), 1000) == data[:1000]
    (tmp_path / "empty").touch()
    assert remote.read_bytes(str(tmp_path / "empty"), 5) == b""
    assert read_file(FileRef(str(path), len(data), 0)) == data


def test_file_that_grew_after_fstat(tmp_path, monkeypatch):
    path = tmp_path / "growing.bin"
    data = os.urandom(50_000)
    path.write_bytes(data)
    real_fstat = os.fstat

    class Smaller:  # what fstat said before the file grew to its size now
        def __init__(self, result):
            self.st_size = result.st_size - 20_000

    monkeypatch.setattr(remote.os, "fstat", lambda fd: Smaller(real_fstat(fd)))
    assert remote.read_bytes(str(path), 10**9) == data
    assert remote.read_bytes(str(path), 40_000) == data[:40_000]
