"""The default cascade with local features (issue 6 x issue 5): hashes, embeddings at the
least similarity, and each picture's nearest embeddings verified by local features.

    python bench/eval_cascade_local.py /work/benchdata/images --sources 400 --planted 200

The same held-out pictures and planted copies as bench/eval_embed.py (its build()), scanned
with phash, dhash, embed and local; prints the cascade's precision (also without the pairs of
look-alike sources, "P-L", see eval_embed.py) and recall overall and per transform for a few
least similarities, with and without the local verification step.

"P-C" also leaves out the wrong pairs whose two pictures come from sources that are copies
of each other in the packages (one texture under two names, a screenshot in two languages):
source pictures joined by `dupes --partial` with at least --source-inliers inliers (40, far
above the cascade's 8). The cascade's own verifier cleans the truth here, so P-C is an upper
estimate and P-L a lower one; both are printed. "P-R" leaves out the wrong pairs whose
sources bench/data/heldout_pairs.tsv calls the same picture (read by eye; see
bench/README.md, "Reviewed pairs"). `--keep DIR` keeps the pictures and the
index, `--wrong FILE` writes the default cascade's wrong pairs (at `--wrong-at`, 0.98) with
their sources' package paths, one JSON line each, for reading. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from copydetect_truth import reviewed_same
from eval_embed import Truth, build, score_cascade

from lookalike import open_index
from lookalike.methods.embedding import method_name
from lookalike.scan import scan
from lookalike.search import dupes, partial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--sources", type=int, default=400)
    parser.add_argument("--planted", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="an ONNX model with its sidecar (default: shipped)")
    parser.add_argument("--similarities", default="0.995,0.98")
    parser.add_argument("--source-inliers", type=int, default=40)
    parser.add_argument("--propose-inliers", type=int, default=dupes.EMBED_PROPOSE_INLIERS)
    parser.add_argument("--propose-coverage", type=float, default=dupes.EMBED_PROPOSE_COVERAGE)
    parser.add_argument("--keep", type=Path, help="build the pictures and the index here")
    parser.add_argument("--wrong", type=Path, help="write the default cascade's wrong pairs "
                                                    "(with their sources' package paths) here")
    parser.add_argument("--reviewed", type=Path,
                        default=Path(__file__).parent / "data" / "heldout_pairs.tsv",
                        help="pairs of package pictures read by eye (P-R leaves out 'same')")
    parser.add_argument("--wrong-at", type=float, default=0.98,
                        help="the least similarity whose wrong pairs --wrong writes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        dest = work / "pictures"
        dest.mkdir(parents=True)
        built = build(args.images, dest, args.sources, args.planted, args.seed)
        index_path = work / "index.db"
        started = time.perf_counter()
        scan([dest], index_path=index_path,
             methods=["phash", "dhash", method_name(args.model), "local"])
        print(f"{built['sources']} sources, {built['planted']} planted; scan "
              f"{time.perf_counter() - started:.0f} s")
        with open_index(index_path) as index:
            truth = Truth(index, built["truth"], built["lookalikes"])
            component = source_components(index, truth, built["truth"], args.source_inliers)
            dupes.EMBED_PROPOSE_INLIERS = args.propose_inliers
            dupes.EMBED_PROPOSE_COVERAGE = args.propose_coverage
            names = sorted(truth.count)
            same = reviewed_same(args.reviewed)
            print(f"{'rule':32} {'pairs':>6} {'P':>6} {'P-L':>6} {'P-C':>6} {'P-R':>6} {'R':>6}  "
                  + " ".join(f"{n[:8]:>8}" for n in names))
            for s in [float(x) for x in args.similarities.split(",")]:
                for label, propose in (("embed >= s", False), ("embed >= s, 5-NN verified", True)):
                    dupes.EMBED_PROPOSE = 0.5 if propose else 2.0
                    t0 = time.perf_counter()
                    found = dupes.find_pairs(index, "auto", similarity=s)
                    r = score_cascade(found, truth)
                    pairs = {frozenset((m.a, m.b)) for m in found}
                    # P-C: both sources in one component; P-R: sources read as the same
                    cleaned = precision_without(
                        pairs, truth, lambda p: len({component[x] for x in p}) == 1)
                    checked = precision_without(
                        pairs, truth, lambda p: frozenset(built["origin"][x] for x in p) in same)
                    print(f"{label + f' (s={s:g})':32} {r['pairs']:6} {r['precision']:6.3f} "
                          f"{r['precision_without_lookalikes']:6.3f} {cleaned:6.3f} {checked:6.3f} "
                          f"{r['recall']:6.3f}  "
                          + " ".join(f"{r['per_transform'][n]:8.2f}" for n in names)
                          + f"  {time.perf_counter() - t0:.1f} s")
                    if propose and args.wrong and s == args.wrong_at:
                        write_wrong(args.wrong, found, truth, built["origin"])
    return 0


def write_wrong(path: Path, found, truth: Truth, origin: dict) -> None:
    """One JSON line per wrong pair: both pictures, method, distance, their package paths."""
    seen = set()
    with open(path, "w") as out:
        for m in found:
            key = frozenset((m.a, m.b))
            if key in truth.pair_of_paths or key in seen:
                continue
            seen.add(key)
            out.write(json.dumps({"a": m.a, "b": m.b, "method": m.method,
                                  "distance": m.distance, "score": m.score,
                                  "lookalike": key in truth.lookalike_paths,
                                  "source_a": origin[m.a], "source_b": origin[m.b]}) + "\n")


def source_components(index, truth: Truth, records: list[dict], min_inliers: int) -> dict:
    """path -> a label shared by the pictures whose sources are copies of each other."""
    origin = {r["copy"]: r["source"] for r in records}
    copies = set(origin)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for r in partial.partial_pairs(index):
        v = r.verification
        a, b = truth.path_of.get(r.a), truth.path_of.get(r.b)
        if v.confirmed and v.inliers >= min_inliers and a and b and not {a, b} & copies:
            parent[find(a)] = find(b)
    return {path: find(origin.get(path, path)) for path in truth.cid_of}


def precision_without(pairs: set, truth: Truth, left_out) -> float:
    """Precision over `pairs` (frozensets of paths) without the wrong ones `left_out`
    says the truth cannot judge."""
    right = sum(1 for p in pairs if p in truth.pair_of_paths)
    kept = sum(1 for p in pairs if p in truth.pair_of_paths or not left_out(p))
    return right / kept if kept else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
