"""Layout regions of a page, collage or screenshot: computed in methods/regions.py (the local
method stores each picture's tiles at scan time, below this layer); named here too, so that
search modules and their callers read them where they always have."""

from ..methods.regions import (EDGE, GUTTER, MAX_REGIONS, MIN_SIDE, NOISE, WORK_SIDE,  # noqa: F401
                               Box, content_mask, propose)

__all__ = ["EDGE", "GUTTER", "MAX_REGIONS", "MIN_SIDE", "NOISE", "WORK_SIDE", "Box",
           "content_mask", "propose"]
