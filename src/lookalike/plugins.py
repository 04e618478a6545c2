"""Third-party methods and models, found through entry points.

As datasette does with its DEFAULT_PLUGINS, lookalike's own methods and models register with
the same calls a plugin makes (methods/registry.register_method and register_family,
models/registry.register_model); the built-ins are imported directly, so a source tree that
was never installed still has them, and only other packages come through entry points:

    [project.entry-points."lookalike.methods"]
    mhash = "lookalike_mhash"            # a module: importing it registers its methods
    [project.entry-points."lookalike.models"]
    mine = "lookalike_mine:register"     # or a function of no arguments that registers them

A plugin that fails (an import error, an exception, a name lookalike already has) is refused
whole: what it registered is taken back, a warning names it, and lookalike goes on. This
module is the loader only; each registry decides when to call it (on its first lookup).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, Callable

log = logging.getLogger(__name__)

METHODS_GROUP = "lookalike.methods"
MODELS_GROUP = "lookalike.models"
BUILTIN = "lookalike"  # the origin of everything lookalike itself registers


@dataclass(frozen=True)
class Plugin:
    group: str
    name: str  # the entry point's name
    value: str  # what it points at: "module" or "module:function"
    origin: str  # how registrations from it are labelled: "distribution version (name)"
    error: str | None = None  # why it was refused; None when it loaded


_state = threading.local()
_loaded: dict[str, list[Plugin]] = {}


def current_origin() -> str:
    """The origin of the plugin whose code is running in this thread, else BUILTIN."""
    return getattr(_state, "origin", None) or BUILTIN


def load_group(group: str, forget: Callable[[str], None],
               accept: Callable[[Any], None] = lambda result: None) -> list[Plugin]:
    """Load every entry point of `group`: import it, and call it when it is a function
    (`accept` gets what it returned). A plugin that raises is refused: `forget(origin)` takes
    back what it registered, and a warning names it."""
    out: list[Plugin] = []
    for point in _entry_points(group):
        dist = getattr(point, "dist", None)
        label = f"{dist.name} {dist.version}" if dist is not None else point.value
        origin = f"{label} ({point.name})"
        _state.origin = origin
        try:
            loaded = point.load()
            if not isinstance(loaded, ModuleType):
                accept(loaded())
        except Exception as exc:  # noqa: BLE001  (any failure of foreign code refuses it)
            forget(origin)
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("lookalike plugin %s (%s = %r) refused: %s", origin, group,
                        point.value, reason)
            out.append(Plugin(group, point.name, point.value, origin, reason))
        else:
            out.append(Plugin(group, point.name, point.value, origin))
        finally:
            _state.origin = None
    _loaded[group] = out
    return out


def plugins(group: str | None = None) -> list[Plugin]:
    """The plugins loaded so far (refused ones too, with their error)."""
    return [p for g, found in _loaded.items() if group in (None, g) for p in found]


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    try:
        found = metadata.entry_points(group=group)
    except Exception as exc:  # noqa: BLE001  (a broken installed distribution's metadata)
        log.warning("cannot read the %s entry points: %s", group, exc)
        return []
    # One entry per name and value: a distribution found twice on the path (an editable
    # install and its build folder, say) is one plugin.
    unique = {(p.name, p.value): p for p in found}
    return sorted(unique.values(), key=lambda p: (p.name, p.value))
