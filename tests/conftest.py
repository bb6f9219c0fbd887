"""Shared test set-up: the repository root on sys.path, hypothesis profiles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.register_profile("long", deadline=None, max_examples=5000)
# Mutation testing (`mutmut run`, pyproject.toml): few, reproducible examples per
# mutant; the targeted tests do the killing, the properties add coverage.
settings.register_profile(
    "mutation",
    deadline=None,
    suppress_health_check=list(HealthCheck),
    max_examples=20,
    derandomize=True,
    database=None,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The PC/SC stack's fixtures, shared by tests/integration and tests/interop (one
# session pcscd for both when they run together).
pytest_plugins = ["tests.pcsc_stack"]
