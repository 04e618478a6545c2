"""Time and peak memory of decoding very big pictures, alone and in `lookalike scan`.

    python bench/bench_big_pictures.py [--side 13000] [--workers 2] [--only png16,jpeg]
                                       [--keep DIR] [--json out.json]

Writes, in a scratch folder, pictures of side x side pixels (default 13000 x 13000: 169 MP,
under decode.MAX_PIXELS) with smooth content plus fine stripes, so the files stay small:

* png16-grey: 16-bit greyscale PNG (Pillow mode I;16)
* png16-rgb:  16-bit RGB PNG (written by OpenCV; Pillow reads it as 8-bit RGB)
* png-rgb:    8-bit RGB PNG
* tiff-rgb:   8-bit RGB TIFF, deflate-compressed
* jpeg-rgb:   8-bit RGB JPEG, quality 90 (decode drafts it)

Each picture is generated in a subprocess of its own, so this process stays small: a child
inherits its parent's peak RSS through fork + exec. Then, for each picture, a fresh
subprocess imports lookalike, reads the file and times `decode.decode(data)` as the scan
calls it (draft_size=DRAFT_SIZE); it reports seconds, the size of the decoded raster, and its
peak RSS (getrusage RUSAGE_SELF) against its RSS just before decoding. Last,
`python -m lookalike scan DIR --index X -j N --format json` runs on the folder of all of them:
wall seconds, the largest process's peak RSS (wait4: the scan and the workers it reaped) and
the peak of the summed RSS of its process tree (psutil, sampled every 0.05 s).

It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import TreeMemory

KINDS = ("png16-grey", "png16-rgb", "png-rgb", "tiff-rgb", "jpeg-rgb")
FILE_NAMES = {"png16-grey": "grey16.png", "png16-rgb": "rgb16.png", "png-rgb": "rgb8.png",
              "tiff-rgb": "rgb8.tiff", "jpeg-rgb": "rgb8.jpg"}

_MAKE = r"""
import sys
import cv2
import numpy as np
from PIL import Image

kind, side, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
y = np.arange(side, dtype=np.uint32)[:, None]
x = np.arange(side, dtype=np.uint32)[None, :]
# A smooth diagonal ramp plus stripes 3 px wide: compresses well, and is not flat.
ramp = (x * 40000 // side + y * 25000 // side) + (x // 3 % 2) * 500
if kind == "png16-grey":
    Image.fromarray(ramp.astype(np.uint16)).save(path, compress_level=1)
    sys.exit()
channels = [ramp, (ramp * 3 // 4 + y * 9000 // side), 65535 - ramp]
if kind == "png16-rgb":
    bgr = np.dstack([c.astype(np.uint16) for c in channels[::-1]])
    cv2.imwrite(path, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    sys.exit()
rgb = Image.fromarray(np.dstack([(c >> 8).astype(np.uint8) for c in channels]), "RGB")
if kind == "png-rgb":
    rgb.save(path, compress_level=1)
elif kind == "tiff-rgb":
    rgb.save(path, compression="tiff_adobe_deflate")
else:
    rgb.save(path, quality=90)
"""

_DECODE = r"""
import json, resource, sys, time
import psutil
from lookalike.decode import DRAFT_SIZE, decode
from lookalike.errors import DecodeError

data = open(sys.argv[1], "rb").read()
before = psutil.Process().memory_info().rss
start = time.perf_counter()
try:
    decoded = decode(data, draft_size=DRAFT_SIZE)
    outcome = f"{decoded.format} {decoded.mode} {decoded.width}x{decoded.height} -> " \
              f"{decoded.image.size[0]}x{decoded.image.size[1]}"
except DecodeError as exc:
    outcome = f"refused: {exc}"
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "before_mb": before / 2**20, "peak_mb": peak / 2**20,
                  "outcome": outcome}))
"""


def make_pictures(folder: Path, side: int, kinds: list[str]) -> dict[str, Path]:
    paths = {}
    for kind in kinds:
        path = folder / FILE_NAMES[kind]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _MAKE, kind, str(side), str(path)], check=True)
        print(f"made {path.name}: {path.stat().st_size / 2**20:.1f} MB in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        paths[kind] = path
    return paths


def decode_one(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _DECODE, str(path)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scan_folder(folder: Path, index: Path, workers: int) -> dict:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "lookalike", "scan", str(folder),
                              "--index", str(index), "-j", str(workers), "--format", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeMemory(child.pid, every=0.05, pss=False).start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    sampler.stop()
    stdout, stderr = child.stdout.read(), child.stderr.read()
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": seconds, "max_rss_mb": usage.ru_maxrss / 1024,
            "tree_mb": sampler.peak_rss / 2**20, "exit": child.returncode,
            "summary": stdout.strip()[-600:], "stderr": stderr.strip()[-600:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=13000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--keep", type=Path, help="write the pictures here and keep them")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-big-"))
    folder = args.keep or scratch / "pictures"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        paths = make_pictures(folder, args.side, kinds)
        figures: dict = {"side": args.side, "decode": {}}
        print(f"\n{'picture':<12} {'file MB':>8} {'s':>6} {'RSS before':>11} {'peak RSS':>9}"
              "  outcome")
        for kind, path in paths.items():
            row = decode_one(path)
            figures["decode"][kind] = row
            print(f"{kind:<12} {path.stat().st_size / 2**20:8.1f} {row['seconds']:6.2f} "
                  f"{row['before_mb']:9.0f}MB {row['peak_mb']:7.0f}MB  {row['outcome']}",
                  flush=True)
        scan = scan_folder(folder, scratch / "index.db", args.workers)
        figures["scan"] = scan
        print(f"\nlookalike scan -j {args.workers} of {len(paths)} pictures: "
              f"{scan['seconds']:.1f} s, largest process peak RSS {scan['max_rss_mb']:.0f} MB, "
              f"process tree peak RSS {scan['tree_mb']:.0f} MB (exit {scan['exit']})")
        print(scan["summary"])
        if scan["exit"] != 0:
            print(scan["stderr"])
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
