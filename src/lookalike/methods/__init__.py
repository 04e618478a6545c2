"""Signature methods, all behind one registry (see registry.py).

lookalike's own methods are its default plugins: importing their modules registers them with
the calls a third-party plugin makes; those come from "lookalike.methods" entry points
(plugins.py), loaded on the first lookup.
"""

# Importing a method module registers its methods: all of them, before registry.py is used.
from . import colour, embedding, exact, health, local, pdq, perceptual  # noqa: F401
from .registry import (MethodSpec, Picture, create_method, get_spec, list_methods,
                       method_origin, register_family, register_method)

__all__ = ["MethodSpec", "Picture", "create_method", "get_spec", "list_methods",
           "method_origin", "register_family", "register_method"]
