"""Exact signatures: the same decoded pixels, whatever the file's metadata or container."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xxhash

from ..types import Signature
from .registry import EXACT_EVIDENCE, MethodSpec, Picture, register_method

SPEC = MethodSpec(name="pixels", version=1, kind="exact", bits=128, variants=1,
                  default_radius=0, min_quality=0.0, params="",
                  description="xxh3-128 of the upright decoded RGB pixels",
                  evidence_rank=EXACT_EVIDENCE)


@register_method(SPEC)
class PixelHash:
    spec = SPEC

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        out = []
        for picture in pictures:
            rgb = np.ascontiguousarray(picture.rgb)
            digest = xxhash.xxh3_128()
            digest.update(f"RGB:{rgb.shape[1]}x{rgb.shape[0]}:".encode())
            digest.update(rgb)
            out.append(Signature(SPEC.name, SPEC.version, SPEC.params, digest.digest()))
        return out
