"""Duplicates by learned embeddings: the vector search of search/vectors.py over the index.

Distances of embedding pairs are reported in thousandths of cosine distance
(1000 * (1 - similarity)), so they sort and link with the integer distances of hashes;
a pair's score is its cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import LookalikeError
from ..index.store import Index
from ..methods.embedding import NAME, method_name, split_name
from ..methods.registry import MethodSpec, get_spec
from ..models.registry import DEFAULT_MODEL, lookup_model
from . import vectors

SCALE = 1000  # distance units per unit of cosine distance


def distance_of(similarity: np.ndarray) -> np.ndarray:
    return np.rint((1.0 - np.asarray(similarity, np.float64)) * SCALE).astype(np.int32)


def similarity_of(distance: int) -> float:
    return 1.0 - distance / SCALE


def has_embeddings(index: Index) -> bool:
    return NAME in index.methods_present()


def index_method(index: Index, model: str | None = None) -> tuple[MethodSpec, str]:
    """The spec of the embeddings `dupes`/`query` use, and the method name that signs new
    pictures with the same model: `model`'s, else the index's active model's (the one of its
    last embedding scan or `lookalike train`)."""
    if model is not None:
        return get_spec(method_name(model)), method_name(model)
    present = set(index.signature_params(NAME))
    for registered in index.models():
        if registered.params in present:
            name = method_name(registered.ref)
            return get_spec(name), name
    if present:
        raise LookalikeError("the index holds embeddings of an unregistered model; rescan "
                             "with 'lookalike scan DIR --method embed --model NAME'")
    raise LookalikeError("the index has no embeddings; run 'lookalike scan DIR --method embed' "
                         "first")


def index_spec(index: Index, model: str | None = None) -> MethodSpec:
    return index_method(index, model)[0]


def is_descriptor(index: Index, model: str | None = None) -> bool:
    """Whether the embeddings `dupes` would use are a copy-detection descriptor whose scores
    are normalised and judged by the thorough mode's rule (ModelSpec.normalised)."""
    try:
        name = index_method(index, model)[1]
    except LookalikeError:
        return False
    return lookup_model(split_name(name)[1] or DEFAULT_MODEL)[0].normalised


def threshold_key(spec: MethodSpec) -> str:
    """Where `lookalike calibrate` stores a model's least similarity: per model, so that
    another model's embeddings never use it."""
    return f"{NAME}:{spec.params}"


def min_similarity(index: Index, spec: MethodSpec, given: float | None = None,
                   calibrated: bool = True) -> float:
    """`given`, else the threshold calibrated for this model, else the model's default."""
    if given is not None:
        return float(given)
    stored = index.thresholds().get(threshold_key(spec)) if calibrated else None
    return float(stored.value) if stored is not None else spec.similarity


@dataclass(frozen=True)
class Stored:
    """The live embeddings of one model: content ids and (N, dim) float32 rows."""

    content_ids: np.ndarray
    vectors: np.ndarray


def vectors_of(values: list[bytes], spec: MethodSpec) -> np.ndarray:
    """(N, dim) float32 rows of stored float16 signature values."""
    return np.frombuffer(b"".join(values), np.float16).reshape(len(values), -1).astype(
        np.float32)


def load(index: Index, spec: MethodSpec) -> Stored:
    codes = index.load_codes(spec)
    usable = codes.quality >= spec.min_quality
    rows = codes.codes[usable, 0]
    return Stored(codes.content_ids[usable],
                  np.ascontiguousarray(rows).view(np.float16).astype(np.float32))


# (vectors, threshold) -> their pairs, and (vectors, k) -> each row's k nearest: the local
# search by default, or the same on a Ray cluster (search/distributed_vectors.py)
SelfJoin = Callable[[np.ndarray, float], vectors.Pairs]
Knn = Callable[[np.ndarray, int], vectors.Neighbours]


def local_knn(array: np.ndarray, k: int) -> vectors.Neighbours:
    """Each row's k nearest rows (itself among them), from an index built for the call."""
    return vectors.build(array).knn(array, k)


def self_pairs(stored: Stored, threshold: float, join: SelfJoin = vectors.self_join
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(content id a, content id b, similarity) of every stored pair at or above threshold."""
    pairs = join(stored.vectors, threshold)
    return stored.content_ids[pairs.a], stored.content_ids[pairs.b], pairs.similarity


def neighbour_pairs(stored: Stored, k: int, floor: float, knn: Knn = local_knn
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(content id a < b, similarity) of every stored picture's k nearest others at or above
    `floor`, each unordered pair once: the candidates that local features then verify."""
    if len(stored.content_ids) < 2:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0, np.float32)
    found = knn(stored.vectors, k + 1)
    rows = np.repeat(np.arange(len(stored.content_ids)), k + 1)
    cols, sims = found.ids.ravel(), found.similarity.ravel()
    keep = (cols >= 0) & (cols != rows) & (sims >= floor)
    a = stored.content_ids[np.minimum(rows[keep], cols[keep])]
    b = stored.content_ids[np.maximum(rows[keep], cols[keep])]
    key, first = np.unique(a * (int(stored.content_ids.max()) + 1) + b, return_index=True)
    return a[first], b[first], sims[keep][first]


class EmbedSearch:
    """Queries against the stored embeddings of one model (a FAISS index built once)."""

    def __init__(self, index: Index, spec: MethodSpec) -> None:
        self.spec = spec
        self.stored = load(index, spec)
        self.vectors = vectors.build(self.stored.vectors)

    def matches(self, queries: np.ndarray, threshold: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, content id, similarity) of every stored picture at or above it."""
        hits = self.vectors.range(queries, threshold)
        return hits.query, self.stored.content_ids[hits.ids], hits.similarity

    def nearest(self, queries: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, content id, similarity) of each query's k nearest stored pictures."""
        found = self.vectors.knn(queries, k)
        rows, cols = np.nonzero(found.ids >= 0)
        return rows, self.stored.content_ids[found.ids[rows, cols]], found.similarity[rows, cols]
