"""Duplicate pairs and groups over the index."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import combinations
from typing import Mapping

import numpy as np

from ..index.records import Codes
from ..index.store import Index
from ..methods import dihedral
from ..methods.registry import get_spec
from ..types import Group, Match
from ..runners import check_runner
from . import binary, distributed, distributed_vectors, embed, vectors
from .decide import DecisionRule, decide_pairs
from .group import link_groups
from .local_pairs import require_local, stored_min_inliers, verify_content_pairs
from .options import DEFAULT_LINKAGE, SearchOptions, resolve
# The rule and the cascade's constants live in rule.py; callers still import them from here.
from .rule import (AUTO_CONFIRM, AUTO_CONFIRM_RADIUS, AUTO_PRIMARY,  # noqa: F401
                   AUTO_PRIMARY_RADIUS, AUTO_TURNED_RADIUS, EMBED, EXACT, MAX_RADIUS, Rule,
                   aligned_rows, confirmed, evidence_rank, make_rule, orientation_rule,
                   stronger, usable_rows)
from .verify import colours_agree, layouts_agree

# The cascade with local features: each picture's nearest embeddings down to this similarity
# are candidates that local features verify (search/embed.py neighbour_pairs).
EMBED_NEIGHBOURS = 5
EMBED_PROPOSE = 0.5
# Proposals (embedding neighbours below the least similarity) need more local evidence than
# a hash pair: one frame or layout template drawn with other content inside confirms at 8-25
# inliers, real copies at 40-560 (bench/eval_cascade_local.py).
EMBED_PROPOSE_INLIERS = 25
# and their inliers must reach into at least half of the feature-rich parts of both pictures
# (verify.Verification.coverage): two menu icons, signs or dialogs drawn in one frame match
# on the frame alone (bench/README.md, "Frames and templates").
EMBED_PROPOSE_COVERAGE = 0.5
# thumbnails_hold: a picture with this many hash neighbours or more is a hub (a shared frame
# or template); copy families of the copy-detection benchmark have at most 4 members.
HUB_DEGREE = 5
THUMBNAIL_BATCH = 65_536  # pairs compared at once (1.5 kB of float32 thumbnails a pair)


@dataclass(frozen=True)
class ContentPairs:
    """Pairs of contents (row indices into `ids`) with their method and distance."""

    a: np.ndarray
    b: np.ndarray
    distance: np.ndarray
    variant: np.ndarray
    method: str
    evidence: np.ndarray | None = None  # per pair, where the thorough mode decided it


def thumbnails_hold(index: Index | None, ids_a: np.ndarray, ids_b: np.ndarray,
                    variant: np.ndarray, codes: Codes | None = None) -> np.ndarray:
    """Mask of hash pairs that the colour thumbnails (the fast mode's "colour" method) do
    not contradict, in the hash's orientation (a to b); all kept where the index has none.
    - Colours must agree (verify.same_colours): grey hashes pair a picture with the same
      picture in another colour.
    - A pair with a hub, a picture with HUB_DEGREE or more hash neighbours, must also have
      the same light pattern nearly everywhere (verify.same_layout): many pictures shown in
      one web or phone frame hash alike, and each has many such neighbours.
    `codes`: the colour codes of (at least) these contents, instead of the index's."""
    spec = get_spec("colour")
    if codes is None and (index is None or spec.name not in index.methods_present()):
        return np.ones(ids_a.size, dtype=bool)
    if ids_a.size == 0:
        return np.ones(0, dtype=bool)
    codes = codes if codes is not None else index.load_codes(spec)
    pos_a, has_a = aligned_rows(codes, ids_a)
    pos_b, has_b = aligned_rows(codes, ids_b)
    thumbs = codes.codes[:, 0].reshape(len(codes.codes), 3, 8, 8)
    ids, degree = np.unique(np.concatenate([ids_a, ids_b]), return_counts=True)
    hub = np.maximum(degree[np.searchsorted(ids, ids_a)],
                     degree[np.searchsorted(ids, ids_b)]) >= HUB_DEGREE
    keep = ~(has_a & has_b)  # a picture without a thumbnail keeps its pairs
    both = np.flatnonzero(has_a & has_b)
    for start in range(0, both.size, THUMBNAIL_BATCH):
        rows = both[start:start + THUMBNAIL_BATCH]
        a, b, v = thumbs[pos_a[rows]], thumbs[pos_b[rows]], variant[rows]
        held = colours_agree(a, b, v)
        hubs = np.flatnonzero(held & hub[rows])
        held[hubs] = layouts_agree(a[hubs], b[hubs], v[hubs])
        keep[rows] = held
    return keep


def content_pairs(index: Index, method: str = "auto", max_distance: int | None = None,
                  confirm_distance: int | None = None, files: dict | None = None,
                  calibrated: bool = True, verify: bool = False,
                  similarity: float | None = None, model: str | None = None,
                  runner: str = "local", ray_address: str | None = None
                  ) -> tuple[np.ndarray, list[ContentPairs]]:
    """Content ids of the live images, and the near/exact pairs between them; with `verify`,
    hash and embedding pairs must also pass local-feature verification (search/verify.py).
    `runner` "ray": the hash self-join (search/distributed.py) and the embedding self-join
    and neighbours (search/distributed_vectors.py) run on the Ray cluster at `ray_address`,
    with the same pairs; the rest stays here.

    "auto" is the cascade: exact copies, the hash rule, and embedding neighbours (at least
    `similarity`, see search/embed.py) where the index holds embeddings."""
    check_runner(runner)
    if verify:
        require_local(index)
    files = files if files is not None else index.live_files()
    ids = np.asarray(sorted(files), dtype=np.int64)
    out = []
    if method in ("auto", "pixels"):
        out.append(_pixel_pairs(index, ids))
    if method == "auto" and embed.has_embeddings(index) and embed.is_descriptor(index, model):
        return ids, out + _thorough_pairs(index, ids, model, max_distance, confirm_distance,
                                          calibrated, (runner, ray_address))
    if method == EMBED or (method == "auto" and embed.has_embeddings(index)):
        propose = method == "auto" and index.has_signatures(get_spec("local"))
        out.append(_embed_pairs(index, ids, similarity, model, calibrated, verify, propose,
                                (runner, ray_address)))
        if method == EMBED:
            return ids, out
    rule = make_rule(index, method, max_distance, confirm_distance, calibrated)
    if rule is not None:
        hits, content_ids = _hash_hits(index, rule, ids, (runner, ray_address))
        hits = hits.take(thumbnails_hold(index, content_ids[hits.query],
                                         content_ids[hits.item], hits.variant))
        if verify:
            hits = hits.take(verified(index, content_ids[hits.query], content_ids[hits.item],
                                      hits.variant))
        out.append(ContentPairs(np.searchsorted(ids, content_ids[hits.query]),
                                np.searchsorted(ids, content_ids[hits.item]),
                                hits.distance, hits.variant, rule.primary.name))
    return ids, out


def _hash_hits(index: Index, rule: Rule, ids: np.ndarray,
               run_on: tuple[str, str | None] = ("local", None)
               ) -> tuple[binary.Hits, np.ndarray]:
    """The rule's hash pairs among the content ids `ids` (`files` may be a subset), under the
    orientation rule and confirmed by the second hash; and the content id of each row.
    `run_on`: (runner, Ray address) of the self-join."""
    hits, content_ids, identity = _near_pairs(index, rule, run_on)
    hits = orientation_rule(rule, hits, identity[hits.query], identity[hits.item])
    a_ids, b_ids = content_ids[hits.query], content_ids[hits.item]
    hits = hits.take(np.isin(a_ids, ids) & np.isin(b_ids, ids))
    a_ids, b_ids = content_ids[hits.query], content_ids[hits.item]
    return hits.take(confirmed(rule, index, a_ids, b_ids, hits.variant)), content_ids


def _thorough_pairs(index: Index, ids: np.ndarray, model: str | None,
                    max_distance: int | None, confirm_distance: int | None,
                    calibrated: bool, run_on: tuple[str, str | None] = ("local", None)
                    ) -> list[ContentPairs]:
    """The thorough mode: hash pairs and descriptor neighbours judged by one rule on
    normalised descriptor scores (search/decide.py). Hash pairs with a picture that has no
    descriptor (too plain to embed) stay hash pairs."""
    stored = embed.load(index, embed.index_spec(index, model))
    live = np.isin(stored.content_ids, ids)
    content_ids, units = stored.content_ids[live], stored.vectors[live]
    rule = make_rule(index, "auto", max_distance, confirm_distance, calibrated)
    hash_a = hash_b = variant = np.empty(0, np.int64)
    out: list[ContentPairs] = []
    if rule is not None:
        hits, hit_ids = _hash_hits(index, rule, ids, run_on)
        a_ids, b_ids = hit_ids[hits.query], hit_ids[hits.item]
        judged = np.isin(a_ids, content_ids) & np.isin(b_ids, content_ids)
        hash_a, hash_b, variant = a_ids[judged], b_ids[judged], hits.variant[judged]
        rest = hits.take(~judged)
        out.append(ContentPairs(np.searchsorted(ids, hit_ids[rest.query]),
                                np.searchsorted(ids, hit_ids[rest.item]), rest.distance,
                                rest.variant, rule.primary.name))
    found = decide_pairs(index, content_ids, units, hash_a, hash_b, variant, DecisionRule(),
                         index.has_signatures(get_spec("local")), _vector_search(run_on)[1])
    out.append(ContentPairs(np.searchsorted(ids, found.a), np.searchsorted(ids, found.b),
                            embed.distance_of(found.score), found.variant, EMBED,
                            found.evidence))
    return out


def _vector_search(run_on: tuple[str, str | None]) -> tuple[embed.SelfJoin, embed.Knn]:
    """The descriptor self-join and knn: here, or the same as tasks on the Ray cluster."""
    if run_on[0] != "ray":
        return vectors.self_join, embed.local_knn
    return (partial(distributed_vectors.self_join_ray, address=run_on[1]),
            partial(distributed_vectors.knn_ray, address=run_on[1]))


def _embed_pairs(index: Index, ids: np.ndarray, similarity: float | None, model: str | None,
                 calibrated: bool, verify: bool, propose: bool = False,
                 run_on: tuple[str, str | None] = ("local", None)) -> ContentPairs:
    """Embedding pairs at or above the least similarity; with `verify`, local features must
    confirm them. With `propose` (the cascade, where the index holds local features), each
    picture's EMBED_NEIGHBOURS nearest at or above EMBED_PROPOSE are candidates too, kept
    when local features confirm them: embeddings find, local features check."""
    spec = embed.index_spec(index, model)
    threshold = embed.min_similarity(index, spec, similarity, calibrated)
    stored = embed.load(index, spec)
    join, knn = _vector_search(run_on)
    a_ids, b_ids, sims = embed.self_pairs(stored, threshold, join)
    checked = np.full(a_ids.size, verify)
    if propose:
        near_a, near_b, near_sims = embed.neighbour_pairs(
            stored, EMBED_NEIGHBOURS, min(EMBED_PROPOSE, threshold), knn)
        extra = near_sims < threshold  # the others are in the self-join already
        a_ids = np.concatenate([a_ids, near_a[extra]])
        b_ids = np.concatenate([b_ids, near_b[extra]])
        sims = np.concatenate([sims, near_sims[extra]])
        checked = np.concatenate([checked, np.ones(int(extra.sum()), bool)])
    live = np.isin(a_ids, ids) & np.isin(b_ids, ids)
    a_ids, b_ids, sims, checked = a_ids[live], b_ids[live], sims[live], checked[live]
    keep = ~checked
    for proposed in (False, True):
        todo = checked & ((sims < threshold) == proposed)
        if todo.any():
            least = max(stored_min_inliers(index), EMBED_PROPOSE_INLIERS) if proposed else None
            keep[todo] = verified(index, a_ids[todo], b_ids[todo], strict=True,
                                  min_inliers=least,
                                  min_coverage=EMBED_PROPOSE_COVERAGE if proposed else 0.0)
    a_ids, b_ids, sims = a_ids[keep], b_ids[keep], sims[keep]
    return ContentPairs(np.searchsorted(ids, a_ids), np.searchsorted(ids, b_ids),
                        embed.distance_of(sims), np.zeros(a_ids.size, np.int8), EMBED)


def verified(index: Index, ids_a: np.ndarray, ids_b: np.ndarray,
             variant: np.ndarray | None = None, strict: bool = False,
             min_inliers: int | None = None, min_coverage: float = 0.0) -> np.ndarray:
    """Mask of content pairs that local features confirm (`variant`: the flip or turn from a
    to b that the hash found). Pairs where either picture has too few features to judge
    (flat or tiny pictures) are judged by their colour thumbnails; a pair without any local
    signature is kept as it is. With `strict` (candidates nothing else vouches for) only
    pairs that local features confirm are kept; `min_coverage`: and whose inliers cover that
    share of both pictures' content (verify.Verification.coverage)."""
    variant = np.zeros(ids_a.size, np.int64) if variant is None else np.asarray(variant)
    swap = ids_a > ids_b
    inverse = np.asarray(dihedral.INVERSE)[variant]
    pairs = list(zip(np.where(swap, ids_b, ids_a).tolist(), np.where(swap, ids_a, ids_b).tolist()))
    transforms = dict(zip(pairs, np.where(swap, inverse, variant).tolist()))
    results = {(r.a, r.b): r for r in verify_content_pairs(index, pairs, min_inliers,
                                                           transforms=transforms)}
    keep = np.full(len(pairs), not strict)
    for k, key in enumerate(pairs):
        r = results.get(key)
        if r is None:
            continue
        if r.judgeable:
            keep[k] = r.verification.confirmed and r.verification.coverage >= min_coverage
        elif r.thumbnails_agree is not None and not strict:
            keep[k] = r.thumbnails_agree
    return keep


def _near_pairs(index: Index, rule: Rule, run_on: tuple[str, str | None] = ("local", None)
                ) -> tuple[binary.Hits, np.ndarray, np.ndarray]:
    """Self-join of the primary method: identity codes in memory, all variants streamed from
    the index a block at a time (or, on Ray, sent to the cluster's object store once).
    Returns the hits, the content id of each row and its identity code."""
    spec = rule.primary
    if run_on[0] == "ray":
        codes = index.load_codes(spec)
        usable = codes.quality >= spec.min_quality
        hits = distributed.self_join_ray(codes.codes[usable], rule.radius, run_on[1])
        return (hits, codes.content_ids[usable],
                np.ascontiguousarray(codes.codes[usable, 0]))
    with index.snapshot():  # the streamed blocks are the same rows as the items
        items = index.load_codes(spec, identity_only=True)
        usable = items.quality >= spec.min_quality
        blocks = (part.codes[part.quality >= spec.min_quality]
                  for part in index.iter_codes(spec))
        identity = np.ascontiguousarray(items.codes[usable, 0])
        hits = binary.self_join_blocks(identity, blocks, rule.radius, variants=spec.variants)
    return hits, items.content_ids[usable], identity


def _pixel_pairs(index: Index, ids: np.ndarray) -> ContentPairs:
    codes = index.load_codes(get_spec("pixels"))
    keys = codes.codes[:, 0]
    a, b = [], []
    if len(keys):
        _, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")  # one pass, not a scan per repeated value
        cuts = np.flatnonzero(np.diff(inverse[order])) + 1
        for members in np.split(codes.content_ids[order], cuts):
            for x, y in combinations(members.tolist(), 2):
                a.append(x)
                b.append(y)
    a_ids, b_ids = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    live = np.isin(a_ids, ids) & np.isin(b_ids, ids)  # `ids` may be a subset (where=)
    a_ids, b_ids = a_ids[live], b_ids[live]
    zeros = np.zeros(a_ids.size, dtype=np.int32)
    return ContentPairs(np.searchsorted(ids, a_ids), np.searchsorted(ids, b_ids), zeros,
                        zeros.astype(np.int8), "pixels")


def find_pairs(index: Index, method: str = "auto", max_distance: int | None = None,
               confirm_distance: int | None = None, calibrated: bool = True,
               verify: bool = False, similarity: float | None = None,
               model: str | None = None, where: Mapping[str, str] | None = None,
               decisions: bool = True, *, options: SearchOptions | None = None,
               runner: str = "local", ray_address: str | None = None) -> list[Match]:
    """Every duplicate pair of files, most alike first.

    The settings come in `options` (search/options.py says what each means) or as the
    keywords of the same names, not both. `runner` "ray" runs the hash self-join and the
    descriptor searches on the Ray cluster at `ray_address` (None: start or join a local
    instance); same answer (content_pairs).
    """
    opts = resolve(options, method=method, max_distance=max_distance,
                   confirm_distance=confirm_distance, calibrated=calibrated, verify=verify,
                   similarity=similarity, model=model, where=where, decisions=decisions)
    files, ids, parts = searched(index, opts, runner, ray_address)
    return matches_of(files, ids, parts)


def searched(index: Index, opts: SearchOptions, runner: str = "local",
             ray_address: str | None = None
             ) -> tuple[dict, np.ndarray, list[ContentPairs]]:
    """The live files under `opts.where`, their content ids and the content pairs between
    them, less those a person marked not-duplicate when `opts.decisions`."""
    files = index.live_files(opts.where)
    ids, parts = content_pairs(index, opts.method, opts.max_distance, opts.confirm_distance,
                               files, opts.calibrated, opts.verify, opts.similarity,
                               opts.model, runner, ray_address)
    if opts.decisions:
        parts = without_decided(index, ids, parts)
    return files, ids, parts


def matches_of(files: dict, ids: np.ndarray, parts: list[ContentPairs]) -> list[Match]:
    """The file pairs of find_pairs from the content pairs of content_pairs (for callers that
    also need the groups, such as search/leakage.py, without searching twice)."""
    matches: list[Match] = []
    for content_files in files.values():  # byte copies are duplicates under every method
        for x, y in combinations(content_files, 2):
            matches.append(Match(x.path, y.path, "bytes", 0, 1.0))
    for part in parts:
        bits = None if part.method == EMBED else get_spec(part.method).bits
        evidence = part.evidence if part.evidence is not None else [""] * len(part.a)
        for a, b, d, v, why in zip(part.a, part.b, part.distance, part.variant, evidence):
            score = embed.similarity_of(int(d)) if bits is None else 1.0 - float(d) / bits
            transform = dihedral.NAMES[int(v)]
            for x in files[int(ids[a])]:
                for y in files[int(ids[b])]:
                    matches.append(Match(x.path, y.path, part.method, int(d), score, transform,
                                         why))
    best: dict[tuple[str, str], Match] = {}
    for m in matches:
        key = (m.a, m.b)
        if stronger(m, best.get(key)):
            best[key] = m
    return sorted(best.values(), key=lambda m: (-m.score, m.a, m.b))


def without_decided(index: Index, ids: np.ndarray, parts: list[ContentPairs]
                    ) -> list[ContentPairs]:
    """`parts` less the content pairs a person marked not-duplicate (Index.decided_pairs).
    Byte copies are one content and cannot be marked, so they stay duplicates."""
    decided = index.decided_pairs("not-duplicate")
    if not decided:
        return parts
    out = []
    for part in parts:
        a_ids, b_ids = ids[part.a], ids[part.b]
        low, high = np.minimum(a_ids, b_ids).tolist(), np.maximum(a_ids, b_ids).tolist()
        keep = np.fromiter(((x, y) not in decided for x, y in zip(low, high)), dtype=bool,
                           count=len(low))
        out.append(ContentPairs(part.a[keep], part.b[keep], part.distance[keep],
                                part.variant[keep], part.method,
                                None if part.evidence is None else part.evidence[keep]))
    return out


def find_groups(index: Index, method: str = "auto", max_distance: int | None = None,
                confirm_distance: int | None = None,
                linkage: str = DEFAULT_LINKAGE, calibrated: bool = True,
                verify: bool = False, similarity: float | None = None,
                model: str | None = None, where: Mapping[str, str] | None = None,
                decisions: bool = True, *, options: SearchOptions | None = None,
                runner: str = "local", ray_address: str | None = None) -> list[Group]:
    """Duplicate groups of the pair graph under `linkage` (search/group.py), largest first.

    A group's method is the weakest evidence among the pairs that hold it together: a hash if
    any needed one, else "pixels", else "bytes"; max_distance is the largest hash distance on
    those pairs, diameter the largest between any two members. Settings, runner and
    ray_address as in find_pairs.
    """
    opts = resolve(options, method=method, max_distance=max_distance,
                   confirm_distance=confirm_distance, linkage=linkage, calibrated=calibrated,
                   verify=verify, similarity=similarity, model=model, where=where,
                   decisions=decisions)
    files, ids, parts = searched(index, opts, runner, ray_address)
    return groups_of(files, ids, parts, opts.linkage)


def groups_of(files: dict, ids: np.ndarray, parts: list[ContentPairs],
              linkage: str = DEFAULT_LINKAGE) -> list[Group]:
    """The groups of find_groups from the content pairs of content_pairs (for callers that
    also need the pairs' evidence, such as the HTML report, without searching twice)."""
    edges: dict[tuple[int, int], tuple[int, str, int]] = {}  # (a, b) -> (rank, method, dist)
    for part in parts:
        for a, b, d in zip(part.a.tolist(), part.b.tolist(), part.distance.tolist()):
            key = (min(a, b), max(a, b))
            edge = (evidence_rank(part.method), part.method, d)
            if key not in edges or edge < edges[key]:
                edges[key] = edge
    pairs = np.asarray(list(edges), dtype=np.int64).reshape(-1, 2)
    distance = np.asarray([e[2] for e in edges.values()], dtype=np.int64)
    linked_groups = link_groups(len(ids), pairs[:, 0], pairs[:, 1], distance, linkage)
    label = {m: g for g, linked in enumerate(linked_groups) for m in linked.members.tolist()}
    evidence = [(0, "bytes", 0)] * len(linked_groups)  # the weakest pair holding each group
    for (a, b), edge in edges.items():
        g = label.get(a)
        if g is None or label.get(b) != g:
            continue
        medoid = int(linked_groups[g].medoid)
        if linkage != "star" or medoid in (a, b):
            evidence[g] = max(evidence[g], edge)
    groups = []
    for linked, (_, name, _) in zip(linked_groups, evidence):
        w = linked.weakest
        weakest = (_first_path(files, ids, w.a), _first_path(files, ids, w.b), int(w.distance))
        groups.append(_group(files, ids, linked.members.tolist(), name, int(w.distance),
                             linkage, int(linked.diameter), weakest, linked.fully_linked))
    grouped = set(label)
    # Byte copies of one content form a group under every method and linkage.
    groups += [_group(files, ids, [i], "bytes", 0, linkage, 0, None, True)
               for i, cid in enumerate(ids) if len(files[int(cid)]) > 1 and i not in grouped]
    groups.sort(key=lambda g: (-len(g.files), g.diameter, g.files[0].path))
    return groups


def _first_path(files: dict, ids: np.ndarray, row: int) -> str:
    return min(f.path for f in files[int(ids[row])])


def _group(files: dict, ids: np.ndarray, members: list[int], method: str, worst: int,
           linkage: str, diameter: int, weakest, fully_linked: bool) -> Group:
    infos = sorted((f for m in members for f in files[int(ids[m])]), key=lambda f: f.path)
    return Group(tuple(infos), method, worst, linkage, diameter, weakest, fully_linked)


def groups_across(groups: list[Group], meta: Mapping[str, dict], key: str) -> list[Group]:
    """The groups whose files hold at least two values of metadata `key` (`meta`: path ->
    metadata, Index.file_meta): duplicates across categories, brands, sources."""
    return [g for g in groups
            if len({_meta_value(meta, f.path, key) for f in g.files} - {None}) >= 2]


def pairs_across(pairs: list[Match], meta: Mapping[str, dict], key: str) -> list[Match]:
    """The pairs whose two files hold different values of metadata `key`."""
    return [m for m in pairs if None not in (a := _meta_value(meta, m.a, key),
                                             b := _meta_value(meta, m.b, key)) and a != b]


def _meta_value(meta: Mapping[str, dict], path: str, key: str) -> str | None:
    value = meta.get(path, {}).get(key)
    return None if value is None or value == "" else str(value)
