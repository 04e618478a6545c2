"""Copy detection on an AugLy collection (make_copydetect.py), lookalike against PDQ, through
the CLI as a user runs it.

    .venv/bin/python bench/eval_copydetect.py OUT [--contenders fast,thorough,previous,pdq] \
        [--split holdout|tune|both] [--json results.json]

Each contender runs in fresh subprocesses on OUT/pictures, with a fresh index in
OUT/runs/CONTENDER/ (outside the pictures folder):

| contender | scan | dupes |
|---|---|---|
| fast | `lookalike scan PICTURES --index I` | `lookalike dupes --index I --pairs --format json` |
| thorough | `... scan ... --mode thorough` | the same |
| previous | `... scan ... --method phash,dhash,local,embed` | the same |
| pdq | `... scan ... --method pdq` | `... dupes ... --method pdq` (its default radius) |
| pdq-ref | `... --method pdq-ref` | `... --method pdq-ref` (the pdqhash package, radius 31) |

A contender whose command the CLI refuses (an option it does not have yet) is reported as
not available, with the CLI's message, and the others still run. Timing: wall seconds of each
command (interpreter start-up included), images/s over the scan's wall time, the peak of the
process tree's summed PSS (psutil, sampled every 0.1 s) and the largest single process's RSS
(wait4), CPU seconds of the tree, and the load average before each run (2 shared cores: above
~2 the times are inflated). The files are read once first so every contender finds them in
the page cache.

Truth (OUT/truth.tsv): a predicted pair is right when both files are of one family (original
and copy, or two copies), wrong otherwise. Recall and µAP count the original-copy pairs only;
a found copy-copy pair is right but left out of the ranking (its recall is shown apart).
µAP (DISC21's rule, lookalike.evaluation.metrics) ranks the pairs the CLI printed by their
score, so it is over the contender's own operating point, never above its recall; "R@P.99"
is the largest recall of a score threshold on that ranking with precision >= 0.99.
Wrong pairs are told apart: listed hard negatives by kind (OUT/negatives.tsv), and "source
look-alikes", pairs from two different sources that are one picture already in the packages
(pHash within 4 bits under a flip or turn, or `same` in bench/data/heldout_pairs.tsv): P is
the raw precision, P-S leaves those source look-alikes out (neither right nor wrong), and so
do µAP-S and R@P.99-S (the ranking without them).
Hue variants are another product, so they are wrong even when their source is the same.
"other" counts the wrong pairs that are neither listed nor source look-alikes.
Per split: pairs with both files in that split; cross-split pairs only in "all".
Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from common import TreeMemory
from copydetect_truth import (NATURAL_BITS, NEGATIVE_KINDS, SPLITS,
                              phash_distance, read_truth, reviewed_same)

from lookalike.evaluation import metrics

CONTENDERS = {  # name -> (scan options, dupes options)
    "fast": ([], []),
    "thorough": (["--mode", "thorough"], []),
    "previous": (["--method", "phash,dhash,local,embed"], []),
    "pdq": (["--method", "pdq"], ["--method", "pdq"]),
    "pdq-ref": (["--method", "pdq-ref"], ["--method", "pdq-ref"]),
}
PEERS = ("pdq", "pdq-ref")
PRECISION = 0.99
KIND_LABELS = {"screenshot_frame": "frame", "meme_band": "meme", "border": "border",
               "hue_variant": "hue", "same_style": "style"}


# ---------------------------------------------------------------------------------------------
# running


def _cli() -> list[str]:
    venv = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "lookalike"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "lookalike"]


def measured(cmd: list[str]) -> dict:
    """Run `cmd`; its exit code, output, wall and CPU seconds and memory peaks."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreeMemory(child.pid).start()
    out: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()))
               for k, s in (("stdout", child.stdout), ("stderr", child.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    sampler.stop()
    return {"rc": child.returncode, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "tree_mb": sampler.peak / 2**20, "max_rss_mb": usage.ru_maxrss / 1024,
            "load": load, "stdout": out["stdout"].decode(errors="replace"),
            "stderr": out["stderr"].decode(errors="replace")}


def _last_line(run: dict) -> str:
    """The CLI's message, out of the box the terminal library draws around it."""
    lines = [line.strip(" │╭╮╰╯─") for line in run["stderr"].splitlines()]
    lines = [line for line in lines if any(c.isalnum() for c in line)
             and not line.startswith(("Usage:", "Try "))]
    return " ".join(lines[-2:]) if lines else f"exit {run['rc']}"


def _fastest(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r["wall_s"])
    return {k: v for k, v in best.items() if k != "stdout"} | {
        "walls_s": [round(r["wall_s"], 2) for r in runs]}


def run_contender(name: str, pictures: Path, runs: Path, cli: list[str], repeat: int) -> dict:
    """Scan into a fresh index and list the pairs, `repeat` times; the fastest run's cost
    (the others only waited for a neighbour's work on the shared cores)."""
    scan_opts, dupes_opts = CONTENDERS[name]
    folder = runs / name
    index = folder / "index.db"
    scan_cmd = cli + ["scan", str(pictures), "--index", str(index), "--format", "json"] + scan_opts
    dupes_cmd = cli + ["dupes", "--index", str(index), "--pairs", "--format", "json"] + dupes_opts
    result = {"name": name, "scan_cmd": " ".join(scan_cmd[len(cli):]),
              "dupes_cmd": " ".join(dupes_cmd[len(cli):])}
    scans, dupes = [], []
    for _ in range(repeat):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        scans.append(measured(scan_cmd))
        if scans[-1]["rc"] not in (0, 3):  # 3: some files could not be read, still counts
            result["error"] = _last_line(scans[-1])
            return result
        dupes.append(measured(dupes_cmd))
        if dupes[-1]["rc"] != 0:
            result["error"] = _last_line(dupes[-1])
            return result
    result["scan"], result["dupes"] = _fastest(scans), _fastest(dupes)
    (folder / "pairs.json").write_text(dupes[-1]["stdout"])
    best: dict[frozenset, tuple] = {}  # one entry per pair of files, its best score
    for p in json.loads(dupes[-1]["stdout"])["pairs"]:
        pair = (Path(p["a"]).name, Path(p["b"]).name, float(p["score"]), p["method"])
        key = frozenset(pair[:2])
        if key not in best or pair[2] > best[key][2]:
            best[key] = pair
    result["pairs"] = list(best.values())
    return result


# ---------------------------------------------------------------------------------------------
# scoring


class Truth:
    """The collection's truth, and the verdict on any pair of its files."""

    def __init__(self, out: Path, reviewed: Path):
        truth, negatives, sources = read_truth(out)
        self.rows = {t.file: t for t in truth}
        self.negative = {frozenset((n.file_a, n.file_b)): n.kind for n in negatives}
        self.negative_count = Counter((n.kind, n.split) for n in negatives)
        self.source = {s.source: s for s in sources}
        self.same_sources = reviewed_same(reviewed)
        members = defaultdict(list)
        for t in truth:
            members[t.family_id].append(t)
        self.orig_copy, self.copy_copy = set(), set()
        for family in members.values():
            first = [t.file for t in family if t.role == "original"]
            copies = [t.file for t in family if t.role == "copy"]
            self.orig_copy |= {frozenset((first[0], c)) for c in copies}
            self.copy_copy |= {frozenset(p) for p in combinations(copies, 2)}

    def split(self, a: str, b: str) -> str:
        sa, sb = self.rows[a].split, self.rows[b].split
        return sa if sa == sb else "cross"

    def source_lookalike(self, a: str, b: str) -> bool:
        """Files of two different sources that are one picture in the packages already."""
        ta, tb = self.rows[a], self.rows[b]
        if ta.source == tb.source or "variant" in (ta.role, tb.role):
            return False
        sa, sb = self.source[ta.source], self.source[tb.source]
        close = min(phash_distance(sa.phash8, sb.phash8),
                    phash_distance(sb.phash8, sa.phash8)) <= NATURAL_BITS
        return close or frozenset((sa.package_path, sb.package_path)) in self.same_sources

    def verdict(self, a: str, b: str) -> str:
        pair = frozenset((a, b))
        if pair in self.orig_copy:
            return "orig_copy"
        if pair in self.copy_copy:
            return "copy_copy"
        return "wrong"

    def transform_label(self, copy: str) -> str:
        t = self.rows[copy]
        if "+" in t.transform:
            return "two transforms"
        if t.transform == "crop":
            return f"crop {round(t.params['ops'][0]['keep'] * 100)}%"
        return t.transform

    def in_split(self, pairs, split: str):
        return pairs if split == "all" else [p for p in pairs if self.split(p[0], p[1]) == split]


def score(truth: Truth, pairs: list[tuple], split: str) -> dict:
    pairs = truth.in_split(pairs, split)
    positives = truth.in_split([tuple(p) for p in truth.orig_copy], split)
    copy_pairs = truth.in_split([tuple(p) for p in truth.copy_copy], split)
    verdicts = [truth.verdict(a, b) for a, b, _, _ in pairs]
    wrong = [(a, b) for (a, b, _, _), v in zip(pairs, verdicts) if v == "wrong"]
    look = {p for p in wrong if truth.source_lookalike(*p)}
    kinds = Counter(truth.negative.get(frozenset(p), "source" if p in look else "other")
                    for p in wrong)
    lookalikes = len(look)
    tp = len(pairs) - len(wrong)  # copy-copy pairs are right too
    found_count = verdicts.count("orig_copy")
    precision = tp / len(pairs) if pairs else float("nan")
    precision_s = tp / (len(pairs) - lookalikes) if len(pairs) > lookalikes else float("nan")
    recall = found_count / len(positives) if positives else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp and found_count else 0.0
    lookalike = [(a, b) in look for a, b, _, _ in pairs]
    ranking = {}
    for label, keep_lookalikes in (("", True), ("_s", False)):
        kept = [(s, v == "orig_copy")
                for (_, _, s, _), v, is_look in zip(pairs, verdicts, lookalike)
                if v != "copy_copy" and (keep_lookalikes or not is_look)]
        scores = np.array([s for s, _ in kept], dtype=np.float64)
        hits = np.array([h for _, h in kept], dtype=bool)
        ranking["uap" + label] = metrics.micro_average_precision(scores, hits, len(positives))
        ranking["recall_at_p99" + label] = metrics.recall_at_precision(
            scores, hits, len(positives), PRECISION)
    found = {frozenset((a, b)) for (a, b, _, _), v in zip(pairs, verdicts) if v == "orig_copy"}
    per_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for a, b in positives:
        copy = a if truth.rows[a].role == "copy" else b
        per_family[truth.transform_label(copy)][1] += 1
        per_family[truth.transform_label(copy)][0] += frozenset((a, b)) in found
    listed = {k: sum(n for (kind, s), n in truth.negative_count.items()
                     if kind == k and split in (s, "all")) for k in NEGATIVE_KINDS}
    return {
        "pairs": len(pairs), "right": tp, "wrong": len(wrong), "source_lookalikes": lookalikes,
        "positives": len(positives), "found": found_count,
        "precision": precision, "precision_s": precision_s, "recall": recall, "f1": f1,
        **ranking,
        "copy_copy_found": verdicts.count("copy_copy"), "copy_copy_total": len(copy_pairs),
        "wrong_by_kind": dict(kinds), "negatives_listed": listed,
        "recall_by_transform": {k: v[0] / v[1] for k, v in sorted(per_family.items())},
        "positives_by_transform": {k: v[1] for k, v in sorted(per_family.items())},
    }


# ---------------------------------------------------------------------------------------------
# printing


def _f(x: float, digits: int = 3) -> str:
    return "-" if x != x else f"{x:.{digits}f}"


def print_cost(results: list[dict], n_files: int) -> None:
    print(f"\ncost ({n_files:,} pictures; scan and dupes each in a fresh process)")
    print("| contender | scan s | dupes s | img/s | scan CPU s | tree MB | max proc MB | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "scan" not in r or "dupes" not in r:
            print(f"| {r['name']} | not available: {r.get('error', '')} |||||||")
            continue
        s, d = r["scan"], r["dupes"]
        print(f"| {r['name']} | {s['wall_s']:.1f} | {d['wall_s']:.1f} | "
              f"{n_files / s['wall_s']:.0f} | {s['cpu_s']:.0f} | "
              f"{max(s['tree_mb'], d['tree_mb']):.0f} | "
              f"{max(s['max_rss_mb'], d['max_rss_mb']):.0f} | {s['load']:.1f} |")


def print_split(results: list[dict], split: str) -> None:
    done = [r for r in results if split in r.get("scores", {})]
    if not done:
        return
    first = done[0]["scores"][split]
    listed = first["negatives_listed"]
    print(f"\nsplit: {split} ({first['positives']} original-copy pairs, "
          f"{first['copy_copy_total']} copy-copy pairs; hard negatives listed: "
          + ", ".join(f"{KIND_LABELS[k]} {n}" for k, n in listed.items()) + ")")
    print("| contender | pairs | P | P-S | R | F1 | µAP | µAP-S | R@P.99 | R@P.99-S | copy-copy "
          "found | wrong: " + " / ".join(KIND_LABELS[k] for k in NEGATIVE_KINDS)
          + " / other | source look-alikes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in done:
        s = r["scores"][split]
        kinds = " / ".join(str(s["wrong_by_kind"].get(k, 0))
                           for k in NEGATIVE_KINDS + ("other",))
        print(f"| {r['name']} | {s['pairs']} | {_f(s['precision'])} | {_f(s['precision_s'])} | "
              f"{_f(s['recall'])} | {_f(s['f1'])} | {_f(s['uap'])} | {_f(s['uap_s'])} | "
              f"{_f(s['recall_at_p99'])} | {_f(s['recall_at_p99_s'])} | "
              f"{s['copy_copy_found']} | {kinds} | "
              f"{s['source_lookalikes']} |")
    labels = list(first["positives_by_transform"])
    print("\n| recall by transform | n | " + " | ".join(r["name"] for r in done) + " |")
    print("|---|---|" + "---|" * len(done))
    for label in labels:
        print(f"| {label} | {first['positives_by_transform'][label]} | "
              + " | ".join(_f(r["scores"][split]["recall_by_transform"][label], 2)
                           for r in done) + " |")


def print_ratios(results: list[dict], splits: list[str], n_files: int) -> None:
    by_name = {r["name"]: r for r in results if "scores" in r}
    peer = next((by_name[p] for p in PEERS if p in by_name), None)
    if peer is None:
        return
    print()
    for r in by_name.values():
        if r["name"] in PEERS:
            continue
        speed = peer["scan"]["wall_s"] / r["scan"]["wall_s"]
        cpu = peer["scan"]["cpu_s"] / r["scan"]["cpu_s"]
        f1 = "; ".join(f"{s} F1 {_f(r['scores'][s]['f1'])} vs {_f(peer['scores'][s]['f1'])}"
                       f" (x{r['scores'][s]['f1'] / max(peer['scores'][s]['f1'], 1e-9):.2f})"
                       for s in splits)
        print(f"{r['name']} vs {peer['name']}: img/s x{speed:.2f} "
              f"({n_files / r['scan']['wall_s']:.0f} vs {n_files / peer['scan']['wall_s']:.0f}),"
              f" img per CPU s x{cpu:.2f} ({n_files / r['scan']['cpu_s']:.0f} vs "
              f"{n_files / peer['scan']['cpu_s']:.0f});"
              f" {f1}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a folder made by make_copydetect.py")
    parser.add_argument("--contenders", default="fast,thorough,previous,pdq")
    parser.add_argument("--split", choices=("holdout", "tune", "both"), default="both")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each contender N times; its fastest run's cost is shown")
    parser.add_argument("--reviewed", type=Path,
                        default=Path(__file__).parent / "data" / "heldout_pairs.tsv")
    args = parser.parse_args()
    pictures = args.out / "pictures"
    truth = Truth(args.out, args.reviewed)
    files = sorted(pictures.iterdir())
    for f in files:  # the page cache warm for every contender alike
        f.read_bytes()
    splits = list(SPLITS) + ["all"] if args.split == "both" else [args.split]
    cli = _cli()
    results = []
    for name in args.contenders.split(","):
        if name not in CONTENDERS:
            sys.exit(f"unknown contender {name!r}; one of {', '.join(CONTENDERS)}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        r = run_contender(name, pictures, args.out / "runs", cli, args.repeat)
        if "pairs" in r:
            r["scores"] = {s: score(truth, r["pairs"], s) for s in splits}
            r["methods"] = dict(Counter(p[3] for p in r["pairs"]))
        results.append(r)
    print(f"{args.out}: {len(files):,} pictures; " + time.strftime("%Y-%m-%d %H:%M")
          + f"; {os.cpu_count()} cores")
    print_cost(results, len(files))
    for split in splits:
        print_split(results, split)
    print_ratios(results, [s for s in splits if s != "all"] or splits, len(files))
    for r in results:
        if "methods" in r:
            print(f"{r['name']}: pairs by method " + ", ".join(
                f"{k} {v}" for k, v in sorted(r["methods"].items())))
    if args.json:
        args.json.write_text(json.dumps({"folder": str(args.out), "pictures": len(files),
                                         "results": [{k: v for k, v in r.items() if k != "pairs"}
                                                     for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
