"""Rendering results for people (tables) and for tools (JSON, CSV)."""
