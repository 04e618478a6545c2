"""Every setting lookalike reads from the environment, with its default and help, in one table
(README, "Settings", is checked against it by tests/unit/test_settings.py). Command-line flags,
where a setting has one, take precedence over the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str
    tests_only: bool = False


SETTINGS: dict[str, Setting] = {s.env: s for s in (
    Setting("LOOKALIKE_INDEX", "", "The index file to use when a command gets no --index "
            "(instead of searching the current folder and its parents)."),
    Setting("LOOKALIKE_CEILING_DIRECTORIES", "", "Folders, separated by ':' (';' on Windows), "
            "above which the search for an index does not go, like git's "
            "GIT_CEILING_DIRECTORIES; the home folder always is one."),
    Setting("LOOKALIKE_CACHE", "", "The model cache folder (default: "
            "$XDG_CACHE_HOME/lookalike/models, or ~/.cache/lookalike/models)."),
    Setting("LOOKALIKE_OFFLINE", "", "1, true, yes or on: never download a model, use only "
            "what the cache holds (as --offline)."),
    Setting("LOOKALIKE_TOKEN", "", "The bearer token of `lookalike serve` (as --token-file)."),
    Setting("LOOKALIKE_LOG", "WARNING", "Log level of the command line: DEBUG, INFO, WARNING, "
            "ERROR."),
    Setting("LOOKALIKE_TEST_APPLY_DELAY", "", "Seconds `apply` waits after each action, so a "
            "test can kill it in its middle.", tests_only=True),
)}


def setting(env: str) -> str:
    """The value of the setting named `env`: the environment's, else its default."""
    return os.environ.get(env) or SETTINGS[env].default


def is_true(env: str) -> bool:
    return setting(env).strip().lower() in ("1", "true", "yes", "on")
