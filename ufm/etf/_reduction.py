r"""The simplex-ETF reduction of a balanced UFM with a permutation-symmetric loss, solved numerically.

Balanced classes (``n`` samples each) and a loss symmetric under relabelling the classes (CE,
label smoothing, focal, one-hot MSE, and any :class:`ufm.CustomLoss` of that kind). Under the
simplex-ETF ansatz (rows ``w_k`` of equal norm ``a`` forming a simplex ETF, ``h_{k,i} = c w_k``
with ``c = sqrt(lam_W / (n lam_H))``, bias ``b = beta 1``; ``docs/theory.md#ce-etf``
a sample of class ``y`` has logits ``z = g (e_y - 1/K) + beta 1``: its own logit exceeds every
other by the *logit gap* ``g = K a^2 c / (K - 1)``, and ``beta`` is a common offset. The penalty
``lam_W/2 ||W||^2 + lam_H/2 ||H||^2`` equals ``lam_W K a^2 = (K - 1) kappa g`` with
``kappa = sqrt(n lam_W lam_H)`` (the AM-GM choice of ``c``), and ``lam_b/2 ||b||^2 = lam_b K beta^2
/ 2``. The objective becomes

.. math::

    \phi_\kappa(g) = M(g) + (K - 1)\,\kappa\, g, \qquad
    M(g) = \min_\beta\ \ell\big(g (e_0 - \tfrac1K \mathbf 1) + \beta \mathbf 1,\ 0\big)
        + \tfrac{\lambda_b K}{2} \beta^2, \qquad g \ge 0,

where the minimum over ``beta`` is taken only when the model has a bias and the loss is not
shift-invariant (``beta = 0`` otherwise: no bias, or a loss of logit differences, for which the
offset changes nothing and a regularized bias prefers 0); ``lam_b = 0`` is a free bias. ``g = 0``
is the zero solution ``W = H = 0`` (with bias ``beta*(0) 1``).

- :func:`etf_phi`: ``phi_kappa(g)``;
- :func:`etf_logit_gap` (:func:`etf_solve` with the offset and value): the GLOBAL minimizer
  ``g*`` over ``g >= 0``. Every ``g`` with ``phi(g) <= phi(0)`` lies in
  ``[0, (M(0) - inf M)/((K - 1) kappa)]`` (``inf M`` estimated on a coarse grid up to ``1e6``); a
  grid of 4001 gaps over that bracket locates the global basin, bisection on ``phi'`` (automatic
  differentiation; ``M'(g) = d_g l`` at ``beta*(g)`` by the envelope theorem) refines it to
  round-off. The inner minimum over ``beta`` is also a grid (241 offsets in ``[-1e3, 1e3]``) then
  bisection, so it is global too;
- :func:`etf_zero_threshold`: ``kappa* = sup_{g > 0} (M(0) - M(g)) / ((K - 1) g)``: ``g* > 0``
  exactly when ``kappa < kappa*`` (``phi_kappa(g) < phi_kappa(0)`` iff ``kappa`` is below that
  ratio). The ``g -> 0`` limit ``-M'(0)/(K - 1)`` is evaluated exactly (``1/K`` for CE); an
  interior supremum (nonconvex ``phi``, a first-order transition, as for focal loss) is found on a
  grid and refined by bisection on the tangency condition ``M(g) - M(0) = g M'(g)``.

The catalog (``proofs_check``) holds the closed forms (``1/K`` for CE, ``(1 - alpha)/K`` for label
smoothing) and checks them against these numbers; ``ufm.testing`` places ``kappa`` around
:func:`etf_zero_threshold`; :func:`ufm.etf_prediction` turns the result into norms of ``W`` and ``H``.

References:
    Zhu et al., NeurIPS 2021 (arXiv 2105.02375), the ETF global minimizers of the CE UFM;
    Zhou et al., NeurIPS 2022 (arXiv 2210.02192), the same geometry for label smoothing and focal.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ufm._internal.numerics import bisect
from ufm._internal.precision import require_x64
from ufm.losses import Loss
from ufm._internal.runtime import register_compiled

__all__ = ["etf_phi", "etf_logit_gap", "etf_solve", "etf_zero_threshold", "etf_loss",
           "is_shift_invariant", "check_permutation_symmetric", "ETFSolve", "BIAS_MODES"]

BIAS_MODES = ("none", "free", "reg")
_GRID = 4001  # gaps that bracket the global minimizer of phi (and the supremum of the ratio)
_BETA_GRID = 241  # offsets that bracket the inner minimum over beta
_BETA_MAX = 1e3
_BISECT = 200  # most bisection halvings on the gap (it stops at float64 resolution, ~55)
_BISECT_BETA = 100
_COARSE = 200  # coarse gaps up to 1e6 that estimate inf M (the bracket's upper end)
_THRESHOLD_RANGE = (1e-3, 1e4)  # below 1e-3, M(0) - M(g) loses digits; the limit covers g -> 0


class ETFSolve(NamedTuple):
    """Global minimum of the ETF reduction (module docstring); floats on the host.

    Attributes:
        g: optimal logit gap, ``0.0`` for the zero solution.
        beta: optimal common offset (every entry of the bias), ``0.0`` without one.
        value: ``phi_kappa(g)``, the UFM objective at the ETF (or zero) point.
        value_zero: ``phi_kappa(0) = M(0)``, the objective of the zero solution.
        beta_zero: the offset of the zero solution.
        zero: whether the zero solution is the global minimum of the reduction.
    """

    g: float
    beta: float
    value: float
    value_zero: float
    beta_zero: float
    zero: bool


# ---------------------------------------------------------------- the reduced loss


def _check_loss_K(loss, K):
    if not isinstance(loss, Loss):
        raise ValueError(f"loss must be a ufm.Loss, got loss={loss!r}")
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2, got K={K!r}")
    if loss.out_dim(int(K)) != int(K):
        raise ValueError(f"the ETF reduction needs logits of dimension K={K}; {loss!r} has "
                         f"{loss.out_dim(int(K))}")
    loss.check(int(K))
    return int(K)


def _check_mode(bias, lam_b):
    if bias not in BIAS_MODES:
        raise ValueError(f"bias must be one of {BIAS_MODES}, got bias={bias!r}")
    lam_b = 0.0 if lam_b is None else float(lam_b)
    if not math.isfinite(lam_b) or lam_b < 0:
        raise ValueError(f"lam_b must be a finite number >= 0, got lam_b={lam_b}")
    return lam_b if bias == "reg" else 0.0


def _ell(loss, K, g, beta):
    """Loss of a class-0 sample with logits ``g (e_0 - 1/K) + beta 1`` (scalars)."""
    z = g * (jnp.zeros(K).at[0].set(1.0) - 1.0 / K) + beta
    return loss(z[:, None], jnp.zeros(1, dtype=jnp.int32))[0]




def _bracket(grid, i):
    return grid[jnp.maximum(i - 1, 0)], grid[jnp.minimum(i + 1, grid.size - 1)]


def _beta_grid():
    t = np.linspace(-np.arcsinh(_BETA_MAX), np.arcsinh(_BETA_MAX), _BETA_GRID)
    return np.sinh(t)  # odd count: contains 0; fine near 0, coarse far out


def _inner(loss, K, lam_b, offset, g):
    """``(beta*(g), M(g))``: the global minimum over the offset (grid, then bisection)."""
    if not offset:
        return jnp.zeros_like(g), _ell(loss, K, g, 0.0)
    f = lambda b: _ell(loss, K, g, b) + 0.5 * lam_b * K * b**2  # noqa: E731
    betas = jnp.asarray(_beta_grid())
    vals = jax.vmap(f)(betas)
    j = jnp.argmin(jnp.where(jnp.isnan(vals), jnp.inf, vals))
    beta = bisect(jax.grad(f), *_bracket(betas, j), _BISECT_BETA)
    value = f(beta)
    better = value <= vals[j]  # a kink at the grid point: keep the grid point
    return jnp.where(better, beta, betas[j]), jnp.where(better, value, vals[j])


def _dM(loss, K, lam_b, offset, g):
    """``M'(g) = d_g l(g, beta*(g))`` (envelope theorem: ``beta*`` is stationary)."""
    beta, _ = _inner(loss, K, lam_b, offset, g)
    return jax.grad(_ell, argnums=2)(loss, K, g, beta)


# ---------------------------------------------------------------- the global minimum over g


@register_compiled
@functools.partial(jax.jit, static_argnames=("K", "offset"))
def _solve(loss, K, kappa, lam_b, offset):
    M = jax.vmap(lambda t: _inner(loss, K, lam_b, offset, t))
    beta0, M0 = _inner(loss, K, lam_b, offset, jnp.asarray(0.0))
    coarse = jnp.geomspace(1e-3, 1e6, _COARSE)
    M_inf = jnp.minimum(M0, jnp.nanmin(M(coarse)[1]))
    g_hi = jnp.clip(1.05 * (M0 - M_inf) / ((K - 1) * kappa), 100.0, 1e8)
    grid = jnp.concatenate([jnp.zeros(1), jnp.exp(jnp.linspace(jnp.log(1e-8), jnp.log(g_hi), _GRID - 1))])
    phi = M(grid)[1] + (K - 1) * kappa * grid
    i = jnp.argmin(jnp.where(jnp.isnan(phi), jnp.inf, phi))
    dphi = lambda t: _dM(loss, K, lam_b, offset, t) + (K - 1) * kappa  # noqa: E731
    g = bisect(dphi, *_bracket(grid, i), _BISECT)
    beta, Mg = _inner(loss, K, lam_b, offset, g)
    value = Mg + (K - 1) * kappa * g
    zero = value >= M0 - 64 * jnp.finfo(jnp.float64).eps * (1.0 + jnp.abs(M0))
    return g, beta, value, M0, beta0, zero, i == grid.size - 1, phi[i]


def _validated(loss, K, kappa, bias, lam_b):
    require_x64("the ETF reduction (ufm.etf._reduction)")
    K = _check_loss_K(loss, K)
    kappa = float(kappa)
    if not math.isfinite(kappa) or kappa < 0:
        raise ValueError(f"kappa must be a finite number >= 0, got kappa={kappa}")
    if kappa == 0.0:
        raise ValueError("kappa must be > 0: without regularization the gap grows without bound")
    lam_b = _check_mode(bias, lam_b)
    offset = bias != "none" and not is_shift_invariant(loss, K)
    return K, kappa, lam_b, offset


def etf_solve(loss: Loss, K: int, kappa: float, *, bias: str = "none",
              lam_b: float | None = None) -> ETFSolve:
    r"""Global minimum of the ETF reduction ``phi_kappa`` over ``g >= 0`` (and the offset).

    Args:
        loss: a permutation-symmetric :class:`ufm.Loss` with ``K`` logits.
        K: number of classes.
        kappa: ``sqrt(n lam_W lam_H) > 0``.
        bias: ``"none"`` (no bias), ``"free"`` (``lam_b = 0``) or ``"reg"`` (``lam_b > 0``).
        lam_b: the bias penalty for ``bias="reg"``.

    Returns:
        An :class:`ETFSolve`.

    Raises:
        ValueError: bad arguments, float64 off, a non-finite reduced objective at the minimum, or
            a minimum at the end of the bracket (``phi`` still decreasing: not bounded below).
    """
    K, kappa, lam_b, offset = _validated(loss, K, kappa, bias, lam_b)
    g, beta, value, M0, beta0, zero, at_end, grid_min = _solve(loss, K, kappa, lam_b, offset)
    if not np.isfinite(float(value)) or not np.isfinite(float(M0)):
        raise ValueError(f"the ETF reduction of {loss!r} is not finite (phi(g*)={float(value)}, "
                         f"phi(0)={float(M0)}); check the loss for overflow at large logits")
    if bool(at_end) and not bool(zero):
        raise ValueError(f"the ETF reduction of {loss!r} at kappa={kappa:.4g} decreases up to the end of "
                         "its bracket: the loss looks unbounded below along the ETF")
    if offset and abs(float(beta)) > 0.9 * _BETA_MAX:
        raise ValueError(f"the optimal offset of {loss!r} is beyond |beta| = {0.9 * _BETA_MAX:g}: the loss "
                         "looks unbounded below along the common offset")
    if bool(zero):
        return ETFSolve(0.0, float(beta0), float(M0), float(M0), float(beta0), True)
    return ETFSolve(float(g), float(beta), float(value), float(M0), float(beta0), False)


def etf_logit_gap(loss: Loss, K: int, kappa: float, *, bias: str = "none",
                  lam_b: float | None = None) -> float:
    r"""Global minimizer ``g* = argmin_{g >= 0} phi_kappa(g)`` of the ETF reduction.

    See :func:`etf_solve` (this is its ``g``): ``0.0`` when the zero solution is optimal. The ETF
    point has ``||w_k||^2 = (K - 1) g* / (K c)``.
    """
    return etf_solve(loss, K, kappa, bias=bias, lam_b=lam_b).g


def etf_loss(loss: Loss, K: int, g: ArrayLike, beta: ArrayLike = 0.0) -> np.ndarray:
    r"""``l(g (e_0 - 1/K) + beta 1, 0)``: the loss of one sample whose own logit exceeds the others by ``g``.

    Args:
        loss: a :class:`ufm.Loss` with ``K`` logits.
        K: number of classes.
        g: logit gap(s), any shape. beta: common offset(s), broadcast against ``g``.

    Returns:
        NumPy array of the broadcast shape.
    """
    require_x64("the ETF reduction (ufm.etf._reduction)")
    K = _check_loss_K(loss, K)
    g, beta = np.broadcast_arrays(np.asarray(g, dtype=float), np.asarray(beta, dtype=float))
    f = jax.jit(jax.vmap(lambda t, b: _ell(loss, K, t, b)))
    return np.asarray(f(jnp.ravel(g), jnp.ravel(beta))).reshape(g.shape)


def etf_phi(loss: Loss, K: int, kappa: float, g: ArrayLike, *, bias: str = "none",
            lam_b: float | None = None) -> np.ndarray:
    r"""The reduced objective ``phi_kappa(g) = M(g) + (K - 1) kappa g`` (module docstring).

    It equals the UFM objective at the simplex-ETF point with logit gap ``g`` and the best offset.
    """
    K, kappa, lam_b, offset = _validated(loss, K, kappa, bias, lam_b)
    g = np.asarray(g, dtype=float)
    M = jax.jit(jax.vmap(lambda t: _inner(loss, K, lam_b, offset, t)[1]))
    return np.asarray(M(jnp.ravel(g))).reshape(g.shape) + (K - 1) * kappa * g


# ---------------------------------------------------------------- the zero threshold


@register_compiled
@functools.partial(jax.jit, static_argnames=("K", "offset"))
def _threshold(loss, K, lam_b, offset):
    _, M0 = _inner(loss, K, lam_b, offset, jnp.asarray(0.0))
    limit = -_dM(loss, K, lam_b, offset, jnp.asarray(0.0)) / (K - 1)
    grid = jnp.geomspace(*_THRESHOLD_RANGE, _GRID)
    M = jax.vmap(lambda t: _inner(loss, K, lam_b, offset, t)[1])(grid)
    ratio = (M0 - M) / ((K - 1) * grid)
    i = jnp.argmax(jnp.where(jnp.isnan(ratio), -jnp.inf, ratio))

    def tangent(t):
        # the ratio increases where M(g) - M(0) - g M'(g) > 0: bisection on minus that sign
        return -(_inner(loss, K, lam_b, offset, t)[1] - M0 - t * _dM(loss, K, lam_b, offset, t))

    g = bisect(tangent, *_bracket(grid, i), _BISECT)
    refined = (M0 - _inner(loss, K, lam_b, offset, g)[1]) / ((K - 1) * g)
    interior = jnp.where(i == 0, ratio[0], jnp.maximum(ratio[i], refined))  # i = 0: the sup is at g -> 0
    return jnp.maximum(jnp.maximum(limit, interior), 0.0), limit


def etf_zero_threshold(loss: Loss, K: int, *, bias: str = "none", lam_b: float | None = None) -> float:
    r"""Zero-solution threshold ``kappa* = sup_{g > 0} (M(0) - M(g)) / ((K - 1) g)``.

    The minimizer of the reduction is nonzero exactly when ``kappa < kappa*``. The ``g -> 0`` limit
    ``-M'(0)/(K - 1)`` is exact (autodiff); an interior supremum is bracketed on a grid over
    ``[1e-3, 1e4]`` (below ``1e-3`` the difference ``M(0) - M(g)`` loses digits, and the limit
    stands for that end) and refined by bisection on the tangency condition (module docstring).

    Args:
        loss: a permutation-symmetric :class:`ufm.Loss` with ``K`` logits.
        K: number of classes.
        bias, lam_b: the bias mode, as in :func:`etf_solve` (``kappa*`` depends on ``lam_b`` only
            for a loss that is not shift-invariant).

    Returns:
        ``kappa* >= 0`` (``0``: the zero solution wins for every ``kappa > 0``).
    """
    require_x64("the ETF reduction (ufm.etf._reduction)")
    K = _check_loss_K(loss, K)
    lam_b = _check_mode(bias, lam_b)
    offset = bias != "none" and not is_shift_invariant(loss, K)
    value, _ = _threshold(loss, K, lam_b, offset)
    return float(value)


# ---------------------------------------------------------------- symmetry checks


def _random_logits(K, count, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, count)) * 2.0, rng.integers(0, K, count)


def is_shift_invariant(loss: Loss, K: int, *, rtol: float = 1e-10) -> bool:
    """Whether ``l(z + t 1, y) = l(z, y)`` (a loss of logit differences), tested at random points."""
    Z, y = _random_logits(K, 8, 0)
    t = np.linspace(-3.0, 3.0, 8)
    a = np.asarray(loss(jnp.asarray(Z), jnp.asarray(y)))
    b = np.asarray(loss(jnp.asarray(Z + t), jnp.asarray(y)))
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(1.0, np.abs(a))))


def check_permutation_symmetric(loss: Loss, K: int, *, rtol: float = 1e-10) -> None:
    """Raise ``ValueError`` unless ``l(z o pi^-1, pi(y)) = l(z, y)`` at random points and relabellings."""
    Z, y = _random_logits(K, 8, 1)
    rng = np.random.default_rng(2)
    a = np.asarray(loss(jnp.asarray(Z), jnp.asarray(y)))
    for _ in range(4):
        pi = rng.permutation(K)  # class k becomes class pi[k]
        Zp = np.empty_like(Z)
        Zp[pi] = Z
        b = np.asarray(loss(jnp.asarray(Zp), jnp.asarray(pi[y])))
        err = np.abs(a - b) / np.maximum(1.0, np.abs(a))
        if np.any(err > rtol):
            raise ValueError(
                f"the ETF reduction needs a loss symmetric under relabelling the classes; {loss!r} changes "
                f"by {float(err.max()):.3g} (relative) when the classes are permuted by {pi.tolist()}"
            )
