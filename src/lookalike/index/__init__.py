"""The embedded index: SQLite tables for files, contents, signatures and runs."""

from .store import Index, default_index_path, find_index, open_index

__all__ = ["Index", "default_index_path", "find_index", "open_index"]
