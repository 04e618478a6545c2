"""Pairs of indexed pictures verified from their stored `local` signatures (verify.py's
geometric check, on all cores), with the index's inlier threshold: what dupes --partial,
the cascade's local-feature check and the thorough mode's decisions all ask."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

from ..errors import LookalikeError
from ..index.store import Index
from ..methods import local
from ..methods.registry import get_spec
from .verify import MIN_INLIERS, Verification, thumbnails_agree, verify

MIN_FEATURES = 2 * MIN_INLIERS  # fewer on either side: verification cannot judge the pair


@dataclass(frozen=True)
class ContentVerification:
    a: int  # content ids
    b: int
    verification: Verification
    judgeable: bool = True  # both pictures have enough features to tell
    thumbnails_agree: bool | None = None  # for pairs not judgeable: colour thumbnails agree


def judgeable(a: local.LocalSignature, b: local.LocalSignature) -> bool:
    return min(len(a.plain), len(b.plain)) >= MIN_FEATURES


def verify_content_pairs(index: Index, pairs: Iterable[tuple[int, int]],
                         min_inliers: int | None = None,
                         transforms: dict[tuple[int, int], int] | None = None
                         ) -> list[ContentVerification]:
    """Verify pairs of contents from their stored `local` signatures, in blocks, on all
    cores (threads: FAISS and OpenCV release the GIL); pairs where either side has no
    signature are left out of the result. Pairs too plain to judge get their colour
    thumbnails compared, under `transforms[(a, b)]` (a to b) when a hash found one."""
    spec = get_spec("local")
    threshold = min_inliers or stored_min_inliers(index)
    pairs = sorted(set(pairs))
    out: list[ContentVerification] = []
    with ThreadPoolExecutor(cpu_count()) as pool:
        for start in range(0, len(pairs), 4096):
            block = pairs[start:start + 4096]
            values = index.values_for(spec, {c for pair in block for c in pair})
            sigs = {cid: local.unpack(value) for cid, value in values.items()}
            todo = [(a, b) for a, b in block if a in sigs and b in sigs]

            def run(chunk: list[tuple[int, int]]) -> list[ContentVerification]:
                return [_verified(a, b, sigs[a], sigs[b], threshold,
                                  (transforms or {}).get((a, b), 0)) for a, b in chunk]

            chunks = [todo[i:i + 256] for i in range(0, len(todo), 256)]
            for part in pool.map(run, chunks):
                out.extend(part)
    return out


def _verified(a: int, b: int, sa: local.LocalSignature, sb: local.LocalSignature,
              threshold: int, transform: int) -> ContentVerification:
    if judgeable(sa, sb):
        return ContentVerification(a, b, verify(sa, sb, threshold), True)
    agree = None
    if sa.thumbnail is not None and sb.thumbnail is not None:
        agree = thumbnails_agree(sa.thumbnail, sb.thumbnail, transform)
    return ContentVerification(a, b, verify(sa, sb, threshold), False, agree)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def stored_min_inliers(index: Index) -> int:
    """The inlier count `lookalike calibrate` stored for `local`, else the default."""
    stored = index.thresholds().get("local")
    return MIN_INLIERS if stored is None else max(4, int(round(stored.value)))


def require_local(index: Index) -> None:
    """Raise unless the index holds `local` signatures of this version and parameters (an
    index scanned by an older lookalike has other ones: they must be computed again)."""
    if not index.has_signatures(get_spec("local")):
        older = " (only of an older version)" if "local" in index.methods_present() else ""
        raise LookalikeError(f"the index has no 'local' signatures{older}; run 'lookalike scan "
                             "DIR --method local' (with the other methods you use) first")
