"""Hypothesis profiles for the fuzz tests: ``suite`` (the default: a few hundred examples per
property, no deadline, so the folder runs in well under a minute) and ``ci`` (more examples);
``HYPOTHESIS_PROFILE=ci pytest tests/fuzz`` picks one. scripts/fuzz.py runs the same checks by
the ten thousand."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "database": None,  # no .hypothesis folder in the checkout; failures print their example
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "derandomize": False,
}
settings.register_profile("suite", max_examples=200, **_COMMON)
settings.register_profile("ci", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
