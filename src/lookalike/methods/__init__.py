"""Signature methods, all behind one registry (see registry.py)."""

from .registry import MethodSpec, Picture, create_method, get_spec, list_methods, register_method

__all__ = ["MethodSpec", "Picture", "create_method", "get_spec", "list_methods", "register_method"]
