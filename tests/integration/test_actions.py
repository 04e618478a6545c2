"""plan -> apply -> undo on real files, a real index and the real `lookalike` command: a
user must never lose a file (issue 8, "Keep rules and actions")."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from lookalike.actions import apply_plan, read_plan, undo_run
from lookalike.actions.plan import make_plan as plan_for, write_plan
from lookalike.actions.undo import resolve_run
from lookalike.index.store import open_index
from lookalike.scan import scan
from lookalike.search.dupes import find_groups, find_pairs

import xxhash

from .conftest import LOOKALIKE, cli_env, jpeg, kill_group, picture, png, run_cli

BASE_MTIME = 1_600_000_000_000_000_000


def snapshot(root: Path) -> dict[str, tuple]:
    """relative path -> (sha256, mtime_ns, is a link) of every file, the index folder aside."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".lookalike"]
        for name in files:
            path = Path(folder, name)
            st = os.lstat(path)
            out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                                st.st_mtime_ns, path.is_symlink(), st.st_ino)
    return out


def write(path: Path, data: bytes, mtime_ns: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def build(root: Path, copies: int = 1) -> Path:
    """Groups of duplicates with known answers; returns the index path.

    lib/a.jpg + lib/old/a.jpg (byte copy, older) + lib/a-small.jpg (resized, re-encoded);
    ref/b.png + lib/b.png (byte copy: the reference one must be kept); lib/c*.png alone.
    `copies` more byte-copy groups lib/many/NN-{1,2}.png for the crash test."""
    a = jpeg(picture(1))
    write(root / "lib" / "a.jpg", a, BASE_MTIME + 5_000_000_123)
    write(root / "lib" / "old" / "a.jpg", a, BASE_MTIME + 1_000_000_456)
    write(root / "lib" / "a-small.jpg", jpeg(picture(1).resize((120, 90)), 80),
          BASE_MTIME + 7_000_000_789)
    b = png(picture(2))
    write(root / "ref" / "b.png", b, BASE_MTIME + 9_000_000_001)
    write(root / "lib" / "b.png", b, BASE_MTIME + 2_000_000_002)
    write(root / "lib" / "c.png", png(picture(3)), BASE_MTIME)
    for n in range(copies):
        data = png(picture(100 + n, (64, 48)))
        write(root / "lib" / "many" / f"{n:02}-1.png", data, BASE_MTIME + n)
        write(root / "lib" / "many" / f"{n:02}-2.png", data, BASE_MTIME + n + 10**9)
    index = root / ".lookalike" / "index.db"
    scan([root], index_path=index, workers=1)
    return index


def make_plan(root: Path, index: Path, action: str = "quarantine",
              keep: str = "largest-resolution,largest-file,oldest") -> dict:
    """The plan of the library (in-process: the command's own plan is tested once, below),
    written to tmp/plan.json; returns its JSON."""
    with open_index(index) as idx:
        plan = plan_for(idx, find_groups(idx), keep.split(","), reference=[str(root / "ref")],
                        action=action)
    write_plan(plan, root.parent / "plan.json")
    return json.loads((root.parent / "plan.json").read_text())


def actions_of(plan: dict) -> dict[str, dict]:
    return {a["path"]: a for g in plan["groups"] for a in g["actions"]}


def test_plan_keeps_by_rules_and_reference(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    result = run_cli("plan", "--index", index, "--reference", root / "ref", "--keep",
                     "largest-resolution,oldest", "--out", tmp_path / "plan.json")
    assert result.code == 0, result
    plan = json.loads((tmp_path / "plan.json").read_text())
    keeps = {g["keep"] for g in plan["groups"]}
    acted = actions_of(plan)
    # The older of the two full-size copies stays; the small one and the newer copy go.
    assert str(root / "lib" / "old" / "a.jpg") in keeps
    assert {str(root / "lib" / "a.jpg"), str(root / "lib" / "a-small.jpg")} <= set(acted)
    # The reference file is the kept one although it is the newer, and is never acted on.
    assert str(root / "ref" / "b.png") in keeps
    assert str(root / "lib" / "b.png") in acted
    assert not any(p.startswith(str(root / "ref")) for p in acted)
    assert str(root / "lib" / "c.png") not in acted
    a = acted[str(root / "lib" / "a.jpg")]
    assert a["mtime_ns"] == BASE_MTIME + 5_000_000_123
    assert a["size"] == (root / "lib" / "a.jpg").stat().st_size
    assert a["hash"] == xxhash.xxh3_128_hexdigest((root / "lib" / "a.jpg").read_bytes())
    newest = make_plan(root, index, keep="newest")
    assert str(root / "lib" / "a-small.jpg") in {g["keep"] for g in newest["groups"]}


@pytest.mark.parametrize("action", ["quarantine", "hardlink", "symlink"])
def test_apply_then_undo_restores_every_file(tmp_path, action):
    root = tmp_path / "c"
    index = build(root)
    before = snapshot(root)
    plan = make_plan(root, index, action)
    dry = run_cli("apply", tmp_path / "plan.json")
    assert dry.code == 0 and "would" in dry.stdout, dry
    assert snapshot(root) == before  # a dry run touches nothing
    done = run_cli("apply", tmp_path / "plan.json", "--execute", "--format", "json")
    assert done.code == 0, done
    outcomes = {o["path"]: o for o in done.json()["outcomes"]}
    acted = actions_of(plan)
    assert acted and {outcomes[p]["status"] for p in acted} == {"done"}
    for path, a in acted.items():
        if action == "quarantine":
            assert not os.path.lexists(path)
        elif action == "symlink":
            assert os.readlink(path) == a["target"]
        else:
            assert os.path.samefile(path, a["target"])
    assert snapshot(root) != before
    undo = run_cli("undo", "--index", index)
    assert undo.code == 0, undo
    after = snapshot(root)
    if action == "quarantine":  # renamed back: the very same inodes
        assert after == before
    else:
        assert {k: v[:3] for k, v in after.items()} == {k: v[:3] for k, v in before.items()}
    again = undo_run(resolve_run(root / ".lookalike" / "quarantine", None))  # harmless twice
    assert again.restored == [] and again.problems == []
    assert snapshot(root) == after


def test_the_index_follows_apply_and_undo(tmp_path):
    """Quarantined files leave the groups at once (no rescan); undo brings them back."""
    root = tmp_path / "c"
    index = build(root)

    def grouped() -> set[str]:
        with open_index(index) as idx:
            return {f.path for g in find_groups(idx) for f in g.files}

    before = grouped()
    acted = set(actions_of(make_plan(root, index)))
    assert acted and acted <= before
    assert run_cli("apply", tmp_path / "plan.json", "--execute").code == 0
    assert grouped() == set()  # every group is down to its kept file
    with open_index(index) as idx:
        assert not set(idx.live_file_ids(acted))
    assert run_cli("undo", "--index", index).code == 0
    assert grouped() == before


def test_links_only_between_byte_copies(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    plan = make_plan(root, index, "hardlink")
    skipped = {s["path"] for g in plan["groups"] for s in g["skipped"]}
    assert str(root / "lib" / "a-small.jpg") in skipped  # the same picture, other bytes
    assert str(root / "lib" / "a-small.jpg") not in actions_of(plan)


def test_file_changed_after_the_plan_is_skipped(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    plan = make_plan(root, index)
    changed = root / "lib" / "a.jpg"
    assert str(changed) in actions_of(plan)
    data = bytearray(changed.read_bytes())
    data[-3] ^= 0xFF  # same size, same mtime: only the hash can tell
    stat = changed.stat()
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    touched = root / "lib" / "b.png"
    os.utime(touched, ns=(BASE_MTIME, BASE_MTIME))  # bytes alike, mtime not
    result = run_cli("apply", tmp_path / "plan.json", "--yes", "--format", "json")
    assert result.code == 0, result
    outcomes = {o["path"]: o for o in result.json()["outcomes"]}
    assert outcomes[str(changed)]["status"] == "skipped"
    assert "content" in outcomes[str(changed)]["reason"]
    assert outcomes[str(touched)]["status"] == "skipped"
    assert "modification time" in outcomes[str(touched)]["reason"]
    assert changed.read_bytes() == bytes(data) and touched.exists()
    assert outcomes[str(root / "lib" / "a-small.jpg")]["status"] == "done"


def test_reference_folder_is_never_modified(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    ref_before = snapshot(root / "ref")
    plan = make_plan(root, index, "symlink")
    # Even a hand-edited plan that names a reference file is refused at apply time.
    plan["groups"][0]["actions"].append({**plan["groups"][0]["actions"][0],
                                         "path": str(root / "ref" / "b.png")})
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    report = apply_plan(read_plan(tmp_path / "plan.json"), execute=True)
    refused = [o for o in report.outcomes if o.path == str(root / "ref" / "b.png")]
    assert refused and refused[0].status == "skipped"
    assert refused[0].reason == "in a reference folder"
    assert os.path.islink(root / "lib" / "b.png")  # its copy outside was linked to it
    assert snapshot(root / "ref") == ref_before
    assert undo_run(report.run_dir).problems == []
    assert snapshot(root / "ref") == ref_before


def test_delete_needs_the_flag_and_a_confirmation(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    plan = make_plan(root, index, "delete")
    victims = list(actions_of(plan))
    refused = run_cli("apply", tmp_path / "plan.json", "--yes", "--format", "json")
    assert {o["status"] for o in refused.json()["outcomes"]} == {"skipped"}
    assert all(os.path.exists(p) for p in victims)
    declined = run_cli("apply", tmp_path / "plan.json", "--execute", "--delete", stdin=b"n\n")
    assert declined.code != 0 and all(os.path.exists(p) for p in victims), declined
    done = run_cli("apply", tmp_path / "plan.json", "--execute", "--delete", stdin=b"y\n")
    assert done.code == 0, done
    assert not any(os.path.exists(p) for p in victims)
    assert (root / "lib" / "old" / "a.jpg").exists() and (root / "ref" / "b.png").exists()


def test_undo_keeps_a_file_that_appeared_at_the_original_path(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    make_plan(root, index)
    assert run_cli("apply", tmp_path / "plan.json", "--yes").code == 0
    newcomer = root / "lib" / "a.jpg"
    newcomer.write_bytes(b"a new file the user made since")
    undo = run_cli("undo", "--index", index, "--format", "json")
    assert undo.code == 3, undo
    assert newcomer.read_bytes() == b"a new file the user made since"
    problem = [p for p in undo.json()["problems"] if p[0] == str(newcomer)]
    assert problem and "quarantine" in problem[0][1]
    kept = Path(problem[0][1].rsplit(" at ", 1)[1])
    assert kept.read_bytes() == jpeg(picture(1))  # the original, still in the quarantine
    assert (root / "lib" / "a-small.jpg").exists()  # the others were restored


@pytest.mark.parametrize("action", ["quarantine", "symlink"])
def test_killed_apply_leaves_a_journal_that_undoes_it(tmp_path, action):
    root = tmp_path / "c"
    index = build(root, copies=24)
    before = snapshot(root)
    make_plan(root, index, action)
    quarantine = root / ".lookalike" / "quarantine"
    proc = subprocess.Popen([os.fspath(LOOKALIKE), "apply", os.fspath(tmp_path / "plan.json"),
                             "--yes"], env=cli_env(LOOKALIKE_TEST_APPLY_DELAY="0.15"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            journals = list(quarantine.glob("*/journal.jsonl"))
            if journals and journals[0].read_text().count('"done"') >= 6:
                break
            time.sleep(0.02)
        else:
            pytest.fail("apply never got going")
    finally:
        kill_group(proc.pid)
        proc.wait()
    assert proc.returncode == -9
    events = [json.loads(line) for line in journals[0].read_text().splitlines()]
    assert not any(e["event"] == "finished" for e in events)  # killed in the middle
    assert snapshot(root) != before
    done = {e["step"] for e in events if e["event"] == "done"}
    moved = {e["path"] for e in events if e["event"] == "intent" and e["op"] == "move"
             and e["step"] in done}
    assert (len(moved) >= 6) == (action == "quarantine")
    # The next command that reads groups first brings the index up to date with the run.
    dupes = run_cli("dupes", "--index", index, "--format", "json")
    assert dupes.code in (0, 1), dupes
    grouped = {f["path"] for g in dupes.json()["groups"] for f in g["files"]}
    assert not grouped & moved
    with open_index(index) as idx:
        assert not set(idx.live_file_ids(moved))
    listed = run_cli("undo", "--list", "--index", index, "--format", "json")
    assert listed.code == 0, listed
    [run] = listed.json()["runs"]
    assert not run["finished"] and run["done"] >= 6 and run["undone"] == 0
    undo = run_cli("undo", "--index", index, "--format", "json")
    assert undo.code == 0, undo
    after = snapshot(root)
    assert {k: v[:3] for k, v in after.items()} == {k: v[:3] for k, v in before.items()}
    again = undo_run(resolve_run(root / ".lookalike" / "quarantine", None))
    assert again.restored == [] and again.problems == []
    assert snapshot(root) == after
    with open_index(index) as idx:
        assert len(idx.live_file_ids(moved)) == len(moved)  # live again after the undo


def test_not_duplicate_decision_is_respected_by_dupes(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    a, small = str(root / "lib" / "a.jpg"), str(root / "lib" / "a-small.jpg")

    def grouped(**kw) -> bool:
        with open_index(index) as idx:
            return any({a, small} <= {f.path for f in g.files} for g in find_groups(idx, **kw))

    assert grouped()
    result = run_cli("decide", "not-dup", a, small, "--index", index)
    assert result.code == 0, result
    assert not grouped()
    assert grouped(decisions=False)
    with open_index(index) as idx:
        pairs = {(m.a, m.b) for m in find_pairs(idx)}
        groups = find_groups(idx)
    old = str(root / "lib" / "old" / "a.jpg")  # a byte copy of a.jpg: the same content
    assert not {(a, small), (small, a), (old, small), (small, old)} & pairs
    # The byte copies of a.jpg are still a group: a decision is about two contents.
    assert any({a, old} <= {f.path for f in g.files} for g in groups)
    listed = run_cli("dupes", "--index", index, "--format", "json")
    assert listed.code == 0, listed
    listed_groups = [{f["path"] for f in g["files"]} for g in listed.json()["groups"]]
    assert any({a, old} <= g for g in listed_groups)
    assert not any({a, small} <= g for g in listed_groups)


def _table_keeps(result) -> dict[str, str]:
    """kept path -> its reason, from the `dupes` table's keep rows."""
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("  keep ")]
    return {row[1]: result.stdout.split(row[1], 1)[1].split("kept: ", 1)[1].split("\n")[0]
            for row in rows}


def test_dupes_shows_the_keeper_plan_keeps_and_a_mark_moves_both(tmp_path):
    root = tmp_path / "c"
    index = build(root)
    ref = ["--reference", root / "ref"]
    table = run_cli("dupes", "--index", index, *ref)
    assert table.code == 0, table
    shown = _table_keeps(table)
    result = run_cli("plan", "--index", index, *ref, "--out", tmp_path / "plan.json")
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert set(shown) == {g["keep"] for g in plan["groups"]}
    assert shown[str(root / "ref" / "b.png")] == "in a reference folder"
    # byte copies tie on resolution and size: the older one is kept, and the table says so
    assert shown[str(root / "lib" / "old" / "a.jpg")] == "oldest file"
    assert {g["keep_reason"] for g in plan["groups"]} == set(shown.values())
    assert "resized or re-encoded copy of" in table.stdout  # a-small.jpg, in words
    # a person marks the small copy keep (as the web UI does): both views follow
    small = str(root / "lib" / "a-small.jpg")
    with open_index(index) as idx:
        idx.acquire()
        idx.set_marks(list(idx.live_file_ids([small]).values()), "keep")
    marked = _table_keeps(run_cli("dupes", "--index", index, *ref))
    assert marked[small] == "marked keep"
    result = run_cli("plan", "--index", index, *ref, "--out", tmp_path / "plan2.json")
    assert result.code == 0, result
    again = json.loads((tmp_path / "plan2.json").read_text())
    assert small in {g["keep"] for g in again["groups"]}
    ignored = run_cli("plan", "--index", index, *ref, "--no-marks", "--out",
                      tmp_path / "plan3.json")
    assert ignored.code == 0 and small not in {
        g["keep"] for g in json.loads((tmp_path / "plan3.json").read_text())["groups"]}
