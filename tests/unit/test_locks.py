"""The one file lock: held across processes, refused at once while another holds it, released
when its holder closes it, with the holder's note readable by whoever finds it busy."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from lookalike.locks import held, read_note, try_lock, write_note


def _other_process_holds(path, ready, release) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import os, time
        from lookalike.locks import try_lock, write_note
        fd = try_lock({str(path)!r})
        write_note(fd, str(os.getpid()))
        open({str(ready)!r}, "w").close()
        while not os.path.exists({str(release)!r}):
            time.sleep(0.01)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    while not ready.exists():
        assert proc.poll() is None, "the holder died"
    return proc


def test_a_lock_held_elsewhere_is_refused_then_free(tmp_path):
    path, ready, release = tmp_path / "x.lock", tmp_path / "ready", tmp_path / "release"
    holder = _other_process_holds(path, ready, release)
    try:
        assert try_lock(path) is None
        assert read_note(path) == str(holder.pid)
    finally:
        release.touch()
        holder.wait(timeout=30)
    fd = try_lock(path)
    assert fd is not None
    write_note(fd, "me")
    assert read_note(path) == "me"
    os.close(fd)


def test_held_waits_and_creates_the_folder(tmp_path):
    path = tmp_path / "deep" / "y.lock"
    with held(path):
        assert path.exists()
        assert try_lock(path) is None  # another descriptor of the same file is refused
    fd = try_lock(path)
    assert fd is not None
    os.close(fd)
