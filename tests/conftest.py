"""Test configuration that makes silent bugs loud (float64, no implicit rank promotion)."""

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# JAX compiles dominate test time: no deadline, modest example counts.
settings.register_profile("ufm", deadline=None, max_examples=10, derandomize=False, print_blob=True)
settings.load_profile("ufm")


@pytest.fixture(autouse=True)
def _x64():
    jax.config.update("jax_enable_x64", True)
    yield
