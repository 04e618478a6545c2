"""Transforms for planted duplicates, and measures of how well they are found."""
