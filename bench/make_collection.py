"""Build an image collection with planted duplicates and its ground truth, for bench_e2e.py.

    python bench/make_collection.py /work/benchdata/images /work/bench20k --n 20000 --seed 0

SRC holds the allowed source pictures (game textures, map tiles and renders from the Debian
packages that ../shared/tools/bench-images.sh collects); if SRC/../manifest.tsv exists, every
source must come from one of the allowed packages. There are only ~3.7k of them, so the
"originals" are crops of them, each resized to ORIGINAL_WIDTH px wide and saved as a JPEG (q92),
like product photos:

* Crops of one source never overlap: each source is cut into a grid of equal cells (one random
  size between --crop-min and --crop-max px and one aspect ratio per source, a random grid
  offset) and cells are taken round-robin over the sources, one per source per round, until
  there are enough. Overlapping crops of one picture would be near-duplicates that nobody
  planted; neighbouring cells of a uniform texture are distinct pictures that look alike,
  which is exactly the hard negative we want (listed as `sibling` in truth.json).
* A cell is refused when it is near blank (grey standard deviation under --min-std) or
  largely transparent (less than 90% opaque; the rest is composited on white).
* Sources contain the same texture twice (two sizes, a mirrored sprite, a tiled pattern), and
  many near-uniform skies and dark renders. A cell that is the same picture as an already
  chosen one, under some flip or quarter turn, is dropped: z-scored 32x32 grey thumbnails
  correlate >= SAME_CORR *and* 32x32 RGB thumbnails differ by RMS < --same-rms (0-255 levels).
  An unplanted pair that is the same picture in pixels would be a true duplicate missing from
  the truth. Any other look-alike (a recoloured livery, a darker variant of a texture, two
  sky gradients) is a distinct picture and stays, even where it looks like a planted edit of
  the other (recolouring is not one of them): pairs whose grey thumbnails correlate
  >= LOOKALIKE_CORR are listed as `lookalike` hard negatives, so that false positives can be
  told apart.

Then --planted of the originals get 1 to 3 edited copies each (the files add up to --n),
with the transforms spread evenly: the EDITS of lookalike.evaluation.transforms (copy,
metadata, png, jpeg70, resize50, mirror, flip, rot90/180/270, blur, grey, brighter) plus
crop5/crop10/crop20 (that share of width and height cut off, split randomly between the two
sides), rot+-3 and rot+-10 (degrees, cropped to the largest upright rectangle inside, so no
fill corners), text (a caption drawn on the picture) and pad (white border to a square plus
6%). A group is an original and its copies; every pair inside a group is a duplicate, every
other pair is not.

DEST/images/ gets all files under random hexadecimal names (names say nothing about groups),
DEST/truth.json the groups, each copy with its transform and parameters, every original's
source and crop box, and the hard negatives. The output depends only on SRC and --seed (all
random choices are made in the main process; the workers only cut, edit and encode).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import sys
import time
from collections import Counter, defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.evaluation.transforms import (CAPTIONS, EDITS, caption, crop, encode, pad,
                                             rotate_cropped)

ALLOWED_PACKAGES = {"supertuxkart-data", "marble-data", "0ad-data", "flightgear-data-base"}
ORIGINAL_WIDTH = 256
MIN_SOURCE_SIDE = 128
MIN_OPAQUE = 0.9
LOOKALIKE_CORR = 0.95
SAME_CORR = 0.9
PREFILTER_CORR = 0.9
ASPECTS = (1.0, 1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3)
EXTRA_TRANSFORMS = {
    "crop5": "5% of width and height cut off (split randomly between opposite sides)",
    "crop10": "10% of width and height cut off",
    "crop20": "20% of width and height cut off",
    "rot+3": "rotated 3 degrees counter-clockwise, cropped to the largest upright rectangle",
    "rot-3": "rotated 3 degrees clockwise, cropped likewise",
    "rot+10": "rotated 10 degrees counter-clockwise, cropped likewise",
    "rot-10": "rotated 10 degrees clockwise, cropped likewise",
    "text": "a caption (white, black outline, 1/7 of the height) drawn on the picture",
    "pad": "white border: padded to a square, plus 6% of the side on every side",
}
EDIT_DESCRIPTIONS = {
    "copy": "byte-identical copy", "metadata": "same JPEG with a COM segment added",
    "png": "decoded pixels saved as PNG", "jpeg70": "re-encoded as JPEG quality 70",
    "resize50": "half width and height (Lanczos)", "mirror": "left-right mirror",
    "flip": "upside-down flip", "rot90": "quarter turn counter-clockwise", "rot180": "half turn",
    "rot270": "quarter turn clockwise", "blur": "Gaussian blur, radius 1.5",
    "grey": "greyscale (saved as RGB JPEG)", "brighter": "brightness x1.25",
}
TRANSFORMS = {**{name: EDIT_DESCRIPTIONS.get(name, name) for name in EDITS}, **EXTRA_TRANSFORMS}


# ---------------------------------------------------------------------------------------------
# sources and the crop plan (main process, seeded)


def allowed_sources(src: Path) -> tuple[list[Path], dict[str, str]]:
    """The files of SRC, and their package per the manifest next to it (refusing others)."""
    files = sorted(p for p in src.iterdir() if p.is_file())
    packages: dict[str, str] = {}
    manifest = src.parent / "manifest.tsv"
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 2:
                packages.setdefault(fields[0], fields[1])
        refused = [p.name for p in files if packages.get(p.name, "?") not in ALLOWED_PACKAGES]
        if refused:
            raise SystemExit(f"{len(refused)} files of {src} are not from an allowed package "
                             f"({', '.join(sorted(ALLOWED_PACKAGES))}) per {manifest}: "
                             f"{', '.join(refused[:5])}")
    return files, packages


def source_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            if image.mode not in ("RGB", "RGBA", "P", "L", "LA", "PA", "CMYK"):
                return None  # 16-bit or float: skipped (one file)
            return image.size
    except Exception:  # noqa: BLE001  (an unreadable source is skipped)
        return None


def grid_cells(size: tuple[int, int], rng: random.Random, crop_min: int, crop_max: int
               ) -> list[tuple[int, int, int, int]]:
    """Non-overlapping boxes of one random size and aspect, on a grid with a random offset."""
    width, height = size
    side = rng.uniform(crop_min, crop_max)
    aspect = rng.choice(ASPECTS)
    cell_w = round(side * math.sqrt(aspect))
    cell_h = round(side / math.sqrt(aspect))
    if cell_w > width or cell_h > height:  # a small source: one crop as big as fits
        scale = min(width / cell_w, height / cell_h)
        cell_w, cell_h = int(cell_w * scale), int(cell_h * scale)
        x0 = rng.randint(0, width - cell_w)
        y0 = rng.randint(0, height - cell_h)
        return [(x0, y0, x0 + cell_w, y0 + cell_h)]
    cols, rows = width // cell_w, height // cell_h
    off_x = rng.randint(0, width - cols * cell_w)
    off_y = rng.randint(0, height - rows * cell_h)
    return [(off_x + c * cell_w, off_y + r * cell_h, off_x + (c + 1) * cell_w,
             off_y + (r + 1) * cell_h) for r in range(rows) for c in range(cols)]


def plan_cells(sizes: dict[str, tuple[int, int]], rng: random.Random, crop_min: int,
               crop_max: int) -> list[dict]:
    """Every candidate cell, in the order they are to be taken: round-robin over sources."""
    per_source = {}
    for name in sorted(sizes):
        cells = grid_cells(sizes[name], rng, crop_min, crop_max)
        rng.shuffle(cells)
        per_source[name] = cells
    order: list[dict] = []
    names = sorted(per_source)
    for round_ in range(max(len(c) for c in per_source.values())):
        rng.shuffle(names)
        for name in names:
            if round_ < len(per_source[name]):
                order.append({"cid": len(order), "source": name,
                              "box": per_source[name][round_]})
    return order


# ---------------------------------------------------------------------------------------------
# workers: cut candidates, make copies


def _thumb(image: Image.Image, side: int, mode: str) -> np.ndarray:
    return np.asarray(image.convert(mode).resize((side, side), Image.Resampling.BOX),
                      dtype=np.float32)


def cut_source(task: tuple[str, list[dict], str, int]) -> list[dict]:
    """Crop, check and encode the candidate cells of one source (staged under their cid)."""
    path, cells, staging, min_std = task
    out = []
    with Image.open(path) as opened:
        image = opened.convert("RGBA")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, image)
    alpha = np.asarray(image.getchannel("A"))
    flat_rgb = flat.convert("RGB")
    for cell in cells:
        x0, y0, x1, y1 = cell["box"]
        opaque = float((alpha[y0:y1, x0:x1] >= 128).mean())
        crop = flat_rgb.crop((x0, y0, x1, y1))
        height = max(1, round(ORIGINAL_WIDTH * (y1 - y0) / (x1 - x0)))
        crop = crop.resize((ORIGINAL_WIDTH, height), Image.Resampling.LANCZOS)
        grey_std = float(np.asarray(crop.convert("L"), dtype=np.float32).std())
        record = {"cid": cell["cid"], "opaque": round(opaque, 3), "grey_std": round(grey_std, 2)}
        if opaque < MIN_OPAQUE:
            record["refused"] = "transparent"
        elif grey_std < min_std:
            record["refused"] = "near blank"
        else:
            data = encode(crop)
            (Path(staging) / f"{cell['cid']}.jpg").write_bytes(data)
            decoded = Image.open(io.BytesIO(data)).convert("RGB")
            record.update(rgb32=_thumb(decoded, 32, "RGB").astype(np.uint8),
                          grey32=_thumb(decoded, 32, "L").astype(np.uint8))
        out.append(record)
    return out


def edit(name: str, params: dict, image: Image.Image, data: bytes) -> tuple[bytes, str]:
    """One planted copy: the transform `name` with the main process's random `params`."""
    if name in EDITS:
        return EDITS[name](image, data)
    if name.startswith("crop"):
        return encode(crop(image, int(name[4:]) / 100, params["left"], params["top"])), ".jpg"
    if name.startswith("rot"):
        return encode(rotate_cropped(image, float(name[3:]))), ".jpg"
    if name == "text":
        return encode(caption(image, params["caption"], params["x"], params["y"])), ".jpg"
    if name == "pad":
        return encode(pad(image)), ".jpg"
    raise ValueError(f"unknown transform {name!r}")


def make_copies(task: tuple[str, list[dict], str]) -> int:
    original, copies, images = task
    data = (Path(images) / original).read_bytes()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    for copy in copies:
        out, _suffix = edit(copy["transform"], copy.get("params", {}), image, data)
        (Path(images) / copy["file"]).write_bytes(out)
    return len(copies)


# ---------------------------------------------------------------------------------------------
# near-identical and look-alike pairs among the candidates


def _zscore(rows: np.ndarray) -> np.ndarray:
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-6)


def _dihedral_batch(batch: np.ndarray, k: int) -> np.ndarray:
    """Variant k (0-3: quarter turns, 4-7: mirrored, then turned) of every picture in batch."""
    if k >= 4:
        batch = batch[:, :, ::-1]
    return np.rot90(batch, k % 4, axes=(1, 2))


def similar_pairs(rgb32: np.ndarray, grey32: np.ndarray, same_rms: float, block: int = 1024
                  ) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]:
    """Pairs (i < j) of the same picture, and of look-alikes, under the best flip/turn.

    Same picture: z-scored 32x32 grey thumbnails correlate >= SAME_CORR and the 32x32 RGB
    thumbnails differ by RMS < same_rms (0-255 levels); (i, j, rms). Both conditions: two
    distinct low-contrast pictures of one colour are close in RMS, and a recoloured picture
    correlates. Look-alike: correlation >= LOOKALIKE_CORR but not the same picture;
    (i, j, corr). Candidates are the pairs whose 8x8 thumbnails correlate >= PREFILTER_CORR
    under some flip/turn; they are checked at 32x32 under that flip/turn.
    """
    n = len(grey32)
    small = grey32.astype(np.float32).reshape(n, 8, 4, 8, 4).mean(axis=(2, 4))
    z_base = _zscore(small.reshape(n, 64))
    z_k = [_zscore(np.ascontiguousarray(_dihedral_batch(small, k)).reshape(n, 64))
           for k in range(8)]
    firsts, seconds, variants = [], [], []
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        top = z_base[rows] @ z_k[0].T
        best = np.zeros(top.shape, np.int8)
        for k in range(1, 8):
            corr = z_base[rows] @ z_k[k].T
            better = corr > top
            top[better] = corr[better]
            best[better] = k
        i, j = np.nonzero(top >= PREFILTER_CORR)
        i_abs = i + start
        keep = i_abs < j  # the pair (j, i) comes in j's block, with the inverse variant
        firsts.append(i_abs[keep])
        seconds.append(j[keep])
        variants.append(best[i[keep], j[keep]])
    first = np.concatenate(firsts)
    second = np.concatenate(seconds)
    variant = np.concatenate(variants)
    rgb = rgb32.astype(np.float32)
    z32 = _zscore(grey32.reshape(n, -1).astype(np.float32)).reshape(grey32.shape)
    rms = np.zeros(len(first), np.float32)
    corr32 = np.zeros(len(first), np.float32)
    for k in range(8):  # z_k[k] is variant k of the second picture; check the pair likewise
        at = np.nonzero(variant == k)[0]
        for chunk in np.array_split(at, max(1, len(at) // 20000)):
            a, b = first[chunk], second[chunk]
            diff = rgb[a] - _dihedral_batch(rgb[b], k)
            rms[chunk] = np.sqrt((diff ** 2).mean(axis=(1, 2, 3)))
            corr32[chunk] = (z32[a] * _dihedral_batch(z32[b], k)).sum(axis=(1, 2))
    is_same = (corr32 >= SAME_CORR) & (rms < same_rms)
    is_alike = ~is_same & (corr32 >= LOOKALIKE_CORR)
    same = [(int(i), int(j), float(r))
            for i, j, r in zip(first[is_same], second[is_same], rms[is_same])]
    alike = [(int(i), int(j), float(c))
             for i, j, c in zip(first[is_alike], second[is_alike], corr32[is_alike])]
    return same, alike


def _adjacent(a: tuple, b: tuple) -> bool:
    """Boxes that touch (or nearly): they share a border or a corner, give or take 2 px."""
    gap_x = max(a[0], b[0]) - min(a[2], b[2])
    gap_y = max(a[1], b[1]) - min(a[3], b[3])
    return gap_x <= 2 and gap_y <= 2


# ---------------------------------------------------------------------------------------------
# main


def _hex_names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    out = []
    while len(out) < count:
        name = f"{rng.getrandbits(64):016x}"
        if name not in names:
            names.add(name)
            out.append(name)
    return out


def plan_copies(originals: list[str], rng: random.Random, n_total: int, planted: float
                ) -> list[tuple[str, list[str]]]:
    """Which originals get copies and which transforms, so that the files add up to n_total."""
    n_copies = n_total - len(originals)
    n_groups = min(len(originals), max(1, round(len(originals) * planted)), n_copies)
    if n_copies > 3 * n_groups:
        raise SystemExit(f"{len(originals)} originals cannot make {n_total} files with at most "
                         f"3 copies of {n_groups}: lower --n or raise --planted")
    counts = [1] * n_groups
    extra = n_copies - n_groups
    while extra:
        group = rng.randrange(n_groups)
        if counts[group] < 3:
            counts[group] += 1
            extra -= 1
    names = list(TRANSFORMS)
    pool: list[str] = []
    while len(pool) < n_copies:  # every transform equally often (but for the last round)
        chunk = names[:]
        rng.shuffle(chunk)
        pool.extend(chunk)
    chosen = rng.sample(originals, n_groups)
    plans, at = [], 0
    for original, count in zip(chosen, counts):
        for slot in range(at + 1, at + count):  # no transform twice in one group
            later = slot
            while later < len(pool) - 1 and pool[later] in pool[at:slot]:
                later += 1
            pool[slot], pool[later] = pool[later], pool[slot]
        transforms = pool[at:at + count]
        at += count
        plans.append((original, transforms))
    return plans


def _params(name: str, rng: random.Random) -> dict:
    if name.startswith("crop"):
        return {"left": round(rng.random(), 3), "top": round(rng.random(), 3)}
    if name == "text":
        return {"caption": rng.choice(CAPTIONS), "x": round(rng.random(), 3),
                "y": round(rng.random(), 3)}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", type=Path, help="folder of allowed source images")
    parser.add_argument("dest", type=Path, help="new folder: DEST/images/ and DEST/truth.json")
    parser.add_argument("--n", type=int, default=20000, help="files in all (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planted", type=float, default=0.25,
                        help="share of originals that get 1-3 copies (default 0.25)")
    parser.add_argument("--crop-min", type=int, default=128, help="smallest crop side, px")
    parser.add_argument("--crop-max", type=int, default=416, help="largest crop side, px")
    parser.add_argument("--min-std", type=float, default=8.0,
                        help="refuse crops whose grey std (0-255) is below this")
    parser.add_argument("--same-rms", type=float, default=8.0,
                        help="drop a crop this close (32x32 RGB RMS) to a chosen one")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="replace an existing DEST")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.dest.exists():
        if not args.force:
            raise SystemExit(f"{args.dest} exists (--force to replace it)")
        shutil.rmtree(args.dest)
    images = args.dest / "images"
    staging = args.dest / ".staging"
    images.mkdir(parents=True)
    staging.mkdir()
    rng = random.Random(args.seed)

    files, packages = allowed_sources(args.src)
    with Pool(args.workers) as pool:
        found = pool.map(source_size, files, chunksize=64)
    sizes = {p.name: s for p, s in zip(files, found)
             if s is not None and min(s) >= MIN_SOURCE_SIDE}
    cells = plan_cells(sizes, rng, args.crop_min, args.crop_max)
    # expected copies per planted original: 1 + 2/3 of the time one more, so about 1.7 each
    n_originals = round(args.n / (1 + args.planted * 1.7))
    log(f"{len(files)} sources, {len(sizes)} usable (>= {MIN_SOURCE_SIDE} px); "
        f"{len(cells)} candidate crops for {n_originals} originals", started)

    by_source: dict[str, list[dict]] = defaultdict(list)
    for cell in cells:
        by_source[cell["source"]].append(cell)
    tasks = sorted(((str(args.src / s), c, str(staging), args.min_std)
                    for s, c in by_source.items()),
                   key=lambda t: -sizes[Path(t[0]).name][0] * sizes[Path(t[0]).name][1])
    records: dict[int, dict] = {}
    with Pool(args.workers) as pool:
        for done, out in enumerate(pool.imap_unordered(cut_source, tasks), 1):
            for record in out:
                records[record["cid"]] = record
            if done % 500 == 0:
                log(f"cut {done}/{len(tasks)} sources", started)
    refused = Counter(r["refused"] for r in records.values() if "refused" in r)
    valid = [c for c in cells if "refused" not in records[c["cid"]]]
    log(f"{len(valid)} candidates kept ({dict(refused)})", started)

    rgb32 = np.stack([records[c["cid"]]["rgb32"] for c in valid])
    grey32 = np.stack([records[c["cid"]]["grey32"] for c in valid])
    same, alike = similar_pairs(rgb32, grey32, args.same_rms)
    log(f"{len(same)} near-identical and {len(alike)} look-alike candidate pairs", started)
    twins = defaultdict(set)
    for i, j, _ in same:
        twins[i].add(j)
        twins[j].add(i)
    chosen: list[int] = []
    chosen_set: set[int] = set()
    dropped = 0
    for index in range(len(valid)):  # round-robin order: earlier cells win
        if len(chosen) == n_originals:
            break
        if twins[index] & chosen_set:
            dropped += 1
            continue
        chosen.append(index)
        chosen_set.add(index)
    if len(chosen) < n_originals:
        raise SystemExit(f"only {len(chosen)} usable crops for {n_originals} originals: "
                         f"lower --crop-min or raise --planted")

    original_names = [f"{name}.jpg" for name in _hex_names(rng, len(chosen))]
    name_of = dict(zip(chosen, original_names))
    originals = {}
    for index, name in zip(chosen, original_names):
        cell = valid[index]
        os.replace(staging / f"{cell['cid']}.jpg", images / name)
        originals[name] = {"source": cell["source"],
                           "package": packages.get(cell["source"], "?"),
                           "box": list(cell["box"]), "source_size": list(sizes[cell["source"]])}
    shutil.rmtree(staging)

    plans = plan_copies(original_names, rng, args.n, args.planted)
    copy_names = iter(_hex_names(rng, args.n))
    groups, tasks_copies = [], []
    for original, transforms in plans:
        copies = []
        for name in transforms:
            suffix = ".png" if name == "png" else ".jpg"
            copies.append({"file": next(copy_names) + suffix, "transform": name,
                           "params": _params(name, rng)})
        groups.append({"original": original, "copies": copies})
        tasks_copies.append((original, copies, str(images)))
    with Pool(args.workers) as pool:
        written = sum(pool.imap(make_copies, tasks_copies, chunksize=16))
    log(f"{len(original_names)} originals, {written} copies in {len(groups)} groups", started)

    hard_negatives = []
    for source_cells in _by_source(chosen, valid).values():
        for a_pos, a in enumerate(source_cells):
            for b in source_cells[a_pos + 1:]:
                if _adjacent(valid[a]["box"], valid[b]["box"]):
                    hard_negatives.append({"a": name_of[a], "b": name_of[b], "kind": "sibling"})
    for i, j, corr in alike:
        if i in name_of and j in name_of:
            kind = "lookalike-same-source" if valid[i]["source"] == valid[j]["source"] \
                else "lookalike"
            hard_negatives.append({"a": name_of[i], "b": name_of[j], "kind": kind,
                                   "corr": round(corr, 4)})
    per_transform = Counter(c["transform"] for g in groups for c in g["copies"])
    truth = {
        "format": "lookalike-bench-collection/1",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "seed": args.seed, "source_dir": str(args.src),
        "settings": {k: v for k, v in vars(args).items() if k not in ("src", "dest", "force")},
        "counts": {"files": len(original_names) + written, "originals": len(original_names),
                   "groups": len(groups), "copies": written,
                   "copies_per_group": dict(Counter(len(g["copies"]) for g in groups)),
                   "per_transform": dict(sorted(per_transform.items())),
                   "sources_used": len({o["source"] for o in originals.values()}),
                   "originals_per_package": dict(Counter(o["package"]
                                                         for o in originals.values())),
                   "candidate_crops": len(cells), "refused": dict(refused),
                   "dropped_near_identical": dropped,
                   "hard_negatives": dict(Counter(h["kind"] for h in hard_negatives))},
        "transforms": TRANSFORMS,
        "groups": groups,
        "originals": originals,
        "hard_negatives": hard_negatives,
    }
    (args.dest / "truth.json").write_text(json.dumps(truth, indent=1))
    log(f"wrote {args.dest / 'truth.json'}: {json.dumps(truth['counts'])}", started)


def _by_source(chosen: list[int], valid: list[dict]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for index in chosen:
        out[valid[index]["source"]].append(index)
    return out


def log(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)


if __name__ == "__main__":
    main()
