"""Hamming search, side by side: lookalike vs pybktree vs imagededup's hash search (issue 4).

    python bench/bench_hamming.py --sizes 20000,100000 --sample-queries 500     # quick
    python bench/bench_hamming.py --sizes 100k,1M --json hamming.json           # the full run

Every contender runs in this one process on the same codes, made by seeded generators:

* random: uniform codes.
* clustered: 5% of the items are cluster centres, each with 1-20 near copies at 0-12 random
  bit flips per 64 bits (0-48 for 256-bit codes); the rest uniform; rows shuffled.
* correlated: bits thresholded from 8 shared Gaussian factors plus noise, with a bias per
  bit: denser neighbourhoods than uniform codes, as real hashes of similar pictures have.
* index (with --from-index PATH): the pHash (64-bit) or PDQ (256-bit) codes of a lookalike
  index, with their real dihedral variants; N is what the index holds.

Experiments, per code width, data set, size and radius:

1. Self-join, V=1 (no variants): all pairs within the radius. lookalike `binary.self_join`
   vs pybktree (tree built on the codes as Python ints, then `find(item, r)` for each item)
   vs imagededup's BKTree and BruteForceCython search classes (built on {name: hex hash},
   `search(hex, tol=r)` for each item, as its HashEval runs them, one process). The peers
   answer a random sample of the items as queries (--sample-queries, at most --peer-budget-s
   of queries each); their time for all N is build time + query time x N / sampled queries,
   printed as an extrapolation. The sampled queries' neighbour sets must equal lookalike's
   (OK/MISMATCH), and lookalike's are checked against a NumPy brute force on a few queries.
2. Self-join with V=8 variants per picture, lookalike only: the cost of flip and rotation
   invariance. Variant v is one fixed random permutation of the bits (a cost model, not a
   real flip), the same for every item; variant 0 is the code itself.
3. Query latency: one picture (its 8 variants) against the N indexed codes, p50/p99 over
   --latency-queries queries drawn from the items. lookalike: one `binary.search` (and
   `binary.knn` if it exists) call per query, any set-up it does per call included; peers:
   8 searches of their prebuilt structure.

Times are wall-clock (perf_counter); cpu s is the process's CPU time (all threads: lookalike
may use both cores, the peers use one). Peak RSS is sampled with psutil every 20 ms during
the measurement; "+RSS" is the part above the RSS at its start. Converting codes into the
peers' input (ints, hex strings, the {name: hash} dict) is not timed. The script measures and
prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common import import_imagededup, rss_mb

KINDS = ("random", "clustered", "correlated", "index")
CLUSTER_SHARE = 0.05  # share of items that are cluster centres
COPIES = (1, 20)  # near copies per centre
FLIPS_PER_64_BITS = 12  # a copy is 0..this many bit flips (per 64 bits) from its centre
LATENT_FACTORS = 8  # the correlated generator's shared factors
# Their weight against unit noise: at 0.5, 1M 64-bit codes have ~15 neighbours each within 12
# bits (uniform codes: ~0.2), a dense but bounded pair count.
FACTOR_WEIGHT = 0.5
BIT_BIAS_SD = 0.5  # spread of the correlated generator's per-bit thresholds
VARIANTS = 8
MIN_PEER_QUERIES = 5  # a peer answers at least this many sampled queries, whatever the budget
CHUNK = 32_768
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
PEERS = ("pybktree", "imagededup-bktree", "imagededup-bf")


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class Dataset:
    kind: str
    bits: int
    codes: np.ndarray  # (N, nbytes) uint8: the identity codes
    seed: int
    real_variants: np.ndarray | None = None  # (N, 8, nbytes) for kind "index"
    note: str = ""

    @property
    def n(self) -> int:
        return len(self.codes)

    def variants(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(rows, 8, nbytes): real variants, or fixed bit permutations of the codes."""
        if self.real_variants is not None:
            return self.real_variants if rows is None else self.real_variants[rows]
        codes = self.codes if rows is None else self.codes[rows]
        rng = np.random.default_rng([self.seed, 99, self.bits])
        perms = [np.arange(self.bits)] + [rng.permutation(self.bits) for _ in range(VARIANTS - 1)]
        out = np.empty((len(codes), VARIANTS, codes.shape[1]), dtype=np.uint8)
        for start in range(0, len(codes), CHUNK):
            unpacked = np.unpackbits(codes[start:start + CHUNK], axis=1)
            for v, perm in enumerate(perms):
                out[start:start + CHUNK, v] = np.packbits(unpacked[:, perm], axis=1)
        return out


def make_codes(kind: str, n: int, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, KINDS.index(kind), bits, n])
    nbytes = bits // 8
    if kind == "random":
        return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    if kind == "clustered":
        return _clustered(rng, n, bits)
    if kind == "correlated":
        weights = rng.normal(size=(bits, LATENT_FACTORS)) * FACTOR_WEIGHT / np.sqrt(LATENT_FACTORS)
        thresholds = rng.normal(0.0, BIT_BIAS_SD, bits)
        out = np.empty((n, nbytes), dtype=np.uint8)
        for start in range(0, n, CHUNK):
            rows = min(CHUNK, n - start)
            signal = rng.normal(size=(rows, LATENT_FACTORS)) @ weights.T
            out[start:start + rows] = np.packbits(
                signal + rng.normal(size=(rows, bits)) > thresholds, axis=1)
        return out
    raise ValueError(f"unknown data kind {kind!r}")


def _clustered(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    codes = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    centres = max(1, int(n * CLUSTER_SHARE))
    copies = rng.integers(COPIES[0], COPIES[1] + 1, centres)
    centre_of = np.repeat(np.arange(centres), copies)[:n - centres]
    max_flips = FLIPS_PER_64_BITS * bits // 64
    for start in range(0, len(centre_of), CHUNK):
        of = centre_of[start:start + CHUNK]
        flips = rng.integers(0, max_flips + 1, len(of))
        keys = rng.random((len(of), bits))
        kth = np.take_along_axis(np.sort(keys, axis=1), flips[:, None], axis=1)
        mask = np.packbits(keys < kth, axis=1)  # exactly `flips` distinct bits per row
        codes[centres + start:centres + start + len(of)] = codes[of] ^ mask
    return codes[rng.permutation(n)]


def load_index_dataset(path: Path, n: int, bits: int, seed: int) -> Dataset | str:
    """The first n codes of the index's pHash (64) or PDQ (256) method, or why not."""
    from lookalike.index.store import open_index
    from lookalike.methods.registry import get_spec

    names = ("phash",) if bits == 64 else ("pdq", "pdq-ref", "phash256")
    with open_index(path, read_only=True) as index:
        present = set(index.methods_present())
        name = next((m for m in names if m in present), None)
        if name is None:
            return f"index has none of {', '.join(names)} (has {', '.join(sorted(present))})"
        codes = index.load_codes(get_spec(name)).codes
    variants = np.ascontiguousarray(codes[:n])
    note = f"{name} codes from {path}" + (f" (only {len(codes)})" if len(codes) < n else "")
    return Dataset("index", bits, np.ascontiguousarray(variants[:, 0]), seed, variants, note)


def as_ints(codes: np.ndarray) -> list[int]:
    raw, nbytes = codes.tobytes(), codes.shape[1]
    return [int.from_bytes(raw[i:i + nbytes], "big") for i in range(0, len(raw), nbytes)]


def as_hex(codes: np.ndarray) -> list[str]:
    text, width = codes.tobytes().hex(), 2 * codes.shape[1]
    return [text[i:i + width] for i in range(0, len(text), width)]


def distances(codes: np.ndarray, code: np.ndarray) -> np.ndarray:
    return POPCOUNT[codes ^ code].sum(axis=1, dtype=np.int32)


def reference_neighbours(data: Dataset, variants: np.ndarray | None, q: int,
                         radius: int) -> set[int]:
    """NumPy brute force: items within radius of q (under some variant, either way round)."""
    if variants is None:
        near = distances(data.codes, data.codes[q]) <= radius
    else:
        identity = variants[:, 0]
        near = np.zeros(data.n, dtype=bool)
        for v in range(variants.shape[1]):
            near |= distances(identity, variants[q, v]) <= radius
            near |= distances(variants[:, v], variants[q, 0]) <= radius
    found = set(np.flatnonzero(near).tolist())
    found.discard(q)
    return found


def neighbour_sets(a: np.ndarray, b: np.ndarray, wanted: np.ndarray) -> dict[int, set[int]]:
    """From pairs (a, b): the neighbours of each id in `wanted`."""
    out: dict[int, set[int]] = {int(q): set() for q in wanted}
    for x, y in ((a, b), (b, a)):
        chosen = np.isin(x, wanted)
        for q, i in zip(x[chosen].tolist(), y[chosen].tolist()):
            out[q].add(i)
    return out


def compare_sets(ours: dict[int, set[int]], theirs: dict[int, set[int]]) -> str:
    bad = [q for q in theirs if theirs[q] != ours.get(q)]
    total = sum(len(s) for s in theirs.values())
    if not bad:
        return f"OK ({len(theirs)} q, {total} nbrs)"
    q = bad[0]
    only_ours = sorted(ours.get(q, set()) - theirs[q])[:5]
    only_theirs = sorted(theirs[q] - ours.get(q, set()))[:5]
    return (f"MISMATCH in {len(bad)} of {len(theirs)} q (q={q}: only lookalike {only_ours}, "
            f"only other {only_theirs})")


# ---------------------------------------------------------------------------------------------
# measuring


class Meter:
    """Wall and CPU time of a block, and the peak RSS of this process while it ran."""

    def __enter__(self) -> "Meter":
        gc.collect()
        self.start_mb = self.peak_mb = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, rss_mb())


@dataclass
class JoinRow:
    experiment: str  # "self-join V=1" or "self-join V=8"
    bits: int
    data: str
    n: int
    method: str
    radius: int
    wall_s: float | None = None
    cpu_s: float | None = None
    pairs: int | None = None
    peak_mb: float | None = None
    extra_mb: float | None = None
    estimated_from: int = 0  # sampled queries the times and pairs were extrapolated from
    check: str = ""
    note: str = ""


@dataclass
class LatencyRow:
    bits: int
    data: str
    n: int
    method: str
    radius: str
    queries: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    peak_mb: float | None = None
    check: str = ""
    note: str = ""
    times_ms: list[float] = field(default_factory=list, repr=False)


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# the peers: each builds its structure on all items, then answers one code at a time


class Peer(ABC):
    name = ""
    note = ""

    def __init__(self, bits: int) -> None:
        self.bits = bits

    def missing(self) -> str | None:
        """Why this peer cannot run here, or None."""
        return None

    def keys(self, codes: np.ndarray) -> list:
        return as_ints(codes)

    def prepare(self, keys: list) -> None:  # untimed: the peer's input format
        self.items = keys

    @abstractmethod
    def build(self) -> None:
        """Build the peer's search structure over self.items (timed)."""

    @abstractmethod
    def find(self, key, radius: int) -> list[int]:
        """Item numbers within `radius` of `key`."""


class PyBKTree(Peer):
    name = "pybktree"
    note = "codes as ints, each distinct code added once with its ids"

    def missing(self) -> str | None:
        try:
            import pybktree  # noqa: F401
        except ImportError:
            return "pybktree is not installed (pip install pybktree)"
        return None

    def build(self) -> None:
        import pybktree

        self.ids_of: dict[int, list[int]] = {}
        for i, code in enumerate(self.items):
            self.ids_of.setdefault(code, []).append(i)
        self.tree = pybktree.BKTree(pybktree.hamming_distance, self.ids_of)

    def find(self, key: int, radius: int) -> list[int]:
        ids_of = self.ids_of
        return [i for _, code in self.tree.find(key, radius) for i in ids_of[code]]


class Imagededup(Peer):
    module, cls = "", ""

    def missing(self) -> str | None:
        try:
            phash = import_imagededup("imagededup.methods.hashing").PHash
            self.search_class = getattr(
                import_imagededup(f"imagededup.handlers.search.{self.module}"), self.cls)
        except Exception as exc:  # noqa: BLE001  (reported in the table)
            return f"imagededup not importable: {type(exc).__name__}: {exc}"[:160]
        self.distance = phash.hamming_distance if self.bits == 64 else _padded(self.bits)
        if self.bits != 64:
            self.note = f"its hamming_distance pads to 64 bits; a copy padding to {self.bits}"
        return None

    def keys(self, codes: np.ndarray) -> list:
        return as_hex(codes)

    def prepare(self, keys: list) -> None:
        self.hash_dict = {str(i): h for i, h in enumerate(keys)}

    def build(self) -> None:
        self.searcher = self.search_class(self.hash_dict, self.distance)

    def find(self, key: str, radius: int) -> list[int]:
        return [int(name) for name, _ in self.searcher.search(key, tol=radius)]


class ImagededupBKTree(Imagededup):
    name, module, cls = "imagededup-bktree", "bktree", "BKTree"


class ImagededupBruteForce(Imagededup):
    name, module, cls = "imagededup-bf", "brute_force_cython", "BruteForceCython"

    def missing(self) -> str | None:
        if self.bits != 64:
            return "not for 256-bit codes: its search holds hashes as unsigned 64-bit ints"
        return super().missing()


def _padded(bits: int):
    def hamming_distance(hash1: str, hash2: str) -> float:  # imagededup's, zfill(bits)
        one = bin(int(hash1, 16))[2:].zfill(bits)
        two = bin(int(hash2, 16))[2:].zfill(bits)
        return np.sum([i != j for i, j in zip(one, two)])
    return hamming_distance


PEER_CLASSES = {c.name: c for c in (PyBKTree, ImagededupBKTree, ImagededupBruteForce)}


# ---------------------------------------------------------------------------------------------
# experiments


def lookalike_join(data: Dataset, codes: np.ndarray, radius: int, sample: np.ndarray,
                   repeat: int, row: JoinRow) -> dict[int, set[int]] | None:
    """Time binary.self_join (best of `repeat`), fill `row`; the sample's neighbour sets."""
    from lookalike.search import binary

    if hasattr(binary, "engine"):
        try:
            n, variants, nbytes = codes.shape
            row.note = f"engine {binary.engine(n, n * variants, nbytes, radius)}"
        except Exception:  # noqa: BLE001  (only a note)
            pass
    sets = None
    for _ in range(repeat):
        try:
            with Meter() as meter:
                hits = binary.self_join(codes, radius)
        except Exception as exc:  # noqa: BLE001
            row.note += f" error: {type(exc).__name__}: {exc}"[:200]
            return None
        if row.wall_s is None or meter.wall_s < row.wall_s:
            row.wall_s, row.cpu_s = meter.wall_s, meter.cpu_s
            row.peak_mb, row.extra_mb = meter.peak_mb, meter.peak_mb - meter.start_mb
        row.pairs = int(hits.query.size)
        sets = neighbour_sets(hits.query, hits.item, sample)
        del hits
    return sets


def numpy_check(data: Dataset, variants: np.ndarray | None, sets: dict[int, set[int]],
                queries: np.ndarray, radius: int) -> str:
    reference = {int(q): reference_neighbours(data, variants, int(q), radius) for q in queries}
    return "numpy " + compare_sets(sets, reference)


def peer_join(peer: Peer, data: Dataset, keys: list, build: Meter, radius: int,
              sample: np.ndarray, budget_s: float, row: JoinRow) -> dict[int, set[int]]:
    """Time peer.find over the sample (within the budget); extrapolate to all N queries."""
    found: dict[int, set[int]] = {}
    spent = 0.0
    with Meter() as meter:
        for q in sample.tolist():
            started = time.perf_counter()
            ids = peer.find(keys[q], radius)
            spent += time.perf_counter() - started
            found[q] = set(ids) - {q}
            if spent > budget_s and len(found) >= MIN_PEER_QUERIES:
                break
    scale = data.n / len(found)
    row.wall_s = build.wall_s + spent * scale
    row.cpu_s = build.cpu_s + meter.cpu_s * scale
    row.pairs = round(sum(len(s) for s in found.values()) * scale / 2)
    row.estimated_from = 0 if len(found) == data.n else len(found)
    row.peak_mb = max(build.peak_mb, meter.peak_mb)
    row.extra_mb = row.peak_mb - build.start_mb
    row.note = (f"build {build.wall_s:.1f} s + {len(found)} of {data.n} queries in "
                f"{spent:.1f} s" + (" x N/sampled" if row.estimated_from else "")
                + (f"; {peer.note}" if peer.note else ""))
    return found


def latency(search_one, queries: list, budget_s: float | None) -> tuple[list[float], list]:
    """Milliseconds per query, and each query's result; stops past the budget, if any."""
    times, results, spent = [], [], 0.0
    for query in queries:
        started = time.perf_counter()
        results.append(search_one(query))
        took = time.perf_counter() - started
        times.append(took * 1000)
        spent += took
        if budget_s is not None and spent > budget_s and len(times) >= MIN_PEER_QUERIES:
            break
    return times, results


def fill_latency(row: LatencyRow, times: list[float], meter: Meter) -> None:
    row.times_ms = times
    row.queries = len(times)
    if times:
        row.p50_ms, row.p99_ms = (float(x) for x in np.percentile(times, [50, 99]))
        row.mean_ms = float(np.mean(times))
    row.peak_mb = meter.peak_mb


def lookalike_latency(data: Dataset, radii: list[int], k: int,
                      lat_variants: np.ndarray) -> list[LatencyRow]:
    """One binary.search call per query; also a prebuilt binary.Searcher and binary.knn,
    where they exist."""
    from lookalike.search import binary

    items, rows = data.codes, len(lat_variants) * lat_variants.shape[1]
    cases = []  # (method, radius shown, setup() -> (one query's function, note))
    for r in radii:
        cases.append(("lookalike search", str(r), lambda r=r: (
            lambda q: binary.search(items, q[None], r), "per call, its set-up included")))
        if hasattr(binary, "Searcher"):
            cases.append(("lookalike Searcher", str(r),
                          lambda r=r: _prebuilt(binary, items, r, rows)))
    if hasattr(binary, "knn"):
        cases.append(("lookalike knn", f"k={k}", lambda: (
            lambda q: binary.knn(items, q[None], k), "per call")))
    out = [] if hasattr(binary, "knn") else [LatencyRow(
        data.bits, data.kind, data.n, "lookalike knn", f"k={k}", note="no binary.knn yet")]
    for method, shown, setup in cases:
        _say(f"{data.bits}-bit {data.kind} N={data.n} {shown}: {method} latency")
        row = LatencyRow(data.bits, data.kind, data.n, method, shown)
        try:
            one, row.note = setup()
            one(lat_variants[0])  # anything lazy happens here, untimed
            with Meter() as meter:
                times, results = latency(one, list(lat_variants), None)
            fill_latency(row, times, meter)
            row.results = [set(h.item.tolist()) for h in results]
        except Exception as exc:  # noqa: BLE001
            row.note = f"error: {type(exc).__name__}: {exc}"[:200]
        out.append(row)
    return out


def _prebuilt(binary, items: np.ndarray, radius: int, rows: int):
    started = time.perf_counter()
    searcher = binary.Searcher(items, radius, rows)
    built = time.perf_counter() - started
    return (lambda q: searcher.search(q[None])), (
        f"Searcher({getattr(searcher, 'method', '?')}) built once for {rows} query codes in "
        f"{built:.2f} s, not counted")


# ---------------------------------------------------------------------------------------------
# one block: one data set at one size, every radius, every experiment


def run_block(data: Dataset, radii: list[int], args,
              missing: dict[str, str]) -> tuple[list[JoinRow], list[LatencyRow]]:
    rng = np.random.default_rng([args.seed, 7, data.n, data.bits])
    sample = rng.choice(data.n, min(args.sample_queries, data.n), replace=False)
    check = sample[:args.check_queries]
    lat_ids = rng.choice(data.n, min(args.latency_queries, data.n), replace=False)
    lat_variants = data.variants(lat_ids)
    joins: list[JoinRow] = []
    lats: list[LatencyRow] = []
    label = dict(bits=data.bits, data=data.kind, n=data.n)
    ours: dict[int, dict[int, set[int]] | None] = {}
    experiments = set(args.experiments)

    if "1" in experiments:
        codes = data.codes.reshape(data.n, 1, -1)
        for r in radii:
            _say(f"{data.bits}-bit {data.kind} N={data.n} r={r}: lookalike self-join V=1")
            row = JoinRow("self-join V=1", method="lookalike", radius=r, **label)
            ours[r] = lookalike_join(data, codes, r, sample, args.repeat, row)
            if ours[r] is not None:
                row.check = numpy_check(data, None, ours[r], check, r)
            joins.append(row)
    if "3" in experiments:
        lats += lookalike_latency(data, radii, args.k, lat_variants)
    if "2" in experiments:
        variants = data.variants()
        for r in radii:
            _say(f"{data.bits}-bit {data.kind} N={data.n} r={r}: lookalike self-join V=8")
            row = JoinRow("self-join V=8", method="lookalike", radius=r, **label)
            sets = lookalike_join(data, variants, r, sample, args.repeat, row)
            if sets is not None:
                row.check = numpy_check(data, variants, sets, check[:max(1, len(check) // 4)], r)
            joins.append(row)
        del variants

    for name in args.peers:
        peer = PEER_CLASSES[name](data.bits)  # a fresh one per block: its structure is freed
        if name not in missing and peer.missing() is None:
            peer_block(peer, data, radii, args, sample, lat_variants, ours, joins, lats)
        del peer
        gc.collect()
    for name, why in missing.items():
        for r in radii if "1" in experiments else []:
            joins.append(JoinRow("self-join V=1", method=name, radius=r, **label, note=why))
    return joins, lats


def peer_block(peer: Peer, data: Dataset, radii: list[int], args, sample: np.ndarray,
               lat_variants: np.ndarray, ours: dict, joins: list, lats: list) -> None:
    label = dict(bits=data.bits, data=data.kind, n=data.n)
    budget = args.peer_budget_s
    _say(f"{data.bits}-bit {data.kind} N={data.n}: {peer.name} build")
    keys = peer.keys(data.codes)
    lat_keys = [peer.keys(v) for v in lat_variants]
    try:
        peer.prepare(keys)
        with Meter() as build:
            peer.build()
    except Exception as exc:  # noqa: BLE001
        note = f"error in build: {type(exc).__name__}: {exc}"[:200]
        joins.extend(JoinRow("self-join V=1", method=peer.name, radius=r, **label, note=note)
                     for r in radii)
        return
    for r in radii:
        if "1" in args.experiments:
            _say(f"{data.bits}-bit {data.kind} N={data.n} r={r}: {peer.name} sampled queries")
            row = JoinRow("self-join V=1", method=peer.name, radius=r, **label)
            try:
                found = peer_join(peer, data, keys, build, r, sample, budget, row)
                row.check = ("same as lookalike: " + compare_sets(ours[r], found)
                             if ours.get(r) is not None else "no lookalike result to compare")
            except Exception as exc:  # noqa: BLE001
                row.note = f"error: {type(exc).__name__}: {exc}"[:200]
            joins.append(row)
        if "3" in args.experiments:
            _say(f"{data.bits}-bit {data.kind} N={data.n} r={r}: {peer.name} latency")
            row = LatencyRow(method=peer.name, radius=str(r), **label,
                             note=f"prebuilt (build {build.wall_s:.1f} s not counted)")

            def one(query_keys: list, radius: int = r) -> set[int]:
                found: set[int] = set()
                for key in query_keys:
                    found.update(peer.find(key, radius))
                return found

            try:
                with Meter() as meter:
                    times, results = latency(one, lat_keys, budget)
                fill_latency(row, times, meter)
                row.results = results
                theirs = next((x for x in lats if x.method == "lookalike search"
                               and x.radius == str(r) and x.n == data.n
                               and x.data == data.kind and x.bits == data.bits), None)
                if theirs is not None and getattr(theirs, "results", None):
                    row.check = "same as lookalike: " + compare_sets(
                        dict(enumerate(theirs.results)), dict(enumerate(results)))
            except Exception as exc:  # noqa: BLE001
                row.note = f"error: {type(exc).__name__}: {exc}"[:200]
            lats.append(row)
    del keys, lat_keys


# ---------------------------------------------------------------------------------------------
# printing


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if value < 1000 else f"{value:,.0f}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {0, 1, len(header) - 1}
    print(f"\n{title}")
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) if i in left else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())


def join_table(rows: list[JoinRow], experiment: str) -> None:
    base = {(r.bits, r.data, r.n, r.radius): r.wall_s for r in rows
            if r.method == "lookalike" and r.experiment == "self-join V=1"}
    out = []
    for r in rows:
        if r.experiment != experiment:
            continue
        ref = base.get((r.bits, r.data, r.n, r.radius))
        ratio = "-" if r.wall_s is None or not ref else f"{r.wall_s / ref:,.1f}x"
        if r.method == "lookalike" and experiment == "self-join V=1":
            ratio = "1"
        pairs = "-" if r.pairs is None else ("~" if r.estimated_from else "") + f"{r.pairs:,}"
        rate = "-" if not r.wall_s else f"{r.n / r.wall_s:,.0f}"
        wall = _num(r.wall_s) + ("*" if r.estimated_from else "")
        out.append([r.method, r.data, f"{r.n:,}", str(r.radius), wall, _num(r.cpu_s), rate,
                    pairs, _num(r.peak_mb, 0), _num(r.extra_mb, 0), ratio,
                    "; ".join(x for x in (r.check, r.note) if x)])
    ratio_name = "x lookalike" if experiment == "self-join V=1" else "x V=1"
    print_table(f"{experiment}  (* = extrapolated from the sampled queries named in the note)",
                ["method", "data", "N", "r", "wall s", "cpu s", "items/s", "pairs",
                 "peak RSS MB", "+RSS MB", ratio_name, "check; note"], out)


def latency_table(rows: list[LatencyRow]) -> None:
    base = {(r.bits, r.data, r.n, r.radius): r.p50_ms for r in rows
            if r.method == "lookalike search"}
    out = []
    for r in rows:
        ref = base.get((r.bits, r.data, r.n, r.radius))
        ratio = "-" if r.p50_ms is None or not ref else f"{r.p50_ms / ref:,.1f}x"
        out.append([r.method, r.data, f"{r.n:,}", r.radius, str(r.queries), _num(r.p50_ms, 3),
                    _num(r.p99_ms, 3), _num(r.mean_ms, 3), _num(r.peak_mb, 0), ratio,
                    "; ".join(x for x in (r.check, r.note) if x)])
    print_table("query latency: one picture (8 variants) against N codes",
                ["method", "data", "N", "r", "queries", "p50 ms", "p99 ms", "mean ms",
                 "peak RSS MB", "p50 x search", "check; note"], out)


def print_block(bits: int, joins: list[JoinRow], lats: list[LatencyRow]) -> None:
    join_table([r for r in joins if r.bits == bits], "self-join V=1")
    join_table([r for r in joins if r.bits == bits], "self-join V=8")
    latency_table([r for r in lats if r.bits == bits])
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# main


def _sizes(text: str) -> list[int]:
    scale = {"k": 1_000, "m": 1_000_000}
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        out.append(int(float(part[:-1]) * scale[part[-1]]) if part[-1] in scale else int(part))
    return out


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=_sizes, default=_sizes("100k,1M"),
                   help="numbers of codes, e.g. 20000,100k,1M (default 100k,1M)")
    p.add_argument("--bits", type=_ints, default=[64, 256], help="code widths (default 64,256)")
    p.add_argument("--radii", type=_ints, default=[4, 8, 12],
                   help="radii for 64-bit codes (default 4,8,12)")
    p.add_argument("--radii-256", type=_ints, default=[31],
                   help="radii for 256-bit codes (default 31)")
    p.add_argument("--data", default="random,clustered,correlated",
                   help="data sets among random,clustered,correlated (default all three)")
    p.add_argument("--from-index", type=Path, metavar="PATH",
                   help="also a data set of the pHash/PDQ codes of this lookalike index")
    p.add_argument("--sample-queries", type=int, default=2000,
                   help="items the peers answer as queries, then extrapolated (default 2000)")
    p.add_argument("--peer-budget-s", type=float, default=120.0,
                   help="at most this many seconds of queries per peer and radius; fewer "
                        "sampled queries then (default 120)")
    p.add_argument("--check-queries", type=int, default=100,
                   help="sampled queries checked against NumPy brute force (default 100; "
                        "a quarter of them for V=8)")
    p.add_argument("--latency-queries", type=int, default=1000,
                   help="single-picture queries for the latency table (default 1000)")
    p.add_argument("--k", type=int, default=10, help="k for binary.knn latency (default 10)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help=f"peers to run (default {','.join(PEERS)})")
    p.add_argument("--skip-peers", action="store_true", help="lookalike only")
    p.add_argument("--experiments", default="1,2,3",
                   help="1 self-join V=1, 2 self-join V=8, 3 query latency (default 1,2,3)")
    p.add_argument("--repeat", type=int, default=1,
                   help="lookalike self-joins: best of this many runs (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, metavar="PATH", help="write every row here")
    args = p.parse_args(argv)
    args.data = [k.strip() for k in args.data.split(",") if k.strip()]
    for kind in args.data:
        if kind not in KINDS[:3]:
            p.error(f"unknown data set {kind!r}; choose among {', '.join(KINDS[:3])}")
    if args.from_index:
        args.data.append("index")
    args.peers = [] if args.skip_peers else [x.strip() for x in args.peers.split(",") if x]
    for name in args.peers:
        if name not in PEER_CLASSES:
            p.error(f"unknown peer {name!r}; choose among {', '.join(PEERS)}")
    args.experiments = [x.strip() for x in args.experiments.split(",") if x.strip()]
    return args


def warm_up(bits: int, radius: int) -> None:
    """Untimed small calls, so that lazy imports and JIT compilation are not measured."""
    from lookalike.search import binary

    data = Dataset("random", bits, make_codes("random", 2000, bits, 1), 1)
    variants = data.variants()
    binary.self_join(data.codes.reshape(data.n, 1, -1), radius)
    binary.self_join(variants, radius)
    # 2,000 codes go to FAISS; force the multi-index engine once too, so that its numba
    # kernels are compiled (or loaded from numba's cache) here and not in the first timed row.
    try:
        binary.self_join(data.codes.reshape(data.n, 1, -1), radius, method="mih")
        binary.self_join(variants, radius, method="mih")
    except (TypeError, ValueError):  # an older binary.self_join, or no block plan
        pass
    binary.search(data.codes, variants[:1], radius)
    if hasattr(binary, "knn"):
        binary.knn(data.codes, variants[:1], 5)


def describe_machine() -> None:
    import platform

    from lookalike.search import binary

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {cores} usable cores, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"lookalike search: {binary.__file__} (knn: "
          f"{'yes' if hasattr(binary, 'knn') else 'not present'})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # imagededup's BKTree recurses
    describe_machine()
    all_joins: list[JoinRow] = []
    all_lats: list[LatencyRow] = []
    blocks = 0
    for bits in args.bits:
        if bits % 8:
            print(f"\nskipping {bits}-bit codes: not a whole number of bytes")
            continue
        radii = args.radii if bits == 64 else args.radii_256
        missing = {name: why for name in args.peers
                   if (why := PEER_CLASSES[name](bits).missing())}
        for name, why in missing.items():
            print(f"{bits}-bit: peer {name} not run: {why}")
        warm_up(bits, max(radii))
        for kind in args.data:
            seen: set[int] = set()
            for size in args.sizes:
                if kind == "index":
                    data = load_index_dataset(args.from_index, size, bits, args.seed)
                    if isinstance(data, str):
                        print(f"\n{bits}-bit index data skipped: {data}")
                        break
                    if data.n in seen:
                        continue
                else:
                    data = Dataset(kind, bits, make_codes(kind, size, bits, args.seed), args.seed)
                seen.add(data.n)
                blocks += 1
                load = os.getloadavg()[0]
                print(f"\n=== {bits}-bit codes, {kind}, N={data.n:,}, radii {radii}"
                      f"{', ' + data.note if data.note else ''} (load average {load:.2f})")
                joins, lats = run_block(data, radii, args, missing)
                all_joins += joins
                all_lats += lats
                print_block(bits, joins, lats)
                del data
                gc.collect()
    if blocks > 1:
        print("\n=== all results")
        for bits in args.bits:
            print_block(bits, all_joins, all_lats)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (2 cores: above ~2 means "
          "others were competing and the times are high)")
    if args.json:
        args.json.write_text(json.dumps({
            "args": {k: str(v) for k, v in vars(args).items()},
            "self_joins": [asdict(r) for r in all_joins],
            "latency": [asdict(r) for r in all_lats]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
