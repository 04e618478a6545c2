"""PDQ (Meta's 256-bit perceptual hash) through the `pdqhash` package, 8 variants at once."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Signature
from .registry import MethodSpec, Picture, register_method

SPEC = MethodSpec(name="pdq", version=1, kind="hamming", bits=256, variants=8,
                  default_radius=31, min_quality=50.0, params="",
                  description="PDQ 256-bit DCT hash (pdqhash), quality-filtered")

# For our variant k (methods/dihedral.py), the index in pdqhash.compute_dihedral's output.
# Its variants come from the DCT, so they differ by ~10-20 bits from hashing a transformed
# picture (PDQ's box filter is not mirror-symmetric); well inside the match radius.
_ORDER = [0, 1, 2, 3, 5, 6, 4, 7]


@register_method(SPEC)
class PDQ:
    spec = SPEC

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        import pdqhash

        out = []
        for picture in pictures:
            gray = np.asarray(picture.gray)
            rgb = np.repeat(gray[:, :, None], 3, axis=2)  # PDQ's own luma of grey is grey
            hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
            codes = np.stack([np.asarray(h, dtype=np.uint8) for h in hashes])
            codes = codes[_ORDER]
            packed = np.packbits(codes, axis=1).reshape(-1)
            out.append(Signature(SPEC.name, SPEC.version, SPEC.params, packed.tobytes(),
                                 float(quality)))
        return out
