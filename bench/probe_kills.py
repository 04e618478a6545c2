"""Kill `lookalike scan` and `lookalike apply` with SIGKILL at random moments, then finish the
job, and check that nothing was lost: the resumed index equals a clean scan's, and undo
puts every file back byte for byte. Prints what it tried; it measures, never asserts a time.

    .venv/bin/python bench/probe_kills.py [--kills 12] [--count 300] [--seed 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOKALIKE = Path(sys.executable).with_name("lookalike")


def run(*args: str | os.PathLike, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([os.fspath(LOOKALIKE), *map(os.fspath, args)], capture_output=True,
                          text=True, env=env)


def kill_after(seconds: float, *args: str | os.PathLike, env: dict | None = None) -> int:
    """Start `lookalike ARGS`, SIGKILL its process group after `seconds`; its exit code."""
    proc = subprocess.Popen([os.fspath(LOOKALIKE), *map(os.fspath, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    time.sleep(seconds)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait()


def index_state(index: Path) -> set[tuple]:
    """What a scan leaves: each live file's path, content hash and signature values."""
    with sqlite3.connect(index) as conn:
        rows = conn.execute(
            "SELECT f.path, f.status, hex(c.hash), s.method, hex(s.value) FROM files f "
            "LEFT JOIN contents c ON c.id = f.content_id "
            "LEFT JOIN signatures s ON s.content_id = c.id").fetchall()
    return {tuple(r) for r in rows}


def tree(root: Path) -> dict[str, str]:
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".lookalike"]
        for name in files:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def probe_scan(root: Path, kills: int, rng: random.Random) -> dict:
    clean = root.parent / "clean.db"
    started = time.perf_counter()
    assert run("scan", root, "--index", clean).returncode in (0, 3)  # 3: the sample's broken file
    full = time.perf_counter() - started
    resumed = root.parent / "resumed.db"
    codes = []
    for _ in range(kills):
        codes.append(kill_after(rng.uniform(0.05, full), "scan", root, "--index", resumed))
    final = run("scan", root, "--index", resumed)
    same = index_state(clean) == index_state(resumed)
    return {"kills": sum(c == -signal.SIGKILL for c in codes), "finished_early": codes.count(0),
            "final_exit": final.returncode, "same_index_as_clean_scan": same,
            "clean_scan_s": round(full, 2)}


def probe_apply(root: Path, kills: int, rng: random.Random) -> dict:
    index = root / ".lookalike" / "index.db"
    assert run("scan", root).returncode in (0, 3)
    before = tree(root)
    plan = root.parent / "plan.json"
    survived = restored_ok = 0
    env = {**os.environ, "LOOKALIKE_TEST_APPLY_DELAY": "0.01"}
    for _ in range(kills):
        assert run("plan", "--index", index, "--out", plan).returncode == 0
        code = kill_after(rng.uniform(0.2, 1.5), "apply", plan, "--yes", env=env)
        survived += code == -signal.SIGKILL
        undone = run("undo", "--index", index)
        restored_ok += undone.returncode == 0 and tree(root) == before
        listed = run("dupes", "--index", index, "--format", "json")
        groups = json.loads(listed.stdout)["groups"] if listed.stdout else None
        if not groups:
            print(f"  no groups after a killed apply and undo: exit {listed.returncode} "
                  f"{listed.stderr.strip()[-200:]}", file=sys.stderr)
    return {"kills": survived, "undo_restored_every_byte": f"{restored_ok}/{kills}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--count", type=int, default=300, help="distinct sample pictures")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sample"
        assert run("sample", root, "--count", str(args.count)).returncode == 0
        files = sum(1 for _ in root.rglob("*") if _.is_file())
        print(f"{files} files; {args.kills} kills of each command")
        print("scan :", probe_scan(root, args.kills, rng))
        print("apply:", probe_apply(root, args.kills, rng))


if __name__ == "__main__":
    main()
