r"""The loss landscape of a Problem: critical points, basins of attraction, slices.

- :func:`spectrum`: the Hessian spectrum at a point on the free, non-symmetry directions (dense
  ``eigh`` up to 2000 parameters, Lanczos on Hessian-vector products above; it is
  :func:`ufm.solvers.hessian_spectrum`, re-exported).
- :func:`kind_of`: what kind of point ``params`` is: ``"not stationary"``, ``"saddle"`` (with
  its index and an escape direction), ``"minimum"`` (strict, modulo the symmetry) or
  ``"degenerate"`` (second order holds but a flat direction outside the symmetry orbit remains).
  Symmetry directions (rotations of the feature space, a free bias shift) are counted apart in
  ``symmetry_dim``, never as degeneracy.
- :func:`census`: many random starts through :func:`ufm.minimize` in one compiled function
  (``jax.vmap`` or ``jax.lax.map`` over the starts), each end point classified and, where the
  family has one, given its global gap (:func:`ufm.global_certificate`); summarized by init scale.
- :func:`slice_1d`, :func:`slice_2d`, :func:`path`: cuts of the objective along directions
  (e.g. eigenvectors) and along the straight path between two points, with the barrier.

Second-order conditions (Nocedal & Wright, Thm. 12.5/12.6): at a critical point, a negative
eigenvalue of the Hessian on the feasible directions makes it a strict saddle; all positive makes
it a strict local minimizer; zeros outside the symmetry orbit leave the question open.

References:
    Zhu et al., NeurIPS 2021 (arXiv 2105.02375) and Zhou et al., ICML 2022 (arXiv 2203.01238):
    the UFM landscape is strict-saddle (no spurious minima) for d > K; Nguyen et al., ICLR 2023
    (arXiv 2206.05530): nonnegative features; Súkeník et al., NeurIPS 2023 (arXiv 2305.13165):
    deep models, whose origin is a local minimum for ``m >= 3`` factors; Garipov et al., NeurIPS
    2018 and Draxler et al., ICML 2018 (paths and barriers between minima).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.typing import ArrayLike

from ufm._internal.deprecation import moved_attribute
from ufm._internal.tree import tree_axpy, tree_norm
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import Problem
from ufm.solvers import global_certificate, grad_norm, hessian_spectrum, minimize, symmetry_basis

__all__ = ["spectrum", "CriticalPoint", "kind_of", "Census", "census", "slice_1d", "slice_2d", "path",
           "KINDS"]

KINDS = ("minimum", "saddle", "degenerate", "not stationary")

spectrum = hessian_spectrum


@dataclass(frozen=True)
class CriticalPoint:
    """What :func:`kind_of` found at a point.

    Attributes:
        kind: ``"minimum"``, ``"saddle"``, ``"degenerate"`` or ``"not stationary"``.
        index: number of eigenvalues ``< -eig_tol`` on the free non-symmetry directions (exact with
            the dense method; with Lanczos the number of negative Ritz values, a lower bound on the
            multiplicity: see ``exact``).
        null_dim: eigenvalues with ``|lambda| <= eig_tol`` outside the symmetry orbit (degeneracy).
        symmetry_dim: dimension of the continuous-symmetry orbit's tangent space at the point
            (flat by invariance; reported apart, never counted in ``null_dim``).
        min_eig: the smallest such eigenvalue.
        grad_norm: the KKT residual ``||theta - P(theta - grad f)||``.
        value: ``f(params)``.
        escape: for a saddle, the unit eigenvector of ``min_eig`` as a pytree like ``params`` (a
            descent direction of second order: ``f(theta + t v) = f - |min_eig| t^2/2 + O(t^3)``);
            else ``None``.
        eigenvalues: the ascending eigenvalues computed (NumPy).
        exact: whether ``index`` and ``null_dim`` are exact multiplicities (dense method).
    """

    kind: str
    index: int
    null_dim: int
    symmetry_dim: int
    min_eig: float
    grad_norm: float
    value: float
    escape: Any = None
    eigenvalues: np.ndarray = field(default=None, repr=False)
    exact: bool = True


def kind_of(prob: Problem, params: Any, *, gtol: float = 1e-8, eig_tol: float = 1e-8, method: str = "auto",
            num_iters: int = 200) -> CriticalPoint:
    r"""Classify ``params`` as a critical point of ``prob.objective``.

    .. math:: \text{stationary: } \lVert \theta - P(\theta - \nabla f)\rVert \le
        \mathrm{gtol}\max(1,|f|);\quad
        \text{index} = \#\{\lambda_i(\Pi \nabla^2 f\,\Pi) < -\mathrm{eig\_tol}\}

    with ``Pi`` the projection onto the free components orthogonal to the symmetry orbit
    (:func:`ufm.solvers.symmetry_basis`). A stationary point with ``index > 0`` is a strict
    saddle; with ``index = 0`` it is a ``"minimum"`` when no eigenvalue lies in
    ``[-eig_tol, eig_tol]``, else ``"degenerate"`` (higher-order terms decide).

    Args:
        prob: a Problem. params: the point.
        gtol: relative stationarity tolerance (default ``1e-8``, looser than the solvers'
            ``1e-10`` on purpose: it judges a point handed in, which may come from a closed form or
            another solver; a point :func:`ufm.minimize` certified at ``1e-10`` passes with margin).
        eig_tol: absolute eigenvalue tolerance.
        method: ``"auto"`` (dense up to 2000 parameters), ``"dense"`` or ``"lanczos"``.
        num_iters: Lanczos steps (default 200, that of :func:`ufm.solvers.hessian_spectrum`: these
            are Krylov steps, not solver iterations, and fewer resolve fewer eigenvalues).

    Returns:
        A :class:`CriticalPoint`.

    References:
        Nocedal & Wright, Numerical Optimization, Thm. 12.5-12.6; Zhu et al., NeurIPS 2021
        (arXiv 2105.02375), the strict saddle at the origin of the CE UFM.
    """
    gtol = check_finite_positive("gtol", gtol)
    eig_tol = check_finite_positive("eig_tol", eig_tol)
    value = float(prob.objective(params))
    kkt = float(grad_norm(prob, params))
    w, V = hessian_spectrum(prob, params, method=method, num_iters=num_iters)
    w = np.asarray(w)
    finite = w[np.isfinite(w)]
    size = ravel_pytree(params)[0].size
    exact = (method == "dense") or (method == "auto" and size <= 2000)
    sym_dim = int(np.sum(np.asarray(symmetry_basis(prob, params)[1]) > 0)) if exact else -1
    index = int(np.sum(finite < -eig_tol))
    null_dim = int(np.sum(np.abs(finite) <= eig_tol))
    min_eig = float(finite[0]) if finite.size else float("inf")
    escape = None
    if kkt > gtol * max(1.0, abs(value)):
        kind = "not stationary"
    elif index > 0:
        kind = "saddle"
        escape = ravel_pytree(params)[1](jnp.asarray(V[:, 0]))
    else:
        kind = "degenerate" if null_dim > 0 else "minimum"
    return CriticalPoint(kind=kind, index=index, null_dim=null_dim, symmetry_dim=sym_dim, min_eig=min_eig,
                         grad_norm=kkt, value=value, escape=escape, eigenvalues=finite, exact=exact)


# ---- census of random starts -------------------------------------------------------------------
@dataclass(frozen=True)
class Census:
    """End points of many random starts (:func:`census`), one entry per start.

    Attributes:
        init_scale: the entry scale of each start (``nan`` for the default scale), ``(S,)``.
        value: objective at the end point. kkt: its KKT residual. min_eig: smallest Hessian
            eigenvalue on the free non-symmetry directions. index: negative eigenvalues there.
        kind: the :func:`kind_of` kind of each end point (``"minimum"``, ``"saddle"``,
            ``"degenerate"``, ``"not stationary"``).
        gap: global gap ``f - lower_bound`` (:func:`ufm.global_certificate`), ``nan`` where the
            family has none. is_global: ``gap <= gap_tol max(1, |f|)``.
        f_best: the lowest value found. seconds: wall time of the solves (compilation included).
        mode: ``"vmap"`` or ``"map"``.
    """

    init_scale: np.ndarray
    value: np.ndarray
    kkt: np.ndarray
    min_eig: np.ndarray
    index: np.ndarray
    kind: np.ndarray
    gap: np.ndarray
    is_global: np.ndarray
    f_best: float
    seconds: float
    mode: str

    def table(self) -> list[dict]:
        """One row per init scale: starts, counts per kind, share certified global, distinct values."""
        rows = []
        for s in _unique_nan(self.init_scale):
            sel = np.isnan(self.init_scale) if np.isnan(s) else self.init_scale == s
            vals = np.sort(self.value[sel])
            distinct = [float(v) for i, v in enumerate(vals)
                        if i == 0 or v - vals[i - 1] > 1e-7 * max(1.0, abs(v))]
            row = {"init_scale": None if np.isnan(s) else float(s), "starts": int(sel.sum())}
            row.update({k: int(np.sum(self.kind[sel] == k)) for k in KINDS})
            has_gap = np.any(np.isfinite(self.gap[sel]))
            row["share_global"] = float(np.mean(self.is_global[sel])) if has_gap else None
            row["distinct_values"] = distinct[:8]
            rows.append(row)
        return rows


def _unique_nan(a):
    out = list(np.unique(a[~np.isnan(a)]))
    return out + ([np.nan] if np.any(np.isnan(a)) else [])


def _end_point(prob, key, scale, order, gtol, method):
    """One start: minimize, then the curvature count and the global gap (pure JAX)."""
    x0 = prob.init(key, scale)
    sol = minimize(prob, params0=x0, gtol=gtol, order=order, throw=False)
    w, _ = hessian_spectrum(prob, sol.params, method=method)
    finite = jnp.where(jnp.isfinite(w), w, jnp.inf)
    try:
        gap = global_certificate(prob, sol.params).gap
    except ValueError:  # the family has no proven bound (raised before tracing anything)
        gap = jnp.nan
    return sol.value, sol.grad_norm, finite, gap


@functools.partial(jax.jit, static_argnames=("default_scale", "order", "gtol", "method", "mode"))
def _run_starts(prob, keys, scale, default_scale, order, gtol, method, mode):
    scale = None if default_scale else scale  # a traced number: new scales do not recompile
    fn = lambda k: _end_point(prob, k, scale, order, gtol, method)  # noqa: E731
    return jax.vmap(fn)(keys) if mode == "vmap" else jax.lax.map(fn, keys)


def census(prob: Problem, *, starts: int = 32, init_scales: Sequence[float | None] = (None,), seed: int = 0,
           mode: str = "auto", order: str = "first", gtol: float = 1e-10, eig_tol: float = 1e-8,
           gap_tol: float = 1e-9, method: str = "dense") -> Census:
    r"""Run ``starts`` random starts per init scale and classify every end point.

    Each start is ``prob.init(key, scale)`` followed by :func:`ufm.minimize` (``throw=False``,
    certificate ``gtol``; ``order="first"`` by default, so that the census sees where plain descent
    stops, saddles included; ``order="auto"`` lets minimize escape saddles). All starts of one
    scale run in one compiled function: ``mode="vmap"`` batches them (lockstep while-loops;
    fast on accelerators), ``mode="map"`` is a compiled sequential loop (``jax.lax.map``);
    ``"auto"`` picks ``"map"`` on CPU, ``"vmap"`` elsewhere (``benchmarks/bench_landscape.py``
    measures both).

    Args:
        prob: a Problem (dense curvature: keep it to a few thousand parameters).
        starts: random starts per init scale.
        init_scales: entry scales (``None``: the problem's default).
        seed: base PRNG seed. gtol, order: passed to minimize.
        eig_tol: eigenvalue tolerance of the classification. gap_tol: relative global gap under
            which an end point counts as the certified global minimum.
        method: ``"dense"`` or ``"lanczos"`` curvature. The default is ``"dense"``, not ``"auto"``:
            the census counts the index and the null dimension of every end point, which only the
            dense spectrum gives as exact multiplicities.

    Returns:
        A :class:`Census` (``census.table()`` summarizes it by init scale).

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375); Nguyen et al., ICLR 2023 (arXiv 2206.05530);
        Súkeník et al., NeurIPS 2023 (arXiv 2305.13165).
    """
    starts = check_int("starts", starts, 1)
    if mode not in ("auto", "vmap", "map"):
        raise ValueError(f"mode must be 'auto', 'vmap' or 'map', got mode={mode!r}")
    if mode == "auto":
        mode = "map" if jax.default_backend() == "cpu" else "vmap"
    cols = {k: [] for k in ("scale", "value", "kkt", "w", "gap")}
    t0 = time.perf_counter()
    for i, scale in enumerate(init_scales):
        keys = jax.random.split(jax.random.PRNGKey(seed + 7919 * i), starts)
        s = None if scale is None else float(check_finite_positive("init_scales", scale))
        scale_arg = jnp.asarray(1.0 if s is None else s)
        value, kkt, w, gap = jax.block_until_ready(
            _run_starts(prob, keys, scale_arg, s is None, order, gtol, method, mode))
        cols["scale"].append(np.full(starts, np.nan if s is None else s))
        for name, arr in (("value", value), ("kkt", kkt), ("w", w), ("gap", gap)):
            cols[name].append(np.asarray(arr))
    seconds = time.perf_counter() - t0
    scale, value, kkt, gap = (np.concatenate(cols[k]) for k in ("scale", "value", "kkt", "gap"))
    w = np.concatenate(cols["w"])
    gap = np.broadcast_to(gap, value.shape).astype(float)
    index = np.sum(w < -eig_tol, axis=1)
    null = np.sum(np.abs(w) <= eig_tol, axis=1)
    stationary = kkt <= gtol * 10 * np.maximum(1.0, np.abs(value))
    kind = np.where(~stationary, "not stationary",
                    np.where(index > 0, "saddle", np.where(null > 0, "degenerate", "minimum")))
    is_global = np.isfinite(gap) & (gap <= gap_tol * np.maximum(1.0, np.abs(value)))
    return Census(init_scale=scale, value=value, kkt=kkt, min_eig=w[:, 0], index=index, kind=kind, gap=gap,
                  is_global=is_global, f_best=float(np.min(value)), seconds=seconds, mode=mode)


# ---- slices ------------------------------------------------------------------------------------
def _as_tree(params, direction):
    flat, unravel = ravel_pytree(params)
    if isinstance(direction, (jax.Array, np.ndarray)) and np.ndim(direction) == 1:
        if direction.shape[0] != flat.size:
            raise ValueError(f"direction must have {flat.size} entries (ravel_pytree order), "
                             f"got {direction.shape[0]}")
        return unravel(jnp.asarray(direction, flat.dtype))
    return direction


@functools.partial(jax.jit, static_argnames=())
def _values_along(prob, params, d1, d2, ts, ss):
    def f(t, s):
        return prob.objective(tree_axpy(s, d2, tree_axpy(t, d1, params)))

    return jax.vmap(lambda t: jax.vmap(lambda s: f(t, s))(ss))(ts)


def slice_1d(prob: Problem, params: Any, direction: Any, ts: ArrayLike) -> np.ndarray:
    r"""``f(theta + t v)`` for every ``t`` in ``ts`` (``v``: a pytree like ``params`` or a flat
    vector in ``ravel_pytree`` order, e.g. an eigenvector from :func:`spectrum`)."""
    d = _as_tree(params, direction)
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    return np.asarray(_values_along(prob, params, d, zero, jnp.asarray(ts), jnp.zeros(1)))[:, 0]


def slice_2d(prob: Problem, params: Any, d1: Any, d2: Any, ts: ArrayLike, ss: ArrayLike) -> np.ndarray:
    r"""``f(theta + t u + s v)`` on the grid ``ts x ss``, shape ``(len(ts), len(ss))``."""
    return np.asarray(_values_along(prob, params, _as_tree(params, d1), _as_tree(params, d2),
                                    jnp.asarray(ts), jnp.asarray(ss)))


def _align(prob, a, b):
    """Rotate ``b``'s feature space onto ``a``'s (orthogonal Procrustes on ``H``), for models whose
    parameters have ``W`` and ``H``: ``Q = argmin ||Q H_b - H_a||``, ``W_b -> W_b Q^T``."""
    if not (hasattr(b, "W") and hasattr(b, "H")):
        return b
    U, _, Vt = jnp.linalg.svd(a.H @ b.H.T + a.W.T @ b.W)
    Q = U @ Vt
    return b._replace(W=b.W @ Q.T, H=Q @ b.H)


def path(prob: Problem, a: Any, b: Any, *, num: int = 101, align: bool = True) -> dict:
    r"""The objective on the straight path ``(1 - t) a + t b``, ``t in [0, 1]``, and its barrier

    .. math:: \mathrm{barrier} = \max_t f((1-t)a + tb) - \max(f(a), f(b)).

    Minimizers are defined only up to the rotation symmetry, so by default ``b`` is first rotated
    onto ``a`` (orthogonal Procrustes on ``(W, H)``, which keeps ``f(b)``); ``align=False`` uses
    ``b`` as given, and so do constrained problems (a rotation would leave ``H >= 0``).

    Returns:
        ``{"t", "values", "barrier", "f_a", "f_b"}`` (NumPy).
    """
    num = check_int("num", num, 2)
    if align and not prob.constrained:
        b = _align(prob, a, b)
    direction = jax.tree_util.tree_map(lambda x, y: y - x, a, b)
    ts = np.linspace(0.0, 1.0, num)
    vals = slice_1d(prob, a, direction, ts)
    return {"t": ts, "values": vals, "barrier": float(vals.max() - max(vals[0], vals[-1])),
            "f_a": float(vals[0]), "f_b": float(vals[-1]), "distance": float(tree_norm(direction))}


_RENAMED = {'classify': 'kind_of'}


def __getattr__(name: str):
    """Old names (kept for one release) resolve to the new ones with a DeprecationWarning."""
    if name in _RENAMED:
        return moved_attribute("ufm.landscape", name, "ufm.landscape", _RENAMED[name])
    raise AttributeError(f"module 'ufm.landscape' has no attribute {name!r}")
