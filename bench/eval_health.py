"""Precision and recall of the dataset health checks (lookalike.report.health) on planted cases.

    .venv/bin/python bench/eval_health.py [--images /work/benchimg/images] [--limit 0]
        [--work /work/tmp/eval_health] [--blur relative|absolute] [--json out.json]

Clean pictures: the files of --images whose package in ../manifest.tsv is one the benchmarks
may use (supertuxkart-data, marble-data, 0ad-data), split by a hash of the file name into a
TUNE and a HOLDOUT half. Each clean picture gets one planted copy, its kind chosen by the same
hash: blurred (Gaussian radius 3-6 px at a 256 px short side, or in the picture's own pixels
with --blur absolute), darkened (x0.15-0.3), brightened (the distance to white x0.15-0.3),
blank (a flat colour plus noise of sd 1-3), low-information (two grey levels, or the picture
at a quarter of its size on a flat background), stretched (5:1) and shrunk (short side
24-48 px). Both halves are scanned with lookalike (the "health" method) into one index each.

Truth: a planted copy is a positive of its own check; everything else, clean pictures
included, is a negative, except a blank copy for low_information (a blank picture has no
information: neither counted right nor wrong), and a copy planted for another check that is
flagged together with its original (the original's verdict, counted once, on the original).
Blank copies and low-information backgrounds are mid-grey colours, so that they are not also
dark or bright. The clean pictures hold real dark, bright and flat game textures, each
counted as a false alarm, so the precision below is a lower bound. Thresholds are chosen on
TUNE (the largest recall at precision >= 0.95, else the best F1), then both the chosen ones and
lookalike's defaults are measured on HOLDOUT. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

import lookalike
from lookalike.index.store import open_index
from lookalike.report.health import BOUNDS, HealthTable, HealthThresholds, flag, health_table

ALLOWED = {"supertuxkart-data", "marble-data", "0ad-data"}
KINDS = ("blurred", "darkened", "brightened", "blank", "low_information", "stretched",
         "shrunk")
CHECK_OF = {"blurred": "blurry", "darkened": "dark", "brightened": "bright", "blank": "blank",
            "low_information": "low_information", "stretched": "aspect", "shrunk": "tiny"}
IGNORED = {("blank", "low_information")}  # (planted kind, check): neither right nor wrong
CHECKS = ("blurry", "dark", "bright", "blank", "low_information", "aspect", "tiny")
MAX_CANDIDATES = 400  # thresholds tried per check
MAX_SIDE = 1024  # planted copies of bigger pictures are made from a copy this size
TARGET_PRECISION = 0.95
MIN_SIDE, MAX_ASPECT = 64, 4  # clean pictures: at least this short side, under this aspect


def digest(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def clean_pictures(folder: Path) -> list[Path]:
    """The allowed pictures of normal shape: the size checks' truth is the size itself, so a
    clean picture that is tiny or 4:1 would be counted as a false alarm of a right flag."""
    allowed = set()
    for line in (folder.parent / "manifest.tsv").read_text().splitlines():
        name, package, *_ = line.split("\t")
        if package in ALLOWED and (folder / name).is_file():
            allowed.add(folder / name)
    normal = []
    for path in sorted(allowed):
        try:
            with Image.open(path) as image:
                short, long = sorted(image.size)
        except OSError:
            continue
        if short >= MIN_SIDE and long < MAX_ASPECT * short:
            normal.append(path)
    return normal


def plant(image: Image.Image, kind: str, rng: np.random.Generator, blur: str) -> Image.Image:
    rgb = image.convert("RGB")
    if max(rgb.size) > MAX_SIDE:
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    width, height = rgb.size
    pixels = np.asarray(rgb, dtype=np.float64)
    if kind == "blurred":
        radius = rng.uniform(3, 6)
        if blur == "relative":
            radius *= max(1.0, min(width, height) / 256)
        return rgb.filter(ImageFilter.GaussianBlur(radius))
    if kind == "darkened":
        return _image(pixels * rng.uniform(0.15, 0.3))
    if kind == "brightened":
        return _image(255 - (255 - pixels) * rng.uniform(0.15, 0.3))
    if kind == "blank":
        flat = np.ones_like(pixels) * _mid_colour(rng)
        return _image(flat + rng.normal(0, rng.uniform(1, 3), size=pixels.shape))
    if kind == "low_information":
        if rng.random() < 0.5:  # two grey levels
            grey = pixels.mean(axis=2)
            two = np.where(grey > np.median(grey), 200.0, 40.0)
            return _image(np.repeat(two[:, :, None], 3, axis=2))
        canvas = Image.new("RGB", rgb.size, tuple(int(v) for v in _mid_colour(rng)))
        small = rgb.resize((max(1, width // 4), max(1, height // 4)), Image.LANCZOS)
        canvas.paste(small, ((width - small.width) // 2, (height - small.height) // 2))
        return canvas
    if kind == "stretched":
        short = min(width, height, 256)
        size = (5 * short, short) if rng.random() < 0.5 else (short, 5 * short)
        return rgb.resize(size, Image.LANCZOS)
    if kind == "shrunk":
        short = int(rng.integers(24, 49))
        scale = short / min(width, height)
        return rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))),
                          Image.LANCZOS)
    raise ValueError(kind)


def _mid_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour whose grey level is 80..180: a blank copy that is blank, not also dark."""
    while True:
        colour = rng.integers(0, 256, 3).astype(np.float64)
        if 80 <= colour @ (0.299, 0.587, 0.114) <= 180:
            return colour


def _image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def build_half(clean: list[Path], folder: Path, blur: str
               ) -> tuple[dict[str, str], dict[str, str]]:
    """Hard links of the clean pictures and one planted copy of each, in `folder`; returns
    path -> kind ("clean" or a planted kind), and planted path -> its clean original."""
    truth, origin = {}, {}
    (folder / "clean").mkdir(parents=True)
    (folder / "planted").mkdir()
    for path in clean:
        link = folder / "clean" / path.name
        try:
            os.link(path, link)
        except OSError:
            shutil.copyfile(path, link)
        truth[str(link)] = "clean"
        number = digest(path.name)
        kind = KINDS[(number >> 8) % len(KINDS)]
        rng = np.random.default_rng(number)
        try:
            with Image.open(path) as image:
                copy = plant(image, kind, rng, blur)
        except (OSError, ValueError):
            continue
        target = folder / "planted" / f"{kind}-{path.stem}.png"
        copy.save(target, compress_level=1)
        truth[str(target)] = kind
        origin[str(target)] = str(link)
    return truth, origin


def measure(folder: Path, truth: dict[str, str], origin: dict[str, str]
            ) -> tuple[HealthTable, list[str], np.ndarray, float]:
    """Scan the half with the health method: its measurements, each file's kind, each
    file's row of its clean original, and the scan's seconds."""
    index_path = folder / "index.db"
    started = time.perf_counter()
    lookalike.scan([folder], index_path=index_path, methods=["health"], workers=2)
    seconds = time.perf_counter() - started
    with open_index(index_path) as index:
        table = health_table(index)
    return table, [truth.get(p, "?") for p in table.paths], _originals(table.paths, origin), \
        seconds


def _originals(paths: list[str], origin: dict[str, str]) -> np.ndarray:
    """Each file's row of its clean original (its own row for a clean picture)."""
    row = {p: i for i, p in enumerate(paths)}
    return np.array([row.get(origin.get(p, p), i) for i, p in enumerate(paths)])


def scores(mask: np.ndarray, kinds: list[str], check: str, originals: np.ndarray) -> dict:
    """A copy planted for another check, flagged with its original, inherits the original's
    verdict (counted once, on the original): only what planting changed is counted on it."""
    positive = np.array([CHECK_OF.get(k) == check for k in kinds])
    inherited = ~positive & (originals != np.arange(len(kinds))) & mask[originals]
    ignored = np.array([(k, check) in IGNORED for k in kinds]) | inherited
    clean = np.array([k == "clean" for k in kinds])
    counted = mask & ~ignored
    hits = int((counted & positive).sum())
    flagged = int(counted.sum())
    wrong = {k: int((counted & np.array([x == k for x in kinds])).sum())
             for k in ("clean", *KINDS) if CHECK_OF.get(k) != check}
    return {"positives": int(positive.sum()), "flagged": flagged, "hits": hits,
            "precision": round(hits / flagged, 3) if flagged else None,
            "recall": round(hits / int(positive.sum()), 3) if positive.any() else None,
            "clean_flagged": int((mask & clean).sum()), "clean": int(clean.sum()),
            "false_by_kind": {k: n for k, n in wrong.items() if n}}


def tune(table: HealthTable, kinds: list[str], check: str, originals: np.ndarray) -> float:
    """The threshold with the largest recall at TARGET_PRECISION on these pictures, else
    the one with the best F1 (the other thresholds at their defaults)."""
    values = table.values[check]
    finite = np.unique(values[np.isfinite(values)])
    candidates = (finite[:-1] + finite[1:]) / 2 if finite.size > 1 else finite
    if candidates.size > MAX_CANDIDATES:
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, MAX_CANDIDATES)))
    low, high = BOUNDS[check]
    best, best_f1 = None, (-1.0, -1.0)
    for limit in candidates[(candidates >= low) & (candidates <= high)]:
        chosen = replace(HealthThresholds(), **{check: float(limit)})
        s = scores(flag(check, values, chosen, table), kinds, check, originals)
        precision, recall = s["precision"] or 0.0, s["recall"] or 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        key = (recall if precision >= TARGET_PRECISION else -1.0, f1)
        if key > best_f1:
            best, best_f1 = float(limit), key
    return float("nan") if best is None else best


def outliers(clean: list[Path], folder: Path, count: int) -> dict:
    """The outlier check on the HOLDOUT clean pictures plus `count` planted outliers:
    scikit-image's sample photographs among the game textures, and k - 1 pictures of random
    noise (k of them would be each other's neighbours), scanned with the shipped embedding
    model: precision and recall of the default percentile, recall per family."""
    import skimage

    photos = sorted(Path(skimage.__file__).parent.glob("data/*.[pj][np]g"))

    (folder / "clean").mkdir(parents=True)
    (folder / "odd").mkdir()
    for path in clean:
        os.link(path, folder / "clean" / path.name)
    defaults = HealthThresholds()
    noise_count = min(defaults.outlier_k - 1, count // 2)
    for number, photo_path in enumerate(photos[:count - noise_count]):
        with Image.open(photo_path) as photo:
            photo.convert("RGB").save(folder / "odd" / f"photo-{number}.png")
    for number in range(noise_count):
        noise = np.random.default_rng(number).integers(0, 256, (256, 256, 3), np.uint8)
        Image.fromarray(noise).save(folder / "odd" / f"noise-{number}.png")
    lookalike.scan([folder], index_path=folder / "index.db", methods=["embed"], workers=2)
    with open_index(folder / "index.db") as index:
        table = health_table(index, outlier_k=defaults.outlier_k)
    mask = flag("outlier", table.values["outlier"], defaults, table)
    odd = np.array(["/odd/" in p for p in table.paths])
    hits, flagged = int((mask & odd).sum()), int(mask.sum())
    families = {family: [int(mask[i]) for i, p in enumerate(table.paths)
                         if f"/odd/{family}-" in p] for family in ("photo", "noise")}
    return {"recall_by_family": {f: f"{sum(v)}/{len(v)}" for f, v in families.items()},
            "clean": int((~odd).sum()), "planted": int(odd.sum()), "flagged": flagged,
            "hits": hits, "precision": round(hits / flagged, 3) if flagged else None,
            "recall": round(hits / int(odd.sum()), 3) if odd.any() else None,
            "percentile": defaults.outlier, "k": defaults.outlier_k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=Path("/work/benchimg/images"))
    parser.add_argument("--work", type=Path, default=Path("/work/tmp/eval_health"))
    parser.add_argument("--limit", type=int, default=0, help="clean pictures a half (0: all)")
    parser.add_argument("--blur", choices=("relative", "absolute"), default="relative")
    parser.add_argument("--outliers", type=int, default=0, metavar="N",
                        help="also plant N outliers among the HOLDOUT clean pictures and scan "
                        "them with embeddings (slower)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    pictures = clean_pictures(args.images)
    halves = {"tune": [p for p in pictures if digest(p.name) % 2 == 0],
              "holdout": [p for p in pictures if digest(p.name) % 2 == 1]}
    if args.limit:
        halves = {k: v[:args.limit] for k, v in halves.items()}
    shutil.rmtree(args.work, ignore_errors=True)
    measured = {}
    for half, clean in halves.items():
        truth, origin = build_half(clean, args.work / half, args.blur)
        measured[half] = measure(args.work / half, truth, origin)
        print(f"{half}: {len(clean)} clean pictures, {len(truth) - len(clean)} planted, "
              f"scanned in {measured[half][3]:.1f} s")
    table, kinds, originals, _ = measured["tune"]
    tuned = {check: tune(table, kinds, check, originals) for check in CHECKS}
    defaults = HealthThresholds()
    results = {"tuned_on_tune": tuned, "defaults": {c: getattr(defaults, c) for c in CHECKS},
               "holdout": {}}
    table, kinds, originals, _ = measured["holdout"]
    print(f"\n{'check':16} {'threshold':>9} {'tuned':>8} {'planted':>7} {'flagged':>7} "
          f"{'precision':>9} {'recall':>6} {'clean':>9}  other kinds flagged")
    for check in CHECKS:
        for label, chosen in (("default", defaults), ("tuned", replace(defaults, **{
                check: tuned[check]}) if np.isfinite(tuned[check]) else None)):
            if chosen is None:
                continue
            s = scores(flag(check, table.values[check], chosen, table), kinds, check,
                       originals)
            results["holdout"][f"{check}/{label}"] = s
            print(f"{check if label == 'default' else '':16} {getattr(chosen, check):>9.3g} "
                  f"{label:>8} {s['positives']:>7} {s['flagged']:>7} "
                  f"{_pct(s['precision']):>9} {_pct(s['recall']):>6} "
                  f"{s['clean_flagged']:>4}/{s['clean']:<4}  "
                  + ", ".join(f"{k} {n}" for k, n in s["false_by_kind"].items() if k != "clean"))
    if args.outliers:
        s = outliers(halves["holdout"], args.work / "outliers", args.outliers)
        results["outliers"] = s
        print(f"\noutlier (k={s['k']}, above the {s['percentile']:g}th percentile): "
              f"{s['planted']} planted among {s['clean']} clean, {s['flagged']} flagged, "
              f"precision {_pct(s['precision'])}, recall {_pct(s['recall'])} "
              f"(found: {s['recall_by_family']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


if __name__ == "__main__":
    main()
