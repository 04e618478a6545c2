"""What JPEG draft decoding costs pHash/dHash in recall, and what it saves in time (issue 16).

    PYTHONPATH=src .venv/bin/python bench/eval_draft.py [--images /work/benchimg/images]
        [--limit 0] [--textures 120] [--speed 500] [--no-timing]

Originals: the folder's pictures whose short side is at least 512 px (below that no policy
drafts anything; --limit N: N of them, half JPEG and half PNG), plus --textures generated
fine periodic textures (gratings, checks, bricks under light; PNG). Copies of each: JPEG
re-encodes at quality 90/75/50, resized copies (0.75x, 0.5x, Lanczos, JPEG quality 90), and
for JPEG originals a PNG copy (the same pixels, decoded in full). Both sides of each pair are
decoded under each policy (a PNG is always decoded in full) and hashed through lookalike's
own path (decode -> Picture -> phash/dhash compute). A pair is found when the identity codes
are within AUTO_PRIMARY_RADIUS (pHash) and AUTO_CONFIRM_RADIUS (dHash), as `dupes` finds
them; pairs whose original is too plain to hash (pHash quality under min_quality) are left
out, as `dupes` leaves them out.

Timing: decode + pHash + dHash per picture, one process, best of 3 rounds, on --speed JPEGs of
1-4 MP (the folder's JPEGs, its bigger PNGs re-encoded and its 0.25-1 MP pictures enlarged)
and on as many 256-px JPEG thumbnails. It never asserts a time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from lookalike import decode as decode_module
from lookalike.methods import Picture, create_method, get_spec
from lookalike.search.dupes import AUTO_CONFIRM_RADIUS, AUTO_PRIMARY_RADIUS
from lookalike.types import Decoded

COPIES = ("jpeg90", "jpeg75", "jpeg50", "resize0.75", "resize0.5", "png")
RADII = (0, 2, 4, 6, 8, 10, 12, 16)


def _policies() -> dict[str, Callable[[bytes], Decoded]]:
    """Policy name -> how the hash path decodes a file's bytes (as worker.py and query.py)."""
    decode = decode_module.decode
    return {
        "draft 256 (before)": lambda data: decode(data, draft_size=256, texture_draft=None),
        "draft >= 512": lambda data: decode(data, draft_size=512, texture_draft=None),
        "draft >= 1024": lambda data: decode(data, draft_size=1024, texture_draft=None),
        "full": lambda data: decode(data, draft_size=0),
        "draft 256, textures in full": lambda data: decode(data, texture_draft=0),
        "default (now)": lambda data: decode(data),
    }


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def copies(data: bytes, fmt: str) -> dict[str, bytes]:
    image = decode_module.decode(data, draft_size=0).image  # alpha already on white
    out = {f"jpeg{q}": _jpeg(image, q) for q in (90, 75, 50)}
    for factor in (0.75, 0.5):
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        out[f"resize{factor:g}"] = _jpeg(image.resize(size, Image.LANCZOS), 90)
    if fmt == "JPEG":
        out["png"] = _png(image)
    return out


def textures(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """Fine periodic textures (period 2-24 px) under light, with a little noise, as PNG files.

    Without light over the whole picture the hashes' grids are flat and the picture too plain
    to hash. Half are lit by one smooth gradient ("texture, 1 light": few strong coarse
    frequencies, the rest near zero, so pHash's bits rest on small values), half by an uneven
    light (a random 6 x 6 field, smoothly enlarged: coarse content at every low frequency).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        side = int(rng.choice([640, 768, 1024, 1200, 1536, 2048]))
        period = float(rng.uniform(2.0, 24.0))
        y, x = np.mgrid[0:side, 0:side].astype(np.float64)
        kind = ("grating", "checker", "bricks")[i % 3]
        if kind == "grating":
            angle = rng.uniform(0, np.pi)
            u = x * np.cos(angle) + y * np.sin(angle)
            value = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
        elif kind == "checker":
            value = ((x // period + y // period) % 2).astype(np.float64)
        else:
            row = y // period
            shift = (row % 2) * period
            mortar = ((y % period) < period / 5) | (((x + shift) % (2 * period)) < period / 5)
            value = np.where(mortar, 0.2, 0.8)
        if i % 2 == 0:
            light = "1 light"
            shade = (np.sin(np.pi * (x / side) * rng.uniform(0.5, 2.0) + rng.uniform(0, np.pi))
                     * np.cos(np.pi * (y / side) * rng.uniform(0.5, 2.0)
                              + rng.uniform(0, np.pi)))
        else:
            light = "uneven"
            field = Image.fromarray(rng.normal(0, 1, (6, 6)).astype(np.float32), "F")
            shade = np.asarray(field.resize((side, side), Image.Resampling.BICUBIC))
            shade = shade / np.abs(shade).max()
        value = value * rng.uniform(80, 160) + shade * rng.uniform(15, 50) + rng.uniform(40, 80)
        value += rng.normal(0, 6, value.shape)
        tint = rng.uniform(0.6, 1.0, 3)
        rgb = np.clip(value[..., None] * tint, 0, 255).astype(np.uint8)
        out.append((f"texture, {light}: {kind}-{side}-p{period:.1f}",
                    _png(Image.fromarray(rgb))))
    return out


def originals(folder: Path, limit: int) -> list[tuple[str, bytes]]:
    """Up to `limit` (0: all) pictures of short side >= 512, half JPEG and half PNG, in a fixed
    order."""
    by_format: dict[str, list[tuple[str, bytes]]] = {"JPEG": [], "PNG": []}
    names = sorted(os.listdir(folder), key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    for name in names:
        data = (folder / name).read_bytes()
        fmt = decode_module.sniff(data[:32])
        if fmt not in by_format or (limit and len(by_format[fmt]) >= limit // 2):
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                if min(image.size) < 512:
                    continue
        except OSError:
            continue
        by_format[fmt].append((name, data))
    jpegs, pngs = by_format["JPEG"], by_format["PNG"]
    pngs = pngs[:limit - len(jpegs)] if limit else pngs  # PNGs fill in where JPEGs run short
    return jpegs + pngs


class Hasher:
    def __init__(self) -> None:
        self.phash, self.dhash = create_method("phash"), create_method("dhash")
        self.min_quality = get_spec("phash").min_quality

    def codes(self, decoded: Decoded) -> tuple[bytes, bytes, float]:
        picture = Picture(decoded)
        p = self.phash.compute([picture])[0]
        d = self.dhash.compute([picture])[0]
        return p.value[:8], d.value[:8], p.quality


def _hamming(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def measure_pairs(items: list[tuple[str, bytes]], policies, hasher: Hasher):
    """Rows (group, original, copy, policy, phash distance, dhash distance)."""
    rows = []
    for name, data in items:
        fmt = decode_module.sniff(data[:32])
        group = name.split(":")[0] if name.startswith("texture") else fmt
        made = copies(data, fmt)
        for policy, decode in policies.items():
            p0, d0, quality = hasher.codes(decode(data))
            if quality < hasher.min_quality:
                continue
            for copy, copy_data in made.items():
                p1, d1, _ = hasher.codes(decode(copy_data))
                rows.append((group, name, copy, policy, _hamming(p0, p1), _hamming(d0, d1)))
    return rows


def report_pairs(rows, policies) -> None:
    groups = sorted({r[0] for r in rows})
    print(f"\nRecall (pHash <= {AUTO_PRIMARY_RADIUS} and dHash <= {AUTO_CONFIRM_RADIUS}, "
          "identity codes), per original group and copy:")
    header = "| policy | group | " + " | ".join(COPIES) + " | all |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for policy in policies:
        for group in groups:
            cells = []
            for copy in (*COPIES, None):
                sel = [r for r in rows if r[3] == policy and r[0] == group
                       and (copy is None or r[2] == copy)]
                if not sel:
                    cells.append("-")
                    continue
                found = sum(r[4] <= AUTO_PRIMARY_RADIUS and r[5] <= AUTO_CONFIRM_RADIUS
                            for r in sel)
                cells.append(f"{found / len(sel):.3f}")
            n = len({r[1] for r in rows if r[3] == policy and r[0] == group})
            print(f"| {policy} | {group} ({n}) | " + " | ".join(cells) + " |")
    print("\npHash distance distribution (share of pairs at or under each distance; mean):")
    print("| policy | group | " + " | ".join(f"<={r}" for r in RADII) + " | mean | max |")
    print("|" + "---|" * (len(RADII) + 4))
    for policy in policies:
        for group in groups:
            dist = np.array([r[4] for r in rows if r[3] == policy and r[0] == group])
            if dist.size == 0:
                continue
            cells = [f"{np.mean(dist <= r):.3f}" for r in RADII]
            print(f"| {policy} | {group} | " + " | ".join(cells)
                  + f" | {dist.mean():.2f} | {dist.max()} |")
    print("\ndHash distance: mean / share <= radius per policy and group:")
    for policy in policies:
        for group in groups:
            dist = np.array([r[5] for r in rows if r[3] == policy and r[0] == group])
            if dist.size:
                print(f"  {policy:20s} {group:8s} mean {dist.mean():.2f}  "
                      f"<= {AUTO_CONFIRM_RADIUS}: {np.mean(dist <= AUTO_CONFIRM_RADIUS):.3f}")
    first = next(iter(policies))
    worst = sorted((r for r in rows if r[3] == first), key=lambda r: -r[4])[:10]
    print(f"\nWorst pHash pairs under {first!r}, with their distance under each policy:")
    by_key = {(r[1], r[2], r[3]): (r[4], r[5]) for r in rows}
    for r in worst:
        cells = ", ".join(f"{p}: {by_key.get((r[1], r[2], p))}" for p in policies)
        print(f"  {r[1]} {r[2]}: {cells}")


def speed_sets(folder: Path, count: int) -> tuple[list[bytes], list[bytes]]:
    """`count` JPEGs of 1-4 MP and `count` 256-px JPEG thumbnails made from the folder."""
    big: list[bytes] = []
    small: list[bytes] = []
    names = sorted(os.listdir(folder), key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    for name in names:
        if len(big) >= count and len(small) >= count:
            break
        data = (folder / name).read_bytes()
        fmt = decode_module.sniff(data[:32])
        if fmt not in ("JPEG", "PNG"):
            continue
        try:
            image = decode_module.decode(data, draft_size=0).image
        except Exception:  # noqa: BLE001  (a broken file is simply not used)
            continue
        pixels = image.width * image.height
        if len(big) < count and pixels >= 1_000_000:
            big.append(data if fmt == "JPEG" and pixels <= 4_000_000 else _jpeg(image, 90))
        elif len(big) < count and pixels >= 250_000:  # upscale to 1-4 MP where short
            factor = min(2.0, (2_000_000 / pixels) ** 0.5)
            size = (round(image.width * factor), round(image.height * factor))
            big.append(_jpeg(image.resize(size, Image.BICUBIC), 90))
        if len(small) < count and min(image.size) >= 64:
            thumb = image.copy()
            thumb.thumbnail((256, 256), Image.LANCZOS)
            small.append(_jpeg(thumb, 90))
    return big, small


def _time(decode, files: list[bytes], hasher: Hasher) -> tuple[float, float]:
    """(decode + hashes, decode alone) in ms per picture."""
    decode_s = total_s = 0.0
    for data in files:
        start = time.perf_counter()
        decoded = decode(data)
        middle = time.perf_counter()
        hasher.codes(decoded)
        end = time.perf_counter()
        decode_s += middle - start
        total_s += end - start
    return 1000 * total_s / len(files), 1000 * decode_s / len(files)


def report_speed(policies, big: list[bytes], small: list[bytes], hasher: Hasher,
                 rounds: int = 3) -> None:
    """Each policy's best of `rounds`, the policies taking turns within a round (the machine
    may be shared: turns spread a busy spell over all of them)."""
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for _ in range(rounds):
        for policy, decode in policies.items():
            for k, files in enumerate((big, small)):
                timing = _time(decode, files, hasher)
                best[policy, k] = min(best.get((policy, k), timing), timing)
    before, now = (decode_module.decode(d, texture_draft=None) for d in big), \
        (decode_module.decode(d) for d in big)
    twice = sum(a.image.size != b.image.size for a, b in zip(before, now))
    print(f"\nTime per picture, decode + pHash + dHash in ms (decode alone), best of {rounds}; "
          f"{len(big)} JPEGs of 1-4 MP ({twice} decoded twice by the default) and "
          f"{len(small)} 256-px JPEGs:")
    print("| policy | 1-4 MP | 256 px |")
    print("|---|---|---|")
    for policy in policies:
        cells = [f"{best[policy, k][0]:.2f} ({best[policy, k][1]:.2f})" for k in (0, 1)]
        print(f"| {policy} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=Path("/work/benchimg/images"))
    p.add_argument("--limit", type=int, default=0, help="pictures from the folder (0: all)")
    p.add_argument("--textures", type=int, default=120, help="generated periodic textures")
    p.add_argument("--speed", type=int, default=500, help="pictures per timing set")
    p.add_argument("--no-timing", action="store_true")
    args = p.parse_args()
    policies = _policies()
    hasher = Hasher()
    items = originals(args.images, args.limit) + textures(args.textures)
    started = time.perf_counter()
    rows = measure_pairs(items, policies, hasher)
    print(f"{len(items)} originals, {len(rows)} pairs over {len(policies)} policies "
          f"({time.perf_counter() - started:.0f} s)")
    report_pairs(rows, policies)
    if not args.no_timing:
        big, small = speed_sets(args.images, args.speed)
        report_speed(policies, big, small, hasher)


if __name__ == "__main__":
    main()
