"""The default cascade with local features (issue 6 x issue 5): hashes, embeddings at the
least similarity, and each picture's nearest embeddings verified by local features.

    python bench/eval_cascade_local.py /work/benchdata/images --sources 400 --planted 200

The same held-out pictures and planted copies as bench/eval_embed.py (its build()), scanned
with phash, dhash, embed and local; prints the cascade's precision (also without the pairs of
look-alike sources, "P-L", see eval_embed.py) and recall overall and per transform for a few least similarities, with and without the local verification step.
Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from eval_embed import Truth, build, score_cascade  # noqa: E402

from lookalike import open_index  # noqa: E402
from lookalike.scan import scan  # noqa: E402
from lookalike.search import dupes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--sources", type=int, default=400)
    parser.add_argument("--planted", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--similarities", default="0.995,0.98")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "pictures"
        dest.mkdir()
        built = build(args.images, dest, args.sources, args.planted, args.seed)
        index_path = Path(tmp) / "index.db"
        started = time.perf_counter()
        scan([dest], index_path=index_path, methods=["phash", "dhash", "embed", "local"])
        print(f"{built['sources']} sources, {built['planted']} planted; scan "
              f"{time.perf_counter() - started:.0f} s")
        with open_index(index_path) as index:
            truth = Truth(index, built["truth"], built["lookalikes"])
            names = sorted(truth.count)
            print(f"{'rule':32} {'pairs':>6} {'P':>6} {'P-L':>6} {'R':>6}  " + " ".join(f"{n[:8]:>8}"
                                                                       for n in names))
            for s in [float(x) for x in args.similarities.split(",")]:
                for label, propose in (("embed >= s", False), ("embed >= s, 5-NN verified", True)):
                    dupes.EMBED_PROPOSE = 0.5 if propose else 2.0
                    t0 = time.perf_counter()
                    found = dupes.find_pairs(index, "auto", similarity=s)
                    r = score_cascade(found, truth)
                    print(f"{label + f' (s={s:g})':32} {r['pairs']:6} {r['precision']:6.3f} "
                          f"{r['precision_without_lookalikes']:6.3f} {r['recall']:6.3f}  " + " ".join(f"{r['per_transform'][n]:8.2f}"
                                                            for n in names)
                          + f"  {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
