"""Where files come from: folders and lists of paths."""

from .files import read_path_list, refs_from_paths
from .folders import WalkOptions, walk

__all__ = ["WalkOptions", "read_path_list", "refs_from_paths", "walk"]
