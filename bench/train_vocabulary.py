"""Train the visual vocabulary shipped with lookalike (src/lookalike/data/orb_words_v1.npz).

    apt-get download 0ad-data && dpkg-deb --fsys-tarfile 0ad-data_*.deb |
        tar -x ./usr/share/games/0ad/mods/public/public.zip
    python bench/train_vocabulary.py usr/share/games/0ad/mods/public/public.zip \
        --out src/lookalike/data/orb_words_v1.npz

Only pictures of Debian's 0ad-data package are used: its textures (skins, terrain, skies),
stored as DDS inside its public.zip, which Pillow decodes (bench-images.sh collects only
PNG/JPEG, and 0ad-data has almost none). The benchmarks use the other allowed packages, so no
benchmark picture was seen in training. ORB features are
taken as the `local` method takes them (same size, count, spread, both orientations);
--max-descriptors of them, sampled evenly over the pictures, train two levels of 256-way
binary k-means. Deterministic for a given folder and --seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from lookalike.methods import local, vocabulary

ZIP_PATH = ""
KINDS = ("art/textures/skins/", "art/textures/terrain/", "art/textures/skies/")
SKIP = ("_norm", "_spec", "normal", "_ao", "specular")


def texture_names(zip_path: str) -> list[str]:
    import zipfile

    with zipfile.ZipFile(zip_path) as archive:
        return sorted(n for n in archive.namelist()
                      if n.lower().endswith(".dds") and n.startswith(KINDS)
                      and not any(k in n.lower() for k in SKIP))


_archive = None


def descriptors_of(name: str) -> np.ndarray:
    import io
    import zipfile

    from PIL import Image

    global _archive
    if _archive is None:  # one open archive per worker: its directory is large
        _archive = zipfile.ZipFile(ZIP_PATH)
    try:
        with Image.open(io.BytesIO(_archive.read(name))) as image:
            rgb = np.asarray(image.convert("RGB"))
    except Exception:  # noqa: BLE001  (an unreadable picture is skipped)
        return np.empty((0, local.DESCRIPTOR_BYTES), np.uint8)
    if min(rgb.shape[:2]) < 64:
        return np.empty((0, local.DESCRIPTOR_BYTES), np.uint8)
    gray = local.grey_for_features(rgb, local.SIDE)
    h, w = gray.shape
    parts = [local.detect(g, w, h).descriptors for g in (gray, np.ascontiguousarray(gray[:, ::-1]))]
    return np.concatenate(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("zip", type=Path, help="0ad-data's public.zip")
    p.add_argument("--out", type=Path, default=vocabulary.DEFAULT)
    p.add_argument("--max-descriptors", type=int, default=600_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    global ZIP_PATH
    ZIP_PATH = str(args.zip)
    files = texture_names(ZIP_PATH)
    if not files:
        sys.exit(f"no textures in {args.zip}: is it 0ad-data's public.zip?")
    started = time.perf_counter()
    with Pool(args.workers) as pool:
        found = [d for d in pool.imap(descriptors_of, files, chunksize=8) if len(d)]
    descriptors = np.concatenate(found)
    rng = np.random.default_rng(args.seed)
    if len(descriptors) > args.max_descriptors:
        descriptors = descriptors[np.sort(rng.choice(len(descriptors), args.max_descriptors,
                                                     replace=False))]
    print(f"{len(files)} pictures, {len(descriptors):,} descriptors sampled "
          f"({time.perf_counter() - started:.0f} s)")
    vocab = vocabulary.train(descriptors, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    vocab.save(args.out)
    words = vocab.assign(descriptors[:100_000])
    used = np.unique(words).size
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {vocab.size:,} words, "
          f"{used:,} used by 100k training descriptors ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
