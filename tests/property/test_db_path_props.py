"""File names that are not valid UTF-8 survive the index: to_db_path / from_db_path, and a
real SQLite round trip through write_scanned and lookup_files."""

from __future__ import annotations

import os
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from lookalike.index.store import display_path, from_db_path, open_index, to_db_path
from lookalike.types import FileRef, Scanned

# One path component as the OS gives it: any bytes but NUL and '/'.
name_bytes = st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b
                                                       and b"/" not in b)
# Make sure undecodable names are common, not a rare draw.
latin1_names = st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0xFF),
                       min_size=1, max_size=10).map(lambda s: s.encode("latin-1"))
names = st.one_of(name_bytes, latin1_names)


@given(names)
def test_round_trip_of_os_names(raw):
    path = os.fsdecode(b"/photos/" + raw)
    stored = to_db_path(path)
    assert from_db_path(stored) == path
    assert os.fsencode(from_db_path(stored)) == b"/photos/" + raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert stored == b"/photos/" + raw  # raw bytes kept
    else:
        assert stored == path  # text kept as text


@given(names)
def test_display_path_is_printable_text(raw):
    shown = display_path(os.fsdecode(raw))
    shown.encode("utf-8")  # never raises: no lone surrogates left


@given(st.lists(names, min_size=1, max_size=8, unique=True))
def test_names_survive_a_real_index(raws):
    with tempfile.TemporaryDirectory() as folder:
        root = os.path.join(folder, "root")
        paths = [os.path.join(root, os.fsdecode(raw)) for raw in raws]
        with open_index(os.path.join(folder, "index.db"), create=True) as index:
            run = index.begin_run([root], ["pixels"])
            with index.transaction() as conn:
                for number, path in enumerate(paths):
                    index.write_scanned(conn, run, [Scanned(
                        ref=FileRef(path, number + 1, 7), content=number.to_bytes(16, "big"),
                        kind="image", width=1, height=1, format="PNG", mode="RGB")])
            found = index.lookup_files(paths)
            assert set(found) == set(paths)
            assert sorted(k.size for k in found.values()) == list(range(1, len(paths) + 1))
            live = {info.path for files in index.live_files().values() for info in files}
            assert live == set(paths)
            # A second run that sees nothing marks them all vanished, by the same names.
            second = index.begin_run([root], ["pixels"])
            assert index.mark_vanished(second, [root]) == len(paths)
