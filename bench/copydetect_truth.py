"""The truth files of the copy-detection benchmark (make_copydetect.py writes them,
eval_copydetect.py reads them), and the few helpers both sides need.

OUT/truth.tsv      file, family_id, role, transform, params, split, source
OUT/negatives.tsv  file_a, file_b, kind, split
OUT/sources.tsv    source, package, package_path, split, phash8

`split` is tune or holdout; a negative pair whose files are in both is "cross".
`role` is original, copy, distractor or variant (a hue-rotated picture: another product,
its own family). `source` is the file name in the image folder the family was made from.
`phash8` holds the 64-bit pHash (imagehash) of the normalised source under its 8 flips and
quarter turns, as hex, comma-separated: the evaluation's test for "natural duplicates" among
the sources.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TRUTH_COLUMNS = ("file", "family_id", "role", "transform", "params", "split", "source")
NEGATIVE_COLUMNS = ("file_a", "file_b", "kind", "split")
SOURCE_COLUMNS = ("source", "package", "package_path", "split", "phash8")
SPLITS = ("tune", "holdout")
NEGATIVE_KINDS = ("screenshot_frame", "meme_band", "border", "hue_variant", "same_style")
NATURAL_BITS = 4  # two sources this close in pHash (under a flip or turn) are one picture


@dataclass(frozen=True)
class TruthRow:
    file: str
    family_id: str
    role: str  # original | copy | distractor | variant
    transform: str  # "" for originals and distractors; "a+b" for two transforms
    params: dict
    split: str
    source: str


@dataclass(frozen=True)
class NegativeRow:
    file_a: str
    file_b: str
    kind: str
    split: str


@dataclass(frozen=True)
class SourceRow:
    source: str
    package: str
    package_path: str
    split: str
    phash8: tuple[int, ...]


def split_of(source_name: str) -> str:
    """tune or holdout, from a stable hash of a file name (about half each)."""
    return SPLITS[hashlib.sha256(source_name.encode()).digest()[0] & 1]


def dihedral(image: Image.Image) -> list[Image.Image]:
    """The picture under its 8 flips and quarter turns (the upright one first)."""
    T = Image.Transpose
    turns = [image, image.transpose(T.ROTATE_90), image.transpose(T.ROTATE_180),
             image.transpose(T.ROTATE_270)]
    return turns + [t.transpose(T.FLIP_LEFT_RIGHT) for t in turns]


def phash8(image: Image.Image) -> tuple[int, ...]:
    """imagehash's 64-bit pHash of each dihedral variant, as ints."""
    import imagehash

    codes = []
    for variant in dihedral(image):
        bits = imagehash.phash(variant).hash.flatten()
        codes.append(int("".join("1" if b else "0" for b in bits), 2))
    return tuple(codes)


def phash_distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Least Hamming distance between a's upright code and any of b's 8 variants."""
    return min(bin(a[0] ^ code).count("1") for code in b)


def phash_distances(codes: np.ndarray) -> np.ndarray:
    """All-pairs least dihedral distance of an (N, 8) uint64 array: (N, N) uint8."""
    upright = codes[:, 0]
    best = np.full((len(codes), len(codes)), 64, dtype=np.uint8)
    for v in range(8):
        np.minimum(best, np.bitwise_count(upright[:, None] ^ codes[None, :, v]), out=best)
    return np.minimum(best, best.T)


def _write(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_truth(out: Path, truth: list[TruthRow], negatives: list[NegativeRow],
                sources: list[SourceRow]) -> None:
    _write(out / "truth.tsv", TRUTH_COLUMNS,
           [(t.file, t.family_id, t.role, t.transform,
             json.dumps(t.params, sort_keys=True), t.split, t.source) for t in truth])
    _write(out / "negatives.tsv", NEGATIVE_COLUMNS,
           [(n.file_a, n.file_b, n.kind, n.split) for n in negatives])
    _write(out / "sources.tsv", SOURCE_COLUMNS,
           [(s.source, s.package, s.package_path, s.split,
             ",".join(f"{c:016x}" for c in s.phash8)) for s in sources])


def read_truth(out: Path) -> tuple[list[TruthRow], list[NegativeRow], list[SourceRow]]:
    truth = [TruthRow(r["file"], r["family_id"], r["role"], r["transform"],
                      json.loads(r["params"]), r["split"], r["source"])
             for r in _read(out / "truth.tsv")]
    negatives = [NegativeRow(r["file_a"], r["file_b"], r["kind"], r["split"])
                 for r in _read(out / "negatives.tsv")]
    sources = [SourceRow(r["source"], r["package"], r["package_path"], r["split"],
                         tuple(int(c, 16) for c in r["phash8"].split(",")))
               for r in _read(out / "sources.tsv")]
    return truth, negatives, sources


def reviewed_same(path: Path) -> set[frozenset[str]]:
    """Pairs of package paths that bench/data/heldout_pairs.tsv calls the same picture."""
    if not path.exists():
        return set()
    rows = [line.rstrip("\n").split("\t") for line in open(path)
            if line.strip() and not line.startswith("#")]
    return {frozenset(r[:2]) for r in rows[1:] if len(r) >= 3 and r[2] == "same"}
