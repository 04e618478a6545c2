"""What makes two pictures duplicates, as one object shared by every search: find_pairs,
find_groups, query, cross_pairs and plan_split take it as `options=`, and the Collection
facade (lookalike/collection.py) passes it along."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..arguments import in_range
from ..errors import BoundError
from .group import LINKAGES
from .rule import MAX_RADIUS

# Chosen by measurement on bench/make_collection.py's collection (README, "Grouping").
DEFAULT_LINKAGE = "complete"


@dataclass(frozen=True)
class SearchOptions:
    """Search settings; every field has the command line's default.

    method: "auto" (the cascade), or one method ("phash", "embed", "pixels", ...).
    max_distance: the method's Hamming radius (for "auto", pHash's); None: the calibrated
        or measured default. confirm_distance: the confirming dHash's radius in "auto".
    similarity, model: the least cosine similarity and the model of embedding pairs.
    calibrated: without max_distance, use the radius stored by `lookalike calibrate`.
    verify: hash and embedding pairs must also pass local-feature verification.
    linkage: how pairs become groups: "complete" (every two members alike), "connected",
        "star". where: only files whose metadata has these key=value pairs.
    decisions: leave out pairs a person marked not-duplicate (`lookalike decide`).
    """

    method: str = "auto"
    max_distance: int | None = None
    confirm_distance: int | None = None
    similarity: float | None = None
    model: str | None = None
    calibrated: bool = True
    verify: bool = False
    linkage: str = DEFAULT_LINKAGE
    where: Mapping[str, str] | None = None
    decisions: bool = True

    def __post_init__(self) -> None:
        in_range(self.max_distance, 0, MAX_RADIUS, "max_distance")
        in_range(self.confirm_distance, 0, MAX_RADIUS, "confirm_distance")
        in_range(self.similarity, -1.0, 1.0, "similarity")
        if self.linkage not in LINKAGES:
            raise BoundError(f"unknown linkage {self.linkage!r}; choose one of "
                             f"{', '.join(LINKAGES)}")
        if not isinstance(self.method, str) or not self.method:
            raise BoundError(f"method must be a method name, not {self.method!r}")

    def replace(self, **changes: Any) -> "SearchOptions":
        """A copy with `changes` (field=value), checked like a new one."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise BoundError(f"unknown search setting {', '.join(unknown)}; the settings are "
                             f"{', '.join(known)}")
        return dataclasses.replace(self, **changes)


DEFAULT = SearchOptions()


def resolve(options: SearchOptions | None, **keywords: Any) -> SearchOptions:
    """The settings of one call: `options` when given, else the keyword arguments.

    A function that takes both `options` and the old keywords calls this with the keywords
    it received; giving `options` and a keyword that differs from its default is refused,
    since one of the two would be silently ignored."""
    if options is None:
        return SearchOptions(**keywords)
    if not isinstance(options, SearchOptions):
        raise BoundError(f"options must be a SearchOptions, not {type(options).__name__}")
    clash = sorted(name for name, value in keywords.items()
                   if value != getattr(DEFAULT, name))
    if clash:
        raise BoundError(f"give {', '.join(clash)} inside options= or as keywords, not both")
    return options
