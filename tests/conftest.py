"""Test configuration that makes silent bugs loud (float64, no implicit rank promotion)."""

import os

# The suite runs many small programs, so compiling is most of its time: it compiles with the fast
# XLA profile that `ufm verify` uses (set before JAX starts its backend; UFM_COMPILE=optimized
# keeps XLA's defaults). On tests/test_custom_loss.py this cut the CPU time from 44.9 s to 15.9 s.
from ufm.cli import use_compile_profile

use_compile_profile("fast")
# Hermetic: commands run in-process (ufm.cli.main) would otherwise turn on the user's persistent
# compilation cache (~/.cache/ufm/jax) for the rest of the test process.
os.environ.setdefault("UFM_NO_COMPILATION_CACHE", "1")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

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
