"""Scalar numerics shared by the closed-form reductions and the global bounds (traced, float64).

The bracketing root finder is ufm's own rather than ``optimistix.Bisection``: optimistix stops only
when ``|f(x)| < atol`` as well as the bracket being small, which the derivative of an objective at
its minimizer, evaluated in floating point, need not reach (it would run to its step cap), and it
would bring equinox, lineax and jaxtyping in for a loop of a dozen lines.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

EPS = float(jnp.finfo(jnp.float64).eps)


def bisect(dfun: Callable[[jax.Array], jax.Array], lo: jax.Array, hi: jax.Array, steps: int = 200, *,
           rtol: float = 4 * EPS, atol: float = 0.0) -> jax.Array:
    r"""A sign change of ``dfun`` (negative, then positive) in ``[lo, hi]``, by bisection.

    Halves the bracket, keeping ``dfun(lo) <= 0 < dfun(hi)``, until

    .. math:: \mathrm{hi} - \mathrm{lo} \le \mathrm{atol} + \mathrm{rtol}\,|\mathrm{mid}|

    (float64 resolution by default) or ``steps`` halvings; returns the midpoint. Where ``dfun``
    has one sign on the whole bracket the result is the endpoint it points to. Traceable
    (``jit``, ``vmap``: the loop runs until every batch member has converged).

    Args:
        dfun: a scalar function, negative left of the root and positive right of it.
        lo, hi: the bracket, ``lo < hi`` (scalars, or arrays of brackets searched together until
            every one is narrow enough).
        steps: the most halvings (``200`` passes float64 resolution from any bracket).
        rtol, atol: the bracket width at which to stop.
    """

    def cond(c):
        lo, hi, k = c
        mid = 0.5 * (lo + hi)
        return (k < steps) & jnp.any(hi - lo > atol + rtol * jnp.abs(mid))

    def body(c):
        lo, hi, k = c
        mid = 0.5 * (lo + hi)
        up = dfun(mid) > 0.0
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi), k + 1

    lo, hi, _ = jax.lax.while_loop(cond, body, (lo, hi, 0))
    return 0.5 * (lo + hi)
