"""Scan throughput, side by side: lookalike vs imagededup vs imagehash vs plain decoding.

    python bench/bench_scan.py /work/benchdata/images --limit 2000 [--json out.json]
    python bench/bench_scan.py /work/benchdata/images --profile 300   # cProfile, 1 worker
    python bench/bench_scan.py /work/benchimg/images --make-reference /work/ref50k --count 50000

The first N files of the folder by sorted name are hard-linked into a scratch folder (so every
tool that takes a directory sees exactly those files) and read once, so that every contender
meets a warm page cache; each contender also runs once, untimed, on a few files so that its
libraries are in the page cache too. Each contender then runs in a fresh subprocess:

* wall s: measured by this (parent) process, from starting the subprocess to the moment the
  subprocess reports that its hashing is done; interpreter start-up and imports included
  (shown alone as "start s": wall s less the time spent on the files).
  A grouping step (lookalike's find_groups / `dupes`, imagededup's find_duplicates) runs
  after that moment and is shown on its own ("group s"), outside wall s.
* main MB / worker MB: peak RSS of the contender's main process and of its largest worker,
  from getrusage(RUSAGE_SELF / RUSAGE_CHILDREN) in the subprocess; forked workers count the
  pages they share with their parent, so the two must not be added.
* tree MB: the peak of the summed PSS (proportional set size: a shared page counted once) of
  the subprocess and all its descendants, sampled with psutil every 0.1 s; the nearest
  number to "memory this tool needed".
* cpu s: user + system CPU time of the subprocess and its workers.

imagededup is installed without torch (`pip install --no-deps imagededup`). Its
`imagededup/methods/__init__.py` and `imagededup/utils/__init__.py` import the CNN method and
its models, and through them torch, so the child registers `imagededup.methods` and
`imagededup.utils` as bare packages (the real folders, those two __init__ files not run) and
imports `imagededup.methods.hashing` from them: nothing is stubbed, and the hashing code that
runs is imagededup's own, with its defaults (a process pool of cpu_count() workers).

The script measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import TreeMemory, import_imagededup, machine_cpu, usage

# name -> what it runs (the help text and the table legend)
CONTENDERS = {
    "lookalike": "lookalike.scan(), default methods (pixels, phash, dhash, colour, health), "
                 "N workers",
    "lookalike-baseline": "the same, lookalike imported from --baseline-src (before/after)",
    "lookalike-phash": "lookalike.scan(), methods=['phash'] (+pixels), N workers",
    "lookalike-pixels": "lookalike.scan(), methods=['pixels'] only: the pipeline without any "
                        "perceptual signature (read, decode, the pixels hash, the index)",
    "lookalike-hashes": "lookalike.scan(), methods=['phash', 'dhash'] (+pixels): the default "
                        "without colour and health",
    "lookalike-cli": "`python -m lookalike scan DIR --index X -j N --format json`",
    "lookalike-threads": "the same as lookalike, its pool N threads of the main process "
                         "instead of N worker processes (see use_threads)",
    "lookalike-1proc": "lookalike.scan(), default methods, workers=1 (in process)",
    "imagededup-phash": "imagededup PHash().encode_images(image_dir=DIR), its defaults",
    "imagehash-1proc": "Image.open + imagehash.phash per file, one process",
    "imagehash-2proc": "the same in a multiprocessing.Pool(N)",
    "pillow-draft-decode": "Pillow decode only (JPEG draft to 256 px) in a Pool(N): the ceiling",
    "pillow-full-decode": "Pillow decode only, in full (no draft), in a Pool(N)",
    "lookalike-decode": "lookalike.decode.decode() to the RGB array only, in the same Pool(N): "
                        "the decode the default scan starts from (simplejpeg, pyspng, Pillow)",
    "immaculate": "`immaculate --json DIR` (its default, pdq), run by --immaculate-python",
}
WARM_UP_FILES = 16  # each contender first runs once, untimed, on this many files


# ---------------------------------------------------------------------------------------------
# child side: runs one contender and prints JSON lines ("hashed", then "done")


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _one_cv_thread() -> None:
    import cv2

    cv2.setNumThreads(1)  # each pool thread is one worker: no OpenCV pool behind it


def use_threads() -> None:
    """lookalike.scan's local pool as threads of this process instead of forked workers: the
    same process_chunk in a ThreadPoolExecutor (bench/README.md, "Threads instead of worker
    processes"; measured, not adopted, so the library has no such option)."""
    import importlib
    from concurrent.futures import Executor, ThreadPoolExecutor

    from lookalike.runners.local import InProcess, limit_threads

    def pool(workers: int, lock_fd: int | None) -> Executor:
        if workers <= 1:
            return InProcess()
        limit_threads()  # one BLAS thread, as in each worker process
        return ThreadPoolExecutor(workers, initializer=_one_cv_thread)

    importlib.import_module("lookalike.scan")._executor = pool


def _imagehash_one(path: str) -> str:
    """'' on success, else the reason (the hash itself is not needed by the benchmark)."""
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as image:
            imagehash.phash(image)
        return ""
    except Exception as exc:  # noqa: BLE001  (counted and reported)
        return _error(exc)


def _draft_decode(path: str) -> str:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (256, 256))
            image.load()
        return ""
    except Exception as exc:  # noqa: BLE001
        return _error(exc)


def _full_decode(path: str) -> str:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
        return ""
    except Exception as exc:  # noqa: BLE001
        return _error(exc)


def _lookalike_decode(path: str) -> str:
    from lookalike.decode import decode
    from lookalike.methods.registry import Picture

    try:
        with open(path, "rb") as handle:
            Picture(decode(handle.read())).rgb
        return ""
    except Exception as exc:  # noqa: BLE001
        return _error(exc)


def _error(exc: Exception) -> str:
    """A failure as the per-file contenders report it."""
    return f"{type(exc).__name__}: {exc}"[:200]


def _pool_map(function, files: list[str], workers: int) -> list[str]:
    from multiprocessing import Pool

    pool = Pool(workers)
    try:
        return pool.map(function, files, chunksize=32)
    finally:
        pool.close()
        pool.join()  # workers exit and are waited for, so RUSAGE_CHILDREN sees them


def _reasons(errors: list[str]) -> dict:
    return dict(Counter(e for e in errors if e).most_common(8))


def child(name: str, folder: Path, workers: int) -> None:
    started = time.perf_counter()
    files = sorted(str(p) for p in folder.iterdir() if p.is_file())
    with tempfile.TemporaryDirectory() as tmp, TreeMemory() as memory:
        index_path = Path(tmp) / "index.db"
        record: dict = {"contender": name, "images": len(files)}
        after: dict = {}
        if name.startswith("lookalike") and name not in ("lookalike-cli", "lookalike-decode"):
            import lookalike

            imported = time.perf_counter()
            record["lookalike_from"] = str(Path(lookalike.__file__).parent)
            methods = {"lookalike-phash": ["phash"], "lookalike-pixels": ["pixels"],
                       "lookalike-hashes": ["phash", "dhash"]}.get(name)  # None: the default
            if name == "lookalike-threads":
                use_threads()
            summary = lookalike.scan([folder], index_path=index_path, methods=methods,
                                     workers=1 if name == "lookalike-1proc" else workers)
            record.update(failed=summary.failed, signed=summary.scanned,
                          reasons=_reasons([f"{f.stage}: {f.reason}" for f in summary.failures]))

            def group() -> dict:
                with lookalike.open_index(index_path) as index:
                    by = {"lookalike-phash": "phash",
                          "lookalike-pixels": "pixels"}.get(name, "auto")
                    groups = lookalike.find_groups(index, by)
                return {"groups": len(groups)}
        elif name == "lookalike-cli":
            imported = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "lookalike", "scan", str(folder),
                                   "--index", str(index_path), "-j", str(workers),
                                   "--format", "json"], capture_output=True, text=True)
            data = json.loads(done.stdout)
            failures = data.get("failures", [])
            record.update(exit_code=done.returncode, failed=len(failures),
                          signed=data.get("summary", data).get("scanned"),
                          reasons=_reasons([f"{f['stage']}: {f['reason']}" for f in failures]))

            def group() -> dict:
                out = subprocess.run([sys.executable, "-m", "lookalike", "dupes", "--index",
                                      str(index_path), "--format", "json"],
                                     capture_output=True, text=True)
                data = json.loads(out.stdout)
                return {"groups": len(data.get("groups", [])),
                        "dupes_failures": len(data.get("failures", []))}
        elif name == "imagededup-phash":
            PHash = import_imagededup("imagededup.methods.hashing").PHash
            imported = time.perf_counter()
            hasher = PHash(verbose=False)
            encodings = hasher.encode_images(image_dir=str(folder))
            missing = sorted({Path(f).name for f in files} - set(encodings))
            record.update(failed=len(missing), signed=len(encodings),
                          reasons=_reasons([f"no hash (imagededup logs why): {name}"
                                            for name in missing]))

            def group() -> dict:
                duplicates = hasher.find_duplicates(encoding_map=encodings)
                return {"groups": sum(1 for v in duplicates.values() if v)}
        elif name == "immaculate":
            python = os.environ["BENCH_IMMACULATE_PYTHON"]
            imported = time.perf_counter()
            # Rust threads in one process: its whole run (decode, hash, grouping) is in wall s
            done = subprocess.run([str(Path(python).parent / "immaculate"), "--json",
                                   str(folder)], capture_output=True, text=True)
            data = json.loads(done.stdout) if done.returncode == 0 else {}
            record.update(exit_code=done.returncode, failed=len(data.get("skipped", [])),
                          signed=len(files) - len(data.get("skipped", [])),
                          groups=len(data.get("exact", [])) + len(data.get("near", [])),
                          reasons=_reasons([done.stderr.strip()[-200:]]
                                           if done.returncode else []))
            group = None
        elif name in ("imagehash-1proc", "imagehash-2proc", "pillow-draft-decode",
                      "pillow-full-decode", "lookalike-decode"):
            import imagehash  # noqa: F401  (import time outside the loop, as for the others)
            from PIL import Image  # noqa: F401

            imported = time.perf_counter()
            function = {"pillow-draft-decode": _draft_decode, "pillow-full-decode": _full_decode,
                        "lookalike-decode": _lookalike_decode}.get(name, _imagehash_one)
            if name == "lookalike-decode":
                import lookalike.decode  # noqa: F401
            if name == "imagehash-1proc":
                errors = [function(f) for f in files]
            else:
                errors = _pool_map(function, files, workers)
            record.update(failed=sum(1 for e in errors if e), reasons=_reasons(errors),
                          signed=sum(1 for e in errors if not e))
            group = None
        else:
            raise SystemExit(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")
        hashed = time.perf_counter()
        record.update(phase="hashed", import_s=imported - started, work_s=hashed - imported,
                      **usage())
        record["tree_mb"] = memory.peak / 2**20
        _emit(record)  # the parent stops its clock here
        if group:
            after = group()
            after["group_s"] = time.perf_counter() - hashed
            # this process's peak over the scan and the dupes (main MB: over the scan only)
            after["group_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        _emit({"phase": "done", **after})


# ---------------------------------------------------------------------------------------------
# parent side


def pick(source: Path, limit: int) -> list[Path]:
    return sorted(p for p in source.iterdir() if p.is_file())[:limit]


def compile_sources(packages: list[Path]) -> None:
    """Write the bytecode of lookalike's own modules, as a user's first run does: with
    PYTHONDONTWRITEBYTECODE set (as on our test machines) an editable install never gets
    any, and each contender's start would compile every module afresh (0.48 against 0.33 s
    for `import lookalike` before its lazy names)."""
    import compileall

    for package in packages:
        compileall.compile_dir(str(package), quiet=1)


# Builds and searches a tiny multi-index, which compiles lookalike's numba loops into their
# cache beside the source (the warm-up's few files never need them: FAISS answers there).
_NUMBA_WARM_UP = ("import numpy as np\nfrom lookalike.search import mih\n"
                  "codes = np.random.default_rng(0).integers(0, 256, (256, 8, 8), np.uint8)\n"
                  "mih.MultiIndex(codes[:, 0], 8).search(codes)\n")


def warm_numba(packages: list[Path]) -> None:
    """Fill each lookalike tree's numba cache, as a user's first `dupes` does: without it the
    first timed run of a fresh tree (a --baseline-src) compiles the join's loops inside its
    group s (5.0 against 2.0 s on the reference case)."""
    for package in packages:
        env = {**os.environ, "PYTHONPATH": str(package.parent)}
        done = subprocess.run([sys.executable, "-c", _NUMBA_WARM_UP], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            print(f"(could not warm the numba cache of {package}: "
                  f"{(done.stderr.strip().splitlines() or ['?'])[-1]})")


def stage(files: list[Path], dest: Path) -> int:
    """Hard-link (or copy) the files into dest, then read them all once: a warm page cache."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copy2(path, dest / path.name)
    return sum(len(path.read_bytes()) for path in dest.iterdir())


def describe(files: list[Path]) -> dict:
    from PIL import Image

    formats: Counter = Counter()
    modes: Counter = Counter()
    pixels, sizes, dims = [], [], []
    for path in files:
        sizes.append(path.stat().st_size)
        try:
            with Image.open(path) as image:
                formats[image.format] += 1
                modes[image.mode] += 1
                dims.append(image.size)
                pixels.append(image.size[0] * image.size[1])
        except Exception:  # noqa: BLE001
            formats["unreadable"] += 1
    by_pixels = sorted(dims, key=lambda d: d[0] * d[1])
    return {"files": len(files), "bytes": sum(sizes), "formats": dict(formats),
            "modes": dict(modes.most_common()),
            "median_bytes": statistics.median(sizes) if sizes else 0,
            "median_megapixels": statistics.median(pixels) / 1e6 if pixels else 0,
            "median_dims": "x".join(map(str, by_pixels[len(by_pixels) // 2])) if dims else "",
            "smallest": "x".join(map(str, by_pixels[0])) if dims else "",
            "largest": "x".join(map(str, by_pixels[-1])) if dims else ""}


def run_contender(name: str, folder: Path, workers: int, env: dict | None = None) -> dict:
    """One contender in a fresh subprocess; `env`: its environment (None: this one's)."""
    machine_before = machine_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, str(folder), "--child", name,
                             "--workers", str(workers)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    record: dict = {}
    for line in proc.stdout:
        if not line.startswith("{"):
            continue  # a tool's own chatter
        data = json.loads(line)
        if data.get("phase") == "hashed":
            record = {**data, "wall_s": time.perf_counter() - started}
            machine_after = machine_cpu()
            if machine_before and machine_after:
                # CPU time the rest of the machine used meanwhile: a busy neighbour makes
                # a pooled contender look slower than it is
                record["others_cpu_s"] = max(
                    0.0, machine_after.busy - machine_before.busy - data["cpu_s"])
                record["steal_s"] = machine_after.steal - machine_before.steal
        elif data.get("phase") == "done":
            record.update({k: v for k, v in data.items() if k != "phase"})
    stderr = proc.stderr.read()
    proc.wait()
    record.pop("phase", None)
    if proc.returncode != 0 or "wall_s" not in record:
        lines = stderr.strip().splitlines()
        return {"contender": name, "error": lines[-1] if lines else f"exit {proc.returncode}"}
    record["images_per_s"] = record["images"] / record["wall_s"]
    return record


def _median_run(name: str, runs: list[dict]) -> dict:
    """The run with the median wall time (all its columns from that one run)."""
    ok = sorted((r for r in runs if "error" not in r), key=lambda r: r["wall_s"])
    if not ok:
        return runs[-1]
    row = dict(ok[(len(ok) - 1) // 2])
    row["all_wall_s"] = [r.get("wall_s") for r in runs]
    return row


def print_table(rows: list[dict], workers: int) -> dict:
    ok = [r for r in rows if "error" not in r]
    base = next((r for r in ok if r["contender"] == "lookalike"), None)
    ceiling = next((r for r in ok if r["contender"] == "pillow-draft-decode"), None)
    header = (f"{'contender':20} {'images':>6} {'failed':>6} {'wall s':>7} {'start s':>7} "
              f"{'img/s':>7} "
              f"{'main MB':>7} {'worker MB':>9} {'tree MB':>7} {'cpu s':>6} {'others':>6} "
              f"{'group s':>7} {'dupes MB':>8} {'e2e s':>6} "
              f"{'lookalike x':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['contender']:20} failed: {r['error']}")
            continue
        ratio = base["images_per_s"] / r["images_per_s"] if base else float("nan")
        group = f"{r['group_s']:7.2f}" if "group_s" in r else f"{'-':>7}"
        r["e2e_s"] = r["wall_s"] + r.get("group_s", 0.0)
        print(f"{r['contender']:20} {r['images']:6} {r.get('failed', 0):6} {r['wall_s']:7.2f} "
              f"{r['wall_s'] - r['work_s']:7.2f} {r['images_per_s']:7.1f} "
              f"{r['main_mb']:7.0f} {r['worker_mb']:9.0f} {r['tree_mb']:7.0f} {r['cpu_s']:6.1f} "
              f"{r.get('others_cpu_s', float('nan')):6.1f} {group} "
              f"{r.get('group_mb', float('nan')):8.0f} {r['e2e_s']:6.2f} "
              f"{ratio:11.2f}")
    print("\nlookalike x = lookalike's images/s over the contender's (above 1: lookalike faster)"
          "\nothers = CPU seconds used by the rest of the machine during the run (should be ~0)"
          "\ne2e s = wall s + group s: scan and dupes (immaculate's wall s is both already)"
          "\ndupes MB = the main process's peak RSS over the scan and the dupes after it "
          "(main MB: the scan only; immaculate's is both already)")
    summary = {}
    for name in ("lookalike", "lookalike-baseline", "immaculate"):
        row = next((r for r in ok if r["contender"] == name), None)
        for decoder in ("pillow-full-decode", "pillow-draft-decode"):
            other = next((r for r in ok if r["contender"] == decoder), None)
            if row and other:
                summary[f"{name}_over_{decoder}"] = row["e2e_s"] / other["wall_s"]
                print(f"{name} e2e s / {decoder} wall s = {row['e2e_s'] / other['wall_s']:.2f}")
    if base and ceiling:
        share = base["images_per_s"] / ceiling["images_per_s"]
        summary["lookalike_share_of_decode"] = share
        print(f"lookalike end to end = {100 * share:.0f}% of the draft-decode throughput "
              f"({workers} workers)")
    for r in ok:
        if r.get("reasons"):
            print(f"\n{r['contender']} failures by reason:")
            for reason, count in r["reasons"].items():
                print(f"  {count:5}  {reason}")
    return summary


def profile(files: list[Path], top: int) -> None:
    """cProfile one in-process (workers=1) lookalike scan of these files."""
    import cProfile
    import pstats

    import lookalike

    with tempfile.TemporaryDirectory() as tmp:
        index_path = Path(tmp) / "index.db"
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        summary = lookalike.scan(paths=[str(p) for p in files], index_path=index_path,
                                 workers=1)
        profiler.disable()
        seconds = time.perf_counter() - started
    print(f"lookalike.scan(workers=1), {len(files)} files: {seconds:.2f} s under cProfile "
          f"({summary.scanned} signed, {summary.failed} failed)")
    stats = pstats.Stats(profiler)
    for key in ("cumulative", "tottime"):
        print(f"\n--- top {top} by {key} ---")
        stats.sort_stats(key).print_stats(top)


def stages(files: list[Path], chunk: int = 48) -> None:
    """Where the default scan's time goes: each stage of a worker's chunk timed alone, in this
    one process, over the same files (ms a picture); then a real 2-worker scan, CPU by process."""
    import pickle
    import resource

    import xxhash
    from PIL import Image

    import lookalike
    from lookalike import decode as decoding
    from lookalike.index.store import open_index
    from lookalike.methods.registry import Picture, shared_method
    from lookalike.scan import DEFAULT_METHODS, resolve_methods
    from lookalike.sources.folders import walk
    from lookalike.types import FileRef, Scanned

    from lookalike.runners.local import limit_threads

    limit_threads()  # one thread, as in a worker: CPU time is then this stage's own
    names = resolve_methods(DEFAULT_METHODS)
    clock: Counter = Counter()
    # CPU time, not wall time: a busy neighbour on a shared machine inflates wall time only
    now_s = time.process_time

    def tick(stage: str, since: float) -> float:
        now = now_s()
        clock[stage] += now - since
        return now

    t = now_s()
    refs = [r for r in walk([str(files[0].parent)]) if isinstance(r, FileRef)]
    tick("walk", t)
    results, n = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        index = open_index(Path(tmp) / "index.db", create=True)
        run_id = index.begin_run([], names)
        for start in range(0, len(refs), chunk):
            part = refs[start:start + chunk]
            t = now_s()
            blobs = [Path(r.path).read_bytes() for r in part]
            t = tick("read", t)
            contents = [xxhash.xxh3_128_digest(b) for b in blobs]
            t = tick("xxh3 of bytes", t)
            for b in blobs:
                with Image.open(__import__("io").BytesIO(b)) as image:
                    if image.format == "JPEG":
                        image.draft("RGB", (256, 256))
                    image.load()
            t = tick("  Pillow open+load alone (draft)", t)
            decoded = [decoding.decode(b) for b in blobs]
            t = tick("decode() (simplejpeg, pyspng or Pillow; RGB)", t)
            for d in decoded:  # the check decode() makes on JPEGs it drafted
                decoding._redecode_texture(d, decoding.DRAFT_SIZE, decoding.TEXTURE_DRAFT)
            t = tick("  texture check alone", t)
            pictures = [Picture(d) for d in decoded]
            for p in pictures:
                p.rgb
            t = tick("Picture.rgb (array out of the decode)", t)
            for p in pictures:
                p.gray
                p.small
            t = tick("grey + area-average (Picture.gray/small)", t)
            signatures: list[list] = [[] for _ in pictures]
            for name in names:
                method = shared_method(name)
                t = now_s()
                for i, sig in enumerate(method.compute(pictures)):
                    signatures[i].append(sig)
                tick(f"sign: {name}", t)
            t = now_s()
            scanned = [Scanned(r, c, "image", d.width, d.height, d.format, d.mode, tuple(s))
                       for r, c, d, s in zip(part, contents, decoded, signatures)]
            blob = pickle.dumps(scanned, pickle.HIGHEST_PROTOCOL)
            pickle.loads(blob)
            t = tick("pickle results (dumps + loads)", t)
            with index.transaction() as conn:
                index.write_scanned(conn, run_id, scanned)
            tick("SQLite write (one transaction per chunk)", t)
            n += len(part)
            results.append(len(blob))
        index.close()
    print(f"{n} files, chunks of {chunk}, one process; pickled results "
          f"{sum(results) / n:.0f} bytes a picture\n")
    print(f"{'stage':44} {'CPU ms/picture':>10}")
    total = 0.0
    for stage_name, seconds in clock.items():
        if not stage_name.startswith("  "):
            total += seconds
        print(f"{stage_name:44} {1000 * seconds / n:10.3f}")
    print(f"{'sum (indented rows are parts of the row above)':44} {1000 * total / n:10.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        lookalike.scan([str(files[0].parent)], index_path=Path(tmp) / "i.db", workers=2)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"\nreal scan, 2 workers: {wall:.2f} s wall, {1000 * wall / n:.3f} ms a picture; "
          f"main process CPU {1000 * main_cpu / n:.3f} ms a picture, workers' CPU "
          f"{1000 * (kids.ru_utime + kids.ru_stime) / n:.3f} ms a picture (peak RSS: see a "
          f"side-by-side run; this process also held the stage pass)")


REFERENCE_WIDTH = 256  # the reference case: JPEGs this wide ...
REFERENCE_COPIES = 100  # ... of which this many are byte copies of others


def _reference_part(job: tuple[list[str], int, int, str, int]) -> int:
    """Crops of each source picture, 256 px wide JPEGs numbered from `first`."""
    import random

    from PIL import Image

    sources, first, per_source, dest, seed = job
    rng = random.Random(seed)
    number = first
    for source in sources:
        try:
            with Image.open(source) as image:
                image.draft("RGB", (1024, 1024))
                picture = image.convert("RGB")
        except Exception:  # noqa: BLE001  (a source that cannot be read is left out)
            continue
        picture.thumbnail((1024, 1024))
        width, height = picture.size
        for _ in range(per_source):
            w = max(8, int(width * rng.uniform(0.4, 1.0)))
            h = max(8, min(height, int(w * rng.uniform(0.6, 1.0))))
            x, y = rng.randrange(width - w + 1), rng.randrange(height - h + 1)
            crop = picture.crop((x, y, x + w, y + h))
            crop = crop.resize((REFERENCE_WIDTH, max(8, round(REFERENCE_WIDTH * h / w))),
                               Image.Resampling.LANCZOS)
            crop.save(Path(dest) / f"{number:06d}.jpg", quality=rng.randrange(70, 96))
            number += 1
    return number - first


def make_reference(source: Path, dest: Path, count: int, workers: int) -> None:
    """The reference case: `count` JPEGs 256 px wide, random crops of the pictures in
    `source` (those at least 256 px wide), the last REFERENCE_COPIES byte copies of others."""
    from multiprocessing import Pool

    from PIL import Image

    sources = []
    for path in sorted(source.iterdir()):
        try:
            with Image.open(path) as image:
                if min(image.size) >= REFERENCE_WIDTH:
                    sources.append(str(path))
        except Exception:  # noqa: BLE001
            continue
    dest.mkdir(parents=True, exist_ok=True)
    crops = count - REFERENCE_COPIES
    per_source = -(-crops // len(sources))
    step = max(1, len(sources) // (8 * workers))
    jobs = [(sources[i:i + step], i * per_source, per_source, str(dest), i)
            for i in range(0, len(sources), step)]
    with Pool(workers) as pool:
        made = sum(pool.map(_reference_part, jobs))
    files = sorted(dest.glob("*.jpg"))
    for extra in files[crops:]:  # crops beyond the count
        extra.unlink()
    files = files[:crops]
    for i in range(REFERENCE_COPIES):  # byte copies, spread over the collection
        shutil.copyfile(files[i * len(files) // REFERENCE_COPIES], dest / f"copy{i:04d}.jpg")
    print(f"{min(made, crops) + REFERENCE_COPIES} JPEGs in {dest} from {len(sources)} sources")


def main() -> None:
    legend = "\n".join(f"  {name:20} {what}" for name, what in CONTENDERS.items())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=legend,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", type=Path, help="folder of images (not searched recursively)")
    parser.add_argument("--limit", type=int, default=2000, help="first N files by name")
    parser.add_argument("--workers", type=int, default=2, help="processes for the pooled runs")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated names")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per contender, round-robin; the table shows the median run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="instead: cProfile lookalike.scan(workers=1) over the first N files")
    parser.add_argument("--top", type=int, default=15, help="rows per profile listing")
    parser.add_argument("--baseline-src", type=Path, metavar="DIR",
                        help="the src folder (holding lookalike/) of an earlier version, for "
                             "the contender lookalike-baseline: before and after in one run")
    parser.add_argument("--immaculate-python", type=Path, metavar="PYTHON",
                        help="a Python (>= 3.12) with immaculate installed, for the contender "
                             "immaculate (its `immaculate` script beside it is run)")
    parser.add_argument("--stages", type=int, metavar="N",
                        help="instead: time each stage of the default scan over the first N "
                             "files (the folder must hold only those: use a scratch copy)")
    parser.add_argument("--make-reference", type=Path, metavar="DEST",
                        help="instead: write the reference case (JPEGs 256 px wide) to DEST")
    parser.add_argument("--count", type=int, default=50_000, help="pictures for --make-reference")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.images, args.workers)
        return
    if args.stages:
        with tempfile.TemporaryDirectory(dir=args.images.parent) as tmp:
            folder = Path(tmp) / "images"
            stage(pick(args.images, args.stages), folder)
            stages(sorted(folder.iterdir()))
        return
    if args.make_reference:
        make_reference(args.images, args.make_reference, args.count, args.workers)
        return
    if args.profile:
        files = pick(args.images, args.profile)
        for path in files:
            path.read_bytes()
        profile(files, args.top)
        return
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")
    files = pick(args.images, args.limit)
    data = describe(files)
    print(f"{data['files']} files ({data['bytes'] / 1e6:.0f} MB) from {args.images}: "
          f"{data['formats']}; modes {data['modes']}")
    print(f"median {data['median_bytes'] / 1e3:.0f} kB and {data['median_dims']} px "
          f"({data['median_megapixels']:.2f} MP); smallest {data['smallest']}, "
          f"largest {data['largest']}; {os.cpu_count()} CPUs, {args.workers} workers\n")
    with tempfile.TemporaryDirectory(dir=args.images.parent) as tmp:
        folder = Path(tmp) / "images"
        stage(files, folder)
        warm = Path(tmp) / "warm-up"
        stage(files[:WARM_UP_FILES], warm)
        envs = {name: None for name in names}
        if args.baseline_src:
            envs["lookalike-baseline"] = {**os.environ, "PYTHONPATH": str(args.baseline_src)}
        if args.immaculate_python:
            envs["immaculate"] = {**os.environ,
                                  "BENCH_IMMACULATE_PYTHON": str(args.immaculate_python)}
        trees = [Path(importlib.util.find_spec("lookalike").origin).parent] \
            + ([args.baseline_src / "lookalike"] if args.baseline_src else [])
        compile_sources(trees)
        warm_numba(trees)
        for name in names:  # untimed: brings every tool's libraries into the page cache
            run_contender(name, warm, args.workers, envs.get(name))
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for round_ in range(1, args.repeat + 1):  # round-robin, so drift hits everyone alike
            for name in names:
                run = run_contender(name, folder, args.workers, envs.get(name))
                runs[name].append(run)
                print(f"  round {round_} {name}: "
                      + (f"{run['wall_s']:.2f} s, cpu {run['cpu_s']:.1f} s, others "
                         f"{run.get('others_cpu_s', 0):.1f} s, peak MB main {run['main_mb']:.0f}"
                         f" / tree {run['tree_mb']:.0f}" if "wall_s" in run else run["error"]),
                      flush=True)
    rows = [_median_run(name, runs[name]) for name in names]
    print()
    summary = print_table(rows, args.workers)
    if args.json:
        args.json.write_text(json.dumps({"data": data, "workers": args.workers,
                                         "repeat": args.repeat,
                                         "cpus": os.cpu_count(), "rows": rows, **summary},
                                        indent=1))


if __name__ == "__main__":
    main()
