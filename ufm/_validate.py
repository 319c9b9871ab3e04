"""Input checks shared by the public constructors.

Every check runs on concrete values only: JAX rebuilds pytrees with tracers (under ``jit``/``vmap``)
or with placeholder objects while flattening, and those must pass through untouched (see the JAX
docs, "Custom pytrees and initialization with unexpected values").
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True for Python numbers, NumPy values and concrete (non-traced) JAX arrays."""
    if isinstance(x, (numbers.Number, np.ndarray, np.generic)):
        return True
    return isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer)


def as_float_array(x):
    """Concrete numbers become float64 JAX arrays; tracers and placeholders pass through."""
    if isinstance(x, (numbers.Number, np.ndarray, np.generic)) and not isinstance(x, bool):
        return jnp.asarray(x, dtype=float)
    if isinstance(x, (list, tuple)) and all(isinstance(v, numbers.Number) for v in x):
        return jnp.asarray(x, dtype=float)
    return x


def check_int(name: str, value, minimum: int, hint: str = "") -> int:
    """``value`` must be an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}{hint}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value}{hint}")
    return int(value)


def check_nonneg(name: str, value) -> None:
    """A regularization strength: finite and >= 0 (checked only when concrete)."""
    if not is_concrete(value):
        return
    arr = np.asarray(value, dtype=float)
    if np.any(np.isnan(arr)) or np.any(~np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {name}={value}")


def check_range(name: str, value, lo: float, hi: float, *, hi_open: bool = True) -> None:
    """``lo <= value < hi`` (or ``<= hi``), NaN rejected; checked only when concrete."""
    if not is_concrete(value):
        return
    arr = np.asarray(value, dtype=float)
    upper_ok = np.all(arr < hi) if hi_open else np.all(arr <= hi)
    if np.any(np.isnan(arr)) or np.any(arr < lo) or not upper_ok:
        bracket = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in [{lo}, {hi}{bracket}, got {name}={value}")


def check_finite_positive(name: str, value) -> float:
    """A positive finite scalar such as a time or a step size."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {name}={value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {name}={value}")
    return v
