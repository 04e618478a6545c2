"""How two files match, in plain words: "mirrored copy · similarity 97%" rather than
"phash d=2 mirror". One place for the `dupes` table, the HTML report and the web UI (which
gets the words from the API)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..index.paths import display_path
from ..methods.dihedral import NAMES

if TYPE_CHECKING:
    from ..search.evidence import Evidence
    from ..types import Match

# methods/dihedral.py's turns are counter-clockwise: rot90 turns the picture a quarter left.
TURNS = {"identity": "", "rot90": "rotated 90° counter-clockwise", "rot180": "rotated 180°",
         "rot270": "rotated 90° clockwise"}


def turn_words(transform: str) -> str:
    """'mirror+rot90' -> 'mirrored and rotated 90° counter-clockwise'; '' for identity."""
    if transform not in NAMES:
        return transform
    mirrored = transform.startswith("mirror")
    turn = TURNS["rot" + transform.split("rot")[1] if "rot" in transform else "identity"]
    if mirrored and turn:
        return f"mirrored and {turn}"
    return "mirrored" if mirrored else turn


def percent(score: float) -> str:
    """A score in 0..1 as a whole percentage, never 100% unless it is exactly 1."""
    value = max(0.0, min(1.0, float(score)))
    shown = round(value * 100)
    return f"{99 if shown == 100 and value < 1.0 else shown}%"


def match_words(method: str, score: float | None = None, transform: str = "identity",
                formats: tuple[str, str] | None = None, other: str | None = None) -> str:
    """One match in words: "mirrored copy of a.png · similarity 97%".

    method: "bytes", "pixels", a hash name, "embed" or "local"; score: 1.0 for identical,
    lower for less alike (Match.score; never shown for bytes and pixels); formats: this file's
    and the other's format, when known; other: the name of the file it matched."""
    of = f" of {other}" if other else ""
    if method == "bytes":
        return f"same bytes as {other}" if other else "identical file (same bytes)"
    if method == "pixels":
        words = f"same pixels as {other}" if other else "same pixels"
        if formats and formats[0] and formats[1] and formats[0] != formats[1]:
            return f"{words}, other file format ({formats[0]} and {formats[1]})"
        return words if other else "same pixels, other file"
    learned = method in ("embed", "local")  # descriptors and local features see edits
    kind = "edited copy" if learned else "copy"
    turned = turn_words(transform)
    if not turned:
        words = f"{kind}{of}" if learned else f"resized or re-encoded copy{of}"
    elif turned == "mirrored":
        words = f"mirrored {kind}{of}"
    else:
        words = f"{kind}{of}, {turned}"
    if score is not None:
        words += f" · similarity {percent(score)}"
    return words


def pair_words(match: "Match") -> str:
    """How b matches a (a Match of find_pairs or of a query), in words: "mirrored copy ·
    similarity 97%" (the thorough mode's normalised descriptor score is a score, not a
    similarity)."""
    if match.evidence:
        return f"{match_words(match.method, None, match.transform)} · score {match.score:.2f}"
    return match_words(match.method, match.score, match.transform)


def evidence_words(ev: "Evidence", formats: tuple[str, str] = ("", "")) -> str:
    """How a grouped file matched its group (search/evidence.py), as the `dupes` table, the
    report and the web UI say it; formats: this file's and the other's."""
    return match_words(ev.method, ev.score, ev.transform, formats,
                       os.path.basename(display_path(ev.other)))


def partial_words(relation: str, width_fraction: float | None = None) -> str:
    """A partial copy in words: relation "same", "inside" or "overlap" (search/partial.py);
    width_fraction: the share of the larger picture's width the smaller one covers."""
    if relation == "inside":
        where = f", at {percent(width_fraction)} of its width" if width_fraction else ""
        return f"a crop of it, or placed inside it{where}"
    if relation == "overlap":
        return "overlaps (a crop sharing part of the picture)"
    return "the same picture"
