"""Scan throughput, side by side: lookalike vs imagededup vs imagehash vs plain decoding.

    python bench/bench_scan.py /work/benchdata/images --limit 2000 [--json out.json]

Each contender runs in a fresh subprocess on the same files (page cache warmed first) and
reports wall time, images/second and peak RSS (main process, and the largest worker).
The script measures and prints; it asserts nothing.

imagededup is installed without torch (`pip install --no-deps imagededup`): its package
imports torch for its CNN method only, so the child stubs those two modules before importing
`imagededup.methods.hashing`; the hashing code that runs is imagededup's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = ["lookalike", "lookalike-phash", "imagededup-phash", "imagehash-1proc",
              "imagehash-2proc", "pillow-draft-decode"]


def _peak_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def _imagehash_one(path: str) -> str:
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(imagehash.phash(image))
    except Exception:  # noqa: BLE001  (peers skip unreadable files too)
        return ""


def _draft_decode(path: str) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (256, 256))
            image.load()
            return image.size[0]
    except Exception:  # noqa: BLE001
        return 0


def child(name: str, folder: Path, workers: int) -> dict:
    files = sorted(str(p) for p in folder.iterdir() if p.is_file())
    started = time.perf_counter()
    extra: dict = {}
    if name.startswith("lookalike"):
        import lookalike

        with tempfile.TemporaryDirectory() as tmp:
            index_path = Path(tmp) / "index.db"
            methods = ["phash"] if name == "lookalike-phash" else None
            summary = lookalike.scan([folder], index_path=index_path, methods=methods,
                                     workers=workers)
            scanned = time.perf_counter()
            with lookalike.open_index(index_path) as index:
                groups = lookalike.find_groups(index, "phash" if methods else "auto")
            extra = {"scan_s": scanned - started, "groups": len(groups),
                     "failed": summary.failed}
    elif name == "imagededup-phash":
        import types

        for module, attribute in (("imagededup.utils.models", "CustomModel"),
                                  ("imagededup.methods.cnn", "CNN")):
            stub = types.ModuleType(module)
            setattr(stub, attribute, None)
            sys.modules[module] = stub
        from imagededup.methods.hashing import PHash

        hasher = PHash(verbose=False)
        encodings = hasher.encode_images(image_dir=str(folder))
        encoded = time.perf_counter()
        duplicates = hasher.find_duplicates(encoding_map=encodings)
        extra = {"scan_s": encoded - started,
                 "groups": sum(1 for v in duplicates.values() if v)}
    elif name == "imagehash-1proc":
        [_imagehash_one(f) for f in files]
    elif name == "imagehash-2proc":
        from multiprocessing import Pool

        with Pool(workers) as pool:
            pool.map(_imagehash_one, files, chunksize=32)
    elif name == "pillow-draft-decode":
        from multiprocessing import Pool

        with Pool(workers) as pool:
            pool.map(_draft_decode, files, chunksize=32)
    seconds = time.perf_counter() - started
    own, children = _peak_mb()
    return {"contender": name, "images": len(files), "seconds": seconds,
            "images_per_s": len(files) / seconds, "peak_rss_mb": own,
            "worker_peak_rss_mb": children, **extra}


def prepare(source: Path, limit: int, dest: Path) -> list[Path]:
    files = sorted(p for p in source.iterdir() if p.is_file())[:limit]
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = dest / path.name
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    for path in dest.iterdir():  # warm the page cache for everybody alike
        path.read_bytes()
    return files


def describe(files: list[Path]) -> str:
    from collections import Counter

    from PIL import Image

    formats, widths, total = Counter(), [], 0
    for path in files:
        total += path.stat().st_size
        try:
            with Image.open(path) as image:
                formats[image.format] += 1
                widths.append(image.size[0])
        except Exception:  # noqa: BLE001
            formats["unreadable"] += 1
    widths.sort()
    median = widths[len(widths) // 2] if widths else 0
    return (f"{len(files)} files, {total / 1e6:.0f} MB, formats {dict(formats)}, "
            f"median width {median} px, widths {widths[0] if widths else 0}-"
            f"{widths[-1] if widths else 0}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.images, args.workers)))
        return
    with tempfile.TemporaryDirectory(dir=args.images.parent) as tmp:
        folder = Path(tmp) / "images"
        files = prepare(args.images, args.limit, folder)
        print(describe(files))
        rows = []
        for name in args.only.split(","):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, str(folder), "--child", name,
                                   "--workers", str(args.workers)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name}: failed ({done.stderr.strip().splitlines()[-1:]})")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["process_s"] = time.perf_counter() - started  # with interpreter start-up
            rows.append(row)
    base = next((r for r in rows if r["contender"] == "lookalike"), None)
    decode = next((r for r in rows if r["contender"] == "pillow-draft-decode"), None)
    print(f"\n{'contender':22} {'images':>6} {'wall s':>7} {'img/s':>7} {'RSS MB':>7} "
          f"{'worker MB':>9} {'lookalike x':>11}")
    for r in rows:
        ratio = base["images_per_s"] / r["images_per_s"] if base else float("nan")
        print(f"{r['contender']:22} {r['images']:6} {r['seconds']:7.2f} "
              f"{r['images_per_s']:7.0f} {r['peak_rss_mb']:7.0f} {r['worker_peak_rss_mb']:9.0f} "
              f"{ratio:11.2f}")
    if base and decode:
        print(f"\nlookalike end to end = {100 * base['images_per_s'] / decode['images_per_s']:.0f}%"
              f" of the draft-decode throughput ({args.workers} workers)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
