"""Hypothesis settings for the property tests: no deadline (FAISS and SciPy warm up on first
use), a modest number of examples so the suite stays fast; HYPOTHESIS_PROFILE=thorough for
more."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default-lookalike", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default-lookalike"))
