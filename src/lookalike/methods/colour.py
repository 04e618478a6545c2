"""A colour thumbnail: the picture area-averaged to 8 x 8 cells in CIELAB (192 bytes).

The hashes are grey and global, so they pair a picture with the same picture in another
colour (a product in two colours: a different product). The fast mode stores this thumbnail
and `dupes` drops hash pairs whose colours differ (search/verify.same_colours).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..types import Signature
from .lab import lab_of
from .registry import MethodSpec, Picture, _area, register_method

SIDE = 8
SPEC = MethodSpec(name="colour", version=1, kind="exact", bits=3 * SIDE * SIDE * 8,
                  variants=1, default_radius=0, min_quality=0.0, params=f"lab,{SIDE}x{SIDE}",
                  description="8x8 CIELAB colour thumbnail (the fast mode's recolour check)",
                  matches=False)


def lab_thumbnail(rgb: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(3, side, side) uint8 CIELAB (a and b offset by 128), area-averaged."""
    return lab_of(np.ascontiguousarray(_area(np.ascontiguousarray(rgb), side, side)))


@register_method(SPEC)
class ColourThumbnail:
    spec = SPEC

    def compute(self, pictures: Sequence[Picture]) -> list[Signature]:
        if not pictures:
            return []
        # One colour transform call for the whole batch (a call cost more than converting a
        # thumbnail's 64 pixels: 0.136 -> 0.099 ms a picture on 256-px JPEGs): the thumbnails
        # side by side, converted pixel by pixel, so each comes out as if converted alone.
        cells = [_area(np.ascontiguousarray(picture.rgb), SIDE, SIDE) for picture in pictures]
        labs = lab_of(np.concatenate(cells, axis=1))  # (3, SIDE, SIDE * len(pictures))
        return [Signature(SPEC.name, SPEC.version, SPEC.params,
                          np.ascontiguousarray(labs[:, :, SIDE * i:SIDE * (i + 1)]).tobytes())
                for i in range(len(pictures))]
