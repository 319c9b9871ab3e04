"""Test configuration that makes silent bugs loud (float64, no implicit rank promotion)."""

import os

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# JAX compiles dominate test time: no deadline, modest example counts.
# Locally every run draws new examples; under CI (CI=true) the draws are derandomized so that a
# submission is judged on a reproducible set of instances.
settings.register_profile("ufm", deadline=None, max_examples=10, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("ufm"), derandomize=True)
# UFM_HYPOTHESIS_PROFILE=thorough: 200+ examples per property (run locally before a release; the
# draws' reach, K 2..8, n 1..6, d 1..2K, every loss / bias mode / sign, is in tests/test_properties.py).
settings.register_profile("thorough", parent=settings.get_profile("ufm"), max_examples=200)
_profile = os.environ.get("UFM_HYPOTHESIS_PROFILE")
settings.load_profile(_profile if _profile else
                      "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "ufm")


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)
    yield
