"""Signature methods, all behind one registry (see registry.py)."""

# Importing a method module registers its methods: all of them, before registry.py is used.
from . import colour, embedding, exact, local, pdq, perceptual  # noqa: F401
from .registry import MethodSpec, Picture, create_method, get_spec, list_methods, register_method

__all__ = ["MethodSpec", "Picture", "create_method", "get_spec", "list_methods", "register_method"]
