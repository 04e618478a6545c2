"""Is this picture already in the index? Queries for files that were never scanned."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import xxhash

from ..arguments import MAX_LIMIT, as_paths, in_range
from ..decode import decode
from ..errors import BoundError, DecodeError
from ..index.paths import display_path
from ..index.store import Codes, Index
from ..methods import dihedral
from ..methods.registry import MethodSpec, Picture, get_spec
from ..types import Failure, FileRef, Match, Signature
from ..worker import compute_signatures, read_file, shared_method
from . import embed
from .decide import DESCRIPTOR, WITH_HASH, DecisionRule, query_scores, local_veto
# NearSearch and its helpers moved to near.py; they are still importable from here.
from .near import NearHits, NearSearch, code_cache  # noqa: F401
from .options import SearchOptions, resolve
from .rule import EMBED, Rule, aligned_rows, make_rule, stronger
from .verify import colours_agree


@dataclass(frozen=True)
class QueryResult:
    path: str
    matches: tuple[Match, ...]
    failure: Failure | None = None

    def to_dict(self) -> dict:
        """As `query --format json` and the API show it: each match named by the indexed
        file it found (`path`, the pair's b), the rest as Match.to_dict."""
        found = [m.to_dict() for m in self.matches]
        return {"path": display_path(self.path),
                "matches": [{"path": d["b"]} | {k: v for k, v in d.items()
                                                if k not in ("a", "b")} for d in found],
                "error": self.failure.reason if self.failure else None}


def query(index: Index, paths: Sequence[str], method: str = "auto",
          max_distance: int | None = None, limit: int = 20,
          nearest: int | None = None, calibrated: bool = True,
          similarity: float | None = None, model: str | None = None,
          variants: bool = True, *, options: SearchOptions | None = None
          ) -> list[QueryResult]:
    """The indexed files each of `paths` duplicates, closest first.

    With `nearest`, the `nearest` closest pictures by the method's hash (or embedding) are
    listed whatever their distance (no radius, no confirming hash): "how close is the
    closest?". The settings come as keywords or in `options` (search/options.py), as for
    dupes.find_pairs; "auto" also asks the embeddings where the index holds them, and
    `options.where` keeps only indexed files whose metadata match. `variants`: embed the
    query in its 8 flips and turns (the hashes always look at all 8).
    """
    paths = as_paths(paths, "paths")
    in_range(limit, 1, MAX_LIMIT, "limit")
    in_range(nearest, 1, MAX_LIMIT, "nearest")
    prepared = PreparedQuery(index, method, max_distance, calibrated, similarity, model,
                             variants, options=options)
    return prepared.run(index, paths, limit, nearest)


class PreparedQuery:
    """What a query reads from the index before it looks at any picture (the rule, the live
    files, the indexed codes and the search built over them), kept for many queries.

    query() makes one per call. A long-lived caller (the HTTP service) keeps one while the
    index is unchanged, so a query of one picture costs its decoding and search, not a read
    of the whole index. `run` may be called from several threads, each with its own `index`
    connection (used for the byte-copy lookup and to read codes on first use): the shared
    state is read-only once built, and is built under a lock.
    """

    def __init__(self, index: Index, method: str = "auto", max_distance: int | None = None,
                 calibrated: bool = True, similarity: float | None = None,
                 model: str | None = None, variants: bool = True, *,
                 options: SearchOptions | None = None) -> None:
        opts = resolve(options, method=method, max_distance=max_distance,
                       calibrated=calibrated, similarity=similarity, model=model)
        if opts.verify:
            raise BoundError("verify: queries are not verified by local features; use "
                             "find-in for crops and partial copies")
        method, model = opts.method, opts.model
        self.method = method
        use_embed = method == EMBED or (method == "auto" and embed.has_embeddings(index))
        self.rule = None if method == EMBED else make_rule(
            index, method, opts.max_distance, opts.confirm_distance, opts.calibrated)
        self.names = signature_names(self.rule)
        if self.rule is not None and "colour" in index.methods_present():
            self.names.append("colour")  # hash matches in other colours are dropped
        self.vector = None
        if use_embed:
            spec, name = embed.index_method(index, model)
            threshold = embed.min_similarity(index, spec, opts.similarity, opts.calibrated)
            self.vector = _VectorQuery(spec, name, threshold, variants,
                                       embed.is_descriptor(index, model))
            self.names.append(self.vector.name)
            if self.vector.normalised and index.has_signatures(get_spec("local")):
                self.names.append("local")  # the shared-frame check (decide.coverage)
        self.files = index.live_files(opts.where)
        self.content_of = {f.path: cid for cid, fs in self.files.items() for f in fs}
        self._codes: dict[str, Codes] = {}
        self._search: NearSearch | None = None
        self._lock = threading.RLock()

    def codes_of(self, index: Index) -> Callable[[MethodSpec], Codes]:
        """Each method's identity codes, read once (queries carry the variants)."""
        def codes_of(spec: MethodSpec) -> Codes:
            with self._lock:
                if spec.name not in self._codes:
                    self._codes[spec.name] = index.load_codes(spec, identity_only=True)
                return self._codes[spec.name]

        return codes_of

    def near(self, index: Index) -> "NearSearch":
        """The hash search, built when a first query gets that far."""
        with self._lock:
            if self._search is None:
                self._search = NearSearch(index, self.rule, self.codes_of(index))
            return self._search

    def run(self, index: Index, paths: Sequence[str], limit: int = 20,
            nearest: int | None = None) -> list[QueryResult]:
        """The indexed files each of `paths` duplicates, closest first (see query)."""
        codes_of = self.codes_of(index)
        results = []
        for path in paths:
            try:
                result = _one(index, os.path.abspath(path), self.rule, self.names, self.files,
                              self.method, codes_of, lambda: self.near(index), nearest,
                              self.vector, self.content_of)
            except (OSError, DecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                result = QueryResult(path, (), Failure(path, "decode", reason))
            results.append(QueryResult(path, result.matches[:limit], result.failure))
        return results


def signature_names(rule: Rule | None) -> list[str]:
    """The signatures a query picture needs under `rule` (pixels for exact matches)."""
    return ["pixels"] + ([rule.primary.name] if rule else []) + \
        ([rule.confirm.name] if rule and rule.confirm else [])


class _VectorQuery:
    """The embedding half of a query: the stored vectors' search, built on first use.

    The query is embedded in all 8 flips and quarter turns (`variants`) and each indexed
    picture keeps its best one: the model is not invariant to them (a flipped copy sits at
    0.74-0.93 of its original, a re-encoded one at 0.99; docs/models.md)."""

    def __init__(self, spec: MethodSpec, name: str, threshold: float,
                 variants: bool = True, normalised: bool = False) -> None:
        self.spec, self.name, self.threshold = spec, name, threshold
        self.variants = variants
        self.normalised = normalised  # a descriptor judged by search/decide.py's rule
        self._backgrounds: dict[int, float] = {}  # stored rows' backgrounds, as found
        self._search: embed.EmbedSearch | None = None
        self._lock = threading.Lock()

    def _vectors(self, index: Index, signature: Signature, rgb: np.ndarray | None
                 ) -> np.ndarray:
        with self._lock:
            if self._search is None:
                self._search = embed.EmbedSearch(index, self.spec)
        vectors = embed.vectors_of([signature.value], self.spec)
        if self.variants and rgb is not None:
            turned = shared_method(self.name).embed([turn(rgb, k) for k in range(1, 8)])
            # as stored (float16), so that the identity and the turns compare alike
            vectors = np.vstack([vectors, turned.astype(np.float16).astype(np.float32)])
        return vectors

    def judged(self, index: Index, path: str, signatures: dict[str, Signature], files,
               nearest: int | None, rgb: np.ndarray | None, hashed: list[Match],
               content_of: dict[str, int]) -> list[Match]:
        """The thorough mode's matches: descriptor neighbours and the hash matches
        `hashed`, judged on normalised scores by search/decide.py's rule (with the query's
        local features, where the index has them, against shared frames)."""
        signature = signatures[EMBED]
        vectors = self._vectors(index, signature, rgb)
        stored = self._search.stored
        local_value = signatures.get("local")
        hash_ids = {content_of[m.b] for m in hashed if m.b in content_of}
        extra = np.flatnonzero(np.isin(stored.content_ids, list(hash_ids)))
        rule = DecisionRule()
        with self._lock:  # the backgrounds found so far are shared by every query
            found = query_scores(stored.vectors, self._search.vectors, vectors, rule, extra,
                                 self._backgrounds)
        cids = stored.content_ids[found.rows]
        why = np.where(found.score >= rule.high, DESCRIPTOR, "").astype(object)
        why[(why == "") & np.isin(cids, list(hash_ids)) & (found.score >= rule.low)] = WITH_HASH
        if local_value is not None and (why != "").any():
            on_frame = local_veto(index, cids[why != ""], local_value.value, rule)
            why[np.flatnonzero(why != "")[on_frame]] = ""
        out = []
        for cid, score, variant, why in zip(cids.tolist(), found.score.tolist(),
                                            found.variant.tolist(), why.tolist()):
            if why or nearest:
                out += [Match(path, f.path, EMBED, int(embed.distance_of(score)), float(score),
                              dihedral.describe(variant), why) for f in files.get(cid, [])]
        out.sort(key=lambda m: -m.score)
        return out[:nearest] if nearest else out

    def matches(self, index: Index, path: str, signature: Signature, files,
                nearest: int | None, rgb: np.ndarray | None = None) -> list[Match]:
        vectors = self._vectors(index, signature, rgb)
        if nearest:
            rows, ids, sims = self._search.nearest(vectors, nearest)
        else:
            rows, ids, sims = self._search.matches(vectors, self.threshold)
        best: dict[int, tuple[float, int]] = {}
        for row, cid, sim in zip(rows.tolist(), ids.tolist(), sims.tolist()):
            if cid not in best or sim > best[cid][0]:
                best[cid] = (sim, row)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:nearest or None]
        return [Match(path, f.path, EMBED, int(embed.distance_of(sim)), float(sim),
                      dihedral.describe(row))
                for cid, (sim, row) in ranked for f in files.get(cid, [])]


def turn(rgb: np.ndarray, k: int) -> np.ndarray:
    """Dihedral variant k (methods/dihedral.py's order) of an (H, W, 3) picture."""
    return np.ascontiguousarray(dihedral.variant(np.moveaxis(rgb, -1, 0), k).transpose(1, 2, 0))


def _one(index: Index, path: str, rule, names, files, method: str, codes_of, near,
         nearest: int | None = None, vector: _VectorQuery | None = None,
         content_of: dict[str, int] | None = None) -> QueryResult:
    stat = os.stat(path)
    data = read_file(FileRef(path, stat.st_size, stat.st_mtime_ns))
    matches: list[Match] = []
    content_id = index.content_ids_by_hash([xxhash.xxh3_128_digest(data)]).values()
    for cid in content_id:
        matches += [Match(path, f.path, "bytes", 0, 1.0) for f in files.get(cid, [])]
    decoded = decode(data)
    signed = compute_signatures(decoded, names)
    signatures = {s.method: s for s in signed}
    if method in ("auto", "pixels"):
        pixels = codes_of(get_spec("pixels"))
        value = np.frombuffer(signatures["pixels"].value, dtype=np.uint8)
        same = np.flatnonzero((pixels.codes[:, 0] == value).all(axis=1))
        for cid in pixels.content_ids[same].tolist():
            matches += [Match(path, f.path, "pixels", 0, 1.0) for f in files.get(cid, [])]
    hashed = _near(path, near(), signatures, files, nearest) if rule is not None else []
    if content_of is None:  # the path -> content map, made once by a PreparedQuery
        content_of = {f.path: cid for cid, fs in files.items() for f in fs}
    if hashed and "colour" in signatures and not nearest:
        hashed = _same_colours(hashed, signatures["colour"], codes_of(get_spec("colour")),
                               content_of)
    if vector is not None and vector.normalised:  # thorough: hash matches are candidates
        rgb = Picture(decoded).rgb if vector.variants else None
        matches += vector.judged(index, path, signatures, files, nearest, rgb, hashed,
                                 content_of)
    elif vector is not None:
        rgb = Picture(decoded).rgb if vector.variants else None
        matches += hashed + vector.matches(index, path, signatures[EMBED], files, nearest, rgb)
    else:
        matches += hashed
    best: dict[str, Match] = {}
    for m in matches:
        if stronger(m, best.get(m.b)):
            best[m.b] = m
    return QueryResult(path, tuple(sorted(best.values(), key=lambda m: (-m.score, m.b))))


def _same_colours(matches: list[Match], colour: Signature, codes: Codes,
                  content_of: dict[str, int]) -> list[Match]:
    """The hash matches whose colour thumbnails agree with the query's (verify.same_colours,
    as dupes.thumbnails_hold does for pairs in the index)."""
    query = np.frombuffer(colour.value, np.uint8).reshape(3, 8, 8)
    ids = np.asarray([content_of.get(m.b, -1) for m in matches], np.int64)
    rows, found = aligned_rows(codes, ids)
    thumbs = codes.codes[:, 0].reshape(len(codes.codes), 3, 8, 8)
    # the match's transform turns the indexed picture into the query
    transforms = np.asarray([dihedral.NAMES.index(m.transform) for m in matches], np.int64)
    held = ~found
    held[found] = colours_agree(thumbs[rows[found]], query, transforms[found])
    return [m for m, keep in zip(matches, held.tolist()) if keep]


def _near(path: str, search: "NearSearch", signatures: dict[str, Signature], files,
          nearest: int | None = None) -> list[Match]:
    found = search.nearest([signatures], nearest) if nearest else search.matches([signatures])
    spec = search.rule.primary
    out = []
    for cid, d, v in zip(found.content_id.tolist(), found.distance.tolist(),
                         found.variant.tolist()):
        for f in files.get(cid, []):
            out.append(Match(path, f.path, spec.name, d, 1.0 - d / spec.bits,
                             dihedral.describe(v)))
    return out
