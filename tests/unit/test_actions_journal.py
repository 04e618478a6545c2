"""apply/undo judged from the journal and the file system: a run killed between writing a
step's intent and its "done" line is undone correctly in each of the states it can leave."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lookalike.actions.apply import apply_plan
from lookalike.actions.fileops import file_hash
from lookalike.actions.journal import JOURNAL_NAME
from lookalike.actions.plan import Plan, PlannedAction, PlannedGroup, read_plan, write_plan
from lookalike.actions.undo import resolve_run, undo_run

MTIME = 1_500_000_000_123_456_789


def _file(path: Path, data: bytes, mtime_ns: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _plan(tmp_path: Path, action: str, names: list[str | bytes]) -> Plan:
    """One kept file and a byte copy of it under each of `names`."""
    data = os.urandom(5000)
    keep = _file(tmp_path / "lib" / "keep.bin", data, MTIME)
    actions = []
    for k, name in enumerate(names):
        path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path / "lib"), os.fsencode(name))))
        _file(path, data, MTIME + k + 1)
        actions.append(PlannedAction(str(path), action, str(keep), len(data), MTIME + k + 1,
                                     file_hash(path)))
    group = PlannedGroup(str(keep), len(data), MTIME, file_hash(keep), "bytes", [], actions)
    return Plan(str(tmp_path / "index.db"), "now", ["oldest"], action, [], [], [group])


def _snapshot(root: Path) -> dict:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            p = os.path.join(folder, name)
            st = os.lstat(p)
            out[p] = (file_hash(p), st.st_mtime_ns, os.path.islink(p))
    return out


def _drop_last_done(journal: Path) -> dict:
    """Forget the last step's "done" line (as if killed just before writing it); returns the
    intent of that step."""
    lines = journal.read_text().splitlines()
    lines = [line for line in lines if json.loads(line)["event"] != "finished"]
    last = max(i for i, line in enumerate(lines) if json.loads(line)["event"] == "done")
    step = json.loads(lines[last])["step"]
    del lines[last]
    journal.write_text("\n".join(lines) + "\n")
    return next(json.loads(line) for line in lines
                if json.loads(line).get("step") == step and json.loads(line)["event"] == "intent")


def _apply(tmp_path: Path, plan: Plan) -> Path:
    report = apply_plan(plan, execute=True, quarantine_dir=tmp_path / "q")
    assert report.count("done") == len(plan.actions)
    return Path(report.run_dir)


def _killed_run(tmp_path: Path, action: str, names: list[str]) -> tuple[dict, Path, dict]:
    """A plan of `action` over `names` applied, then its last step's "done" line dropped (as
    if killed just before it): the library's snapshot before, the run folder, that intent."""
    plan = _plan(tmp_path, action, names)
    before = _snapshot(tmp_path / "lib")
    run = _apply(tmp_path, plan)
    return before, run, _drop_last_done(run / JOURNAL_NAME)


def test_killed_before_the_rename_leaves_the_file_alone(tmp_path):
    before, run, intent = _killed_run(tmp_path, "quarantine", ["a.bin", "b.bin", "c.bin"])
    os.rename(intent["dst"], intent["path"])  # the rename had not happened yet
    report = undo_run(resolve_run(tmp_path / "q", None))
    assert report.problems == []
    assert intent["path"] in report.unchanged
    assert _snapshot(tmp_path / "lib") == before


def test_killed_after_the_rename_restores_the_file(tmp_path):
    before, run, intent = _killed_run(tmp_path, "quarantine", ["a.bin", "b.bin"])
    assert not os.path.exists(intent["path"])
    report = undo_run(run)
    assert intent["path"] in report.restored and report.problems == []
    assert _snapshot(tmp_path / "lib") == before


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_killed_between_making_the_link_and_renaming_it(tmp_path, kind):
    before, run, intent = _killed_run(tmp_path, kind, ["a.bin", "b.bin"])
    assert intent["op"] == "link"
    # Put back the state of that moment: the original at its path, the new link at the temp
    # name beside it, the saved original in the quarantine.
    os.link(intent["dst"], intent["path"] + ".back")
    os.replace(intent["path"] + ".back", intent["path"])
    if kind == "symlink":
        os.symlink(intent["target"], intent["tmp"])
    else:
        os.link(intent["target"], intent["tmp"])
    report = undo_run(run)
    assert report.problems == []
    assert not os.path.lexists(intent["tmp"]) and not os.path.lexists(intent["dst"])
    assert _snapshot(tmp_path / "lib") == before


def test_killed_after_the_link_replaced_the_file(tmp_path):
    before, run, intent = _killed_run(tmp_path, "symlink", ["a.bin", "b.bin"])
    assert os.path.islink(intent["path"])
    report = undo_run(run)
    assert intent["path"] in report.restored and report.problems == []
    assert _snapshot(tmp_path / "lib") == before


def test_a_name_that_is_not_utf8_round_trips(tmp_path):
    if os.uname().sysname == "Darwin":
        pytest.skip("APFS refuses names that are not UTF-8")
    plan = _plan(tmp_path, "quarantine", [b"caf\xe9.bin", "ok.bin"])
    write_plan(plan, tmp_path / "plan.json")
    plan = read_plan(tmp_path / "plan.json")
    before = _snapshot(tmp_path / "lib")
    run = _apply(tmp_path, plan)
    assert not os.path.lexists(os.path.join(os.fsencode(tmp_path / "lib"), b"caf\xe9.bin"))
    assert undo_run(run).problems == []
    assert _snapshot(tmp_path / "lib") == before


def test_a_file_in_the_way_of_the_temp_link_is_not_touched(tmp_path):
    plan = _plan(tmp_path, "symlink", ["a.bin"])
    path = plan.actions[0].path
    squatter = _file(Path(os.path.dirname(path)) / f".{os.path.basename(path)}.lookalike-link",
                     b"someone else's file", MTIME)
    report = apply_plan(plan, execute=True, quarantine_dir=tmp_path / "q")
    assert report.count("failed") == 1
    assert squatter.read_bytes() == b"someone else's file"
    assert not os.path.islink(path)
    undo = undo_run(Path(report.run_dir))
    assert undo.problems == []
    assert squatter.read_bytes() == b"someone else's file"
    assert file_hash(path) == plan.actions[0].hash


def test_one_apply_or_undo_at_a_time(tmp_path):
    from lookalike.actions.journal import QuarantineBusyError, quarantine_lock

    plan = _plan(tmp_path, "quarantine", ["a.bin"])
    with quarantine_lock(tmp_path / "q"):
        with pytest.raises(QuarantineBusyError):
            apply_plan(plan, execute=True, quarantine_dir=tmp_path / "q")
    assert os.path.exists(plan.actions[0].path)
    run = _apply(tmp_path, plan)
    with quarantine_lock(tmp_path / "q"):
        with pytest.raises(QuarantineBusyError):
            undo_run(run)
    assert undo_run(run).restored == [plan.actions[0].path]


def _other_file_system(tmp_path: Path) -> Path:
    for candidate in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR") or ""):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK) and \
                os.stat(candidate).st_dev != os.stat(tmp_path).st_dev:
            return Path(candidate)
    pytest.skip("no writable folder on another file system")


@pytest.mark.parametrize("action", ["quarantine", "symlink"])
def test_a_quarantine_on_another_file_system(tmp_path, action):
    import shutil
    import tempfile

    other = Path(tempfile.mkdtemp(dir=_other_file_system(tmp_path)))
    try:
        plan = _plan(tmp_path, action, ["a.bin", "b.bin"])
        before = _snapshot(tmp_path / "lib")
        report = apply_plan(plan, execute=True, quarantine_dir=other)
        assert report.count("done") == 2
        saved = list((Path(report.run_dir) / "files").rglob("*.bin"))
        assert len(saved) == 2 and all(file_hash(p) == plan.actions[0].hash for p in saved)
        assert undo_run(report.run_dir).problems == []
        assert _snapshot(tmp_path / "lib") == before
        assert not list((Path(report.run_dir) / "files").rglob("*.bin"))
    finally:
        shutil.rmtree(other)


def test_killed_between_the_link_and_the_unlink_of_a_move(tmp_path):
    before, run, intent = _killed_run(tmp_path, "quarantine", ["a.bin"])
    os.link(intent["dst"], intent["path"])  # both names, one file
    report = undo_run(run)
    assert report.problems == [] and not os.path.exists(intent["dst"])
    assert _snapshot(tmp_path / "lib") == before


def test_nothing_is_done_when_the_kept_file_is_gone(tmp_path):
    plan = _plan(tmp_path, "delete", ["a.bin", "b.bin"])
    os.unlink(plan.groups[0].keep)  # e.g. an edited plan, or the user removed it since
    report = apply_plan(plan, execute=True, allow_delete=True, quarantine_dir=tmp_path / "q")
    assert report.count("skipped") == 2
    assert all("the kept file" in o.reason for o in report.outcomes)
    assert all(os.path.exists(a.path) for a in plan.actions)


def test_run_summary_tells_a_finished_run_from_a_killed_one(tmp_path):
    from lookalike.actions.undo import run_summary

    plan = _plan(tmp_path, "quarantine", ["a.bin", "b.bin"])
    run = _apply(tmp_path, plan)
    assert run_summary(run) | {"dir": "", "started": 0} == {
        "run": run.name, "dir": "", "started": 0, "finished": True, "steps": 2, "done": 2,
        "undone": 0}
    _drop_last_done(run / JOURNAL_NAME)  # also drops the "finished" line
    undo_run(run)
    summary = run_summary(run)
    assert not summary["finished"] and summary["done"] == 1 and summary["undone"] == 2
