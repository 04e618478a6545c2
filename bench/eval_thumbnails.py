"""How well do colour thumbnails judge the hash pairs that local features cannot?

    python bench/eval_thumbnails.py INDEX /work/bench20k [--limits 3,4,5,6]

INDEX is a scan of DEST/images with phash,dhash,local (bench_partial.py makes one). Takes
`auto`'s hash pairs where either picture has too few features to verify (`dupes --verify`
judges those by thumbnails), splits them into right and wrong by DEST/truth.json, and prints
how many of each a lightness limit keeps (verify.thumbnails_agree, colour limit as set).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lookalike.evaluation.collection import PlantedTruth, read_collection_truth
from lookalike.index.store import open_index
from lookalike.methods import local
from lookalike.methods.registry import get_spec
from lookalike.search import partial, verify
from lookalike.search.dupes import content_pairs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("index", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--limits", default="3,4,5,6")
    args = p.parse_args()
    data = read_collection_truth(args.dest / "truth.json")
    truth = PlantedTruth(data, set(os.listdir(args.dest / "images")))
    with open_index(args.index) as index:
        files = index.live_files()
        ids, parts = content_pairs(index, "auto", files=files)
        near = next(part for part in parts if part.method != "pixels")
        pairs = [(int(ids[a]), int(ids[b]), int(v)) for a, b, v in
                 zip(near.a, near.b, near.variant)]
        values = index.values_for(get_spec("local"), {c for a, b, _ in pairs for c in (a, b)})
    sigs = {cid: local.unpack(value) for cid, value in values.items()}
    plain = []
    for a, b, v in pairs:
        if a in sigs and b in sigs and not partial.judgeable(sigs[a], sigs[b]):
            names = frozenset(os.path.basename(files[c][0].path) for c in (a, b))
            plain.append((a, b, v, names in truth.pairs))
    right = sum(p[3] for p in plain)
    print(f"{len(pairs):,} hash pairs; {len(plain):,} too plain for features: {right:,} right, "
          f"{len(plain) - right:,} wrong")
    for limit in (float(x) for x in args.limits.split(",")):
        verify.THUMB_LIGHTNESS = limit
        kept = [p for p in plain if verify.thumbnails_agree(sigs[p[0]].thumbnail,
                                                            sigs[p[1]].thumbnail, p[2])]
        kept_right = sum(p[3] for p in kept)
        print(f"lightness <= {limit:g}: keeps {kept_right:,} right and "
              f"{len(kept) - kept_right:,} wrong")


if __name__ == "__main__":
    main()
