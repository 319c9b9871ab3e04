"""Scalar numerics shared by the closed-form reductions and the global bounds (traced, float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def bisect(dfun, lo, hi, steps):
    """Bisection for a sign change of ``dfun`` (negative then positive) on ``[lo, hi]``."""

    def body(_, b):
        lo, hi = b
        mid = 0.5 * (lo + hi)
        up = dfun(mid) > 0.0
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    lo, hi = jax.lax.fori_loop(0, steps, body, (lo, hi))
    return 0.5 * (lo + hi)
