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
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) and jnp.issubdtype(x.dtype, jnp.integer):
        return x.astype(float)
    if isinstance(x, (list, tuple)) and all(isinstance(v, numbers.Number) for v in x):
        return jnp.asarray(x, dtype=float)
    return x


def to_numeric(name: str, value):
    """Lists and tuples -> a float NumPy array; strings, bytes, bools and dicts -> ValueError naming
    ``name``; anything else (numbers, arrays, tracers, placeholders) is returned unchanged."""
    if isinstance(value, (str, bytes, bool, dict, set)):
        raise ValueError(f"{name} must be a number or an array of numbers, got {name}={value!r}")
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or an array of numbers, got {name}={value!r}") from None
    return value


def _as_np(name: str, value):
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {name}={value!r}") from None


def scalar_param(name: str, value, *, lo: float = 0.0, hi: float | None = None, hi_open: bool = True,
                 positive: bool = False):
    """A scalar hyper-parameter (Python/NumPy/JAX number, or a 0-d list-free array): validated when
    concrete (finite, ``>= lo`` or ``> lo`` with ``positive``, below ``hi``) and returned as a float
    array; tracers and placeholders pass through. Raises ValueError naming ``name``."""
    value = to_numeric(name, value)
    if not is_concrete(value):
        return value
    arr = _as_np(name, value)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}: {name}={value!r}")
    if hi is not None:
        check_range(name, arr, lo, hi, hi_open=hi_open)
    elif positive:
        if not (np.isfinite(arr) and arr > lo):
            raise ValueError(f"{name} must be a finite number > {lo}, got {name}={value}")
    else:
        check_nonneg(name, arr)
    return as_float_array(value)


def check_int(name: str, value, minimum: int, hint: str = "") -> int:
    """``value`` must be an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}{hint}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value}{hint}")
    return int(value)


def check_nonneg(name: str, value) -> None:
    """A regularization strength: finite and >= 0 (checked only when concrete)."""
    value = to_numeric(name, value)
    if not is_concrete(value):
        return
    arr = _as_np(name, value)
    if np.any(np.isnan(arr)) or np.any(~np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {name}={value}")


def check_range(name: str, value, lo: float, hi: float, *, hi_open: bool = True) -> None:
    """``lo <= value < hi`` (or ``<= hi``), NaN rejected; checked only when concrete."""
    value = to_numeric(name, value)
    if not is_concrete(value):
        return
    arr = _as_np(name, value)
    upper_ok = np.all(arr < hi) if hi_open else np.all(arr <= hi)
    if np.any(np.isnan(arr)) or np.any(arr < lo) or not upper_ok:
        bracket = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in [{lo}, {hi}{bracket}, got {name}={value}")


def check_finite(name: str, value) -> float:
    """A finite scalar (a time, for example)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {name}={value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {name}={value}")
    return v


def check_finite_positive(name: str, value) -> float:
    """A positive finite scalar such as a time or a step size."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {name}={value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {name}={value}")
    return v
