"""Undo an apply run from its journal: steps in reverse order, each judged by the state of
the file system, so a run killed half-way and an undo run twice are both safe. A file that
appeared at an original path since is never overwritten: both are kept and it is reported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UndoError
from .fileops import file_hash, is_our_link, move_file
from .journal import JOURNAL_NAME, Journal, Step, quarantine_lock, read_steps

log = logging.getLogger(__name__)


@dataclass
class UndoReport:
    run_id: str
    restored: list[str] = field(default_factory=list)  # put back at their original path
    unchanged: list[str] = field(default_factory=list)  # nothing was done to them, or undone
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, why), kept as is


def find_runs(quarantine_dir: str | os.PathLike) -> list[Path]:
    """The run folders (those with a journal), oldest first (run ids sort by time)."""
    folder = Path(quarantine_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / JOURNAL_NAME).is_file())


def resolve_run(quarantine_dir: str | os.PathLike, run: str | None) -> Path:
    """A run folder from a run id, a folder or journal path, or the latest run."""
    if run:
        for candidate in (Path(run), Path(quarantine_dir) / run):
            if candidate.name == JOURNAL_NAME:
                candidate = candidate.parent
            if (candidate / JOURNAL_NAME).is_file():
                return candidate
        raise UndoError(f"no run {run!r} in {quarantine_dir}")
    runs = find_runs(quarantine_dir)
    if not runs:
        raise UndoError(f"no apply run to undo in {quarantine_dir}")
    return runs[-1]


def run_summary(run_dir: str | os.PathLike) -> dict:
    """What a run's journal says: its id, start, whether it finished, and how many steps
    were taken and undone."""
    header, steps = read_steps(Path(run_dir) / JOURNAL_NAME)
    return {"run": header.get("run", Path(run_dir).name), "dir": str(run_dir),
            "started": header.get("started"), "finished": header.get("finished") is not None,
            "steps": len(steps), "done": sum(s.done for s in steps),
            "undone": sum(s.undone for s in steps)}


def undo_run(run_dir: str | os.PathLike) -> UndoReport:
    """Reverse every step of the run that took effect, newest first."""
    run_dir = Path(run_dir)
    journal_path = run_dir / JOURNAL_NAME
    try:
        header, steps = read_steps(journal_path)
    except OSError as exc:
        raise UndoError(f"cannot read the journal {journal_path}: {exc}") from None
    report = UndoReport(header.get("run", run_dir.name))
    with quarantine_lock(run_dir.parent), Journal(journal_path) as journal:
        for step in reversed(steps):
            if step.undone:
                continue
            handler = {"move": _undo_move, "save": _undo_save, "link": _undo_link,
                       "delete": _undo_delete}.get(step.intent.get("op"))
            if handler is None:
                report.problems.append((step.intent.get("path", "?"), "unknown step"))
                continue
            if handler(step, report):
                journal.write({"event": "undone", "step": step.number})
    log.info("undo %s: %d restored, %d problem(s)", report.run_id, len(report.restored),
             len(report.problems))
    return report


def _is_original(path: str, intent: dict) -> bool:
    """Whether `path` holds the bytes the step recorded (and is a plain file)."""
    try:
        return (os.path.isfile(path) and not os.path.islink(path)
                and file_hash(path) == intent["hash"])
    except OSError:
        return False


def _undo_move(step: Step, report: UndoReport) -> bool:
    """Returns whether the step is settled (so it is marked undone)."""
    src, dst = step.intent["path"], step.intent["dst"]
    at_src, at_dst = os.path.lexists(src), os.path.lexists(dst)
    if at_dst and not at_src:
        return _put_back(src, step, report, lambda: move_file(dst, src, step.intent["hash"]))
    if at_src and not at_dst:
        if _is_original(src, step.intent):
            report.unchanged.append(src)  # never moved, or already restored
            return True
        report.problems.append((src, "another file is at this path and the quarantined "
                                     "copy is gone; nothing was changed"))
        return False
    if at_src and at_dst:
        if not step.done and os.path.samefile(src, dst):
            os.unlink(dst)  # killed between the hard link and the unlink of a move
            report.unchanged.append(src)
            return True
        if not step.done and _is_original(src, step.intent):
            # Killed inside a copy across file systems: the original never left.
            report.unchanged.append(src)
            report.problems.append((dst, f"a copy of {src} is left in the quarantine"))
            return True
        report.problems.append((src, f"a file appeared at this path since; the original is "
                                     f"kept in the quarantine at {dst}"))
        return False
    report.problems.append((src, "neither at its path nor in the quarantine"))
    return False


def _undo_link(step: Step, report: UndoReport) -> bool:
    path, target, kind = step.intent["path"], step.intent["target"], step.intent["kind"]
    saved, tmp = step.intent["dst"], step.intent["tmp"]
    if os.path.lexists(tmp) and is_our_link(kind, tmp, target):
        os.unlink(tmp)  # killed between making the link and renaming it over the path
    if not is_our_link(kind, path, target):
        if _is_original(path, step.intent) or not step.done:
            return True  # the link never replaced the original; the save step cleans up
        report.problems.append((path, f"a file appeared at this path since; the original is "
                                      f"kept in the quarantine at {saved}"))
        return False
    if not _is_original(saved, step.intent):
        report.problems.append((path, f"the saved original {saved} is missing or changed; "
                                      "the link is left in place"))
        return False

    def restore() -> None:
        # One rename puts the original back over the link (same file system), else a
        # verified copy to a temp name renamed over it: the path never goes missing.
        if os.stat(saved).st_dev == os.stat(os.path.dirname(path)).st_dev:
            os.replace(saved, path)
        else:
            tmp_back = f"{path}.lookalike-restore"
            move_file(saved, tmp_back, step.intent["hash"])
            os.replace(tmp_back, path)

    return _put_back(path, step, report, restore)


def _put_back(path: str, step: Step, report: UndoReport, restore) -> bool:
    """Run `restore` (which puts the quarantined original back at `path`), then its mtime."""
    try:
        restore()
    except OSError as exc:
        report.problems.append((path, f"cannot restore from {step.intent['dst']}: {exc}"))
        return False
    _restore_mtime(path, step.intent)
    report.restored.append(path)
    return True


def _undo_save(step: Step, report: UndoReport) -> bool:
    """The saved original is removed only when the path holds that very file again (the same
    inode, or the same bytes and modification time); anything else keeps it."""
    path, saved = step.intent["path"], step.intent["dst"]
    if not os.path.lexists(saved):
        if path not in report.restored:
            report.unchanged.append(path)
        return True
    if not os.path.lexists(path):
        return _undo_move(step, report)  # the path went missing: put the original back
    if any(p == path for p, _ in report.problems):
        return False  # its link could not be undone: the saved original stays
    try:
        same = os.path.samefile(path, saved) or (
            _is_original(path, step.intent)
            and os.stat(path).st_mtime_ns == step.intent["mtime_ns"])
    except OSError:
        same = False
    if same:
        os.unlink(saved)
        if path not in report.restored:
            report.unchanged.append(path)
        return True
    report.problems.append((path, f"this path holds another file; the original is kept in "
                                  f"the quarantine at {saved}"))
    return False


def _undo_delete(step: Step, report: UndoReport) -> bool:
    path = step.intent["path"]
    if os.path.lexists(path) and _is_original(path, step.intent):
        report.unchanged.append(path)  # killed before the unlink
        return True
    report.problems.append((path, "deleted with --delete; it cannot be restored"))
    return True


def _restore_mtime(path: str, intent: dict) -> None:
    """A rename keeps the modification time; a copy across file systems keeps it too, and
    this makes sure of it to the nanosecond."""
    st = os.stat(path)
    if st.st_mtime_ns != intent["mtime_ns"]:
        os.utime(path, ns=(st.st_atime_ns, intent["mtime_ns"]))
