"""A copy-detection collection that looks like the real world (issue 16): AugLy copies,
hard negatives, distractors, and truth files.

    .venv/bin/pip install augly imagehash        # (AugLy 1.0.0; see "AugLy on Pillow 13")
    .venv/bin/python bench/make_copydetect.py OUT [--images /work/benchimg/images] \
        [--originals 300] [--distractors 1000] [--variants 60] [--style-pairs 80] [--seed 0]

Sources: the pictures of --images whose package in ../manifest.tsv is one of --packages
(default supertuxkart-data and marble-data: the shipped embedding model learned from
flightgear-data-base and the ORB vocabulary from 0ad-data, so neither is used here).
Refused: unreadable files, under 128 px on the short side, near-blank (grey standard
deviation of a 64x64 thumbnail under 4 after compositing alpha on white), and
pixel-identical repeats. Every source is composited on white, capped at 1024 px on the long
side and keeps its format (PNG, or JPEG q92). Its split, "tune" or "holdout", comes from a
stable hash of a file name: the first name of its cluster of natural duplicates (pHash
within 4 bits under a flip or turn, or `same` in bench/data/heldout_pairs.tsv), so no
picture of the packages sits on both sides; everything made from it stays in that split.

OUT/pictures/ gets, under random names:
- originals (--originals), each with 2 or 3 copies of distinct transform families (about
  one copy in ten gets a second, lighter transform);
- hard negatives: copies in a meme band or a border are made in groups of 2-4 originals of
  one split sharing one parameter set (the same caption text and band; the same border
  colour and width), and every two copies of a group are a negative pair; so is every two
  copies in one of AugLy's two screenshot templates (web, mobile), whatever their group
  and split (split "cross" when their splits differ). Hue-rotated variants (90-180
  degrees: another product in another colour, not a copy) of colourful sources are
  negative with each member of the source's family. And pairs of different sources from
  one package folder that pHash puts within 5-16 bits (one tile set, one program's
  dialogs) are `same_style` negatives;
- distractors: sources with no copies.

Writes OUT/truth.tsv, OUT/negatives.tsv, OUT/sources.tsv (see copydetect_truth.py).
Deterministic for a given --seed and image folder. Measures nothing, asserts nothing.

AugLy on Pillow 13 / NumPy 2: meme_format calls FreeTypeFont.getsize_multiline (gone since
Pillow 10) and perspective_transform uses np.float (gone since NumPy 1.24); _augly_compat()
puts back exactly those two names in this process so that AugLy's own code runs. AugLy's
opacity() on an RGB picture changes nothing once the result is saved (it converts back to
RGB), so the opacity copies are composited on white here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from copydetect_truth import (NATURAL_BITS, NegativeRow, SourceRow, TruthRow,
                              phash8, phash_distances, reviewed_same, split_of, write_truth)

PACKAGES = ("supertuxkart-data", "marble-data")
MIN_SIDE, MAX_SIDE, MIN_STD = 128, 1024, 4.0
MIN_SATURATION = 60.0  # mean HSV saturation (0-255) of a source that gets a hue variant
DISTINCT_BITS = 8  # sources this close under a flip or turn are one picture (distinct_sources)
STYLE_BITS = (5, 16)  # pHash distance of same_style pairs (4 and under: natural duplicates)
FAMILIES = ("overlay_text", "overlay_emoji", "screenshot", "meme", "border", "perspective",
            "crop", "rotate", "colour", "blur", "jpeg", "scale", "hflip", "vflip_rot90",
            "opacity_stripes", "sharpen", "noise", "aspect")
GROUPED = {"screenshot": "screenshot_frame", "meme": "meme_band", "border": "border"}
SECOND = ("jpeg", "scale", "crop", "colour", "blur", "hflip", "overlay_text")
SECOND_SHARE = 0.1
CAPTIONS = ("when the build is green\non the first try", "me explaining this\nto my cat",
            "nobody:", "this is fine", "POV: monday morning", "not sure if texture\nor map",
            "one does not simply\nrender this", "wait for it", "same energy",
            "tag a friend", "expectation vs reality", "big mood")
SCREENSHOT_TEMPLATES = ("web.png", "mobile.png")


def _augly_compat() -> None:
    """Put back the two names AugLy 1.0 uses that Pillow 10+ and NumPy 1.24+ removed."""
    if not hasattr(ImageFont.FreeTypeFont, "getsize_multiline"):
        def getsize_multiline(self, text, *args, **kwargs):
            box = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox((0, 0), text,
                                                                          font=self)
            return box[2], box[3]
        ImageFont.FreeTypeFont.getsize_multiline = getsize_multiline
    if "float" not in np.__dict__:
        np.float = float  # what AugLy's perspective coefficients ask for


def _assets() -> tuple[Path, list[str], list[str]]:
    from augly.utils import base_paths
    fonts = sorted(p.name for p in Path(base_paths.FONTS_DIR).glob("*.ttf")
                   if p.with_suffix(".pkl").exists())
    emojis = sorted(str(p.relative_to(base_paths.EMOJI_DIR))
                    for p in Path(base_paths.EMOJI_DIR).rglob("*.png"))
    return Path(base_paths.ASSETS_BASE_DIR), fonts, emojis


# ---------------------------------------------------------------------------------------------
# sources


def normalise(path: Path) -> Image.Image:
    """Alpha composited on white, RGB, at most MAX_SIDE on the long side."""
    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            image = Image.new("RGB", rgba.size, (255, 255, 255))
            image.paste(rgba, mask=rgba.getchannel("A"))
        else:
            image = im.convert("RGB")
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
    return image


def inspect(path: Path) -> dict:
    """Whether a file can be a source, and what the plan needs to know of it."""
    try:
        image = normalise(path)
    except Exception as exc:  # a broken file is refused, not fatal
        return {"ok": False, "why": f"unreadable: {exc}"}
    if min(image.size) < MIN_SIDE:
        return {"ok": False, "why": "small"}
    grey = np.asarray(image.convert("L").resize((64, 64)), dtype=np.float64)
    if grey.std() < MIN_STD:
        return {"ok": False, "why": "blank"}
    saturation = float(np.asarray(image.convert("HSV"))[..., 1].mean())
    return {"ok": True, "size": image.size, "saturation": saturation,
            "pixels": hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest(),
            "phash8": phash8(image)}


def read_manifest(images: Path, manifest: Path,
                  packages: set[str]) -> dict[str, tuple[str, str]]:
    """name -> (package, path in package); the first path by sort order for repeated bytes."""
    if not manifest.exists():
        sys.exit(f"no {manifest}: is the image folder still being filled?")
    found: dict[str, tuple[str, str]] = {}
    for line in sorted(open(manifest).read().splitlines()):
        name, package, path = line.split("\t")
        if package in packages and (images / name).exists():
            found.setdefault(name, (package, path))
    return found


# ---------------------------------------------------------------------------------------------
# parameters of each transform family, drawn in the parent from one seeded generator


def _colour(rng: random.Random) -> list[int]:
    return [rng.randrange(256) for _ in range(3)]


def draw_params(family: str, rng: random.Random, fonts: list[str], emojis: list[str]) -> dict:
    u = rng.uniform
    if family == "overlay_text":
        lines = [[rng.randrange(1000) for _ in range(rng.randint(4, 14))]
                 for _ in range(rng.randint(1, 2))]
        return {"text": lines, "font": rng.choice(fonts), "font_size": round(u(0.05, 0.2), 3),
                "opacity": round(u(0.6, 1.0), 3), "color": _colour(rng),
                "x_pos": round(u(0, 0.5), 3), "y_pos": round(u(0, 0.8), 3)}
    if family == "overlay_emoji":
        return {"emoji": rng.choice(emojis), "emoji_size": round(u(0.15, 0.4), 3),
                "opacity": round(u(0.7, 1.0), 3), "x_pos": round(u(0, 0.7), 3),
                "y_pos": round(u(0, 0.7), 3)}
    if family == "screenshot":
        return {"template": rng.choice(SCREENSHOT_TEMPLATES),
                "crop_src_to_fit": rng.random() < 0.5}
    if family == "meme":
        dark = rng.random() < 0.3
        return {"text": rng.choice(CAPTIONS), "caption_height": rng.randrange(60, 161, 10),
                "meme_bg_color": [0, 0, 0] if dark else [255, 255, 255],
                "text_color": [255, 255, 255] if dark else [0, 0, 0]}
    if family == "border":
        if rng.random() < 0.3:
            return {"op": "pad_square", "color": _colour(rng)}
        return {"op": "pad", "w_factor": round(u(0.05, 0.3), 3),
                "h_factor": round(u(0.05, 0.3), 3), "color": _colour(rng)}
    if family == "perspective":
        return {"sigma_share": round(u(0.03, 0.1), 3), "seed": rng.randrange(10**6),
                "crop_out_black_border": rng.random() < 0.5}
    if family == "crop":
        keep = rng.choice((0.9, 0.7, 0.5))
        side = math.sqrt(keep)
        x1, y1 = u(0, 1 - side), u(0, 1 - side)
        return {"keep": keep, "x1": round(x1, 4), "y1": round(y1, 4),
                "x2": round(x1 + side, 4), "y2": round(y1 + side, 4)}
    if family == "rotate":
        return {"degrees": round(rng.choice((-1, 1)) * u(5, 20), 2)}
    if family == "colour":
        op = rng.choice(("color_jitter", "saturation", "brightness", "grayscale"))
        if op == "color_jitter":
            return {"op": op, "brightness_factor": round(u(0.6, 1.4), 3),
                    "contrast_factor": round(u(0.6, 1.4), 3),
                    "saturation_factor": round(u(0.3, 2.0), 3)}
        if op == "saturation":
            return {"op": op, "factor": round(rng.choice((u(0, 0.3), u(1.5, 3.0))), 3)}
        if op == "brightness":
            return {"op": op, "factor": round(rng.choice((u(0.5, 0.8), u(1.2, 1.6))), 3)}
        return {"op": op}
    if family == "blur":
        return {"radius": round(u(1.0, 4.0), 2)}
    if family == "jpeg":
        return {"quality": rng.randint(10, 40)}
    if family == "scale":
        return {"factor": round(rng.choice((u(0.3, 0.7), u(1.3, 2.0))), 3)}
    if family == "hflip":
        return {}
    if family == "vflip_rot90":
        return {"op": rng.choice(("vflip", "rot90", "rot270"))}
    if family == "opacity_stripes":
        if rng.random() < 0.5:
            return {"op": "opacity", "level": round(u(0.3, 0.7), 3)}
        return {"op": "overlay_stripes", "line_width": round(u(0.1, 0.5), 3),
                "line_color": _colour(rng), "line_angle": round(u(-90, 90), 1),
                "line_density": round(u(0.2, 0.6), 3),
                "line_type": rng.choice(("solid", "dotted", "dashed")),
                "line_opacity": round(u(0.5, 1.0), 3)}
    if family == "sharpen":
        return {"factor": round(u(2.0, 20.0), 2)}
    if family == "noise":
        return {"var": round(u(0.005, 0.05), 4), "seed": rng.randrange(10**6)}
    if family == "aspect":
        return {"ratio": round(rng.choice((u(0.5, 0.8), u(1.3, 2.0))), 3)}
    raise ValueError(family)


def apply(family: str, p: dict, image: Image.Image, assets: Path) -> Image.Image:
    """One AugLy transform of `family` with the parameters `p`."""
    import augly.image as A

    if family == "overlay_text":
        return A.overlay_text(image, text=p["text"], font_file=str(assets / "fonts" / p["font"]),
                              font_size=p["font_size"], opacity=p["opacity"],
                              color=tuple(p["color"]), x_pos=p["x_pos"], y_pos=p["y_pos"])
    if family == "overlay_emoji":
        return A.overlay_emoji(image, emoji_path=str(assets / "twemojis" / p["emoji"]),
                               opacity=p["opacity"], emoji_size=p["emoji_size"],
                               x_pos=p["x_pos"], y_pos=p["y_pos"])
    if family == "screenshot":
        return A.overlay_onto_screenshot(
            image, template_filepath=str(assets / "screenshot_templates" / p["template"]),
            crop_src_to_fit=p["crop_src_to_fit"])
    if family == "meme":
        return A.meme_format(image, text=p["text"], caption_height=p["caption_height"],
                             meme_bg_color=tuple(p["meme_bg_color"]),
                             text_color=tuple(p["text_color"]))
    if family == "border":
        if p["op"] == "pad_square":
            return A.pad_square(image, color=tuple(p["color"]))
        return A.pad(image, w_factor=p["w_factor"], h_factor=p["h_factor"],
                     color=tuple(p["color"]))
    if family == "perspective":
        return A.perspective_transform(image, sigma=p["sigma_share"] * min(image.size),
                                       seed=p["seed"],
                                       crop_out_black_border=p["crop_out_black_border"])
    if family == "crop":
        return A.crop(image, x1=p["x1"], y1=p["y1"], x2=p["x2"], y2=p["y2"])
    if family == "rotate":
        return A.rotate(image, degrees=p["degrees"])
    if family == "colour":
        kwargs = {k: v for k, v in p.items() if k != "op"}
        return getattr(A, p["op"])(image, **kwargs)
    if family == "blur":
        return A.blur(image, radius=p["radius"])
    if family == "jpeg":
        return A.encoding_quality(image, quality=p["quality"])
    if family == "scale":
        return A.scale(image, factor=p["factor"])
    if family == "hflip":
        return A.hflip(image)
    if family == "vflip_rot90":
        if p["op"] == "vflip":
            return A.vflip(image)
        return A.rotate(image, degrees=90 if p["op"] == "rot90" else 270)
    if family == "opacity_stripes":
        if p["op"] == "opacity":
            faded = A.opacity(image.convert("RGBA"), level=p["level"])
            out = Image.new("RGB", faded.size, (255, 255, 255))
            out.paste(faded, mask=faded.getchannel("A"))
            return out
        kwargs = {k: v for k, v in p.items() if k != "op"}
        kwargs["line_color"] = tuple(kwargs["line_color"])
        return A.overlay_stripes(image, **kwargs)
    if family == "sharpen":
        return A.sharpen(image, factor=p["factor"])
    if family == "noise":
        return A.random_noise(image, var=p["var"], seed=p["seed"])
    if family == "aspect":
        return A.change_aspect_ratio(image, ratio=p["ratio"])
    raise ValueError(family)


def hue_rotate(image: Image.Image, degrees: float) -> Image.Image:
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(degrees / 360 * 256)) % 256)
    return Image.fromarray(hsv, "HSV").convert("RGB")


# ---------------------------------------------------------------------------------------------
# rendering (in worker processes; every random choice was made by the parent)


def _save(image: Image.Image, path: Path, fmt: dict) -> None:
    image = image.convert("RGB")
    if fmt["format"] == "jpg":
        image.save(path, "JPEG", quality=fmt["quality"])
    else:
        image.save(path, "PNG")


def render(job: dict) -> str:
    _augly_compat()
    out = Path(job["out"])
    if job["kind"] == "source":
        image = normalise(Path(job["source"]))
    else:
        with Image.open(job["from"]) as im:
            image = im.convert("RGB")
        if job["kind"] == "variant":
            image = hue_rotate(image, job["degrees"])
        else:
            for family, params in job["ops"]:
                image = apply(family, params, image, Path(job["assets"]))
    _save(image, out, job["fmt"])
    return out.name


# ---------------------------------------------------------------------------------------------
# the plan


def cluster_roots(count: int, links) -> Callable[[int], int]:
    """Union-find over `count` items joined by `links` (pairs of indices): item -> root."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in links:
        parent[root(int(i))] = root(int(j))
    return root


def assign_splits(names: list[str], dist: np.ndarray, paths: dict,
                  reviewed: set) -> dict[str, str]:
    """Each source's split: that of the first file name of its cluster of natural duplicates
    (pHash within NATURAL_BITS, or reviewed `same`), so that no picture of the packages has a
    copy of itself on the other side."""
    index = {paths[n][1]: i for i, n in enumerate(names)}
    links = list(zip(*np.nonzero(np.triu(dist <= NATURAL_BITS, k=1))))
    links += [tuple(index[p] for p in pair) for pair in reviewed
              if len(pair) == 2 and all(p in index for p in pair)]
    root = cluster_roots(len(names), links)
    first: dict[int, str] = {}
    for i, name in enumerate(names):  # names are sorted: the first seen is the smallest
        first.setdefault(root(i), name)
    return {name: split_of(first[root(i)]) for i, name in enumerate(names)}


def style_pairs(names: list[str], dist: np.ndarray, split: dict, paths: dict, reviewed: set,
                rng: random.Random, wanted: int) -> list[tuple[str, str]]:
    """Pairs of different sources of one package folder and split, pHash 5-16 bits apart."""
    folder = [os.path.dirname(paths[n][1]) for n in names]
    low, high = STYLE_BITS
    candidates = [(names[i], names[j]) for i, j in zip(*np.nonzero(np.triu(
        (dist >= low) & (dist <= high), k=1)))
        if folder[i] == folder[j] and split[names[i]] == split[names[j]]
        and frozenset((paths[names[i]][1], paths[names[j]][1])) not in reviewed]
    rng.shuffle(candidates)
    uses: Counter = Counter()
    chosen = []
    for a, b in candidates:
        if len(chosen) >= wanted:
            break
        if uses[a] < 2 and uses[b] < 2:
            chosen.append((a, b))
            uses[a] += 1
            uses[b] += 1
    return chosen


def distinct_sources(images: Path, names: list[str], dist: np.ndarray,
                     similarity: float) -> list[str]:
    """One source per cluster of pictures that are the same picture in the packages (a
    texture saved twice, at two sizes, recoloured, mirrored): linked by dihedral pHash within
    DISTINCT_BITS or by SSCD (the full model, not the student the thorough mode runs) at or
    above `similarity`. Without this, copies of one source pair with its look-alikes and
    every precision is a lower bound of unknown size."""
    from lookalike.models.onnx import Embedder
    from lookalike.models.registry import resolve_model
    from lookalike.search import vectors

    spec, path = resolve_model("sscd")
    embedder = Embedder(spec, path, threads=os.cpu_count() or 2)
    units = np.vstack([embedder.embed([np.asarray(normalise(images / n)) for n in
                                       names[i:i + 64]]) for i in range(0, len(names), 64)])
    pairs = vectors.self_join(units, similarity)
    links = list(zip(pairs.a.tolist(), pairs.b.tolist()))
    links += list(zip(*np.nonzero(np.triu(dist <= DISTINCT_BITS, k=1))))
    root = cluster_roots(len(names), links)
    first: dict[int, str] = {}
    for i, name in enumerate(names):
        first.setdefault(root(i), name)
    return sorted(first.values())


def plan_families(originals: list[str], rng: random.Random) -> dict[str, list[str]]:
    """2 or 3 distinct families per original, dealt from shuffled decks (balanced counts)."""
    deck: list[str] = []
    plan = {}
    for name in originals:
        count = 3 if rng.random() < 0.5 else 2
        chosen: list[str] = []
        while len(chosen) < count:
            if not deck:
                deck = list(FAMILIES)
                rng.shuffle(deck)
            pick = next((f for f in deck if f not in chosen), None)
            if pick is None:  # the deck's rest is all taken by this original
                deck = []
                continue
            deck.remove(pick)
            chosen.append(pick)
        plan[name] = chosen
    return plan


def group_sizes(count: int, rng: random.Random) -> list[int]:
    sizes = []
    while count > 0:
        size = min(count, rng.randint(2, 4))
        sizes.append(size)
        count -= size
    if len(sizes) > 1 and sizes[-1] == 1:
        last = sizes.pop()
        sizes[-1] += last
    return sizes


def output_format(rng: random.Random) -> dict:
    if rng.random() < 0.75:
        return {"format": "jpg", "quality": 90}
    return {"format": "png"}


class Namer:
    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def __call__(self, ext: str) -> str:
        while True:
            name = f"{self.rng.getrandbits(64):016x}.{ext}"
            if name not in self.used:
                self.used.add(name)
                return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=Path, default=Path("/work/benchimg/images"))
    parser.add_argument("--manifest", type=Path, help="default: IMAGES/../manifest.tsv")
    parser.add_argument("--packages", default=",".join(PACKAGES))
    parser.add_argument("--originals", type=int, default=300)
    parser.add_argument("--distractors", type=int, default=1000)
    parser.add_argument("--variants", type=int, default=60, help="hue-rotated pictures")
    parser.add_argument("--style-pairs", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distinct-similarity", type=float, default=0.7,
                        help="drop sources SSCD puts at or above this cosine to another "
                        "(1 keeps all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--reviewed", type=Path,
                        default=Path(__file__).parent / "data" / "heldout_pairs.tsv")
    args = parser.parse_args()
    start = time.perf_counter()
    _augly_compat()
    assets, fonts, emojis = _assets()
    rng = random.Random(args.seed)
    pictures = args.out / "pictures"
    if pictures.exists() and any(pictures.iterdir()):
        sys.exit(f"{pictures} is not empty")
    pictures.mkdir(parents=True, exist_ok=True)

    paths = read_manifest(args.images, args.manifest or args.images.parent / "manifest.tsv",
                          set(args.packages.split(",")))
    names = sorted(paths)
    with ProcessPoolExecutor(args.workers) as pool:
        found = list(pool.map(inspect, [args.images / n for n in names], chunksize=8))
    refused = Counter(f["why"].split(":")[0] for f in found if not f["ok"])
    info, seen = {}, set()
    for name, f in zip(names, found):
        if f["ok"] and f["pixels"] in seen:
            refused["pixel-identical"] += 1
        elif f["ok"]:
            seen.add(f["pixels"])
            info[name] = f
    eligible = sorted(info)
    print(f"{len(names):,} files of {args.packages}: {len(eligible):,} usable, refused "
          + ", ".join(f"{k} {v}" for k, v in sorted(refused.items())), file=sys.stderr)

    reviewed = reviewed_same(args.reviewed)
    dist = phash_distances(np.array([info[n]["phash8"] for n in eligible], dtype=np.uint64))
    if args.distinct_similarity < 1.0:
        keep = distinct_sources(args.images, eligible, dist, args.distinct_similarity)
        print(f"{len(eligible) - len(keep):,} sources dropped as the same picture as another "
              f"(pHash <= {DISTINCT_BITS} or SSCD cosine >= {args.distinct_similarity}): "
              f"{len(keep):,} distinct", file=sys.stderr)
        rows = [eligible.index(n) for n in keep]
        eligible, dist = keep, dist[np.ix_(rows, rows)]
    split_of_source = assign_splits(eligible, dist, paths, reviewed)
    pairs = style_pairs(eligible, dist, split_of_source, paths, reviewed, rng, args.style_pairs)
    forced = sorted({n for pair in pairs for n in pair})
    rest = [n for n in eligible if n not in set(forced)]
    rng.shuffle(rest)
    total = min(len(eligible), args.originals + args.distractors)
    if total < args.originals + args.distractors:
        print(f"only {len(eligible):,} usable sources: {total - args.originals:,} distractors",
              file=sys.stderr)
    chosen = forced + rest[:max(0, total - len(forced))]
    rng.shuffle(chosen)
    originals = sorted(chosen[:args.originals])
    distractors = sorted(chosen[args.originals:total])

    name_of = Namer(rng)
    truth: list[TruthRow] = []
    negatives: list[NegativeRow] = []
    jobs_sources, jobs_copies = [], []
    file_of: dict[str, str] = {}
    family_files: dict[str, list[str]] = defaultdict(list)
    for role, group in (("original", originals), ("distractor", distractors)):
        for src in group:
            ext = "jpg" if src.endswith(".jpg") else "png"
            out = name_of(ext)
            file_of[src] = out
            family = f"f{len(file_of):04d}"
            family_files[src].append(out)
            truth.append(TruthRow(out, family, role, "", {}, split_of_source[src], src))
            fmt = {"format": "jpg", "quality": 92} if ext == "jpg" else {"format": "png"}
            jobs_sources.append({"kind": "source", "source": str(args.images / src),
                                 "out": str(pictures / out), "fmt": fmt})
    family_id = {t.source: t.family_id for t in truth}

    plan = plan_families(originals, rng)
    copies = []  # (source, [(family, params)], fmt)
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for src in originals:
        for fam in plan[src]:
            if fam in GROUPED:
                grouped[(fam, split_of_source[src])].append(src)
                continue
            ops = [(fam, draw_params(fam, rng, fonts, emojis))]
            if rng.random() < SECOND_SHARE:
                second = rng.choice([f for f in SECOND if f != fam])
                ops.append((second, draw_params(second, rng, fonts, emojis)))
            copies.append((src, ops, ()))
    for (fam, split), members in sorted(grouped.items()):
        rng.shuffle(members)
        at = 0
        for size in group_sizes(len(members), rng):
            params = draw_params(fam, rng, fonts, emojis)
            # one frame: AugLy's screenshot template, or the whole parameter set
            frame = params["template"] if fam == "screenshot" else json.dumps(params)
            for src in members[at:at + size]:
                copies.append((src, [(fam, params)], (fam, frame)))
            at += size
    copy_file = []
    framed: dict[tuple, list[int]] = defaultdict(list)
    for number, (src, ops, frame) in enumerate(copies):
        fam0 = ops[0][0]
        fmt = ({"format": "jpg", "quality": ops[0][1]["quality"]} if fam0 == "jpeg"
               else output_format(rng))
        out = name_of(fmt["format"])
        copy_file.append(out)
        family_files[src].append(out)
        if frame:
            framed[frame].append(number)
        truth.append(TruthRow(out, family_id[src], "copy", "+".join(f for f, _ in ops),
                              {"ops": [{"family": f, **p} for f, p in ops], **fmt},
                              split_of_source[src], src))
        jobs_copies.append({"kind": "copy", "from": str(pictures / file_of[src]),
                            "out": str(pictures / out), "ops": ops, "fmt": fmt,
                            "assets": str(assets)})
    for (fam, _), numbers in sorted(framed.items()):  # every two copies in one frame
        for i, j in combinations(numbers, 2):
            sa, sb = split_of_source[copies[i][0]], split_of_source[copies[j][0]]
            negatives.append(NegativeRow(copy_file[i], copy_file[j], GROUPED[fam],
                                         sa if sa == sb else "cross"))

    colourful = [s for s in originals + distractors if info[s]["saturation"] >= MIN_SATURATION]
    half = args.variants // 2
    pool_o = [s for s in colourful if s in set(originals)]
    pool_d = [s for s in colourful if s in set(distractors)]
    picks = (rng.sample(pool_o, min(half, len(pool_o)))
             + rng.sample(pool_d, min(args.variants - half, len(pool_d))))
    for n, src in enumerate(sorted(picks)):
        degrees = round(rng.choice((-1, 1)) * rng.uniform(90, 180), 1)
        ext = file_of[src].rsplit(".", 1)[1]
        fmt = {"format": "jpg", "quality": 92} if ext == "jpg" else {"format": "png"}
        out = name_of(ext)
        truth.append(TruthRow(out, f"v{n:04d}", "variant", "hue_rotate",
                              {"degrees": degrees, **fmt}, split_of_source[src], src))
        jobs_copies.append({"kind": "variant", "from": str(pictures / file_of[src]),
                            "out": str(pictures / out), "degrees": degrees, "fmt": fmt})
        for member in family_files[src]:
            negatives.append(NegativeRow(out, member, "hue_variant", split_of_source[src]))
    for a, b in pairs:
        negatives.append(NegativeRow(file_of[a], file_of[b], "same_style", split_of_source[a]))

    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(render, jobs_sources, chunksize=4))
        list(pool.map(render, jobs_copies, chunksize=4))
    sources = [SourceRow(s, paths[s][0], paths[s][1], split_of_source[s], info[s]["phash8"])
               for s in sorted(originals + distractors)]
    write_truth(args.out, truth, negatives, sources)

    roles = Counter((t.role, t.split) for t in truth)
    kinds = Counter((n.kind, n.split) for n in negatives)
    transforms = Counter(t.transform.split("+")[0] for t in truth if t.role == "copy")
    print(f"{len(truth):,} pictures in {pictures} ({time.perf_counter() - start:.0f} s)")
    for label, counts in (("roles", roles), ("negatives", kinds)):
        print(f"{label}: " + ", ".join(f"{k[0]} {k[1]} {v}" for k, v in sorted(counts.items())))
    print("copies by first transform: " + ", ".join(f"{k} {v}"
                                                    for k, v in sorted(transforms.items())))
    print(f"two transforms: {sum('+' in t.transform for t in truth)}")
    (args.out / "config.json").write_text(json.dumps(
        {k: str(v) for k, v in vars(args).items()} | {"pictures": len(truth)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
