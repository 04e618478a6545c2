"""What every test shares: no lookalike.toml of the person running the tests (in the home
folder or the current folder) may change a result, so the config file is switched off for
this process and every command it starts; tests of the config file name their own."""

from __future__ import annotations

import os

os.environ["LOOKALIKE_CONFIG"] = os.devnull
