"""The 8 flips and 90-degree rotations of a square grid, in one fixed order."""

from __future__ import annotations

import numpy as np

# Variant k is rot90(x, k % 4) of x (k < 4) or of its mirror fliplr(x) (k >= 4);
# np.rot90 turns counter-clockwise.
NAMES = ("identity", "rot90", "rot180", "rot270",
         "mirror", "mirror+rot90", "mirror+rot180", "mirror+rot270")
INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
TRANSPOSES = (False, True, False, True, False, True, False, True)


def variant(array: np.ndarray, k: int) -> np.ndarray:
    """Variant k of the last two axes of `array`."""
    if k >= 4:
        array = array[..., ::-1]
    return np.rot90(array, k % 4, axes=(-2, -1))


def all_variants(array: np.ndarray) -> np.ndarray:
    """(..., H, W) -> (..., 8, H, W) for square grids."""
    return np.stack([variant(array, k) for k in range(8)], axis=-3)


def compose(first: int, then: int) -> int:
    """The variant that does variant `first`, then variant `then`.

    Variant k is rot^r after mirror^m (k = 4m + r); a mirror turns a rotation the other way
    round (mirror rot^r = rot^-r mirror), hence the sign."""
    m1, r1 = divmod(first, 4)
    m2, r2 = divmod(then, 4)
    return 4 * ((m1 + m2) % 2) + (r2 + (-r1 if m2 else r1)) % 4


def describe(k: int) -> str:
    """Name of the transform that turns the indexed picture into the query, when the query's
    variant k matched the indexed picture's identity code."""
    return NAMES[INVERSE[k]]
