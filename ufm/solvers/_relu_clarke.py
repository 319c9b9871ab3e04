r"""The Clarke certificate of a deep ReLU point at kinks: slopes, one-sided slopes, kink-manifold curvature.

At a point of a ReLU :class:`ufm.DeepUFM` where pre-activation entries sit exactly at the kink
(the set ``S``), the objective has no gradient. This module certifies such a point:

- first order (Clarke): slopes ``s in [0, 1]^S`` with ``g(s) = 0``, ``g(s)`` the back-propagated
  gradient with ``relu'(0) = s_k`` at the kink entries (:func:`slope_fit`: L-BFGS-B on the box,
  or Gauss-Newton steps each solving a bound-constrained linear least-squares problem);
- the one-sided slopes into the neighbouring pieces (:func:`one_sided_slopes`): ``delta_k``, the
  derivative of the objective with respect to the post-activation of kink entry ``k``. When
  ``g(s) = 0`` with ``s in [0, 1]^S`` and every ``delta_k >= 0``, every one-sided directional
  derivative is ``>= 0`` (no neighbouring piece descends); a ``delta_k < 0`` names a piece that may;
- second order on the kink manifold ``{Z_S = 0}`` (:func:`manifold_min_eig`): the Hessian on the
  null space of the kink Jacobian, the symmetry directions removed.

References:
    Clarke, Optimization and Nonsmooth Analysis (1983); Bolte & Pauwels, Math. Program. 2021
    (arXiv 1909.10300); Lawson & Hanson, Solving Least Squares Problems (1974), and Stark &
    Parker, Comput. Stat. 1995 (bounded-variable least squares); Lehoucq, Sorensen & Yang,
    ARPACK Users' Guide (1998) (implicitly restarted Lanczos).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm.problems import DeepParams, DeepUFM
from ufm.solvers._certify import symmetry_basis

__all__ = ["kink_masks", "with_slopes", "kink_index", "kink_rows", "at_kinks", "pre_jacobian", "slope_fit",
           "one_sided_slopes", "kink_jacobian", "manifold_min_eig", "clarke_certificate"]


# The L-BFGS-B slope fit stops near 1e-9 on large kink sets (684 slopes at K = 10, L = 4) where the
# minimum is ~1e-15; above this relative residual the Gauss-Newton fit (exact bounded least-squares
# steps) runs too and the lower residual is kept (both are ||g(s)|| at a feasible s).
FIT_RTOL = 1e-12


def kink_masks(prob: DeepUFM, params: DeepParams, tol: float = 1e-8) -> tuple:
    """``(on, kink)``: per hidden layer, 0/1 arrays of the pre-activation entries ``Z_l > tol s_l``
    (on) and ``|Z_l| <= tol s_l`` (at a kink), ``s_l = max |Z_l|``."""
    pre, _ = prob.layers(params)
    on, kink = [], []
    for Z in pre[:-1]:
        Z = np.asarray(Z)
        scale = float(np.max(np.abs(Z))) if Z.size else 0.0
        on.append((Z > tol * scale).astype(float))
        kink.append((np.abs(Z) <= tol * scale).astype(float))
    return tuple(on), tuple(kink)


def kink_index(kink: tuple) -> list:
    """Per hidden layer, the flat indices of the 0/1 kink mask."""
    return [np.flatnonzero(np.asarray(Kk).ravel()) for Kk in kink]


def with_slopes(prob: DeepUFM, on: tuple, kink: tuple, s_flat: jax.Array) -> DeepUFM:
    """The problem with ``relu'`` replaced by ``on + s * kink`` (``s`` in ``[0, 1]`` on the kinks)."""
    parts, i = [], 0
    for M, idx in zip(on, kink_index(kink)):
        S = jnp.zeros(M.size, dtype=s_flat.dtype).at[idx].set(s_flat[i:i + idx.size]).reshape(M.shape)
        parts.append(jnp.asarray(M) + S)
        i += idx.size
    return dataclasses.replace(prob, pattern=tuple(parts))


# ---- the device side: one compiled program per problem shape ------------------------------------------
# The kink set changes from point to point, so every compiled function below takes whole-layer
# arrays (the 0/1 masks and the slopes ``S_l`` of every hidden pre-activation entry, read only at
# the kink entries) and the host selects the kink entries: a new kink set reuses the executable.
def _full_slopes(on: tuple, idx: list, s) -> tuple:
    """The per-layer slope arrays of ``s`` (one value per kink entry, at the flat indices ``idx`` of
    :func:`kink_index`), zero off the kinks (host side)."""
    out, i, s = [], 0, np.asarray(s, dtype=float)
    for M, ix in zip(on, idx):
        S = np.zeros(np.size(M))
        S[ix] = s[i:i + ix.size]
        out.append(S.reshape(np.shape(M)))
        i += ix.size
    return tuple(out)


def at_kinks(arrays, idx: list) -> np.ndarray:
    """The entries of per-layer arrays at the kink entries (``idx``: :func:`kink_index`), one
    vector (host side)."""
    return np.concatenate([np.asarray(A).ravel()[i] for A, i in zip(arrays, idx)] + [np.zeros(0)])


def _as_arrays(on: tuple, kink: tuple) -> tuple:
    return tuple(jnp.asarray(M, float) for M in on), tuple(jnp.asarray(Kk, float) for Kk in kink)


def _sloped(prob: DeepUFM, on, kink, S) -> DeepUFM:
    return dataclasses.replace(prob, pattern=tuple(M + Kk * Sl for M, Kk, Sl in zip(on, kink, S)))


@jax.jit
def _sloped_grad(prob, params, on, kink, S):
    """``g(s)``, the flat backprop gradient with slopes ``S`` at the kinks."""
    return ravel_pytree(jax.grad(_sloped(prob, on, kink, S).objective)(params))[0]


@jax.jit
def _residual_and_slope_grad(prob, params, on, kink, S):
    """``||g(s)||^2`` and its gradient with respect to every slope array (read at the kinks)."""
    return jax.value_and_grad(lambda T: jnp.sum(_sloped_grad(prob, params, on, kink, T) ** 2))(S)


@jax.jit
def _slope_jacobian(prob, params, on, kink, S):
    """``dg/dS``: per layer, the Jacobian of ``g`` with respect to that layer's slope array."""
    return jax.jacfwd(lambda T: _sloped_grad(prob, params, on, kink, T))(S)


@jax.jit
def pre_jacobian(prob, params):
    """The Jacobian of every hidden pre-activation entry (layers in order, each row-major) with
    respect to the flat parameters."""
    flat, unravel = ravel_pytree(params)

    def hidden(v):
        pre, _ = prob.layers(unravel(v))
        return jnp.concatenate([Z.ravel() for Z in pre[:-1]])

    return jax.jacrev(hidden)(flat)


@jax.jit
def _flat_hessian(prob, params):
    """The Hessian of ``prob.objective`` with respect to the flat parameters."""
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda v: prob.objective(unravel(v)))(flat)


def kink_rows(kink: tuple, idx: list | None = None) -> np.ndarray:
    """The rows of :func:`pre_jacobian` (hidden pre-activation entries, layers in order) of the
    kink entries ``idx`` (default: every entry of the kink masks)."""
    idx = kink_index(kink) if idx is None else idx
    offs = np.cumsum([0] + [int(np.size(Kk)) for Kk in kink])
    return np.concatenate([o + np.asarray(i, dtype=int) for o, i in zip(offs[:-1], idx)] + [np.zeros(0, int)])


def _box_lsq(A: np.ndarray, b: np.ndarray, t0: np.ndarray) -> np.ndarray:
    """``argmin ||A t - b||_2`` over ``t in [0, 1]^k`` (bounded-variable least squares, an active-set
    method, on the triangular factor of ``A``); columns of ``A`` that vanish keep ``t0``."""
    from scipy.linalg import qr
    from scipy.optimize import lsq_linear

    live = np.linalg.norm(A, axis=0) > 1e-14 * max(1.0, float(np.max(np.abs(A))) if A.size else 0.0)
    t = np.array(t0, dtype=float)
    if not live.any():
        return t
    Al = A[:, live]
    b = b - A[:, ~live] @ t[~live]
    if Al.shape[0] > Al.shape[1]:  # ||A t - b||^2 = ||R t - Q^T b||^2 + const
        Q, R = qr(Al, mode="economic")
        Al, b = R, Q.T @ b
    out = lsq_linear(Al, b, bounds=(0.0, 1.0), method="bvls", tol=1e-15, max_iter=10 * Al.shape[1] + 100)
    t[live] = np.clip(out.x, 0.0, 1.0)
    return t


def slope_fit(prob: DeepUFM, params: DeepParams, on: tuple, kink: tuple, s0=None, *, method: str = "lbfgsb",
              max_iters: int = 30) -> tuple:
    r"""``min_s ||g(s)||_2`` over ``s in [0, 1]^S`` (``S`` the kink entries); returns ``(s, ||g(s)||)``.

    ``g(s)``, the backprop gradient with ``relu'(0) = s_k`` at the kink entries, is multilinear in
    ``s`` (affine when the kinks sit in one layer). ``method="lbfgsb"``: L-BFGS-B on
    ``||g(s)||^2`` from ``s0`` (default ``1/2`` each). ``method="bvls"``: Gauss-Newton steps, each
    linearizing ``g(s) + A(s)(t - s)`` with ``A = dg/ds`` (one forward-mode Jacobian) and solving
    the bound-constrained least-squares problem in ``t`` exactly (:func:`_box_lsq`), halved until
    ``||g||`` decreases; exact in one step for kinks in one layer. On the K = 10, L = 4 kink point
    (560 slopes) L-BFGS-B took half the time of the Gauss-Newton fit (same process), so it is the
    default.
    """
    k = int(sum(np.sum(Kk) for Kk in kink))
    idx = kink_index(kink)
    on, kink = _as_arrays(on, kink)

    def grad_s(s):
        return np.asarray(_sloped_grad(prob, params, on, kink, _full_slopes(on, idx, s)))

    if k == 0:
        return np.zeros(0), float(np.linalg.norm(grad_s(np.zeros(0))))
    s = np.clip(np.full(k, 0.5) if s0 is None else np.asarray(s0, float), 0.0, 1.0)
    if method == "lbfgsb":
        return _lbfgsb_fit(prob, params, on, kink, idx, s)
    g = grad_s(s)
    best = float(np.linalg.norm(g))
    for _ in range(max_iters):
        if best == 0.0:
            break
        jac = _slope_jacobian(prob, params, on, kink, _full_slopes(on, idx, s))
        A = np.concatenate([np.asarray(Jl).reshape(g.size, -1)[:, i] for Jl, i in zip(jac, idx)], axis=1)
        step = _box_lsq(A, A @ s - g, s) - s
        for a in (1.0, 0.5, 0.25, 0.125):
            gt = grad_s(s + a * step)
            if float(np.linalg.norm(gt)) < best:
                break
        else:
            break
        improvement = best - float(np.linalg.norm(gt))
        s, g, best = np.clip(s + a * step, 0.0, 1.0), gt, float(np.linalg.norm(gt))
        if improvement <= 1e-3 * best:
            break
    return s, best


def _lbfgsb_fit(prob, params, on, kink, idx, s0):
    """L-BFGS-B on ``||g(s)||^2`` over the box from ``s0``: ``(s, ||g(s)||)``."""
    from scipy.optimize import minimize as sp_minimize

    def fun(s):
        value, grads = _residual_and_slope_grad(prob, params, on, kink, _full_slopes(on, idx, s))
        return float(value), at_kinks(grads, idx)

    out = sp_minimize(fun, s0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * s0.size,
                      options=dict(maxiter=2000, ftol=0.0, gtol=1e-30))
    s = np.clip(out.x, 0.0, 1.0)
    return s, float(np.sqrt(fun(s)[0]))


def one_sided_slopes(prob: DeepUFM, params: DeepParams, on: tuple, kink: tuple, s) -> np.ndarray:
    r"""``delta_k = d f_s / d X_{l+1}[k]`` at each kink entry ``k`` (in the order of the kink masks).

    ``f_s`` is the objective with slopes ``s`` at the kinks, and ``X_{l+1} = P_l Z_l + E_l`` its
    post-activations with an additive perturbation ``E_l`` (``delta = df_s/dE`` at ``E = 0``).
    Along a direction ``v`` the one-sided derivative of the ReLU objective is
    ``f'(theta; v) = g(s) v + sum_k delta_k r_k`` with ``r_k = max(0, dZ_k) - s_k dZ_k >= 0``
    (the tangent is linear in ``v`` and the ``r_k``), so ``g(s) = 0`` and ``delta >= 0`` give
    ``f'(theta; v) >= 0`` for every ``v``; with independent kink rows, ``delta_k < 0`` gives a
    direction into a neighbouring piece along which ``f`` decreases at first order.
    """
    idx = kink_index(kink)
    on, kink = _as_arrays(on, kink)
    return at_kinks(_post_signal(prob, params, on, kink, _full_slopes(on, idx, s)), idx)


@jax.jit
def _post_signal(prob, params, on, kink, S):
    """``df_s/dE_l`` for every hidden layer: the objective with slopes ``S`` and an additive
    perturbation ``E_l`` of the post-activations, differentiated at ``E = 0``."""
    piece = _sloped(prob, on, kink, S)
    labels = jnp.asarray(prob.labels)

    def f(Es):
        X = params.H
        for l, W in enumerate(params.Ws):
            Z = W @ X
            X = Z if l == prob.L - 1 else piece.pattern[l] * Z + Es[l]
        logits = X if params.b is None else X + params.b[:, None]
        return jnp.mean(prob.loss(logits, labels)) + prob.penalty(params)

    return jax.grad(f)([jnp.zeros_like(M) for M in piece.pattern])


def kink_jacobian(prob: DeepUFM, params: DeepParams, kink: tuple) -> np.ndarray:
    """``J_S``: the Jacobian of the kink pre-activations with respect to the flat parameters (rows in
    the order of the kink masks)."""
    return np.asarray(pre_jacobian(prob, params))[kink_rows(kink)]


def _null_projector(rows: np.ndarray):
    """``v -> v - Q Q^T v``, ``Q`` an orthonormal basis of the row space of ``rows`` (pivoted QR, rank
    cut at ``1e-10`` of the largest diagonal); returns ``(project, rank)``."""
    from scipy.linalg import qr

    if rows.shape[0] == 0:
        return (lambda v: v), 0
    Q, R, _ = qr(rows.T, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    rank = int(np.sum(d > 1e-10 * max(1.0, d[0] if d.size else 0.0)))
    Q = Q[:, :rank]
    return (lambda v: v - Q @ (Q.T @ v)), rank


def manifold_min_eig(prob: DeepUFM, params: DeepParams, on: tuple, kink: tuple, s, *, method: str = "dense",
                     tol: float = 1e-11, seed: int = 0) -> float:
    r"""Smallest eigenvalue of the slope-``s`` piece's Hessian on ``null(J_S)`` with the symmetry
    directions removed.

    The subspace is ``null(J_S)`` minus the tangents of the symmetry orbit
    (:func:`ufm.solvers.symmetry_basis`; they lie in ``null(J_S)``, since the orbit keeps every
    pre-activation, and the Hessian vanishes on them at a stationary point, as in the smooth
    certificate). ``method="dense"``: the Hessian, a basis ``N`` of the subspace from the SVD of the
    stacked constraints, and ``eigvalsh(N^T H N)``. ``method="lanczos"``: implicitly restarted
    Lanczos (ARPACK) on Hessian-vector products; with ``Pi`` the projector onto the subspace and
    ``c`` above the largest eigenvalue, ``Pi H Pi + c (I - Pi) + c I`` has the spectrum sought
    shifted by ``c`` plus ``2c`` elsewhere (the shift keeps ARPACK's relative tolerance ``tol``
    reachable). Lanczos forms no dense matrix, but on the clustered spectra of the kink points of
    the K = 10, L = 4 model it converged more slowly than the dense path. ``+inf`` when the
    subspace is ``{0}``.
    """
    flat, unravel = ravel_pytree(params)
    piece = _sloped(prob, *_as_arrays(on, kink), _full_slopes(on, kink_index(kink), s))
    P, sv = symmetry_basis(prob, params)
    rows = [np.asarray(P)[:, np.asarray(sv) > 0].T]
    if np.size(s):
        rows.append(kink_jacobian(prob, params, kink))
    rows = np.concatenate(rows, axis=0)
    if method == "lanczos":
        return _lanczos_min_eig(piece, flat, unravel, rows, tol, seed)
    H = np.asarray(_flat_hessian(piece, params))
    _, sv, Vt = np.linalg.svd(rows, full_matrices=True)
    N = Vt[int(np.sum(sv > 1e-10 * max(1.0, sv[0] if sv.size else 0.0))):].T
    if N.shape[1] == 0:
        return np.inf
    return float(np.linalg.eigvalsh(N.T @ (0.5 * (H + H.T)) @ N)[0])


def _lanczos_min_eig(piece, flat, unravel, rows, tol, seed):
    """The ``method="lanczos"`` branch of :func:`manifold_min_eig`."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    grad = jax.grad(lambda v: piece.objective(unravel(v)))
    hvp_j = jax.jit(lambda u: jax.jvp(grad, (flat,), (u,))[1])
    project, rank = _null_projector(rows)
    n = flat.size
    if rank >= n:
        return np.inf

    def pih(v):
        return project(np.asarray(hvp_j(jnp.asarray(project(np.ravel(v))))))

    v0 = np.random.default_rng(seed).standard_normal(n)
    top = eigsh(LinearOperator((n, n), matvec=pih, dtype=float), k=1, which="LA", tol=1e-3, v0=v0,
                return_eigenvectors=False)[0]
    c = 2.0 * abs(float(top)) + 1.0

    def shifted(v):
        v = np.ravel(v)
        return pih(v) + c * (v - project(v)) + c * v

    lo = eigsh(LinearOperator((n, n), matvec=shifted, dtype=float), k=1, which="SA", tol=tol, v0=project(v0),
               ncv=min(n, 64), maxiter=20 * n, return_eigenvectors=False)
    return float(lo[0]) - c


def clarke_certificate(prob: DeepUFM, params: DeepParams, *, tol: float = 1e-8, eig_tol: float = 1e-8,
                       second: bool = True, s0=None) -> dict:
    r"""First-order (Clarke), one-sided and kink-manifold second-order certificate of a ReLU point.

    At a point where some pre-activation entries sit exactly at the kink (``|Z_l| <= tol max|Z_l|``,
    the set ``S``), ReLU has no derivative. Replacing ``relu'(0)`` by a slope ``s_k in [0, 1]`` at
    each kink entry gives the backprop gradient ``g(s)`` (multilinear in ``s``); on the vertices
    ``s in {0,1}^S`` it is the gradient of the adjacent activation pieces, so ``g([0,1]^S)``
    lies in their convex hull, which is the Clarke subdifferential when the adjacent pieces are
    all essentially active:

    .. math:: \partial_C f(\theta) = \mathrm{conv}\{\nabla f_\sigma(\theta) : \sigma \in \{0,1\}^S\}
        \ni g(s^*), \qquad \mathrm{kkt} = \min_{s \in [0,1]^S} \lVert g(s) \rVert_2 .

    ``kkt`` (:func:`slope_fit`: L-BFGS-B, and the Gauss-Newton fit where L-BFGS-B stops above
    :data:`FIT_RTOL` ``max(1, |f|)``) is the first-order certificate: ``kkt = 0`` means first-order
    stationarity in the Clarke sense (for every adjacent piece that is essentially active; in
    general, for the conservative field of backprop, Bolte & Pauwels 2021). A point stationary on
    one adjacent piece is always Clarke stationary (that piece's vertex is in the box), so Clarke
    alone says nothing about the neighbouring pieces: ``one_sided`` (:func:`one_sided_slopes`, the
    signal ``delta_k`` into each kink's neighbouring piece) does. ``min(delta) >= 0`` (with
    ``kkt = 0``) means no one-sided directional derivative is negative; a kink with ``delta_k < 0``
    is listed in ``descent``.

    Second order on the kink manifold ``{theta : Z_S(theta) = 0}`` (near ``theta`` the other signs
    do not change, so ``f`` is smooth there and equals ``f_{s*}``): the second derivative of ``f``
    along a curve in the manifold is ``v^T \nabla^2 f_{s^*} v``, ``v in null(J_S)``. ``min_eig``
    is the smallest eigenvalue of that Hessian on ``null(J_S)`` with the symmetry directions
    removed (:func:`manifold_min_eig`; the Hessian vanishes on them at a stationary point). Directions that leave the manifold into a
    piece are covered to first order only (``one_sided``).

    Args:
        prob: a ReLU :class:`DeepUFM` (no fixed pattern, no smoothing).
        params: the point.
        tol: relative size of a pre-activation entry counted as a kink.
        eig_tol: second-order tolerance.
        second: also compute ``min_eig``.
        s0: a starting guess for the slopes (default ``1/2`` each).

    Returns:
        A dict: ``kkt``, ``slopes`` (``s*``, one per kink entry, in the order of ``kinks``),
        ``kinks`` (``(layer, unit, sample)``, 1-based layer), ``one_sided`` (``delta``, one per
        kink), ``descent`` (the kinks with ``delta_k < -tol_delta``, ``tol_delta = 1e-8 max(1,
        |f|)``), ``min_eig`` (``nan`` when not computed), ``order`` (``"first (Clarke)"``, or
        ``"first (Clarke) + second on the kink manifold"`` when ``descent`` is empty and
        ``min_eig >= -eig_tol``), ``value``.

    References:
        Clarke, Optimization and Nonsmooth Analysis (1983), Thm. 2.5.1 (generalized gradient as the
        hull of limiting gradients); Bolte & Pauwels, Math. Program. 2021 (arXiv 1909.10300),
        conservative fields of backprop; Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468), the
        low-rank (kink) minimizers of the deep UFM.
    """
    if prob.activation != "relu" or prob.pattern is not None or prob.smoothing is not None:
        raise ValueError("clarke_certificate needs a ReLU DeepUFM without pattern or smoothing")
    on, kink = kink_masks(prob, params, tol)
    s, kkt = slope_fit(prob, params, on, kink, s0)
    kinks = [(l + 1, int(i), int(j)) for l, Kk in enumerate(kink) for i, j in np.argwhere(np.asarray(Kk) > 0)]
    value = float(prob.objective(params))
    if kkt > FIT_RTOL * max(1.0, abs(value)):  # L-BFGS-B stalled above it: the Gauss-Newton fit, kept if lower
        s_gn, kkt_gn = slope_fit(prob, params, on, kink, s, method="bvls")
        if kkt_gn < kkt:
            s, kkt = s_gn, kkt_gn
    delta = one_sided_slopes(prob, params, on, kink, s) if kinks else np.zeros(0)
    descent = [kk for kk, dk in zip(kinks, delta) if dk < -1e-8 * max(1.0, abs(value))]
    min_eig = manifold_min_eig(prob, params, on, kink, s) if second else np.nan
    order = "first (Clarke)"
    if not descent and second and min_eig >= -eig_tol:
        order += " + second on the kink manifold"
    return {"kkt": kkt, "slopes": s, "kinks": kinks, "one_sided": delta, "descent": descent,
            "min_eig": min_eig, "order": order, "value": value}
