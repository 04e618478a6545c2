"""The thorough mode's decision rule (search/decide.py) against the truth of the copy-detection
collection: every candidate pair with its evidence, and the rule's precision and recall for
a grid of thresholds. Use the tune split to choose; the holdout split is only reported.

    .venv/bin/python bench/tune_decide.py /work/copydetect \
        [--index /work/copydetect/runs/thorough/index.db] [--split tune] [--dump pairs.tsv]

The index is the one eval_copydetect.py's "thorough" contender built (scan --mode thorough).
Positive pairs are two pictures of one family; recall counts the family pairs among the
split's pictures (found or not), precision the candidate pairs the rule keeps.
"""

from __future__ import annotations

import argparse
from itertools import product
from pathlib import Path

import numpy as np

from copydetect_truth import read_truth


def candidate_features(index_path: Path):
    """Per candidate pair: content ids, normalised score, hash pair, hash variant, local fit,
    coverage, recoloured (search/decide.py's inputs, for every candidate)."""
    from lookalike.index.store import open_index
    from lookalike.methods.dihedral import INVERSE
    from lookalike.methods.registry import get_spec
    from lookalike.search import decide, dupes, embed, vectors

    with open_index(index_path) as idx:
        files = idx.live_files()
        stored = embed.load(idx, embed.index_spec(idx))
        rule = dupes.make_rule(idx, "auto")
        hits, hit_ids, identity = dupes._near_pairs(idx, rule)
        hits = dupes.orientation_rule(rule, hits, identity[hits.query], identity[hits.item])
        hits = hits.take(dupes.confirmed(rule, idx, hit_ids[hits.query], hit_ids[hits.item],
                                         hits.variant))
        r = decide.DecisionRule()
        units, ids = stored.vectors, stored.content_ids
        k = min(max(r.neighbours, r.background_k) + 1, len(ids))
        found = vectors.build(units).knn(units, k)
        background = decide.backgrounds(found, r)
        row_of = {int(c): i for i, c in enumerate(ids.tolist())}
        pairs: dict[tuple[int, int], int] = {}
        rows = np.repeat(np.arange(len(ids)), k)
        for a, b in zip(rows.tolist(), found.ids.ravel().tolist()):
            if b >= 0 and a != b:
                pairs.setdefault((min(a, b), max(a, b)), -1)
        for a, b, v in zip(hit_ids[hits.query].tolist(), hit_ids[hits.item].tolist(),
                           hits.variant.tolist()):
            ra, rb = row_of.get(a), row_of.get(b)
            if ra is not None and rb is not None and ra != rb:
                pairs[(min(ra, rb), max(ra, rb))] = int(v) if ra < rb else int(INVERSE[v])
        keys = np.asarray(sorted(pairs), np.int64).reshape(-1, 2)
        ra, rb = keys[:, 0], keys[:, 1]
        score = decide.normalised(np.einsum("ij,ij->i", units[ra], units[rb]),
                                  background[ra], background[rb])
        variant = np.asarray([pairs[(a, b)] for a, b in keys.tolist()])
        fits, covered, recoloured = decide._local_fits(idx, ids[ra], ids[rb],
                                                       np.maximum(variant, 0), r.coverage)
        path_of = {cid: sorted(f.path for f in fs) for cid, fs in files.items()}
        has_local = idx.has_signatures(get_spec("local"))
    return dict(a=ids[ra], b=ids[rb], score=score, is_hash=variant >= 0,
                variant=np.maximum(variant, 0), fits=fits, covered=covered,
                recoloured=recoloured, path_of=path_of, has_local=has_local,
                background=background)


def decide_mask(f: dict, high: float, low: float, coverage: float) -> np.ndarray:
    """search/decide.py's rule on precomputed features."""
    keep = (f["score"] >= high) | (f["is_hash"] & (f["score"] >= low))
    confirms = f["fits"] & (f["covered"] >= coverage)
    keep |= confirms & (f["score"] >= low) & (f["variant"] == 0)
    keep |= confirms & f["is_hash"] & (f["variant"] != 0)
    asked = (f["score"] >= low) | (f["is_hash"] & (f["variant"] != 0))
    keep &= ~(asked & ((f["fits"] & ~confirms) | f["recoloured"]))
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection", type=Path)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--split", default="tune")
    parser.add_argument("--dump", type=Path)
    args = parser.parse_args()
    index_path = args.index or args.collection / "runs" / "thorough" / "index.db"
    truth, negatives, _ = read_truth(args.collection)
    by_name = {t.file: t for t in truth}
    f = candidate_features(index_path)
    name = {cid: Path(paths[0]).name for cid, paths in f["path_of"].items()}
    ta = [by_name.get(name.get(int(c))) for c in f["a"]]
    tb = [by_name.get(name.get(int(c))) for c in f["b"]]
    positive = np.asarray([x is not None and y is not None and x.family_id == y.family_id
                           for x, y in zip(ta, tb)])
    split_ok = np.asarray([x is not None and y is not None and x.split == args.split
                           and y.split == args.split for x, y in zip(ta, tb)])
    negative_kind = {frozenset((n.file_a, n.file_b)): n.kind for n in negatives}
    kind = np.asarray([negative_kind.get(frozenset((x.file, y.file)), "") if x and y else ""
                       for x, y in zip(ta, tb)], dtype=object)
    members = [t for t in truth if t.split == args.split]
    families: dict[str, int] = {}
    for t in members:
        families[t.family_id] = families.get(t.family_id, 0) + 1
    total = sum(n * (n - 1) // 2 for n in families.values())
    transform = np.asarray([(y.transform if x.role == "original" else x.transform)
                            if x and y and positive[i] else "" for i, (x, y) in
                            enumerate(zip(ta, tb))], dtype=object)
    print(f"{int(split_ok.sum()):,} candidate pairs in {args.split}, {total:,} family pairs, "
          f"{int((positive & split_ok).sum()):,} of them among the candidates; local "
          f"features: {f['has_local']}; median background {np.median(f['background']):.3f}")
    print(f"{'high':>5} {'low':>5} {'cov':>4}  {'kept':>5} {'wrong':>5} {'P':>6} {'R':>6}  "
          "wrong by kind")
    for high, low, coverage in product((0.25, 0.3, 0.35, 0.4, 0.5), (0.0, 0.05, 0.08, 0.12),
                                       (0.5, 0.6, 0.7)):
        keep = decide_mask(f, high, low, coverage) & split_ok
        wrong = keep & ~positive
        kinds = {k: int((wrong & (kind == k)).sum()) for k in set(kind[wrong]) if k}
        tp = int((keep & positive).sum())
        print(f"{high:5.2f} {low:5.2f} {coverage:4.1f}  {int(keep.sum()):5d} "
              f"{int(wrong.sum()):5d} {tp / max(int(keep.sum()), 1):6.3f} "
              f"{tp / max(total, 1):6.3f}  {kinds}")
    keep = decide_mask(f, 0.3, 0.08, 0.6) & split_ok
    print("\nrecall per transform at the shipped rule (high 0.30, low 0.08, coverage 0.6):")
    for t in sorted(set(transform[positive & split_ok])):
        rows = positive & split_ok & (transform == t)
        print(f"  {t:32} {int((keep & rows).sum()):4d} / {int(rows.sum()):4d} candidates")
    if args.dump:
        with open(args.dump, "w") as out:
            out.write("a\tb\tscore\thash\tvariant\tfits\tcoverage\trecoloured\tpositive\t"
                      "kind\ttransform\tsplit_ok\n")
            for i in range(len(positive)):
                out.write(f"{name.get(int(f['a'][i]))}\t{name.get(int(f['b'][i]))}\t"
                          f"{f['score'][i]:.3f}\t{int(f['is_hash'][i])}\t{f['variant'][i]}\t"
                          f"{int(f['fits'][i])}\t{f['covered'][i]:.2f}\t"
                          f"{int(f['recoloured'][i])}\t{int(positive[i])}\t{kind[i]}\t"
                          f"{transform[i]}\t{int(split_ok[i])}\n")


if __name__ == "__main__":
    main()
