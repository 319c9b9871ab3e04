r"""The simplex-ETF reduction of a balanced UFM with a shift-invariant loss, solved numerically.

Balanced classes (``n`` samples each), a loss that depends on the logits only through their
differences (cross-entropy, label smoothing, focal, and any custom loss of that kind). Under the
simplex-ETF ansatz (rows ``w_k`` of equal norm ``a`` forming a simplex ETF, ``h_{k,i} = c w_k``
with ``c = sqrt(lam_W / (n lam_H))``, ``b = 0``; ``shared/theory/README.md`` section 2) the logit of
sample ``i`` is ``g`` on its own class above every other class (the *logit gap*
``g = K a^2 c / (K - 1)``) and the penalty ``lam_W/2 ||W||^2 + lam_H/2 ||H||^2`` equals
``lam_W K a^2 = (K - 1) kappa g`` with ``kappa = sqrt(n lam_W lam_H)``. The objective becomes the
one-dimensional function

.. math:: \phi_\kappa(g) = \ell(g\, e_0,\ 0) + (K - 1)\,\kappa\, g, \qquad g \ge 0,

with ``ell`` the per-sample loss evaluated on the logit vector ``g e_0`` of a class-0 sample
(shift invariance: any logits with gap ``g`` give the same value). ``g = 0`` is the zero solution
``W = H = 0``.

This module solves that reduction numerically for *any* such loss object, with no closed form:

- :func:`etf_phi`: ``phi_kappa(g)`` (vectorized over ``g``);
- :func:`etf_logit_gap`: the global minimizer ``g*`` of ``phi_kappa`` over ``g >= 0`` (a grid
  brackets the whole range, then bisection on ``phi'`` refines the best bracket); ``0`` when the
  zero solution is optimal;
- :func:`etf_zero_threshold`: the zero-solution threshold ``kappa* = inf{kappa : g*(kappa) = 0}``,
  by bisection in ``kappa`` on that (monotone) predicate. It matches ``sup_{g>0} (ell(0) -
  ell(g)) / ((K - 1) g)``; ``phi`` need not be convex (focal loss), in which case the transition
  is first order and ``g*`` jumps.

The catalog (``proofs_check``) holds the closed forms (``1/K`` for CE, ``(1 - alpha)/K`` for label
smoothing) and checks them against these numbers; ``ufm.testing`` places ``kappa`` around
:func:`etf_zero_threshold`.

References:
    Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the ETF global minimizers of the CE UFM;
    Zhou et al., NeurIPS 2022 (arXiv 2210.02192), the same geometry for label smoothing and focal.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ufm._precision import require_x64

__all__ = ["etf_phi", "etf_logit_gap", "etf_zero_threshold", "etf_loss"]

_GRID = 4001  # grid points that bracket the global minimizer of phi
_BISECT = 200  # bisection steps (stops at round-off)


def _check_loss_K(loss, K):
    from ufm.losses import Loss

    if not isinstance(loss, Loss):
        raise ValueError(f"loss must be a ufm.Loss, got loss={loss!r}")
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2, got K={K!r}")
    if loss.out_dim(int(K)) != int(K):
        raise ValueError(f"the ETF reduction needs logits of dimension K={K}; {loss!r} has {loss.out_dim(int(K))}")
    return int(K)


@functools.partial(jax.jit, static_argnames=("K",))
def _ell(loss, K, g):
    """Per-sample loss of a class-0 sample with logits ``g e_0``; ``g`` of any shape."""
    gs = jnp.ravel(g)
    Z = jnp.zeros((K, gs.size), dtype=gs.dtype).at[0].set(gs)
    return jnp.reshape(loss(Z, jnp.zeros(gs.size, dtype=jnp.int32)), jnp.shape(g))


@functools.partial(jax.jit, static_argnames=("K",))
def _dphi(loss, K, kappa, g):
    dl = jax.grad(lambda t: _ell(loss, K, t))(g)
    return dl + (K - 1) * kappa


def etf_loss(loss, K: int, g) -> np.ndarray:
    r"""``ell(g e_0, 0)``: the loss of one sample whose own logit exceeds the others by ``g``.

    Args:
        loss: a shift-invariant :class:`ufm.Loss` with ``K`` logits (CE, label smoothing, focal).
        K: number of classes.
        g: logit gap(s), any shape.

    Returns:
        NumPy array of the shape of ``g``.
    """
    require_x64("the ETF reduction (ufm._etf)")
    K = _check_loss_K(loss, K)
    return np.asarray(_ell(loss, K, jnp.asarray(g, dtype=float)))


def etf_phi(loss, K: int, kappa: float, g) -> np.ndarray:
    r"""The reduced objective ``phi_kappa(g) = ell(g e_0, 0) + (K - 1) kappa g`` (module docstring).

    It equals the UFM objective at the simplex-ETF point with logit gap ``g``.

    Args:
        loss, K: as in :func:`etf_loss`.
        kappa: ``sqrt(n lam_W lam_H) >= 0``.
        g: logit gap(s) ``>= 0``, any shape.
    """
    g = np.asarray(g, dtype=float)
    return etf_loss(loss, K, g) + (K - 1) * float(kappa) * g


def _gap_and_value(loss, K, kappa):
    """``(g*, phi(g*) - phi(0))`` by bracketing then bisection on ``phi'``."""
    g_hi = max(100.0, 4.0 * math.log1p(1.0 / max(kappa, 1e-300)))
    grid = np.concatenate([[0.0], np.geomspace(1e-8, g_hi, _GRID - 1)])
    vals = np.asarray(_ell(loss, K, jnp.asarray(grid))) + (K - 1) * kappa * grid
    phi0 = vals[0]
    d0 = float(_dphi(loss, K, kappa, jnp.asarray(0.0)))
    i = int(np.argmin(vals))
    if i == 0 and d0 >= 0.0:
        return 0.0, 0.0
    if i == 0:  # phi decreases at 0 but below the grid's first point: refine on [0, grid[1]]
        i = 1
    lo, hi = grid[i - 1], grid[min(i + 1, grid.size - 1)]
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if float(_dphi(loss, K, kappa, jnp.asarray(mid))) > 0.0:
            hi = mid
        else:
            lo = mid
    g = 0.5 * (lo + hi)
    value = float(_ell(loss, K, jnp.asarray(g))) + (K - 1) * kappa * g
    roundoff = 64 * np.finfo(float).eps * (1.0 + abs(phi0))
    if value >= phi0 - roundoff and d0 >= 0.0:  # (d0 < 0: g = 0 is not even a local minimum)
        return 0.0, 0.0
    return float(g), value - phi0


def etf_logit_gap(loss, K: int, kappa: float) -> float:
    r"""Global minimizer ``g* = argmin_{g >= 0} phi_kappa(g)`` of the ETF reduction.

    A grid of ``0`` and 4000 log-spaced gaps up to ``max(100, 4 log(1 + 1/kappa))`` brackets the
    global minimum (``phi`` may be nonconvex); bisection on ``phi'`` (automatic differentiation)
    then refines the best bracket to round-off. ``g* = 0`` (the zero solution) when ``phi'(0) >=
    0`` and no gap lowers ``phi`` below ``phi(0)``.

    Args:
        loss: a shift-invariant :class:`ufm.Loss` with ``K`` logits.
        K: number of classes.
        kappa: ``sqrt(n lam_W lam_H) >= 0``.

    Returns:
        ``g*`` as a float (``0.0`` for the zero solution). The ETF point has
        ``||w_k||^2 = (K - 1) g* / (K c)``.

    Raises:
        ValueError: a loss that is not a ufm Loss with ``K`` logits, ``K < 2``, ``kappa < 0``, or
            float64 off (call :func:`ufm.enable_x64`).
    """
    require_x64("the ETF reduction (ufm._etf)")
    K = _check_loss_K(loss, K)
    kappa = float(kappa)
    if not math.isfinite(kappa) or kappa < 0:
        raise ValueError(f"kappa must be a finite number >= 0, got kappa={kappa}")
    if kappa == 0.0:
        raise ValueError("kappa must be > 0: without regularization the gap grows without bound")
    return _gap_and_value(loss, K, kappa)[0]


def etf_zero_threshold(loss, K: int, *, rtol: float = 1e-12) -> float:
    r"""Zero-solution threshold ``kappa* = inf{kappa > 0 : etf_logit_gap(loss, K, kappa) = 0}``.

    ``phi_kappa(g) - phi_kappa(0)`` increases with ``kappa`` for every ``g > 0``, so "the zero
    solution is the global minimum of the reduction" is monotone in ``kappa``; an upper bracket is
    found by doubling and the threshold by bisection to relative width ``rtol``.

    Args:
        loss: a shift-invariant :class:`ufm.Loss` with ``K`` logits.
        K: number of classes.
        rtol: relative width of the final bracket.

    Returns:
        ``kappa*`` (the midpoint of the final bracket).
    """
    require_x64("the ETF reduction (ufm._etf)")
    K = _check_loss_K(loss, K)
    hi = 1.0 / K
    while _gap_and_value(loss, K, hi)[0] > 0.0:
        hi *= 2.0
        if hi > 1e6:
            raise ValueError(f"no zero-solution threshold below kappa=1e6 for {loss!r}")
    lo = hi / 2.0
    while _gap_and_value(loss, K, lo)[0] == 0.0:
        lo /= 2.0
        if lo < 1e-300:
            return 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if _gap_and_value(loss, K, mid)[0] > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
