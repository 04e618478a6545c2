"""End to end on a collection with planted duplicates: lookalike vs imagededup vs imagehash.

    python bench/make_collection.py /work/benchdata/images /work/bench20k --n 20000 --seed 0
    python bench/bench_e2e.py /work/bench20k --limit 2000     # a subset: whole groups
    python bench/bench_e2e.py /work/bench20k --json e2e.json  # all of it

DEST is what make_collection.py wrote: DEST/images/ and DEST/truth.json. Every contender goes
from the folder of files to a list of duplicate pairs, each in fresh processes, on the same
files, with a warm page cache (all files read once first; each contender also runs once,
untimed, on 16 files, so that its libraries are cached too):

* lookalike: `lookalike scan FOLDER --index TMP/index.db`, then
  `lookalike dupes --index TMP/index.db --pairs --format json` (method auto, its defaults;
  scan uses all cores).
* imagededup-phash: `PHash().encode_images(image_dir=FOLDER)` then
  `find_duplicates(encoding_map=...)`, all defaults (max_distance_threshold=10, Cython brute
  force, pools of cpu_count() processes), in one Python process (see bench_scan.py for how
  imagededup is imported without torch).
* imagehash-bf10 / imagehash-bf6: `imagehash.phash` of every file in a Pool(--workers), then
  every pair compared with NumPy (XOR + popcount, in blocks), pairs within Hamming 10
  (imagededup's default) or 6 (lookalike's pHash radius for `--method phash`; its `auto` rule
  uses pHash <= 8 together with dHash <= 10).

Measured by this (parent) process: wall s from starting the first command to the end of the
last (interpreter start-up, imports, hashing, search and writing the pairs out, all in);
cpu s, user + system time of all the contender's processes (getrusage of waited-for
children); RSS MB and PSS MB, the peak of the summed RSS and PSS of the contender's process
tree, sampled with psutil every 0.1 s (RSS counts the pages forked workers share with their
parent once per process; PSS counts them once: the nearer figure to "memory needed");
others, CPU seconds the rest of the machine used meanwhile (from /proc/stat): if it is not
near 0, a neighbour competed for the cores and the times are too long.

Pairs are scored against the truth: a pair is right when both files are in one planted group
(an original and its copies); precision = right pairs / pairs found, recall = right pairs /
all pairs inside groups. Recall is also given per transform (original-copy pairs) and for the
copy-copy pairs. Wrong pairs are sorted by what they are: `sibling` (two crops side by side
in one source picture, or copies of them), `lookalike` (listed in truth.json: grey
thumbnails correlate >= 0.95), `same source` (other crops of one source) and `other`.

Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench_scan import stage
from common import TreeMemory, import_imagededup, machine_cpu

from lookalike.evaluation.collection import COPY_COPY, PlantedTruth, read_collection_truth

CONTENDERS = {
    "lookalike": "lookalike scan + lookalike dupes --pairs --format json (method auto)",
    "imagededup-phash": "imagededup PHash: encode_images + find_duplicates, defaults (r=10)",
    "imagehash-bf10": "imagehash.phash in a Pool(N) + NumPy all-pairs Hamming <= 10",
    "imagehash-bf6": "imagehash.phash in a Pool(N) + NumPy all-pairs Hamming <= 6",
}
WARM_UP_FILES = 16


# ---------------------------------------------------------------------------------------------
# child side: imagededup and imagehash, writing {"pairs": [[a, b], ...], ...} to --out


def _phash_int(path: str) -> int | None:
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(str(imagehash.phash(image)), 16)
    except Exception:  # noqa: BLE001  (counted as a failure)
        return None


def child_imagededup(folder: Path) -> dict:
    PHash = import_imagededup("imagededup.methods.hashing").PHash
    hasher = PHash(verbose=False)
    encodings = hasher.encode_images(image_dir=str(folder))
    duplicates = hasher.find_duplicates(encoding_map=encodings)
    pairs = {tuple(sorted((a, b))) for a, found in duplicates.items() for b in found}
    return {"pairs": sorted(pairs), "hashed": len(encodings)}


def child_imagehash(folder: Path, radius: int, workers: int) -> dict:
    from multiprocessing import Pool

    import numpy as np

    files = sorted(p for p in folder.iterdir() if p.is_file())
    with Pool(workers) as pool:
        codes = pool.map(_phash_int, [str(p) for p in files], chunksize=32)
    ok = [i for i, code in enumerate(codes) if code is not None]
    hashes = np.array([codes[i] for i in ok], dtype=np.uint64)
    names = [files[i].name for i in ok]
    pairs = []
    block = 512
    for start in range(0, len(hashes), block):
        rows = hashes[start:start + block]
        distance = np.bitwise_count(rows[:, None] ^ hashes[None, :])
        i, j = np.nonzero(distance <= radius)
        i += start
        keep = i < j
        pairs.extend((names[a], names[b]) for a, b in zip(i[keep], j[keep]))
    return {"pairs": pairs, "hashed": len(ok)}


# ---------------------------------------------------------------------------------------------
# parent side: run and measure


def lookalike_command() -> list[str]:
    script = Path(sys.executable).parent / "lookalike"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lookalike"]


def commands(name: str, folder: Path, work: Path, workers: int) -> list[tuple[list[str], Path]]:
    """The commands of one contender, each with the file its stdout goes to."""
    if name == "lookalike":
        index = work / "index.db"
        return [([*lookalike_command(), "scan", str(folder), "--index", str(index)],
                 work / "scan.out"),
                ([*lookalike_command(), "dupes", "--index", str(index), "--pairs",
                  "--format", "json"], work / "pairs.json")]
    child = [sys.executable, __file__, str(folder), "--child", name, "--workers", str(workers),
             "--out", str(work / "pairs.json")]
    return [(child, work / "child.out")]


def run_contender(name: str, folder: Path, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"e2e-{name}-") as tmp:
        work = Path(tmp)
        record: dict = {"contender": name, "images": sum(1 for _ in folder.iterdir())}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine_before = machine_cpu()
        peak_rss = peak_pss = 0
        started = time.perf_counter()
        for argv, out_path in commands(name, folder, work, workers):
            with open(out_path, "w") as out, open(work / "stderr.txt", "a") as err:
                proc = subprocess.Popen(argv, stdout=out, stderr=err)
                sampler = TreeMemory(proc.pid).start()
                code = proc.wait()
                sampler.stop()
            peak_rss = max(peak_rss, sampler.peak_rss)
            peak_pss = max(peak_pss, sampler.peak)
            ok_codes = (0, 3) if name == "lookalike" else (0,)  # 3: some files unreadable
            if code not in ok_codes:
                lines = (work / "stderr.txt").read_text().strip().splitlines()
                return {"contender": name, "error": f"{Path(argv[0]).name} exit {code}: "
                        + (lines[-1] if lines else "")}
            record.setdefault("exit_codes", []).append(code)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine_after = machine_cpu()
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        record.update(wall_s=wall, cpu_s=cpu, rss_mb=peak_rss / 2**20, pss_mb=peak_pss / 2**20,
                      images_per_s=record["images"] / wall)
        if machine_before and machine_after:
            record["others_cpu_s"] = max(0.0, machine_after.busy - machine_before.busy - cpu)
        data = json.loads((work / "pairs.json").read_text())
        if name == "lookalike":
            record["pairs"] = sorted({tuple(sorted((Path(p["a"]).name, Path(p["b"]).name)))
                                      for p in data["pairs"]})
            record["evidence"] = {"|".join(sorted((Path(p["a"]).name, Path(p["b"]).name))):
                                  [p["method"], p["distance"], p["transform"]]
                                  for p in data["pairs"]}
        else:
            record["pairs"] = [tuple(p) for p in data["pairs"]]
        return record


# ---------------------------------------------------------------------------------------------
# truth and scoring


def pick_subset(data: dict, images: Path, limit: int | None) -> list[Path]:
    """All files, or whole units (a planted group, or a lone original) up to `limit` files."""
    if limit is None:
        return sorted(p for p in images.iterdir() if p.is_file())
    grouped = {g["original"]: [g["original"], *(c["file"] for c in g["copies"])]
               for g in data["groups"]}
    units = [grouped.get(name, [name]) for name in sorted(data["originals"])]
    chosen: list[str] = []
    for unit in units:
        if len(chosen) + len(unit) > limit:
            continue
        chosen.extend(unit)
        if len(chosen) == limit:
            break
    return [images / name for name in sorted(chosen)]


# ---------------------------------------------------------------------------------------------
# report


def print_table(rows: list[dict]) -> None:
    header = (f"{'contender':17} {'images':>6} {'wall s':>7} {'img/s':>7} {'cpu s':>7} "
              f"{'RSS MB':>7} {'PSS MB':>7} {'others':>7} {'pairs':>7} {'precision':>9} "
              f"{'recall':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['contender']:17} failed: {r['error']}")
            continue
        s = r["score"]
        print(f"{r['contender']:17} {r['images']:6} {r['wall_s']:7.1f} {r['images_per_s']:7.1f} "
              f"{r['cpu_s']:7.1f} {r['rss_mb']:7.0f} {r['pss_mb']:7.0f} "
              f"{r.get('others_cpu_s', float('nan')):7.1f} {s['found']:7} "
              f"{s['precision']:9.3f} {s['recall']:7.3f}")
    ok = {r["contender"]: r for r in rows if "error" not in r}
    if "lookalike" in ok:
        for name in ok:
            if name != "lookalike":
                print(f"{name} wall / lookalike wall = "
                      f"{ok[name]['wall_s'] / ok['lookalike']['wall_s']:.2f}")
    print("\nRSS MB / PSS MB: peak summed over the process tree (PSS counts shared pages once)"
          "\nothers: CPU s used by the rest of the machine meanwhile (near 0 on a quiet machine)")


def print_recall(rows: list[dict], truth: PlantedTruth) -> None:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return
    kinds = Counter(truth.pairs.values())
    names = [r["contender"] for r in ok]
    print("\nrecall by transform (original-copy pairs; copy-copy: two copies of one original)")
    print(f"{'transform':12} {'pairs':>6} " + " ".join(f"{n:>16}" for n in names))
    for kind in sorted(kinds, key=lambda k: (k == COPY_COPY, k)):
        print(f"{kind:12} {kinds[kind]:6} " + " ".join(
            f"{r['score']['recall_by_transform'].get(kind, 0):16.3f}" for r in ok))
    print("\nwrong pairs by kind")
    print(f"{'kind':19} " + " ".join(f"{n:>16}" for n in names))
    all_kinds = sorted({k for r in ok for k in r["score"]["wrong_by_kind"]})
    for kind in all_kinds:
        print(f"{kind:19} " + " ".join(
            f"{r['score']['wrong_by_kind'].get(kind, 0):16}" for r in ok))


def print_examples(record: dict, truth: PlantedTruth, count: int, seed: int = 0) -> None:
    wrong = record["score"]["wrong"]
    if not wrong:
        return
    print(f"\n{record['contender']}: {count} of its {len(wrong)} wrong pairs (random sample)")
    for a, b in random.Random(seed).sample(wrong, min(count, len(wrong))):
        evidence = record.get("evidence", {}).get("|".join(sorted((a, b))), "")
        ga, gb = truth.group_of[a], truth.group_of[b]
        label = [truth.transform.get(a, "original"), truth.transform.get(b, "original")]
        print(f"  {a} ({label[0]}) ~ {b} ({label[1]}): {truth.wrong_kind(a, b)}; "
              f"sources {truth.originals.get(ga, {}).get('source')} "
              f"{truth.originals.get(gb, {}).get('source')}; {evidence}")


def main() -> None:
    legend = "\n".join(f"  {name:17} {what}" for name, what in CONTENDERS.items())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=legend,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="make_collection.py's DEST (or, with --child, "
                        "the folder of images)")
    parser.add_argument("--limit", type=int,
                        help="only about this many files: whole groups and lone originals")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated names")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for the imagehash pool (the others use their defaults)")
    parser.add_argument("--examples", type=int, default=12,
                        help="wrong pairs of lookalike to print")
    parser.add_argument("--json", type=Path, help="also write every row (with its pairs) here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "imagededup-phash":
            result = child_imagededup(args.dest)
        else:
            result = child_imagehash(args.dest, int(args.child.removeprefix("imagehash-bf")),
                                     args.workers)
        args.out.write_text(json.dumps(result))
        return
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")
    data = read_collection_truth(args.dest / "truth.json")
    images = args.dest / "images"
    files = pick_subset(data, images, args.limit)
    truth = PlantedTruth(data, {p.name for p in files})
    print(f"{len(files)} files of {images} ({len(truth.pairs)} duplicate pairs in "
          f"{sum(1 for g in data['groups'] if g['original'] in truth.group_of)} groups); "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(dir=args.dest, prefix=".bench-") as tmp:
        if args.limit is None:
            folder = images
            for path in files:
                path.read_bytes()  # warm page cache
        else:
            folder = Path(tmp) / "images"
            stage(files, folder)  # hard links, read once
        warm = Path(tmp) / "warm-up"
        stage(files[:WARM_UP_FILES], warm)
        for name in names:  # untimed: every tool's libraries into the page cache
            run_contender(name, warm, args.workers)
        rows = []
        for name in names:
            row = run_contender(name, folder, args.workers)
            if "error" not in row:
                row["score"] = truth.score(row["pairs"])
            print(f"  {name}: " + (f"{row['wall_s']:.1f} s, {row['score']['found']} pairs"
                                   if "error" not in row else row["error"]), flush=True)
            rows.append(row)
    print()
    print_table(rows)
    print_recall(rows, truth)
    for row in rows:
        if row["contender"] == "lookalike" and "error" not in row:
            print_examples(row, truth, args.examples)
    if args.json:
        args.json.write_text(json.dumps({"dest": str(args.dest), "files": len(files),
                                         "truth_pairs": len(truth.pairs), "rows": rows},
                                        indent=1, default=list))


if __name__ == "__main__":
    main()
