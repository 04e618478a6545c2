"""What a compiled core would save: one C pass over a picture against the OpenCV calls.

    python bench/bench_fused_prototype.py /work/tmp/ref50k --limit 1500 [--flags "-O3"]

Issue 21 asks whether only a compiled core could bring the default scan near decoding speed.
bench/prototypes/fused_signing.c is a throwaway prototype of one: a single pass over the RGB
picture that makes the grey image and its histogram, the 64 x 64 area average the hashes
start from, the 8 x 8 colour cells and the 4 x 4 coarse image, then one pass for both
Laplacians' statistics (what `colour` and `health` need, and the grey images). It is not
byte-identical to OpenCV (a cost estimate only; it checks that its small image and cells
land within a grey level of OpenCV's). It models the reference case's pictures, whose short
side is under 2 x WORK_SIZE (the grey work image is the picture itself): on bigger ones it
does more than the scan does (both Laplacians at full size), so figures there do not compare.
This compiles it with the C compiler found as `cc` (for each of --flags) into a scratch
folder, and times, per picture, in one process:

* the current path: Picture.rgb, .gray, .small, then the colour and health methods;
* the prototype with the same NumPy glue after it (rounding, the CIELAB batch, the health
  statistics of the histograms);
* the prototype's calls alone.

It measures and prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).parent / "prototypes" / "fused_signing.c"
CHUNK = 48  # the scan's chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--flags", action="append",
                        help="compiler flags, one build each (default: -O2, -O3, "
                             "-O3 -march=x86-64-v3)")
    parser.add_argument("--rounds", type=int, default=3, help="the best of this many")
    args = parser.parse_args()
    if shutil.which("cc") is None:
        raise SystemExit("no C compiler (cc) on this machine")
    from lookalike.decode import decode

    files = sorted(p for p in args.images.iterdir() if p.is_file())[:args.limit]
    decoded = []
    for path in files:
        try:
            decoded.append(decode(path.read_bytes()))
        except Exception:  # noqa: BLE001  (a picture that fails is left out of both)
            pass
    print(f"{len(decoded)} pictures from {args.images}, chunks of {CHUNK}, best of "
          f"{args.rounds}, CPU ms a picture")
    current = _timed(decoded, _current, args.rounds)
    print(f"{'current: rgb, gray, small, colour, health':48s} {current:7.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        for flags in args.flags or ["-O2", "-O3", "-O3 -march=x86-64-v3"]:
            library = Path(tmp) / f"fused{abs(hash(flags))}.so"
            subprocess.run(["cc", *flags.split(), "-shared", "-fPIC", "-o", str(library),
                            str(SOURCE)], check=True)
            kernel = _load(library)
            whole = _timed(decoded, lambda chunk: _prototype(kernel, chunk), args.rounds)
            alone = _timed(decoded, lambda chunk: [_fused(kernel, _rgb(d)) for d in chunk],
                           args.rounds)
            small, cells = _agreement(kernel, decoded[:200])
            print(f"{'prototype ' + flags + ', with the glue':48s} {whole:7.3f}   "
                  f"(its calls alone {alone:.3f}; saves {current - whole:+.3f}; small image "
                  f"within {small} and cells within {cells} grey levels of OpenCV's)")


def _timed(decoded: list, work, rounds: int) -> float:
    chunks = [decoded[i:i + CHUNK] for i in range(0, len(decoded), CHUNK)]
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for chunk in chunks:
            work(chunk)
        best = min(best, time.process_time() - start)
    return best / len(decoded) * 1e3


def _rgb(decoded) -> np.ndarray:
    from lookalike.methods.registry import Picture

    return np.ascontiguousarray(Picture(decoded).rgb)


def _current(chunk: list) -> None:
    from lookalike.methods.registry import Picture, shared_method

    pictures = [Picture(d) for d in chunk]
    for picture in pictures:
        picture.small
    shared_method("colour").compute(pictures)
    shared_method("health").compute(pictures)


def _load(library: Path):
    kernel = ctypes.CDLL(str(library)).fused
    pointer, number = ctypes.c_void_p, ctypes.c_int
    kernel.restype = None
    kernel.argtypes = [pointer, number, number, pointer, pointer, pointer, number, number,
                       pointer, number, pointer, pointer]
    return kernel


def _fused(kernel, rgb: np.ndarray) -> tuple[np.ndarray, ...]:
    height, width = rgb.shape[:2]
    gray = np.empty((height, width), np.uint8)
    histogram = np.empty(256, np.uint32)
    small = np.empty((64, 64), np.float32)
    cells = np.empty((8, 8, 3), np.float32)
    laplacians = np.empty(6, np.int64)
    coarse = np.empty((max(height // 4, 1), max(width // 4, 1)), np.uint16)
    kernel(rgb.ctypes.data, height, width, gray.ctypes.data, histogram.ctypes.data,
           small.ctypes.data, 64, 64, cells.ctypes.data, 8, laplacians.ctypes.data,
           coarse.ctypes.data)
    return histogram, small, cells, laplacians


def _prototype(kernel, chunk: list) -> None:
    """The kernel, then what the methods do after their pixel work (their own functions)."""
    from lookalike.methods import health
    from lookalike.methods.lab import lab_of

    outs = [_fused(kernel, _rgb(d)) for d in chunk]
    np.stack([np.clip(np.rint(o[1]), 0, 255).astype(np.uint8) for o in outs])
    lab_of(np.concatenate([np.clip(np.rint(o[2]), 0, 255).astype(np.uint8) for o in outs],
                          axis=1))
    spreads = [[health.spread(*map(float, o[3][:2]), int(o[3][2])),
                health.spread(*map(float, o[3][3:5]), max(int(o[3][5]), 1))] for o in outs]
    health.from_histograms(np.stack([o[0] for o in outs]).astype(np.float64),
                           np.asarray(spreads))


def _agreement(kernel, decoded: list) -> tuple[int, int]:
    """The largest grey-level differences from OpenCV's small image and colour cells."""
    import cv2

    from lookalike.methods.registry import Picture

    small_gap = cells_gap = 0
    for d in decoded:
        picture = Picture(d)
        _, small, cells, _ = _fused(kernel, _rgb(d))
        if picture.small.shape == (64, 64) and picture.gray.shape == picture.rgb.shape[:2]:
            small_gap = max(small_gap, int(np.abs(np.rint(small) - picture.small).max()))
        reference = cv2.resize(picture.rgb, (8, 8), interpolation=cv2.INTER_AREA)
        cells_gap = max(cells_gap, int(np.abs(np.rint(cells) - reference).max()))
    return small_gap, cells_gap


if __name__ == "__main__":
    sys.exit(main())
