"""Command-line edge: thin commands over the library."""
