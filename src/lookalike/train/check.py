"""Is a trained model fit for the index? Measured on copies of the user's own pictures.

Each check picture is embedded as it is, and `copies` edited copies of it are made with the
training augmentations (augment.py, milder settings: the copies people keep, not the hardest
training views) and embedded through the ONNX file and the same `Embedder` a scan uses.
Measured:

* top-1: the share of copies whose nearest picture is their own (chance: 1 / pictures);
* the similarity threshold: the loosest cosine similarity at which `target_precision` of the
  (copy, picture) pairs that pass are right, and the share of copies found at it, as
  `lookalike calibrate` chooses one (evaluation/metrics.py);
* collapse: the median similarity between different pictures, and the effective rank of the
  pictures' embeddings (how many directions they really vary along; Roy & Vetterli 2007).

A model fails when its embeddings have collapsed (different pictures nearly identical, or
hardly any directions of variation), when top-1 is near chance, or when no threshold reaches
the target precision.

As in a scan, near-blank pictures (grey contrast under the hashes' `min_quality`) are left
out: the index never near-matches them. Pictures that are already copies of each other in the
collection (pHash within its duplicate radius) count as one picture; precision is a lower
bound where the collection holds closer look-alikes that pHash does not join.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..evaluation import metrics
from ..methods.registry import Picture, create_method, get_spec
from ..types import Decoded
from .augment import AugmentConfig, augment
from .data import load_pictures

# Copies people keep: mostly the whole picture, re-encoded, recoloured, a caption or a sticker,
# a small tilt. A subset of what training sees, with fresh random draws.
CHECK_AUGMENT = AugmentConfig(
    crop_area=(0.7, 1.0), crop_ratio=(0.9, 1.1), p_vflip=0.0, p_rot90=0.0, p_rotate=0.1,
    max_degrees=10.0, p_perspective=0.0, p_pad=0.1, max_pad=0.15, p_paste=0.0, p_text=0.2,
    p_emoji=0.1, p_colour=0.5, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.03,
    p_grey=0.1, p_blur=0.3, blur_sigma=(0.1, 1.5), p_jpeg=0.5, jpeg_quality=(40, 90))
COPY_SIDE = 256  # copies are made on the picture squashed to this square, as the model sees it
# Cosine similarities tried, strictest first (finer than calibrate's: a threshold goes into
# the model's sidecar).
SIMILARITIES = np.round(np.arange(1.0, -0.0005, -0.001), 3)

# When a model fails.
COLLAPSED_MEDIAN = 0.9  # half the pairs of different pictures at least this similar
MIN_EFFECTIVE_RANK = 4.0  # fewer directions of variation than this: collapsed
CHANCE_FACTOR = 3.0  # top-1 below this many times chance (and below MIN_TOP1) is no skill
MIN_TOP1 = 0.1

# Held-back pictures: only from collections this large, a tenth, at most HOLDOUT_MAX.
HOLDOUT_FROM = 500
HOLDOUT_MAX = 200


@dataclass(frozen=True)
class CheckOptions:
    target_precision: float = 0.99
    copies: int = 2  # edited copies of each picture
    max_pictures: int = 300  # a seeded sample of the pictures beyond this
    seed: int = 0
    augment: AugmentConfig = CHECK_AUGMENT
    max_side: int = 512  # pictures are decoded at most this large, as for training


@dataclass(frozen=True)
class ModelCheck:
    """What the check measured; `passed` and `reason` say whether the index may use it."""

    model: str  # the .onnx file
    pictures: int  # pictures embedded, `groups` of them distinct
    groups: int
    copies: int  # edited copies embedded
    held_out: bool  # True: pictures training never saw; False: training pictures, new copies
    top1: float  # share of copies whose nearest picture is their own
    chance: float  # top-1 of a model that guesses
    target_precision: float
    similarity: float | None  # loosest threshold reaching target_precision; None: none does
    precision: float | None  # at `similarity`
    recall: float | None  # share of copies whose own picture passes `similarity`
    copy_median: float  # median similarity of a copy to its own picture
    different_median: float  # median similarity between different pictures
    different_p99: float  # its 99th percentile
    effective_rank: float  # of the pictures' centred embeddings; 0 when all are one vector
    dim: int
    seconds: float

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the model is unfit, in words; empty when it passed."""
        if self.groups < 2:
            return (f"it cannot be checked: {self.groups} distinct picture(s) with enough "
                    "contrast to check it on",)
        found = []
        if self.different_median >= COLLAPSED_MEDIAN:
            found.append(f"it has collapsed: different pictures look nearly identical to it "
                         f"(half the pairs of different pictures have similarity "
                         f"{self.different_median:.3f} or more)")
        elif self.effective_rank < min_rank(self.groups, self.dim):
            found.append(f"it has collapsed: its embeddings of your pictures vary along only "
                         f"about {self.effective_rank:.1f} of {self.dim} directions, so "
                         "different pictures look alike to it")
        if self.top1 < top1_floor(self.chance):
            found.append(f"it hardly recognises copies: a copy's nearest picture is its own "
                         f"for {self.top1:.0%} of copies, where guessing gives "
                         f"{self.chance:.0%}")
        if self.similarity is None:
            found.append(f"no similarity threshold keeps {self.target_precision:.0%} of its "
                         "matches right: copies and different pictures overlap")
        return tuple(found)

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        """One sentence: why it failed, or that it passed."""
        if self.passed:
            return (f"passed: copies found at similarity {self.similarity:.3f} with "
                    f"{self.target_precision:.0%} precision")
        return "; ".join(self.problems)

    def to_dict(self) -> dict:
        """JSON-ready: NaN (no pair of different pictures) as None."""
        data = {k: None if isinstance(v, float) and v != v else v
                for k, v in asdict(self).items()}
        data.update(passed=self.passed, reason=self.reason)
        return data


def top1_floor(chance: float) -> float:
    """The top-1 under which a model is no better than guessing: CHANCE_FACTOR times chance
    and at least MIN_TOP1, or halfway from chance to 1 for a handful of pictures."""
    return min(max(CHANCE_FACTOR * chance, MIN_TOP1), chance + (1 - chance) / 2)


def min_rank(pictures: int, dim: int) -> float:
    """The effective rank below which embeddings count as collapsed: MIN_EFFECTIVE_RANK, less
    for a handful of pictures (n centred vectors span at most n - 1 directions) or a very
    short embedding."""
    return min(MIN_EFFECTIVE_RANK, (pictures - 1) / 2, dim / 2)


def split_holdout(files: Sequence[str], seed: int = 0) -> tuple[list[str], list[str]]:
    """(training files, held-back files): from HOLDOUT_FROM files on, a seeded tenth (at most
    HOLDOUT_MAX) is kept out of training for the check; fewer files are all trained on."""
    files = sorted(files)
    if len(files) < HOLDOUT_FROM:
        return files, []
    count = min(HOLDOUT_MAX, len(files) // 10)
    held = set(random.Random(f"holdout:{seed}").sample(range(len(files)), count))
    return ([f for i, f in enumerate(files) if i not in held],
            [f for i, f in enumerate(files) if i in held])


def make_copies(pictures: Sequence[np.ndarray], options: CheckOptions
                ) -> tuple[list[np.ndarray], np.ndarray]:
    """`options.copies` edited copies of each picture and the number of the picture each
    copies. Each copy is made on the picture squashed to a square, so a copy keeps the
    picture's proportions once the model squashes both."""
    import cv2

    copies, sources = [], []
    for number, picture in enumerate(pictures):
        square = cv2.resize(picture, (COPY_SIDE, COPY_SIDE), interpolation=cv2.INTER_AREA)
        other = pictures[(number + 1) % len(pictures)]  # for stickers cut from another picture
        for k in range(options.copies):
            rng = np.random.default_rng([options.seed, 17, number, k])  # not training's streams
            copies.append(augment(square, rng, COPY_SIDE, options.augment, [other]))
            sources.append(number)
    return copies, np.asarray(sources, np.int64)


def _scan_pictures(pictures: Sequence[np.ndarray]) -> list[Picture]:
    """The pictures as a scan's methods take them."""
    return [Picture(Decoded(Image.fromarray(p), p.shape[1], p.shape[0], "RGB", "RGB"))
            for p in pictures]


def contrast(pictures: Sequence[np.ndarray]) -> np.ndarray:
    """The grey contrast of each picture: the quality a scan gives its embedding."""
    return np.asarray([p.small.std() for p in _scan_pictures(pictures)], np.float64)


def phash_groups(pictures: Sequence[np.ndarray]) -> np.ndarray:
    """A label per picture, shared by pictures joined by chains of pHash distances within
    pHash's duplicate radius: the copies a collection already holds."""
    spec = get_spec("phash")
    found = create_method("phash").compute(_scan_pictures(pictures))
    from scipy.sparse.csgraph import connected_components

    # the first 8 bytes are the upright variant's 64 bits (the others are flips and turns)
    codes = np.stack([np.frombuffer(s.value[:8], np.uint64)[0] for s in found])
    near = np.bitwise_count(codes[:, None] ^ codes[None, :]) <= spec.default_radius
    return connected_components(near, directed=False)[1].astype(np.int64)


def measure(originals: np.ndarray, copies: np.ndarray, sources: np.ndarray,
            groups: np.ndarray, *, target_precision: float = 0.99, model: str = "",
            held_out: bool = False, seconds: float = 0.0) -> ModelCheck:
    """The check's numbers from unit embeddings: `originals` (P, d), `copies` (C, d) where copy
    i copies picture `sources[i]`, and `groups` (P,) labelling pictures that are the same."""
    originals = np.asarray(originals, np.float64)
    copies = np.asarray(copies, np.float64)
    own = groups[sources]
    similarity = copies @ originals.T  # (C, P)
    right = groups[None, :] == own[:, None]
    n_groups = len(np.unique(groups))
    if len(copies) == 0 or n_groups < 2:
        nan = float("nan")
        return ModelCheck(model, len(originals), n_groups, len(copies), held_out, nan, nan,
                          target_precision, None, None, None, nan, nan, nan, 0.0,
                          originals.shape[1], seconds)
    top1 = float(np.mean(right[np.arange(len(copies)), similarity.argmax(axis=1)]))
    best_own = np.where(right, similarity, -np.inf).max(axis=1)
    tp = metrics.counts_at(similarity[right], SIMILARITIES, True)
    fp = metrics.counts_at(similarity[~right], SIMILARITIES, True)
    precision = metrics.precision_curve(tp, fp)
    chosen = metrics.loosest_passing(SIMILARITIES, precision, target_precision, True)
    threshold = prec = rec = None
    if chosen is not None:
        threshold = float(SIMILARITIES[chosen])
        prec = float(precision[chosen])
        rec = float(np.mean(best_own >= threshold))
    upper = np.triu_indices(len(originals), 1)
    between = (originals @ originals.T)[upper]
    between = between[groups[upper[0]] != groups[upper[1]]]
    return ModelCheck(
        model=model, pictures=len(originals), groups=n_groups, copies=len(copies),
        held_out=held_out, top1=top1, chance=1.0 / max(n_groups, 1),
        target_precision=target_precision, similarity=threshold, precision=prec, recall=rec,
        copy_median=float(np.median(best_own)),
        different_median=float(np.median(between)) if between.size else float("nan"),
        different_p99=float(np.percentile(between, 99)) if between.size else float("nan"),
        effective_rank=effective_rank(originals), dim=originals.shape[1], seconds=seconds)


def effective_rank(vectors: np.ndarray) -> float:
    """exp(entropy) of the centred vectors' normalised singular values squared: the number of
    directions they vary along (0 when they are all one vector)."""
    centred = np.asarray(vectors, np.float64) - np.mean(vectors, axis=0)
    energy = np.linalg.svd(centred, compute_uv=False) ** 2
    total = energy.sum()
    if total <= 1e-12 * max(len(vectors), 1):
        return 0.0
    share = energy[energy > 0] / total
    return float(np.exp(-(share * np.log(share)).sum()))


def check_model(model: Path | str, files: Sequence[Path | str],
                options: CheckOptions = CheckOptions(), *, held_out: bool = False
                ) -> ModelCheck:
    """Check the ONNX model at `model` (with its sidecar) on `files`; `held_out` says whether
    training saw them. Raises ModelError when the model cannot be loaded, TrainingDataError
    when no picture can be decoded; near-blank pictures are left out, and when none is left
    the check fails saying so."""
    from ..models.onnx import Embedder
    from ..models.registry import resolve_model

    started = time.perf_counter()
    files = sorted(str(f) for f in files)
    if len(files) > options.max_pictures:
        files = sorted(random.Random(f"check:{options.seed}").sample(files, options.max_pictures))
    spec, path = resolve_model(str(model))
    embedder = Embedder(spec, path, threads=os.cpu_count())
    decoded, _ = load_pictures(files, options.max_side)
    floor = get_spec("phash").min_quality  # the embeddings' too: "as for the hashes"
    pictures = [p for p, q in zip(decoded, contrast(decoded)) if q >= floor]
    if not pictures:  # nothing to measure: a check that fails, saying so
        return measure(np.zeros((0, spec.dim)), np.zeros((0, spec.dim)), np.zeros(0, np.int64),
                       np.zeros(0, np.int64), target_precision=options.target_precision,
                       model=str(path), held_out=held_out,
                       seconds=time.perf_counter() - started)
    copies, sources = make_copies(pictures, options)
    kept = contrast(copies) >= floor
    copies, sources = [c for c, k in zip(copies, kept) if k], sources[kept]
    return measure(embedder.embed(pictures), embedder.embed(copies), sources,
                   phash_groups(pictures), target_precision=options.target_precision,
                   model=str(path), held_out=held_out, seconds=time.perf_counter() - started)


def record_in_sidecar(check: ModelCheck) -> None:
    """Write the check into the model's sidecar ("check"), and its threshold as the model's
    "similarity" when one was found: later scans and dupes start from it."""
    from ..models.registry import sidecar_path

    side = sidecar_path(check.model)
    data = json.loads(side.read_text(encoding="utf-8"))
    data["check"] = {k: v for k, v in check.to_dict().items() if k != "model"}
    if check.similarity is not None:
        data["similarity"] = check.similarity
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, side)
