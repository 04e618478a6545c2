"""Copy detection by learned embeddings against the hashes, per transform (issue 6).

    python bench/eval_embed.py /work/benchdata/images --sources 1000 --planted 500 \
        [--model PATH.onnx] [--json OUT] [--k 20] [--precision 0.99] [--no-timing] \
        [--examples N] [--keep DIR] [--index DB]   (--index keeps the index for later reading)

Held-out pictures only: the files of the folder whose package in ../manifest.tsv is
supertuxkart-data or marble-data (the shipped model trains on flightgear-data-base and
0ad-data; those are never used here). Sources (sorted by file name): alpha composited on
white, at most 1024 px on the long side, JPEG q92. Refused: unreadable files, pictures under
64 px on the short side, near-blank ones (grey standard deviation under 8), and a source that
is the same picture as an earlier one under a flip or turn (make_collection.py's test on
32x32 thumbnails): that pair would be a real duplicate counted as a false positive. Other
look-alikes (textures, renders of one kart, map tiles) stay: they are the hard negatives.

`--planted` of the sources (seeded choice) get one edited copy each, cycling through
TRANSFORMS (random parameters drawn per copy from a seeded generator); the rest are
distractors. One index is scanned with pdq, phash, dhash and the embedding, and each method
is also timed alone (a fresh index; "pixels" is always added).

Scores: each picture's k nearest others by each method (hashes: Hamming distance, best of the
8 flips/turns, score 1 - d / bits; embeddings: cosine similarity), pooled as unordered pairs.
A positive is a planted (source, copy) pair; every planted pair counts, found or not.
Reported per method: µAP and recall at precision 0.99 (one global threshold), then per
transform the recall at that threshold and the µAP of that transform's positives against all
negatives; and top-1, the share of copies whose source is their nearest other picture (no
threshold: how well the method ranks, as opposed to how well one threshold separates).
`--precision` sets the target (0.99). The default cascade (`find_pairs(index, "auto",
similarity=s)`: exact, pHash with dHash, then embedding pairs >= s) is swept over s (0.99
down, by 0.01); its hash part alone is the "auto (hashes)" column, and the loosest s with
precision >= the target gives the "cascade" column.

Look-alike sources: pairs of sources whose 32x32 grey thumbnails correlate >= 0.95 under some
flip or turn (make_collection.py's "lookalike" test: the same texture recoloured, one kart in
two liveries) are kept as negatives, and so are the pairs of their copies; as a second view,
the "without look-alikes" figures (and the "cascade-L" column) leave those pairs out, neither
right nor wrong. --examples prints each method's best-scoring wrong pairs with the package
paths of their sources (marked L when they are look-alike sources). Measures and prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import colorsys
import io
import json
import math
import multiprocessing
import random
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from make_collection import similar_pairs

import lookalike
from lookalike.evaluation import metrics
from lookalike.evaluation.transforms import (CAPTIONS, EDITS, caption, crop, encode,
                                             pad, rotate_cropped)
from lookalike.methods.embedding import method_name
from lookalike.methods.registry import get_spec
from lookalike.scan import scan
from lookalike.search import binary, embed, vectors
from lookalike.search.dupes import find_pairs

HELD_OUT = {"supertuxkart-data", "marble-data"}
MAX_SIDE = 1024
MIN_SIDE = 64
MIN_STD = 8.0
SAME_RMS = 8.0  # make_collection.py's default for "the same picture"
HASHES = ("pdq", "phash", "dhash")
LABELS = {"pdq": "PDQ-dihedral", "phash": "pHash", "dhash": "dHash", "embed": "embed",
          "auto-hashes": "auto (hashes)", "cascade": "cascade", "cascade-l": "cascade-L"}
PRECISION = 0.99  # the target of "recall at precision"; --precision sets it
SWEEP = [round(s, 3) for s in np.arange(0.99, 0.295, -0.01)]
GROUPS = {  # "embed minus PDQ" summaries
    "crops": ("crop90", "crop70", "crop50"),
    "small rotations": ("rot5", "rot10", "rot20"),
    "overlays (text, emoji)": ("text", "emoji", "patch"),
    "padding": ("pad", "border20"),
}


# ---------------------------------------------------------------------------------------------
# transforms: each takes (RGB picture, its JPEG bytes, generator, other pictures) and returns
# (JPEG bytes, parameters)


def _jpeg(image: Image.Image) -> bytes:
    return encode(image.convert("RGB"), "JPEG", quality=92)


def _edit(name: str):
    return lambda im, data, rng, others: (EDITS[name](im, data)[0], {})


def _crop(keep: float):
    def run(im, data, rng, others):
        left, top = rng.random(), rng.random()
        return _jpeg(crop(im, 1.0 - math.sqrt(keep), left, top)), {"left": round(left, 3),
                                                                   "top": round(top, 3)}
    return run


def _rotate(degrees: float):
    def run(im, data, rng, others):
        angle = degrees * rng.choice((-1, 1))
        return _jpeg(rotate_cropped(im, angle)), {"degrees": angle}
    return run


def _text(im, data, rng, others):
    text, x, y = rng.choice(CAPTIONS), rng.random(), rng.random()
    return _jpeg(caption(im, text, x, y)), {"text": text}


def _star(cx: float, cy: float, radius: float, turn: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * 0.45
        a = turn + k * math.pi / 5
        points.append((cx + r * math.sin(a), cy - r * math.cos(a)))
    return points


STICKER_FILL = {"smiley": 0.785, "star": 0.33, "heart": 0.55}  # share of the bounding square


def _sticker(draws, kind: str, x0: float, y0: float, side: float, colour: tuple,
             turn: float) -> None:
    """Draw one sticker on every (draw, is_mask) of `draws`; a mask gets it in white."""
    cx, cy, r = x0 + side / 2, y0 + side / 2, side / 2
    for draw, mask in draws:
        fill = 255 if mask else colour
        if kind == "smiley":
            draw.ellipse((x0, y0, x0 + side, y0 + side), fill=255 if mask else (255, 205, 40),
                         outline=255 if mask else (90, 60, 0), width=max(1, int(side / 30)))
            if mask:
                continue
            eye = side * 0.09
            for ex in (cx - r * 0.35, cx + r * 0.35):
                draw.ellipse((ex - eye, cy - r * 0.3 - eye, ex + eye, cy - r * 0.3 + eye),
                             fill=(40, 25, 0))
            draw.arc((cx - r * 0.55, cy - r * 0.45, cx + r * 0.55, cy + r * 0.6), 20, 160,
                     fill=(40, 25, 0), width=max(1, int(side / 18)))
        elif kind == "star":
            draw.polygon(_star(cx, cy, r, turn), fill=fill)
        else:  # heart: two lobes and a point
            lobe = r * 0.5
            for lx in (cx - r * 0.45, cx + r * 0.45):
                draw.ellipse((lx - lobe, cy - r * 0.35 - lobe, lx + lobe, cy - r * 0.35 + lobe),
                             fill=fill)
            draw.polygon([(cx - r * 0.93, cy - r * 0.15), (cx + r * 0.93, cy - r * 0.15),
                          (cx, cy + r)], fill=fill)


def _emoji(im, data, rng, others):
    """1-3 emoji-like stickers (smiley, star, heart) covering 10-20% of the picture in all
    (sized for it; overlaps make it a little less: the cover measured is recorded)."""
    out, mask = im.copy(), Image.new("L", im.size, 0)
    draws = [(ImageDraw.Draw(out), False), (ImageDraw.Draw(mask), True)]
    target = rng.uniform(0.10, 0.20)
    count = rng.randint(1, 3)
    kinds = []
    for _ in range(count):
        kind = rng.choice(tuple(STICKER_FILL))
        kinds.append(kind)
        side = math.sqrt(target * im.width * im.height / count / STICKER_FILL[kind])
        side = min(side, 0.95 * min(im.width, im.height))
        x0 = rng.uniform(0, im.width - side)
        y0 = rng.uniform(0, im.height - side)
        rgb = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(rng.random(), 0.9, 1.0))
        _sticker(draws, kind, x0, y0, side, rgb, rng.uniform(0, math.pi))
    cover = float(np.asarray(mask).mean() / 255)
    return _jpeg(out), {"target": round(target, 3), "cover": round(cover, 3),
                        "stickers": kinds}


def _patch(im, data, rng, others):
    """A rectangle cut from another held-out picture (not one of the sources) pasted on."""
    cover = rng.uniform(0.10, 0.20)
    aspect = rng.uniform(0.75, 1.33)
    w = min(im.width, max(4, round(math.sqrt(cover * im.width * im.height * aspect))))
    h = min(im.height, max(4, round(cover * im.width * im.height / w)))
    for _ in range(20):  # a donor that cannot be read is passed over
        donor_path = rng.choice(others)
        try:
            with Image.open(donor_path) as opened:
                donor = _flatten(opened)
            break
        except Exception:  # noqa: BLE001
            continue
    scale = max(w / donor.width, h / donor.height, 1.0)
    if scale > 1.0:
        donor = donor.resize((math.ceil(donor.width * scale), math.ceil(donor.height * scale)))
    dx, dy = rng.randint(0, donor.width - w), rng.randint(0, donor.height - h)
    x, y = rng.randint(0, im.width - w), rng.randint(0, im.height - h)
    out = im.copy()
    out.paste(donor.crop((dx, dy, dx + w, dy + h)), (x, y))
    return _jpeg(out), {"cover": round(w * h / (im.width * im.height), 3),
                        "donor": Path(donor_path).name}


def _pad(im, data, rng, others):
    return _jpeg(pad(im)), {}


def _border(im, data, rng, others):
    """A coloured border adding 20% to width and height (10% on each side)."""
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    bx, by = round(im.width * 0.10), round(im.height * 0.10)
    canvas = Image.new("RGB", (im.width + 2 * bx, im.height + 2 * by), colour)
    canvas.paste(im, (bx, by))
    return _jpeg(canvas), {"colour": colour}


def _perspective(im, data, rng, others):
    """Each corner moved by up to 10% of the width and height (black where nothing lands)."""
    import cv2

    w, h = im.width, im.height
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = np.float32([[rng.uniform(-0.1, 0.1) * w, rng.uniform(-0.1, 0.1) * h]
                        for _ in range(4)])
    matrix = cv2.getPerspectiveTransform(src, src + moved)
    warped = cv2.warpPerspective(np.asarray(im), matrix, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return _jpeg(Image.fromarray(warped)), {"moved": np.round(moved / [w, h], 3).tolist()}


def _hue(im, data, rng, others):
    """Hue turned by 90-180 degrees either way."""
    degrees = rng.uniform(90, 180) * rng.choice((-1, 1))
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(degrees / 360 * 256)) % 256)
    return _jpeg(Image.fromarray(hsv, "HSV").convert("RGB")), {"degrees": round(degrees, 1)}


def _channels(im, data, rng, others):
    """RGB channels permuted (not the identity) and saturation x0.4-0.7 or x1.4-1.8."""
    order = rng.choice([(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)])
    factor = rng.uniform(0.4, 0.7) if rng.random() < 0.5 else rng.uniform(1.4, 1.8)
    swapped = Image.fromarray(np.ascontiguousarray(np.asarray(im)[..., list(order)]))
    return _jpeg(ImageEnhance.Color(swapped).enhance(factor)), {"order": order,
                                                                 "saturation": round(factor, 2)}


TRANSFORMS = {
    **{name: _edit(name) for name in ("jpeg70", "resize50", "mirror", "flip", "rot90",
                                      "rot180", "rot270", "blur", "grey", "brighter")},
    "crop90": _crop(0.9), "crop70": _crop(0.7), "crop50": _crop(0.5),
    "rot5": _rotate(5.0), "rot10": _rotate(10.0), "rot20": _rotate(20.0),
    "text": _text, "emoji": _emoji, "patch": _patch,
    "pad": _pad, "border20": _border, "perspective": _perspective,
    "hue": _hue, "chanswap": _channels,
}
DESCRIPTIONS = {
    "crop90": "crop keeping 90% of the area, random position", "crop70": "70%",
    "crop50": "50%", "rot5": "rotated +-5 degrees, cut to the largest upright rectangle",
    "rot10": "+-10 degrees", "rot20": "+-20 degrees",
    "text": "caption (1/7 of the height, white with a black outline)",
    "emoji": "1-3 stickers (smiley, star, heart), 10-20% of the area",
    "patch": "a rectangle of another held-out picture, 10-20% of the area",
    "pad": "white border to a square plus 6% (transforms.pad)",
    "border20": "coloured border, +20% width and height",
    "perspective": "corners moved by up to 10% (cv2.warpPerspective, black fill)",
    "hue": "hue turned 90-180 degrees", "chanswap": "channels permuted, saturation changed",
}


# ---------------------------------------------------------------------------------------------
# data


def _flatten(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def manifest(folder: Path) -> dict[str, tuple[str, str]]:
    """File name -> (package, path in the package) from ../manifest.tsv."""
    out = {}
    for line in (folder.parent / "manifest.tsv").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            out[fields[0]] = (fields[1], fields[2] if len(fields) > 2 else "")
    return out


def held_out(folder: Path) -> list[Path]:
    return sorted(folder / name for name, (package, _) in manifest(folder).items()
                  if package in HELD_OUT and (folder / name).is_file())


def _prepare(path: Path) -> tuple[Image.Image, bytes] | str:
    try:
        with Image.open(path) as opened:
            image = _flatten(opened)
    except Exception as exc:  # noqa: BLE001  (an unreadable source is skipped and counted)
        return f"unreadable ({type(exc).__name__})"
    if min(image.size) < MIN_SIDE:
        return "small"
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if float(np.asarray(image.convert("L"), dtype=np.float32).std()) < MIN_STD:
        return "near blank"
    return image, _jpeg(image)


def _thumbs(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(image.resize((32, 32), Image.Resampling.BOX), dtype=np.uint8),
            np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BOX),
                       dtype=np.uint8))


def choose_sources(files: list[Path], n_sources: int) -> tuple[list[dict], list[Path], dict]:
    """The first n_sources usable files (their JPEG bytes), the held-out files left over, and
    counts of what was refused."""
    refused: dict[str, int] = {}
    chosen: list[dict] = []
    position = 0
    while len(chosen) < n_sources and position < len(files):
        batch = files[position:position + max(64, int(1.3 * (n_sources - len(chosen))))]
        position += len(batch)
        for path in batch:
            prepared = _prepare(path)
            if isinstance(prepared, str):
                refused[prepared] = refused.get(prepared, 0) + 1
                continue
            image, data = prepared
            rgb, grey = _thumbs(Image.open(io.BytesIO(data)).convert("RGB"))
            chosen.append({"path": path, "data": data, "size": image.size, "rgb": rgb,
                           "grey": grey})
        same, _ = similar_pairs(np.stack([c["rgb"] for c in chosen]),
                                np.stack([c["grey"] for c in chosen]), SAME_RMS)
        drop = {j for _, j, _ in same}  # the later one of each pair
        refused["same picture as another source"] = \
            refused.get("same picture as another source", 0) + len(drop)
        chosen = [c for k, c in enumerate(chosen) if k not in drop]
    spare = files[position:] + [c["path"] for c in chosen[n_sources:]]
    return chosen[:n_sources], spare, refused


def lookalike_sources(sources: list[dict]) -> list[tuple[int, int]]:
    """Pairs of sources whose 32x32 grey thumbnails correlate >= 0.95 under some flip or turn
    (make_collection.py's "lookalike": a recoloured texture, one kart in two liveries)."""
    if len(sources) < 2:
        return []
    _, alike = similar_pairs(np.stack([c["rgb"] for c in sources]),
                             np.stack([c["grey"] for c in sources]), SAME_RMS)
    return [(i, j) for i, j, _ in alike]


def build(folder: Path, dest: Path, n_sources: int, n_planted: int, seed: int) -> dict:
    files = held_out(folder)
    sources, spare, refused = choose_sources(files, n_sources)
    rng = random.Random(seed)
    planted = rng.sample(range(len(sources)), min(n_planted, len(sources)))
    names = list(TRANSFORMS)
    donors = [str(p) for p in spare] or [str(sources[k]["path"]) for k in
                                         set(range(len(sources))) - set(planted)]
    truth = []
    origin = {}  # picture -> the package path of its source
    paths = manifest(folder)
    for number, source in enumerate(sources):
        (dest / f"s{number:05d}.jpg").write_bytes(source["data"])
        origin[str(dest / f"s{number:05d}.jpg")] = paths[source["path"].name][1]
    for j, number in enumerate(planted):
        name = names[j % len(names)]
        data = sources[number]["data"]
        image = Image.open(io.BytesIO(data)).convert("RGB")
        copy_rng = random.Random(f"{seed}:{number}:{name}")
        edited, params = TRANSFORMS[name](image, data, copy_rng, donors)
        copy = dest / f"c{number:05d}_{name}.jpg"
        copy.write_bytes(edited)
        origin[str(copy)] = origin[str(dest / f"s{number:05d}.jpg")]
        truth.append({"source": str(dest / f"s{number:05d}.jpg"), "copy": str(copy),
                      "transform": name, "params": params,
                      "file": sources[number]["path"].name})
    group = {number: [str(dest / f"s{number:05d}.jpg")] for number in range(len(sources))}
    for record in truth:
        group[int(Path(record["source"]).stem[1:])].append(record["copy"])
    lookalikes = [(x, y) for i, j in lookalike_sources(sources)
                  for x in group[i] for y in group[j]]
    return {"held_out_files": len(files), "sources": len(sources), "planted": len(truth),
            "refused": refused, "truth": truth, "origin": origin, "lookalikes": lookalikes}


def build_in_child(folder: Path, dest: Path, n_sources: int, n_planted: int, seed: int) -> dict:
    """build() in a spawned process: OpenCV (the perspective warp) leaves a thread pool
    behind, and scan's forked workers then hang in cv2 (seen: cv2 in the parent, the
    embedding's cv2.resize in a worker waiting on a condition variable forever)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(build, folder, dest, n_sources, n_planted, seed).result()


# ---------------------------------------------------------------------------------------------
# scoring


class Pairs:
    """Pooled unordered pairs of content ids with the best score each, and their truth."""

    def __init__(self, a: np.ndarray, b: np.ndarray, score: np.ndarray, truth: "Truth"):
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keep = lo != hi
        lo, hi, score = lo[keep], hi[keep], score[keep]
        key = lo * truth.span + hi
        order = np.lexsort((-score, key))
        key, score = key[order], score[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        self.key, self.score = key[first], score[first].astype(np.float64)
        self.transform = np.array([truth.by_key.get(int(k), "") for k in self.key], dtype=object)
        self.positive = self.transform != ""
        self.lookalike = np.fromiter((int(k) in truth.lookalike_keys for k in self.key),
                                     dtype=bool, count=self.key.size)


class Truth:
    def __init__(self, index, records: list[dict], lookalikes: list[tuple[str, str]]):
        files = index.live_files()
        self.cid_of = {f.path: cid for cid, refs in files.items() for f in refs}
        self.path_of = {cid: refs[0].path for cid, refs in files.items() if refs}
        self.span = max(self.cid_of.values()) + 1
        self.by_key = {}
        self.count: dict[str, int] = {}
        for record in records:
            a, b = self.cid_of[record["source"]], self.cid_of[record["copy"]]
            self.by_key[min(a, b) * self.span + max(a, b)] = record["transform"]
            self.count[record["transform"]] = self.count.get(record["transform"], 0) + 1
        self.pair_of_paths = {frozenset((r["source"], r["copy"])): r["transform"]
                              for r in records}
        self.n_positives = len(records)
        self.lookalike_keys = set()
        self.lookalike_paths = set()
        for x, y in lookalikes:
            a, b = self.cid_of[x], self.cid_of[y]
            self.lookalike_keys.add(min(a, b) * self.span + max(a, b))
            self.lookalike_paths.add(frozenset((x, y)))


def hash_neighbours(index, name: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    spec = get_spec(name)
    codes = index.load_codes(spec)
    usable = np.flatnonzero(codes.quality >= spec.min_quality)
    all8 = np.ascontiguousarray(codes.codes[usable])
    hits = binary.knn(np.ascontiguousarray(all8[:, 0]), all8, k + 1)
    ids = codes.content_ids[usable]
    return ids[hits.query], ids[hits.item], 1.0 - hits.distance / spec.bits


def embed_neighbours(index, spec, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    stored = embed.load(index, spec)
    found = vectors.build(stored.vectors).knn(stored.vectors, k + 1)
    rows, cols = np.nonzero(found.ids >= 0)
    return (stored.content_ids[rows], stored.content_ids[found.ids[rows, cols]],
            found.similarity[rows, cols])


def top1(query: np.ndarray, item: np.ndarray, score: np.ndarray, truth: "Truth",
         records: list[dict]) -> dict:
    """Retrieval with each planted copy as the query: the share of copies whose source is the
    most similar other picture (ties at the top share the credit: 1 / number tied), overall
    and per transform. Independent of any global threshold."""
    keep = query != item
    query, item, score = query[keep], item[keep], score[keep].astype(np.float64)
    order = np.argsort(query, kind="stable")
    query, item, score = query[order], item[order], score[order]
    starts = np.searchsorted(query, [truth.cid_of[r["copy"]] for r in records], "left")
    ends = np.searchsorted(query, [truth.cid_of[r["copy"]] for r in records], "right")
    credit: dict[str, list[float]] = {}
    for record, lo, hi in zip(records, starts.tolist(), ends.tolist()):
        got = 0.0
        if hi > lo:
            scores, items = score[lo:hi], item[lo:hi]
            best = scores.max()
            mine = scores[items == truth.cid_of[record["source"]]]
            if mine.size and mine.max() == best:
                got = 1.0 / int((scores == best).sum())
        credit.setdefault(record["transform"], []).append(got)
    every = [c for values in credit.values() for c in values]
    return {"all": float(np.mean(every)) if every else float("nan"),
            "per_transform": {t: float(np.mean(v)) for t, v in credit.items()}}


def top_negatives(pairs: Pairs, truth: Truth, origin: dict, count: int) -> list[dict]:
    """The `count` best-scoring wrong pairs, with their sources' package paths."""
    wrong = np.flatnonzero(~pairs.positive)
    wrong = wrong[np.argsort(-pairs.score[wrong], kind="stable")[:count]]
    out = []
    for row in wrong.tolist():
        a, b = divmod(int(pairs.key[row]), truth.span)
        pa, pb = truth.path_of[a], truth.path_of[b]
        out.append({"score": round(float(pairs.score[row]), 4), "a": Path(pa).name,
                    "b": Path(pb).name, "a_source": origin.get(pa, ""),
                    "b_source": origin.get(pb, ""), "lookalike": bool(pairs.lookalike[row])})
    return out


def score_method(pairs: Pairs, truth: Truth) -> dict:
    n = truth.n_positives
    threshold = metrics.threshold_at_precision(pairs.score, pairs.positive, PRECISION)
    out = {"pairs": int(pairs.key.size), "positives_scored": int(pairs.positive.sum()),
           "uap": metrics.micro_average_precision(pairs.score, pairs.positive, n),
           "recall_at_precision": metrics.recall_at_precision(pairs.score, pairs.positive, n,
                                                        PRECISION),
           "threshold": threshold,
           "negatives_at_threshold": None if threshold is None else
           int((~pairs.positive & (pairs.score >= threshold)).sum()),
           "per_transform": {}}
    clean = ~pairs.lookalike  # the look-alike sources' pairs left out: neither right nor wrong
    clean_threshold = metrics.threshold_at_precision(pairs.score[clean], pairs.positive[clean],
                                             PRECISION)
    wrong_above = ~pairs.positive & (pairs.score >= (np.inf if threshold is None else threshold))
    out.update(
        lookalike_pairs=int(pairs.lookalike.sum()),
        negatives_at_threshold_lookalike=int((wrong_above & pairs.lookalike).sum()),
        uap_without_lookalikes=metrics.micro_average_precision(
            pairs.score[clean], pairs.positive[clean], n),
        recall_at_precision_without_lookalikes=metrics.recall_at_precision(
            pairs.score[clean], pairs.positive[clean], n, PRECISION),
        threshold_without_lookalikes=clean_threshold)
    negatives = ~pairs.positive
    for name, count in truth.count.items():
        mine = pairs.transform == name
        found = 0 if threshold is None else int((mine & (pairs.score >= threshold)).sum())
        keep = negatives | mine
        found_clean = 0 if clean_threshold is None else \
            int((mine & (pairs.score >= clean_threshold)).sum())
        out["per_transform"][name] = {
            "n": count, "recall": found / count, "in_knn": int(mine.sum()) / count,
            "recall_without_lookalikes": found_clean / count,
            "uap": metrics.micro_average_precision(pairs.score[keep], pairs.positive[keep],
                                                   count)}
        out["per_transform"][name]["median_score"] = \
            float(np.median(pairs.score[mine])) if mine.any() else None
    quantiles = (0.5, 0.9, 0.99, 0.999)
    out["score_quantiles"] = {
        label: {f"q{q:g}": float(np.quantile(pairs.score[rows], q)) for q in quantiles}
        for label, rows in (("positives", pairs.positive), ("negatives", negatives))
        if rows.any()}
    recalled = sum(v["recall"] * v["n"] for v in out["per_transform"].values()) / n
    out["check_recall_matches_metric"] = abs(recalled - out["recall_at_precision"]) < 1e-9
    return out


def score_cascade(matches, truth: Truth, only=None) -> dict:
    pairs = {frozenset((m.a, m.b)) for m in matches if only is None or only(m)}
    found = [truth.pair_of_paths[p] for p in pairs if p in truth.pair_of_paths]
    by = {name: 0 for name in truth.count}
    for name in found:
        by[name] += 1
    clean = pairs - truth.lookalike_paths
    embed_pairs = {frozenset((m.a, m.b)) for m in matches if m.method == "embed"} & pairs
    embed_right = sum(1 for p in embed_pairs if p in truth.pair_of_paths)
    return {"pairs": len(pairs), "precision": len(found) / len(pairs) if pairs else float("nan"),
            "recall": len(found) / truth.n_positives, "embed_pairs": len(embed_pairs),
            "lookalike_pairs": len(pairs) - len(clean),
            "precision_without_lookalikes": len(found) / len(clean) if clean else float("nan"),
            "embed_precision": embed_right / len(embed_pairs) if embed_pairs else float("nan"),
            "per_transform": {name: by[name] / truth.count[name] for name in truth.count}}


def sweep_cascade(index, truth: Truth, n_images: int) -> tuple[list[dict], dict]:
    """find_pairs("auto", similarity=s) from strict to loose, stopping once it is past use
    (under 20% of the embedding pairs right, or 20 pairs per picture); and its hash part
    alone."""
    rows, hashes_only = [], None
    for s in SWEEP:
        started = time.perf_counter()
        matches = find_pairs(index, "auto", similarity=s, calibrated=False)
        row = {"similarity": s, **score_cascade(matches, truth),
               "seconds": time.perf_counter() - started}
        rows.append(row)
        if hashes_only is None:
            hashes_only = score_cascade(matches, truth, lambda m: m.method != "embed")
        if row["embed_precision"] < 0.2 or row["pairs"] > 20 * n_images:
            break
    return rows, hashes_only


# ---------------------------------------------------------------------------------------------
# timing


def time_scans(folder: Path, methods: dict[str, str], workers: int, tmp: Path) -> dict:
    n = sum(1 for _ in folder.iterdir())
    out = {}
    for label, name in methods.items():
        index_path = tmp / f"time-{label}.db"
        started = time.perf_counter()
        summary = scan([folder], index_path=index_path, methods=[name], workers=workers)
        seconds = time.perf_counter() - started
        out[label] = {"seconds": seconds, "images_per_s": n / seconds, "failed": summary.failed}
        index_path.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------------------------------------
# report


def _f(value) -> str:
    return "   -  " if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:6.3f}"


def print_report(result: dict, examples: int) -> None:
    methods, cascade, auto = result["methods"], result["cascade"], result["auto_hashes"]
    best, best_clean = cascade["best"], cascade["best_without_lookalikes"]
    names = list(TRANSFORMS)
    cols = [*methods, "auto-hashes", "cascade", "cascade-l"]
    chosen = [auto, best, best_clean]

    def pick(row, key):
        return None if row is None else row[key]

    print(f"\nRecall per transform at each method's one global threshold for precision "
          f"{PRECISION} over all transforms. auto (hashes): the cascade's exact + pHash/dHash "
          f"pairs alone. cascade: find_pairs('auto', similarity=s) at the loosest s with "
          f"precision >= {PRECISION} (s = {pick(best, 'similarity')}); cascade-L: the same "
          f"with the pairs of look-alike sources left out (s = "
          f"{pick(best_clean, 'similarity')}).")
    head = f"{'transform':13} {'n':>3} " + " ".join(f"{LABELS[c]:>13}" for c in cols)
    print(head)
    print("-" * len(head))
    for name in names:
        n = result["truth_counts"].get(name, 0)
        cells = [methods[m]["per_transform"][name]["recall"] for m in methods]
        cells += [None if row is None else row["per_transform"][name] for row in chosen]
        print(f"{name:13} {n:3} " + " ".join(f"{_f(c):>13}" for c in cells))
    print("-" * len(head))
    rows = [
        (f"recall@P{PRECISION:g}", [methods[m]["recall_at_precision"] for m in methods] +
         [pick(row, "recall") for row in chosen]),
        ("µAP", [methods[m]["uap"] for m in methods] + [None] * 3),
        ("threshold", [methods[m]["threshold"] for m in methods] +
         [None, pick(best, "similarity"), pick(best_clean, "similarity")]),
        ("precision", [None] * len(methods) + [pick(row, "precision") for row in chosen]),
        ("in the k-NN", [methods[m]["positives_scored"] / result["planted"] for m in methods] +
         [None] * 3),
        ("no look-alikes:", [None] * (len(methods) + 3)),
        (f" recall@P{PRECISION:g}",
         [methods[m]["recall_at_precision_without_lookalikes"] for m in methods] + [None] * 3),
        (" µAP", [methods[m]["uap_without_lookalikes"] for m in methods] + [None] * 3),
        (" precision", [None] * len(methods) +
         [pick(row, "precision_without_lookalikes") for row in chosen]),
    ]
    for label, cells in rows:
        print(f"{label:17} " + " ".join(f"{_f(c):>13}" for c in cells))

    print("\nµAP per transform (that transform's positives against all negatives), and top-1: "
          "the share of copies whose source is their nearest other picture (no threshold)")
    short = {"pdq": "PDQ", "phash": "pHash", "dhash": "dHash", "embed": "embed"}
    print(f"{'transform':13} " + " ".join(f"{'µAP ' + short[m]:>10}" for m in methods) + "  " +
          " ".join(f"{'top1 ' + short[m]:>10}" for m in methods))
    for name in [*names, "all"]:
        uaps = [methods[m]["uap"] if name == "all" else methods[m]["per_transform"][name]["uap"]
                for m in methods]
        firsts = [methods[m]["top1"]["all"] if name == "all" else
                  methods[m]["top1"]["per_transform"].get(name) for m in methods]
        print(f"{name:13} " + " ".join(f"{_f(v):>10}" for v in uaps) + "  " +
              " ".join(f"{_f(v):>10}" for v in firsts))

    print("\nscores of the pooled k-NN pairs (quantiles 0.5 / 0.9 / 0.99 / 0.999)")
    for m in methods:
        cells = [f"{label} " + " / ".join(f"{v:.4f}" for v in q.values())
                 for label, q in methods[m]["score_quantiles"].items()]
        print(f"  {LABELS[m]:13} " + ";  ".join(cells))

    if "embed" in methods and "pdq" in methods:
        print(f"\nembed minus PDQ, recall points (each at its own P{PRECISION:g} threshold)")
        for group, members in GROUPS.items():
            diffs = {t: 100 * (methods["embed"]["per_transform"][t]["recall"] -
                               methods["pdq"]["per_transform"][t]["recall"]) for t in members}
            detail = ", ".join(f"{t} {d:+.1f}" for t, d in diffs.items())
            print(f"  {group:24} {np.mean(list(diffs.values())):+6.1f}   ({detail})")

    print("\ncascade sweep: find_pairs(index, 'auto', similarity=s); 'embed' = pairs only the "
          "embedding found")
    print(f"{'s':>6} {'pairs':>6} {'precision':>9} {'prec-L':>7} {'recall':>7} {'embed':>6} "
          f"{'embed prec':>10} {'seconds':>7}")
    for row in cascade["sweep"]:
        print(f"{row['similarity']:6.2f} {row['pairs']:6} {row['precision']:9.3f} "
              f"{row['precision_without_lookalikes']:7.3f} {row['recall']:7.3f} "
              f"{row['embed_pairs']:6} {_f(row['embed_precision']):>10} {row['seconds']:7.2f}")
    print(f"hashes only (auto without embeddings): {auto['pairs']} pairs, precision "
          f"{auto['precision']:.3f} ({auto['precision_without_lookalikes']:.3f} without the "
          f"{auto['lookalike_pairs']} look-alike pairs), recall {auto['recall']:.3f}")
    best_embed = cascade["best_embed"]
    print(f"loosest s whose embedding pairs alone have precision >= {PRECISION}: "
          f"{pick(best_embed, 'similarity')} (recall {_f(pick(best_embed, 'recall')).strip()})")
    if cascade.get("model_default"):
        d = cascade["model_default"]
        print(f"at the model's own similarity {d['similarity']}: {d['pairs']} pairs, precision "
              f"{d['precision']:.3f}, recall {d['recall']:.3f}")
    if examples:
        print("\nbest-scoring wrong pairs per method (the sources' package paths; L: from "
              "look-alike sources)")
        for m in methods:
            if methods[m]["threshold"] is None:
                print(f"  {LABELS[m]}: no threshold reaches precision {PRECISION}")
            else:
                print(f"  {LABELS[m]}: {methods[m]['negatives_at_threshold']} wrong pairs at its "
                      f"P{PRECISION:g} threshold "
                      f"({methods[m]['negatives_at_threshold_lookalike']} of them look-alike "
                      "sources)")
            for e in methods[m]["top_negatives"][:examples]:
                print(f"    {e['score']:.4f}{' L' if e['lookalike'] else '  '} {e['a']} "
                      f"{e['a_source']}  |  {e['b']} {e['b_source']}")
    if result.get("timing"):
        print("\nscan speed, one method at a time (+pixels), "
              f"{result['workers']} workers, {result['images']} images")
        for label, row in result["timing"].items():
            print(f"  {label:10} {row['seconds']:7.1f} s  {row['images_per_s']:7.1f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="bench-images.sh's images/ folder")
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--planted", type=int, default=500)
    parser.add_argument("--model", help="an ONNX model (with its .onnx.json sidecar) or a "
                                        "registered name; default: the shipped model")
    parser.add_argument("--k", type=int, default=20, help="neighbours per picture and method")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-timing", action="store_true", help="skip the per-method scans")
    parser.add_argument("--keep", type=Path, help="build the pictures here and keep them")
    parser.add_argument("--examples", type=int, default=5,
                        help="wrong pairs to print per method (20 go to the JSON)")
    parser.add_argument("--precision", type=float, default=PRECISION,
                        help="the precision of the global thresholds (default 0.99)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--index", type=Path, help="write the index here and keep it")
    args = parser.parse_args()
    globals()["PRECISION"] = args.precision  # read by the scoring and the report
    started = time.perf_counter()
    embed_name = method_name(args.model)
    spec = get_spec(embed_name)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = args.keep or tmp / "images"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        data = build_in_child(args.images, folder, args.sources, args.planted, args.seed)
        n_images = data["sources"] + data["planted"]
        print(f"{data['sources']} sources ({data['held_out_files']} held-out files; refused "
              f"{data['refused']}), {data['planted']} planted copies, {n_images} pictures, "
              f"{len(data['lookalikes'])} pairs of them from look-alike sources; "
              f"built in {time.perf_counter() - started:.0f} s", flush=True)
        scan_started = time.perf_counter()
        index_path = args.index or tmp / "all.db"
        summary = scan([folder], index_path=index_path,
                       methods=[*HASHES, embed_name], workers=args.workers)
        scan_s = time.perf_counter() - scan_started
        print(f"scanned {summary.scanned} files ({summary.failed} failed) with "
              f"{', '.join(HASHES)}, {embed_name} in {scan_s:.1f} s", flush=True)
        result = {"model": spec.params, "model_ref": args.model or "default",
                  "precision_target": PRECISION,
                  "images": n_images, "workers": args.workers, "k": args.k,
                  "sources": data["sources"], "planted": data["planted"],
                  "refused": data["refused"], "scan_all_s": scan_s,
                  "lookalike_pairs": len(data["lookalikes"]),
                  "transforms": {t: DESCRIPTIONS.get(t, t) for t in TRANSFORMS}}
        with lookalike.open_index(index_path) as index:
            truth = Truth(index, data["truth"], data["lookalikes"])
            result["truth_counts"] = truth.count
            result["methods"] = {}
            neighbours = {name: hash_neighbours(index, name, args.k) for name in HASHES}
            neighbours["embed"] = embed_neighbours(index, embed.index_spec(index), args.k)
            for name, found in neighbours.items():
                pairs = Pairs(*found, truth)
                result["methods"][name] = score_method(pairs, truth)
                result["methods"][name]["top1"] = top1(*found, truth, data["truth"])
                result["methods"][name]["top_negatives"] = top_negatives(pairs, truth,
                                                                         data["origin"], 20)
            sweep, auto = sweep_cascade(index, truth, n_images)
            passing = [row for row in sweep if row["precision"] >= PRECISION]
            passing_embed = [row for row in sweep if row["embed_pairs"] and
                             row["embed_precision"] >= PRECISION]
            passing_clean = [row for row in sweep
                             if row["precision_without_lookalikes"] >= PRECISION]
            result["cascade"] = {
                "sweep": sweep,
                "best": min(passing, key=lambda r: r["similarity"]) if passing else None,
                "best_embed": min(passing_embed, key=lambda r: r["similarity"])
                if passing_embed else None,
                "best_without_lookalikes": min(passing_clean, key=lambda r: r["similarity"])
                if passing_clean else None}
            if spec.similarity > 0:
                matches = find_pairs(index, "auto", calibrated=False)
                result["cascade"]["model_default"] = {"similarity": spec.similarity,
                                                      **score_cascade(matches, truth)}
            result["auto_hashes"] = auto
        if not args.no_timing:
            result["timing"] = time_scans(folder, {"pdq": "pdq", "phash": "phash",
                                                   "dhash": "dhash", "embed": embed_name},
                                          args.workers, tmp)
    result["wall_s"] = time.perf_counter() - started
    print_report(result, args.examples)
    print(f"\nmodel {spec.params}; total {result['wall_s']:.0f} s")
    if args.json:
        keep = {key: data[key] for key in ("truth", "origin", "lookalikes")}
        args.json.write_text(json.dumps({**result, **keep}, indent=1, default=str))


if __name__ == "__main__":
    main()
