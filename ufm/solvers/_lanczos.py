r"""Lanczos for the smallest eigenvalue, stopped when its Ritz value is resolved (one compiled loop).

:func:`smallest_ritz` runs the Lanczos recurrence with full reorthogonalization on a symmetric
operator ``A`` restricted to a subspace ``S`` (the caller's ``matvec`` maps ``S`` into ``S``; the
start vector lies in ``S``), in one compiled loop of at most ``max_steps`` steps. After
``j`` steps, with ``T_j = Y diag(theta) Y^T`` the tridiagonal matrix and ``V_j`` the Lanczos
vectors, the Ritz pair ``(theta_1, V_j y_1)`` has the residual

.. math:: r_1 = \lVert A V_j y_1 - \theta_1 V_j y_1 \rVert = \beta_j\, |e_j^\top y_1|,

so an eigenvalue of ``A`` on ``S`` lies within ``r_1`` of ``theta_1`` (Parlett, The Symmetric
Eigenvalue Problem, Thm. 4.5.1; within ``r_1^2 / delta`` when the rest of the spectrum is
``delta`` away, Thm. 11.7.1, which is not relied on: a cluster near ``lambda_min`` that the Ritz
values have not split would make the Ritz gap a poor ``delta``). The loop stops once ``r_1``,
relative to ``max(1, ||T_j||)`` (a Gershgorin bound), is below ``tol`` (or the Krylov space is
invariant, ``beta_j = 0``: then ``theta_1`` is exact), else after ``max_steps``. By Cauchy interlacing ``theta_1 >= lambda_min``
at every step, and ``theta_1`` never increases (a restart keeps the Ritz vector).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import eigh_tridiagonal

__all__ = ["Ritz", "smallest_ritz", "CYCLE"]


class Ritz(NamedTuple):
    """The smallest Ritz pair of a Lanczos run."""

    value: jax.Array  # shape=(), float64: theta_1
    vector: jax.Array  # shape=(n,), float64: V y_1 (unit norm)
    residual: jax.Array  # shape=(), float64: r_1 = beta_j |e_j^T y_1|
    bound: jax.Array  # shape=(), float64: r_1 / max(1, ||T_j||), the relative residual
    steps: jax.Array  # shape=(), int32: Lanczos steps taken


class _State(NamedTuple):
    V: jax.Array  # shape=(B * c, n): Lanczos vectors as rows (zero beyond step j), B blocks of c
    alpha: jax.Array  # shape=(m,): diagonal of T
    beta: jax.Array  # shape=(m,): off-diagonal of T (beta[j] couples steps j and j + 1)
    j: jax.Array  # shape=(), int32: steps taken
    bound: jax.Array  # shape=(), float64: the relative residual of theta_1 after j steps
    alive: jax.Array  # shape=(), bool: the Krylov space has not become invariant


_BLOCK = 8  # rows of V per reorthogonalization block: the work grows with j, not with max_steps


def _padded(alpha, beta, j):
    """``(diagonal, off-diagonal, Gershgorin bound)`` of ``T_j`` embedded in ``m x m``: rows past
    ``j`` are decoupled and get a diagonal far above the spectrum, so their eigenvalues come last."""
    m = alpha.shape[0]
    used = jnp.arange(m) < j
    off = jnp.where(jnp.arange(m - 1) < j - 1, beta[:-1], 0.0)
    gersh = jnp.max(jnp.where(used, jnp.abs(alpha), 0.0)) + 2.0 * jnp.max(off, initial=0.0)
    return jnp.where(used, alpha, 2.0 * gersh + 1.0), off, gersh


def _inverse_iteration(diag, off, shift, iters=3):
    """The unit eigenvector of the smallest eigenvalue of the tridiagonal matrix, by inverse
    iteration with a shift just below it (``T - shift I`` is positive definite, so the LU without
    pivoting of ``tridiagonal_solve`` is stable)."""
    m = diag.shape[0]
    dl = jnp.concatenate([jnp.zeros(1, diag.dtype), off])
    du = jnp.concatenate([off, jnp.zeros(1, diag.dtype)])
    y = jnp.ones((m, 1), diag.dtype)
    for _ in range(iters):
        y = jax.lax.linalg.tridiagonal_solve(dl, diag - shift, du, y)
        y = y / jnp.linalg.norm(y)
    return y[:, 0]


def _ritz(alpha, beta, j):
    """``(theta_1, y_1, r_1, r_1 / max(1, ||T_j||))`` of ``T_j`` (module docstring): the two
    smallest eigenvalues by bisection, ``y_1`` by inverse iteration (a dense ``eigh`` of ``m x m``
    costs more than the Lanczos step on XLA:CPU once ``m`` passes 64)."""
    diag, off, gersh = _padded(alpha, beta, j)
    scale = jnp.maximum(1.0, gersh)
    theta = eigh_tridiagonal(diag, off, eigvals_only=True, select="i", select_range=(0, 1))
    y = _inverse_iteration(diag, off, theta[0] - 1e-10 * scale)
    r1 = jnp.abs(beta[j - 1] * y[j - 1])
    return theta[0], y, r1, r1 / scale


def _reorthogonalize(V, w, j):
    """``w`` minus its components along the rows ``0..j`` of ``V``, by blocks of ``_BLOCK`` rows,
    twice (classical Gram-Schmidt twice is enough; the rows past ``j`` are zero)."""
    def body(i, w):
        Vb = jax.lax.dynamic_slice_in_dim(V, i * _BLOCK, _BLOCK, axis=0)
        return w - (Vb @ w) @ Vb

    nb = j // _BLOCK + 1
    for _ in range(2):
        w = jax.lax.fori_loop(0, nb, body, w)
    return w


def _step(matvec: Callable, proj: Callable, s: _State) -> _State:
    v = s.V[s.j]
    w = matvec(v)
    a = jnp.dot(w, v)
    w = proj(_reorthogonalize(s.V, w, s.j))
    b = jnp.linalg.norm(w)
    alive = b > 1e-12 * jnp.maximum(1.0, jnp.abs(a))
    V = s.V.at[s.j + 1].set(jnp.where(alive, w / jnp.where(alive, b, 1.0), 0.0))
    alpha = s.alpha.at[s.j].set(a)
    beta = s.beta.at[s.j].set(jnp.where(alive, b, 0.0))
    return _State(V, alpha, beta, s.j + 1, _ritz(alpha, beta, s.j + 1)[3], alive)


CYCLE = 32  # Lanczos steps per cycle: the vectors of one cycle (33 rows) are all that is stored


def _cycle(matvec: Callable, proj: Callable, v0: jax.Array, budget: jax.Array, tol: jax.Array,
           c: int) -> tuple[Ritz, jax.Array]:
    """One Lanczos run from the unit vector ``v0``, at most ``min(c, budget)`` steps; returns its
    smallest Ritz pair and whether the Krylov space stayed non-invariant."""
    dt = v0.dtype
    rows = -(-(c + 1) // _BLOCK) * _BLOCK
    V = jnp.zeros((rows, v0.size), dt).at[0].set(v0)
    size = max(c, 2)  # T is stored padded to at least 2 x 2 (the Ritz gap needs two values)
    s = _State(V, jnp.zeros(size, dt), jnp.zeros(size, dt), jnp.int32(0), jnp.asarray(jnp.inf, dt),
               jnp.asarray(True))

    def cond(s):
        return (s.j < c) & (s.j < budget) & s.alive & ((s.j == 0) | (s.bound > tol))

    s = jax.lax.while_loop(cond, lambda s: _step(matvec, proj, s), s)
    j = jnp.maximum(s.j, 1)
    theta1, y, r1, bound = _ritz(s.alpha, s.beta, j)
    r1 = jnp.where(s.alive, r1, 0.0)  # an invariant Krylov space: theta_1 is an exact eigenvalue
    bound = jnp.where(s.alive, bound, 0.0)
    vec = proj(y[:c] @ s.V[:c])
    vec = vec / jnp.maximum(jnp.linalg.norm(vec), jnp.finfo(dt).tiny)
    return Ritz(theta1, vec, r1, bound, s.j), s.alive


def smallest_ritz(matvec: Callable, v0: jax.Array, *, max_steps: int, tol: jax.Array,
                  proj: Callable = lambda v: v) -> Ritz:
    r"""The smallest Ritz pair of ``matvec`` from the start ``v0`` (module docstring).

    The steps run in cycles of at most :data:`CYCLE` (32); a cycle that ends unresolved restarts
    the next one from its Ritz vector (explicit restart: Saad, Numerical Methods for Large
    Eigenvalue Problems, 2nd ed. 2011, sec. 6.2 and ch. 7), so only 33 vectors are ever stored
    and a step costs the same whatever ``max_steps`` is. Every cycle's ``theta_1`` is a Rayleigh
    quotient, hence ``>= lambda_min``, and the residual bound holds as in one run.

    Args:
        matvec: ``v -> A v`` for ``v`` in the subspace ``S``, symmetric there.
        v0: start vector in ``S`` (normalized here; a zero vector gives ``theta = +inf``).
        max_steps: the most Lanczos steps in all (static).
        tol: stop when the relative residual ``r_1 / max(1, ||T_j||)`` is at most ``tol``
            (traced).
        proj: the projection onto ``S``, applied to each new vector against round-off drift.

    Returns:
        :class:`Ritz` (``steps`` counts every cycle). Traceable; one compiled loop of cycles.
    """
    n0 = jnp.linalg.norm(v0)
    nonzero = n0 > 0
    dt = v0.dtype
    v0 = jnp.where(nonzero, v0 / jnp.where(nonzero, n0, 1.0), 0.0)
    c = min(max_steps, CYCLE)
    inf = jnp.asarray(jnp.inf, dt)
    start = (Ritz(inf, v0, inf, inf, jnp.int32(0)), nonzero)

    def more(carry):
        ritz, alive = carry
        return nonzero & alive & (ritz.steps < max_steps) & (ritz.bound > tol)

    def again(carry):
        ritz, _ = carry
        new, alive = _cycle(matvec, proj, ritz.vector, max_steps - ritz.steps, tol, c)
        return new._replace(steps=ritz.steps + new.steps), alive

    ritz, _ = jax.lax.while_loop(more, again, start)
    return ritz._replace(value=jnp.where(nonzero, ritz.value, inf))
