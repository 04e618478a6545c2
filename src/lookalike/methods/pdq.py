"""PDQ (Meta's 256-bit perceptual hash) through the `pdqhash` package, 8 variants at once.

`pdq` hashes a 64x64 Lanczos grey thumbnail. At that size PDQ's own box filter does nothing,
so the 8 dihedral codes pdqhash derives from one DCT are exactly the codes of the flipped and
rotated thumbnails (tests/unit/test_reference_pdq.py), and hashing is ~20x faster than at full
size. On full-size pictures pdqhash's derived variants are 35 bits (up to 134) away from hashing the
transformed picture, which loses most rotated copies. `pdq-ref` is PDQ on the picture itself,
bit-compatible with other PDQ hash lists (JPEGs over 512 px are decoded in draft mode,
so it matches pdqhash on the same draft-decoded pixels), variants as pdqhash derives them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Signature
from .registry import MethodSpec, Picture, register_method

# For our variant k (methods/dihedral.py), the index in pdqhash.compute_dihedral's output.
_ORDER = [0, 1, 2, 3, 5, 6, 4, 7]


class PDQ:
    def __init__(self, spec: MethodSpec, thumbnail: int | None) -> None:
        self.spec, self.thumbnail = spec, thumbnail

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        import pdqhash

        out = []
        for picture in pictures:
            if self.thumbnail:
                gray = picture.gray_resized(self.thumbnail, self.thumbnail)
            else:
                gray = np.asarray(picture.decoded.image.convert("L"))  # as pdqhash users do
            gray = np.ascontiguousarray(gray)
            rgb = np.repeat(gray[:, :, None], 3, axis=2)  # PDQ's luma of grey is that grey
            hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
            codes = np.stack([np.asarray(h, dtype=np.uint8) for h in hashes])[_ORDER]
            packed = np.packbits(codes, axis=1).reshape(-1)
            out.append(Signature(self.spec.name, self.spec.version, self.spec.params,
                                 packed.tobytes(), float(quality)))
        return out


SPEC = MethodSpec(name="pdq", version=1, kind="hamming", bits=256, variants=8,
                  default_radius=24, min_quality=50.0, params="thumbnail=64",
                  description="PDQ 256-bit DCT hash of a 64x64 grey thumbnail (pdqhash)")
SPEC_REF = MethodSpec(name="pdq-ref", version=1, kind="hamming", bits=256, variants=8,
                      default_radius=31, min_quality=50.0, params="",
                      description="reference PDQ on the picture itself (pdqhash)")
register_method(SPEC)(lambda: PDQ(SPEC, 64))
register_method(SPEC_REF)(lambda: PDQ(SPEC_REF, None))
