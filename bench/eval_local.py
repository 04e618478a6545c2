"""Local-feature verification on planted partial copies and hard negatives (issue 5).

    python bench/eval_local.py /work/benchdata/images --sources 300 [--detector orb,sift]

From allowed source pictures (bench-images.sh's folder), each case takes an "original": a
random crop of a source, resized to 320-512 px on its long side, saved as JPEG. Positives
(the original against an edited picture, verified as `lookalike dupes --partial` and
`find-in` would):

* crop10 ... crop90: a crop keeping that share of the area (the crop is inside the original);
* crop50+rot10, crop50+mirror: a crop that is also rotated 10 degrees or mirrored;
* paste20 ... paste60: the original pasted into a larger picture (another source, or a flat
  colour) at that share of its width; collage: one tile of a 2x2 collage; screenshot: inside
  a phone-screen frame with bars and text;

Negatives (must not verify): the neighbouring crop of the same source (same scene, other
part), crops of other sources, a text-heavy page, near-uniform pictures, and two crops of one
tiled texture that do not overlap.

For each detector it prints: recall per transform at the inlier threshold that gives pooled
precision >= 0.99, mean IoU of the found boxes against the truth, features and bytes per
picture, extraction and verification time. The containing pictures are verified twice: with
the index settings (what `dupes --partial` has) and with the query settings of `find-in`.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from make_collection import allowed_sources

from lookalike.evaluation.metrics import box_iou
from lookalike.evaluation.transforms import largest_upright
from lookalike.methods import local
from lookalike.search import partial, verify

CROPS = (90, 70, 50, 30, 20, 10)
PASTES = (60, 45, 30, 20)
CAPTION = "SALE -40% new collection"


def jpeg(image: Image.Image, quality: int = 90) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def fit(image: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def crop_area(image: Image.Image, keep: float, rng: random.Random):
    side = math.sqrt(keep)
    w, h = max(8, round(image.width * side)), max(8, round(image.height * side))
    x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    box = (x, y, x + w, y + h)
    return image.crop(box), box


def rotate_crop(image: Image.Image, degrees: float):
    rotated = image.rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    w, h = largest_upright(image.width, image.height, degrees)
    cx, cy = rotated.width / 2, rotated.height / 2
    box = (math.ceil(cx - w / 2), math.ceil(cy - h / 2), math.floor(cx + w / 2),
           math.floor(cy + h / 2))
    # The truth box: the kept rectangle's corners mapped back into the unrotated picture.
    angle = math.radians(degrees)
    corners = []
    for px, py in ((box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])):
        dx, dy = px - cx, py - cy
        x = dx * math.cos(angle) - dy * math.sin(angle) + image.width / 2
        y = dx * math.sin(angle) + dy * math.cos(angle) + image.height / 2
        corners.append((x, y))
    xs, ys = zip(*corners)
    return rotated.crop(box), (min(xs), min(ys), max(xs), max(ys))


def paste(original: Image.Image, background: Image.Image, share: float, rng: random.Random):
    big = background.copy()
    w = round(big.width * share)
    tile = original.resize((w, max(1, round(original.height * w / original.width))),
                           Image.Resampling.LANCZOS)
    if tile.height > big.height:
        big = big.resize((big.width, tile.height + 20))
    x, y = rng.randint(0, big.width - tile.width), rng.randint(0, big.height - tile.height)
    big.paste(tile, (x, y))
    return big, (x, y, x + tile.width, y + tile.height)


def collage(original: Image.Image, others: list[Image.Image], rng: random.Random):
    cell = 400
    big = Image.new("RGB", (2 * cell, 2 * cell), (255, 255, 255))
    slot = rng.randrange(4)
    box = None
    pictures = others[:3]
    pictures.insert(slot, original)
    for k, picture in enumerate(pictures):
        tile = ImageOps.contain(picture, (cell - 10, cell - 10))
        x, y = (k % 2) * cell + 5, (k // 2) * cell + 5
        big.paste(tile, (x, y))
        if k == slot:
            box = (x, y, x + tile.width, y + tile.height)
    return big, box


def screenshot(original: Image.Image):
    width, height = 540, 1170
    big = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(big)
    draw.rectangle((0, 0, width, 90), fill=(30, 30, 30))
    draw.rectangle((0, height - 140, width, height), fill=(30, 30, 30))
    font = ImageFont.load_default(size=28)
    draw.text((20, 30), "12:41   shop.example", font=font, fill=(255, 255, 255))
    for k in range(4):
        draw.text((20, 820 + 60 * k), f"Product line {k + 1}  $ {19 + 7 * k}.99", font=font,
                  fill=(20, 20, 20))
    tile = ImageOps.contain(original, (width - 40, 640))
    x, y = (width - tile.width) // 2, 130
    big.paste(tile, (x, y))
    return big, (x, y, x + tile.width, y + tile.height)


def text_page(rng: random.Random) -> Image.Image:
    page = Image.new("RGB", (480, 360), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=20)
    words = "the quick brown fox jumps over lazy dog price size colour cotton".split()
    for row in range(14):
        draw.text((10, 10 + 25 * row), " ".join(rng.choice(words) for _ in range(6)),
                  font=font, fill=(0, 0, 0))
    return page


def near_uniform(rng: random.Random) -> Image.Image:
    base = np.full((300, 400, 3), rng.randint(40, 220), np.float32)
    base += np.random.default_rng(rng.randrange(1 << 30)).normal(0, 2, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def build_cases(src: Path, n_sources: int, seed: int):
    """(name, picture a, picture b, truth box of a inside b or of b inside a, side) lists."""
    rng = random.Random(seed)
    files, _ = allowed_sources(src)
    rng.shuffle(files)
    sources = []
    for path in files:
        try:
            with Image.open(path) as im:
                if min(im.size) < 360:
                    continue
                sources.append(im.convert("RGB"))
        except Exception:  # noqa: BLE001
            continue
        if len(sources) >= n_sources + 40:
            break
    backgrounds = [fit(s, 1024) for s in sources[n_sources:n_sources + 40]]
    positives, negatives = [], []
    for s in sources[:n_sources]:
        w, h = s.width // 2, s.height // 2
        x, y = rng.randint(0, s.width - w), rng.randint(0, s.height - h)
        cell = s.crop((x, y, x + w, y + h))
        if np.asarray(cell.convert("L")).std() < 10:
            continue
        original = jpeg(fit(cell, rng.randint(320, 512)))
        for keep in CROPS:
            crop, box = crop_area(original, keep / 100, rng)
            positives.append((f"crop{keep}", jpeg(crop), original, box, "a_in_b"))
        crop, box = crop_area(original, 0.5, rng)
        rotated, rbox = rotate_crop(crop, rng.choice((-10, 10)))
        rbox = (rbox[0] + box[0], rbox[1] + box[1], rbox[2] + box[0], rbox[3] + box[1])
        positives.append(("crop50+rot10", jpeg(rotated), original, rbox, "a_in_b"))
        positives.append(("crop50+mirror", jpeg(ImageOps.mirror(crop)), original, box, "a_in_b"))
        for share in PASTES:
            background = rng.choice(backgrounds) if rng.random() < 0.5 else \
                Image.new("RGB", (1024, 768), tuple(rng.randint(0, 255) for _ in range(3)))
            big, box = paste(original, background, share / 100, rng)
            positives.append((f"paste{share}", original, jpeg(big), box, "a_in_b"))
        others = [fit(rng.choice(backgrounds), 400) for _ in range(3)]
        big, box = collage(original, others, rng)
        positives.append(("collage", original, jpeg(big), box, "a_in_b"))
        big, box = screenshot(original)
        positives.append(("screenshot", original, jpeg(big), box, "a_in_b"))
        # Negatives: the neighbouring part of the same source, other sources, text, blank.
        nx = x + w if x + 2 * w <= s.width else x - w
        if 0 <= nx:
            sibling = jpeg(fit(s.crop((nx, y, nx + w, y + h)), original.width))
            negatives.append(("sibling", original, sibling, None, ""))
        other = rng.choice(sources[:n_sources])
        ow, oh = other.width // 2, other.height // 2
        ox, oy = rng.randint(0, other.width - ow), rng.randint(0, other.height - oh)
        negatives.append(("other", original, jpeg(fit(other.crop((ox, oy, ox + ow, oy + oh)),
                                                       original.width)), None, ""))
        negatives.append(("other-in-big", original, jpeg(rng.choice(backgrounds)), None, ""))
        # Two different tiles of the same source, each repeated: alike, but not copies.
        tiles = [s.crop((x + dx, y, x + dx + w // 4, y + h // 4)) for dx in (0, w // 2)]
        patterns = []
        for tile in tiles:
            tiled = Image.new("RGB", (tile.width * 4, tile.height * 4))
            for i in range(4):
                for j in range(4):
                    tiled.paste(tile, (i * tile.width, j * tile.height))
            patterns.append(jpeg(fit(tiled, 400)))
        negatives.append(("texture", patterns[0], patterns[1], None, ""))
    for _ in range(max(10, n_sources // 3)):
        negatives.append(("text", text_page(rng), text_page(rng), None, ""))
        negatives.append(("blank", near_uniform(rng), near_uniform(rng), None, ""))
    return positives, negatives


def features(image: Image.Image, detector: str, side: int, n: int, grid: int):
    rgb = np.asarray(image)
    if detector == "orb":
        return local.compute(rgb, image.width, image.height, side, n, words=False, grid=grid)
    return sift_compute(rgb, image.width, image.height, side, n, grid)


def sift_compute(rgb, width, height, side, n, grid):
    """RootSIFT on the same grey image, spread the same way (for the comparison only)."""
    import cv2

    gray = local.grey_for_features(rgb, side)
    out = []
    for g in (gray, np.ascontiguousarray(gray[:, ::-1])):
        sift = cv2.SIFT_create(contrastThreshold=0.02)
        keypoints, descriptors = sift.detectAndCompute(g, None)
        if descriptors is None:
            out.append(local.Features(np.empty((0, 2), np.float32),
                                      np.empty((0, 128), np.float32), width, height))
            continue
        xy = np.asarray([k.pt for k in keypoints], np.float32)
        resp = np.asarray([k.response for k in keypoints], np.float32)
        octave = np.asarray([k.octave & 255 for k in keypoints])
        keep = local.spread(xy, resp, octave, g.shape[1], g.shape[0], n, grid)
        d = descriptors[keep]
        d = np.sqrt(d / (d.sum(axis=1, keepdims=True) + 1e-7)).astype(np.float32)
        scale = np.asarray([width / g.shape[1], height / g.shape[0]], np.float32)
        out.append(local.Features((xy[keep] + 0.5) * scale - 0.5, d, width, height))
    return local.LocalSignature(*out)


def curve_threshold(pos_scores: np.ndarray, neg_scores: np.ndarray, target: float) -> int:
    """Smallest inlier count whose pooled precision is >= target (inf if none)."""
    for t in range(1, 1000):
        tp, fp = (pos_scores >= t).sum(), (neg_scores >= t).sum()
        if tp + fp and tp / (tp + fp) >= target:
            return t
    return 10**9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path)
    p.add_argument("--sources", type=int, default=300)
    p.add_argument("--detector", default="orb")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--features", type=int, help="index features per picture (default: the "
                   "method's); for trying other settings")
    p.add_argument("--big-features", type=int, help="the same for pictures over SIDE")
    p.add_argument("--fast", type=int, help="FAST threshold (default: the method's)")
    args = p.parse_args()
    if args.fast is not None:
        local.FAST_THRESHOLD = args.fast
    started = time.perf_counter()
    positives, negatives = build_cases(args.src, args.sources, args.seed)
    print(f"{len(positives)} positive and {len(negatives)} negative pairs "
          f"({time.perf_counter() - started:.1f} s to build)")
    for detector in args.detector.split(","):
        run(detector, positives, negatives, args.target, args.features, args.big_features)


def run(detector: str, positives, negatives, target: float, n_index: int | None = None,
        n_big: int | None = None) -> None:
    from lookalike.methods.local import (BIG_FEATURES, BIG_GRID, BIG_SIDE, GRID, MAX_FEATURES,
                                         SIDE)

    settings = {"index": (SIDE, n_index or MAX_FEATURES, GRID),
                "big": (BIG_SIDE, n_big or BIG_FEATURES, BIG_GRID),
                "query": (partial.QUERY_SIDE, partial.QUERY_FEATURES, partial.QUERY_GRID)}
    cache: dict[tuple[int, str], object] = {}
    extract_s, n_pictures, n_features, nbytes = 0.0, 0, 0, 0

    def feats(image, which):
        nonlocal extract_s, n_pictures, n_features, nbytes
        key = (id(image), which)
        if key not in cache:
            t = time.perf_counter()
            if which == "query" and detector == "orb":  # find-in's own two-size features
                cache[key] = partial.query_features_of(np.asarray(image), image.width,
                                                       image.height)
            else:
                cache[key] = features(image, detector, *settings[which])
            extract_s += time.perf_counter() - t
            if which != "query":
                n_pictures += 1
                n_features += len(cache[key].plain)
                nbytes += len(cache[key].plain) * (cache[key].plain.descriptors[0].nbytes
                                                   if len(cache[key].plain) else 0) * 2
        return cache[key]

    rows = []  # (kind, name, mode, inliers if confirmed else 0, iou)
    verify_s, n_verified = 0.0, 0
    for kind, cases in (("pos", positives), ("neg", negatives)):
        for name, a, b, box, _ in cases:
            big = name.startswith(("paste", "collage", "screenshot")) or name == "other-in-big"
            for mode in (("index", "query") if big else ("index",)):
                # the index holds a picture larger than SIDE with the "big" settings
                side_b = "big" if mode == "index" and max(b.size) > SIDE else mode
                fa = feats(a, "big" if max(a.size) > SIDE else "index")
                fb = feats(b, side_b)
                t = time.perf_counter()
                # the threshold is swept below
                if isinstance(fb, partial.QueryFeatures):  # find-in: also the colours there
                    v = partial.verify_query(fa, fb, 4)
                    if v.confirmed and not verify.region_agrees(np.asarray(b), b.width,
                                                                b.height, v, fa):
                        v = replace(v, confirmed=False)
                else:
                    v = verify.verify(fa, fb, min_inliers=4)
                verify_s += time.perf_counter() - t
                n_verified += 1
                found = v.box_in_b if v.confirmed else None
                inliers = v.inliers if v.confirmed else 0
                rows.append((kind, name, mode, inliers, box_iou(found, box)))
    pos = np.asarray([r[3] for r in rows if r[0] == "pos"])
    neg = np.asarray([r[3] for r in rows if r[0] == "neg"])
    threshold = curve_threshold(pos, neg, target)
    print(f"\n== {detector}: threshold {threshold} inliers for pooled precision >= {target} "
          f"(tp {(pos >= threshold).sum()}, fp {(neg >= threshold).sum()})")
    print(f"features/picture {n_features / max(n_pictures, 1):.0f}, bytes/picture (both "
          f"orientations, descriptors + 4 B coordinates) "
          f"{(nbytes + n_features * 8) / max(n_pictures, 1):,.0f}; extract "
          f"{1000 * extract_s / max(len(cache), 1):.1f} ms/picture; verify "
          f"{n_verified / verify_s:,.0f} pairs/s (one core)")
    by = defaultdict(list)
    for kind, name, mode, score, overlap in rows:
        by[(kind, name, mode)].append((score, overlap))
    default = verify.MIN_INLIERS
    print(f"pooled precision at the default {default} inliers: "
          f"{(pos >= default).sum() / max((pos >= default).sum() + (neg >= default).sum(), 1):.4f}")
    print(f"{'pairs':>26} {'n':>5} {'recall':>7} {'mean IoU':>9} {'max inliers':>11} "
          f"{'at ' + str(default):>7}")
    for (kind, name, mode), values in sorted(by.items()):
        scores = np.asarray([v[0] for v in values])
        hit = scores >= threshold
        ious = [v[1] for v in values if v[0] >= threshold]
        label = f"{kind} {name} [{mode}]"
        print(f"{label:>26} {len(values):5d} {hit.mean():7.3f} "
              f"{(np.mean(ious) if ious and kind == 'pos' else float('nan')):9.3f} "
              f"{scores.max():11d} {(scores >= default).mean():7.3f}")


if __name__ == "__main__":
    main()
