"""Run a plan: dry run by default; with `execute`, every file is re-checked (size, mtime and
bytes hash against the plan) just before it is touched, and every step is journaled.

Links are made only between byte copies: the duplicate's bytes and the kept file's bytes
must both still hash to the plan's value. Pictures equal in pixels but not in bytes are not
linked (a person may care about their metadata); quarantine them instead.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ApplyError
from ..settings import setting
from ..sources.remote import is_remote
from .fileops import file_hash, make_link, move_file, save_file
from .journal import JOURNAL_NAME, Journal, new_run_id, quarantine_lock, quarantine_path
from .plan import LINKS, Plan, PlannedAction, PlannedGroup, is_under

log = logging.getLogger(__name__)

# Test-only: seconds to sleep after each action, so a test can kill a run in its middle.
DELAY_ENV = "LOOKALIKE_TEST_APPLY_DELAY"
QUARANTINE_DIR = "quarantine"


@dataclass(frozen=True)
class Outcome:
    path: str
    action: str
    status: str  # would (dry run), done, skipped, failed
    reason: str = ""
    target: str = ""


@dataclass
class ApplyReport:
    executed: bool
    run_id: str | None
    run_dir: str | None
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def quarantine_for(index_path: str | os.PathLike) -> Path:
    """The quarantine folder of an index: next to it."""
    return Path(index_path).parent / QUARANTINE_DIR


def default_quarantine(plan: Plan) -> Path:
    """Next to the index the plan was made from."""
    return quarantine_for(plan.index)


def _stale(path: str, size: int, mtime_ns: int, digest: str) -> str | None:
    """Why `path` is no longer the file the plan saw, or None."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "gone since the plan was made"
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if os.path.islink(path):
        return "is a symbolic link now"
    if not os.path.isfile(path):
        return "is not a regular file now"
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        return "changed since it was scanned for the plan (size or modification time)"
    try:
        if file_hash(path) != digest:
            return "changed since it was scanned for the plan (content)"
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    return None


def check_action(plan: Plan, group: PlannedGroup, action: PlannedAction,
                 allow_delete: bool) -> str | None:
    """Why `action` (of `group`) must not run now, or None."""
    if is_remote(action.path) or is_remote(group.keep):
        # an object store has no quarantine or links here: nothing remote is ever changed
        return "a remote file (URL): quarantine, links and delete act on local files only"
    if is_under(action.path, plan.reference):
        return "in a reference folder"
    if action.action == "delete" and not allow_delete:
        return "deleting needs --delete"
    if reason := _stale(action.path, action.size, action.mtime_ns, action.hash):
        return reason
    # Every action needs the kept file in place as planned: a hand-edited plan, or an earlier
    # action of the same run, must never take away the last copy of a picture.
    if os.path.abspath(action.path) == os.path.abspath(group.keep):
        return "it is the kept file of its group"
    if reason := _stale(group.keep, group.keep_size, group.keep_mtime_ns, group.keep_hash):
        return f"the kept file {group.keep} {reason}"
    if os.path.samefile(action.path, group.keep):
        return "already the same file as the kept one"
    if action.action in LINKS and action.hash != group.keep_hash:
        return "not a byte copy of the kept file"
    if os.path.abspath(action.target) != os.path.abspath(group.keep):
        return "its target is not the kept file of its group"
    return None


def apply_plan(plan: Plan, *, execute: bool = False, allow_delete: bool = False,
               quarantine_dir: str | os.PathLike | None = None) -> ApplyReport:
    """Carry out `plan` (with `execute`; else report what would happen). Files that changed
    since the plan, or lie in a reference folder, are skipped with a reason."""
    todo = [(group, action) for group in plan.groups for action in group.actions]
    if not execute:
        report = ApplyReport(False, None, None)
        for group, action in todo:
            reason = check_action(plan, group, action, allow_delete)
            report.outcomes.append(Outcome(action.path, action.action,
                                           "skipped" if reason else "would", reason or "",
                                           action.target))
        return report
    folder = Path(quarantine_dir or default_quarantine(plan))
    try:
        with quarantine_lock(folder):
            return _execute(plan, todo, allow_delete, folder)
    except OSError as exc:  # the quarantine folder itself; a file's failure is an Outcome
        raise ApplyError(f"cannot use the quarantine folder {folder}: {exc}") from None


def _execute(plan: Plan, todo: list[tuple[PlannedGroup, PlannedAction]], allow_delete: bool,
             folder: Path) -> ApplyReport:
    run_id = new_run_id()
    run_dir = folder / run_id
    run_dir.mkdir(parents=True)
    report = ApplyReport(True, run_id, str(run_dir))
    delay = float(setting(DELAY_ENV) or 0)
    with Journal(run_dir / JOURNAL_NAME) as journal:
        journal.write({"event": "run", "run": run_id, "index": plan.index,
                       "started": time.time(), "actions": len(todo)})
        steps = _Steps(journal)
        for group, action in todo:
            report.outcomes.append(_apply_one(plan, group, action, allow_delete, run_dir,
                                              steps))
            if delay:
                time.sleep(delay)
        journal.write({"event": "finished", "finished": time.time(),
                       "done": report.count("done"), "skipped": report.count("skipped"),
                       "failed": report.count("failed")})
    return report

class _Steps:
    """Numbers the steps and writes intent before, done after."""

    def __init__(self, journal: Journal) -> None:
        self.journal, self.number = journal, 0

    def run(self, op: str, fn, **fields) -> None:
        self.number += 1
        self.journal.write({"event": "intent", "step": self.number, "op": op, **fields})
        fn()
        self.journal.write({"event": "done", "step": self.number})

    def failed(self, reason: str) -> None:
        self.journal.write({"event": "failed", "step": self.number, "reason": reason})


def _apply_one(plan: Plan, group: PlannedGroup, action: PlannedAction, allow_delete: bool,
               run_dir: Path, steps: _Steps) -> Outcome:
    reason = check_action(plan, group, action, allow_delete)
    if reason:
        log.info("skipped %s: %s", action.path, reason)
        return Outcome(action.path, action.action, "skipped", reason, action.target)
    path = os.path.abspath(action.path)
    saved = str(quarantine_path(run_dir, path))
    facts = {"path": path, "size": action.size, "mtime_ns": action.mtime_ns,
             "hash": action.hash}
    try:
        if action.action == "quarantine":
            steps.run("move", lambda: move_file(path, saved, action.hash), dst=saved, **facts)
        elif action.action == "delete":
            steps.run("delete", lambda: os.unlink(path), **facts)
        else:
            # Save the original first (path stays in place), then swap the link in with one
            # rename: at no moment is the path missing, and undo has the original.
            target = os.path.abspath(action.target)
            tmp = os.path.join(os.path.dirname(path),
                               f".{os.path.basename(path)}.lookalike-link")
            steps.run("save", lambda: save_file(path, saved, action.hash), dst=saved, **facts)

            def link() -> None:
                make_link(action.action, target, tmp)
                os.replace(tmp, path)

            steps.run("link", link, kind=action.action, target=target, tmp=tmp, dst=saved,
                      **facts)
    except OSError as exc:
        steps.failed(str(exc))
        log.warning("failed %s %s: %s", action.action, action.path, exc)
        return Outcome(action.path, action.action, "failed", str(exc), action.target)
    return Outcome(action.path, action.action, "done", "", action.target)


def report_json(report: ApplyReport) -> str:
    return json.dumps({"executed": report.executed, "run": report.run_id,
                       "run_dir": report.run_dir,
                       "outcomes": [o.__dict__ for o in report.outcomes]}, indent=2)
