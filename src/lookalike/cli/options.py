"""Options shared by several commands, declared once with their bounds and help."""

from __future__ import annotations

import typer

from ..arguments import MAX_LIMIT, MAX_WORKERS  # noqa: F401  (re-exported for commands)
from ..search.dupes import MAX_RADIUS

MAX_DISTANCE = typer.Option(
    None, "--max-distance", "-d", min=0, max=MAX_RADIUS, metavar="BITS",
    help=f"Largest Hamming distance of a hash match (0 to {MAX_RADIUS}; default: calibrated, "
         "or the method's own).")
WORKERS = typer.Option(None, "--workers", "-j", min=1, max=MAX_WORKERS, metavar="N",
                       help="Processes (default: cores).")


def limit(help_text: str, default: int = 20) -> typer.models.OptionInfo:
    """`--limit`: matches listed per picture, 1 to MAX_LIMIT."""
    return typer.Option(default, "--limit", min=1, max=MAX_LIMIT, metavar="N", help=help_text)
