r"""Deep ReLU models: certification on the activation piece and at the kinks of deep neural collapse.

A point of a ReLU :class:`ufm.DeepUFM` reached by the local solve is polished here on the host
(:func:`polish_piece`, the hook :func:`ufm.minimize` passes to the local solve): on its activation
piece (pattern frozen, consistency checked), else after a sharp softplus continuation by the
Newton polish of the kink manifold (:func:`polish_kink`) and the Clarke certificate
(:func:`clarke_certificate`).

References:
    Bertsekas, Nonlinear Programming (active-set identification then Newton on the identified
    manifold); Clarke, Optimization and Nonsmooth Analysis (1983); Bolte & Pauwels, Math. Program.
    2021 (arXiv 1909.10300); Súkeník, Mondelli & Lampert, NeurIPS 2023 (arXiv 2305.13165) and 2024
    (arXiv 2405.14468), the kinks and low-rank points of the deep UFM.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm._internal.precision import require_x64
from ufm._internal.validation import check_finite_positive, check_int
from ufm.problems import DeepParams, DeepUFM, Problem
from ufm.solvers._common import check_params
from ufm.solvers._core import Run, SolveOptions, for_problem, solve
from ufm.solvers._local import minimize_local
from ufm.solvers._results import RESULTS, Certificate, Solution

__all__ = ["polish_relu", "clarke_certificate", "polish_kink", "kink_masks", "polish_piece"]


def polish_relu(prob: DeepUFM, params: DeepParams, *, rtol: float = 1e-3, gtol: float = 1e-12,
                max_newton: int = 200, throw: bool = True) -> Solution:
    r"""Certify a near-minimizer of a ReLU :class:`DeepUFM` on its activation piece.

    Deep-neural-collapse points of ReLU models sit on kinks: the orthogonal frames of the hidden
    class means have exact zeros, where ``relu`` is not differentiable. A gradient method then
    approaches the kink with a gradient norm that does not vanish (about ``1e-6`` relative), so
    :func:`ufm.minimize` cannot reach a ``1e-12`` certificate on ``prob`` itself. This function

    1. freezes the activation pattern ``M_l = 1[Z_l > rtol max|Z_l|]`` of ``params``
       (:meth:`DeepUFM.on_pattern`), a smooth (polynomial) piece of the objective;
    2. runs the local solve of :func:`ufm.minimize` on that piece from ``params`` (Newton polish,
       certificate ``gtol``);
    3. checks that the result lies on the same piece: every pre-activation entry with
       ``M_l = 1`` is ``> 0`` and every other entry is ``<= 1e-8 max|Z_l|``, so that ReLU and the
       frozen pattern give the same objective (``pattern_gap``, the difference, is reported).

    Args:
        prob: a DeepUFM (any activation; for ``"linear"`` step 1 is skipped).
        params: a near-minimizer, e.g. ``ufm.minimize(prob, throw=False).params``.
        rtol: pre-activations ``Z_l <= rtol max|Z_l|`` are treated as inactive; the default
            ``1e-3`` is far above the ``~1e-6`` accuracy of the first-order stage.
        gtol, max_newton: as in :func:`ufm.minimize`, for the piece. The defaults differ from
            minimize's (``1e-10``, ``100``) on purpose: a piece is a polynomial, on which Newton
            reaches ``1e-12`` from a near-minimizer, and that is what this function is for.
        throw: raise :class:`ufm.SolveError` when the piece's solve does not converge.

    Returns:
        The piece's :class:`ufm.Solution`, with ``value`` replaced by ``prob.objective`` at the
        polished point and ``stats["pattern_consistent"]`` (bool) and
        ``stats["pattern_gap"]`` (the largest ``|f_piece - f|``) added.

    References:
        Bertsekas, Nonlinear Programming (active-set identification then Newton on the
        identified manifold); the kinks of deep neural collapse: Súkeník, Mondelli & Lampert,
        NeurIPS 2023 (arXiv 2305.13165).
    """
    require_x64("ufm.minimize")
    smooth = prob.activation == "linear" or prob.pattern is not None
    piece = prob if smooth else prob.on_pattern(params, rtol)
    opts = dataclasses.replace(SolveOptions(), gtol=check_finite_positive("gtol", gtol),
                               max_newton=check_int("max_newton", max_newton, 0))
    x0 = check_params(piece, params)
    sol = minimize_local(piece, [x0], for_problem(opts, piece, x0, "auto"), seed=0, throw=throw)
    consistent = True
    if piece.pattern is not None:
        pre, _ = piece.layers(sol.params)
        for M, Z in zip(piece.pattern, pre[:-1]):
            M, Z = np.asarray(M), np.asarray(Z)
            consistent &= bool(np.all(Z[M > 0] > 0) and np.all(Z[M == 0] <= 1e-8 * np.max(np.abs(Z))))
    value = float(prob.objective(sol.params))
    stats = dict(sol.stats, pattern_consistent=consistent, pattern_gap=abs(value - sol.value))
    return dataclasses.replace(sol, value=value, stats=stats)


# ---- kink points: the Clarke certificate -------------------------------------------------------------
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


def _with_slopes(prob, on, kink, s_flat):
    """The problem with ``relu'`` replaced by ``on + s * kink`` (``s`` in ``[0, 1]`` on the kinks)."""
    parts, i = [], 0
    for M, Kk in zip(on, kink):
        idx = np.flatnonzero(np.asarray(Kk).ravel())
        S = jnp.zeros(M.size, dtype=s_flat.dtype).at[idx].set(s_flat[i:i + idx.size]).reshape(M.shape)
        parts.append(jnp.asarray(M) + S)
        i += idx.size
    return dataclasses.replace(prob, pattern=tuple(parts))


def _kink_values(prob, idx, params):
    """The pre-activations at the kink entries (``idx``: per hidden layer, flat indices), one
    vector (they vanish on the kink manifold)."""
    pre, _ = prob.layers(params)
    return jnp.concatenate([Z.ravel()[i] for Z, i in zip(pre[:-1], idx)])


def _kink_index(kink):
    """Per hidden layer, the flat indices of the 0/1 kink mask."""
    return [np.flatnonzero(np.asarray(Kk).ravel()) for Kk in kink]


def _slope_fit(prob, params, on, kink, s0=None):
    """``min_s ||g(s)||^2`` over ``s in [0, 1]^k`` (L-BFGS-B), ``g(s)`` the backprop gradient with
    ``relu'(0) = s`` at the kink entries (multilinear in ``s``; affine when the kinks sit in one layer)."""
    from scipy.optimize import minimize as sp_minimize

    k = int(sum(np.sum(Kk) for Kk in kink))
    flat = ravel_pytree(params)[0]

    @jax.jit
    def res2(s):
        g = jax.grad(_with_slopes(prob, on, kink, s).objective)(params)
        return jnp.sum(ravel_pytree(g)[0] ** 2)

    vg = jax.jit(jax.value_and_grad(res2))
    if k == 0:
        return np.zeros(0), float(np.sqrt(res2(jnp.zeros(0, flat.dtype))))
    s0 = np.full(k, 0.5) if s0 is None else np.asarray(s0, float)
    fun = lambda s: tuple(np.asarray(v, float) for v in vg(jnp.asarray(s)))  # noqa: E731
    out = sp_minimize(fun, s0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * k,
                      options=dict(maxiter=2000, ftol=0.0, gtol=1e-30))
    s = np.clip(out.x, 0.0, 1.0)
    return s, float(np.sqrt(res2(jnp.asarray(s))))


def clarke_certificate(prob: DeepUFM, params: DeepParams, *, tol: float = 1e-8, eig_tol: float = 1e-8,
                       second: bool = True) -> dict:
    r"""First-order (Clarke) and kink-manifold second-order certificate of a ReLU :class:`DeepUFM`.

    At a point where some pre-activation entries sit exactly at the kink (``|Z_l| <= tol max|Z_l|``,
    the set ``S``), ReLU has no derivative. Replacing ``relu'(0)`` by a slope ``s_k in [0, 1]`` at
    each kink entry gives the backprop gradient ``g(s)`` (multilinear in ``s``); on the vertices
    ``s in {0,1}^S`` it is the gradient of the adjacent activation pieces, so ``g([0,1]^S)``
    lies in their convex hull, which is the Clarke subdifferential when the adjacent pieces are
    all essentially active:

    .. math:: \partial_C f(\theta) = \mathrm{conv}\{\nabla f_\sigma(\theta) : \sigma \in \{0,1\}^S\}
        \ni g(s^*), \qquad \mathrm{kkt} = \min_{s \in [0,1]^S} \lVert g(s) \rVert_2 .

    ``kkt`` (found by L-BFGS-B on the box) is the first-order certificate: ``kkt = 0`` means
    ``0 in conv{grad f_sigma}``, first-order stationarity in the Clarke sense (for every adjacent
    piece that is essentially active; in general, stationarity for the conservative field of
    backprop, Bolte & Pauwels 2021).

    Second order on the kink manifold ``{theta : Z_S(theta) = 0}`` (near ``theta`` the signs of the
    other entries do not change, so ``f`` is smooth there and equals the piece objective
    ``f_{s*}`` for every slope): since ``grad f_{s*} = g(s*)`` (about ``0``), the second derivative of
    ``f`` along a curve in the manifold is ``v^T \nabla^2 f_{s^*} v`` with ``v`` in the null space
    of the Jacobian ``J_S`` of ``Z_S``. ``min_eig`` is the smallest eigenvalue of the Hessian on
    ``null(J_S)`` (the symmetry directions included: zero eigenvalues are allowed, ``>= -eig_tol``).
    Nothing is claimed about directions that leave the manifold (into a piece), beyond first order.

    Args:
        prob: a ReLU :class:`DeepUFM` (no fixed pattern, no smoothing).
        params: the point.
        tol: relative size of a pre-activation entry counted as a kink.
        eig_tol: second-order tolerance.
        second: also compute ``min_eig`` (dense: a Hessian and an SVD of ``J_S``).

    Returns:
        A dict: ``kkt`` (the residual above), ``slopes`` (the multipliers ``s*``, one per kink
        entry, in the order of ``kinks``), ``kinks`` (``(layer, unit, sample)``, 1-based layer),
        ``min_eig`` (``nan`` when not computed), ``order`` (``"first (Clarke)"``,
        ``"first (Clarke) + second on the kink manifold"``), ``value``.

    References:
        Clarke, Optimization and Nonsmooth Analysis (1983), Thm. 2.5.1 (generalized gradient as the
        hull of limiting gradients); Bolte & Pauwels, Math. Program. 2021 (arXiv 1909.10300),
        conservative fields of backprop; Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468), the
        low-rank (kink) minimizers of the deep UFM.
    """
    if prob.activation != "relu" or prob.pattern is not None or prob.smoothing is not None:
        raise ValueError("clarke_certificate needs a ReLU DeepUFM without pattern or smoothing")
    on, kink = kink_masks(prob, params, tol)
    s, kkt = _slope_fit(prob, params, on, kink)
    pre, _ = prob.layers(params)
    kinks = [(l + 1, int(i), int(j)) for l, Kk in enumerate(kink) for i, j in np.argwhere(np.asarray(Kk) > 0)]
    min_eig = np.nan
    if second:
        min_eig = _manifold_min_eig(prob, params, on, kink, s)
    order = "first (Clarke)"
    if second and min_eig >= -eig_tol:
        order += " + second on the kink manifold"
    return {"kkt": kkt, "slopes": s, "kinks": kinks, "min_eig": min_eig, "order": order,
            "value": float(prob.objective(params))}


def _manifold_min_eig(prob, params, on, kink, s):
    """Smallest eigenvalue of the slope-``s`` piece's Hessian on ``null(J_S)``."""
    flat, unravel = ravel_pytree(params)
    piece = _with_slopes(prob, on, kink, jnp.asarray(s, flat.dtype))
    H = np.asarray(jax.jit(jax.hessian(lambda v: piece.objective(unravel(v))))(flat))
    if s.size:
        J = np.asarray(jax.jit(jax.jacrev(lambda v: _kink_values(prob, _kink_index(kink), unravel(v))))(flat))
        U, sv, Vt = np.linalg.svd(J, full_matrices=True)
        rank = int(np.sum(sv > 1e-10 * max(1.0, sv[0] if sv.size else 0.0)))
        N = Vt[rank:].T
    else:
        N = np.eye(flat.size)
    if N.shape[1] == 0:
        return np.inf
    return float(np.linalg.eigvalsh(N.T @ (0.5 * (H + H.T)) @ N)[0])


def _dead_units(on):
    """Per hidden layer, the units with no positive pre-activation (post-activation identically 0)."""
    return [~(np.asarray(M) > 0).any(axis=1) for M in on]


def _frozen_dead(params, dead):
    """``params`` with every dead unit's incoming row and outgoing column set to 0, and the 0/1 tree
    of those fixed entries (a dead unit feeds nothing forward, so zeroing its weights keeps the data
    term and lowers the weight decay; its kinks then hold exactly)."""
    Ws = [np.array(W) for W in params.Ws]
    fixed = [np.zeros(W.shape) for W in Ws]
    for l, d in enumerate(dead):
        Ws[l][d, :], fixed[l][d, :] = 0.0, 1.0
        Ws[l + 1][:, d], fixed[l + 1][:, d] = 0.0, 1.0
    x = params._replace(Ws=tuple(jnp.asarray(W) for W in Ws))
    fix = jax.tree_util.tree_map(jnp.zeros_like, params)._replace(Ws=tuple(jnp.asarray(F) for F in fixed))
    return x, np.asarray(ravel_pytree(fix)[0]) > 0.5


def _independent_kinks(prob, kidx, embed, x_free):
    """Per hidden layer, the kink indices of an independent subset of the constraints ``Z_S = 0``
    (pivoted QR of ``J_S``; dependent rows would leave the multipliers undetermined)."""
    from scipy.linalg import qr

    if not sum(i.size for i in kidx):
        return kidx
    JS = np.asarray(jax.jacrev(lambda v: _kink_values(prob, kidx, embed(v)))(x_free))
    _, R, piv = qr(JS.T, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    keep = np.sort(piv[: int(np.sum(d > 1e-6 * d[0]))]) if d.size and d[0] > 0 else np.zeros(0, int)
    offs = np.cumsum([0] + [i.size for i in kidx])
    return [i[keep[(keep >= lo) & (keep < hi)] - lo] for i, lo, hi in zip(kidx, offs[:-1], offs[1:])]


def _lagrange_newton(F_j, J_j, v, gtol: float, max_iters: int):
    """Newton on ``F(v) = 0`` through the eigendecomposition of the symmetric ``J`` (directions
    below ``cut |lambda|_max`` dropped), each step scaled by the best of ``2, 1, 1/2, 1/4``;
    returns ``(v, F(v), iterations)``."""
    r = np.asarray(F_j(v))
    it = 0
    for it in range(1, max_iters + 1):
        r0 = float(np.linalg.norm(r))
        if r0 <= gtol:
            it -= 1
            break
        J = np.asarray(J_j(v))
        lam, U = np.linalg.eigh(0.5 * (J + J.T))
        c = U.T @ r
        best = None
        for cut in (1e-10, 1e-8, 1e-6, 1e-4):
            keep = np.abs(lam) > cut * np.max(np.abs(lam))
            step = -U[:, keep] @ (c[keep] / lam[keep])
            for t in (2.0, 1.0, 0.5, 0.25):
                rt = np.asarray(F_j(v + t * step))
                nt = float(np.linalg.norm(rt))
                if np.isfinite(nt) and nt < r0 and (best is None or nt < best[0]):
                    best = (nt, v + t * step, rt)
            if best is not None:
                break
        if best is None:
            break
        _, v, r = best
    return v, r, it


def polish_kink(prob: DeepUFM, params: DeepParams, *, tol: float = 1e-5, dead_tol: float = 1e-2,
                gtol: float = 1e-12, max_iters: int = 60) -> tuple:
    r"""Newton polish of a ReLU point onto a stationary point of its kink manifold.

    Near ``params`` the pre-activation entries split into on (``Z > tol s_l``), off
    (``Z < -tol s_l``) and kink entries (``|Z| <= tol s_l``, ``s_l = max |Z_l|``). Dying units (no
    entry above ``dead_tol s_l``) have their incoming row and outgoing column set to 0 and fixed:
    a dead unit feeds nothing forward, so the weight decay drops and its kinks hold exactly (a
    dying unit's last contribution, of order ``dead_tol``, is removed; whether that was right is
    for the certificate to say). On the manifold ``{Z_S = 0}`` of the remaining (alive) kink
    entries the ReLU objective equals the smooth piece ``f_on`` (pattern 1 on the on entries, 0
    elsewhere), and the polish solves the Lagrange system of ``min f_on s.t. Z_S = 0``,

    .. math:: \nabla f_{\mathrm{on}}(\theta) + J_S(\theta)^\top \mu = 0, \qquad Z_S(\theta) = 0,

    with the constraints reduced to an independent subset (:func:`_independent_kinks`) and
    Newton steps on the symmetric Lagrange matrix (:func:`_lagrange_newton`: a truncated
    pseudo-inverse that drops the symmetry orbits and degenerate directions). The multiplier of a
    kink entry is its slope times the back-propagated signal, so the result is checked by
    :func:`clarke_certificate`, which recomputes the kink set and fits slopes in ``[0, 1]``:
    nothing here is certified by itself.

    Args:
        prob: a ReLU :class:`ufm.DeepUFM` (no pattern, no smoothing, no ``relu_features``).
        params: a point near the kink manifold, e.g. the end of a sharp softplus continuation.
        tol: relative size of a pre-activation entry treated as a kink.
        dead_tol: a unit whose pre-activations all stay below ``dead_tol s_l`` is zeroed.
        gtol: stop when the Lagrange residual (absolute) is below ``gtol``; the caller scales it
            (the local solve passes ``1e-2 gtol max(1, |f|)``).
        max_iters: Newton steps at most.

    Returns:
        ``(params, multipliers, residual, iterations)``.

    References:
        Nocedal & Wright, Numerical Optimization, ch. 18 (Newton on the Lagrange system); the kink
        (low-rank) points of the deep ReLU UFM: Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468).
    """
    if (prob.activation != "relu" or prob.pattern is not None or prob.smoothing is not None
            or prob.relu_features):
        raise ValueError("polish_kink needs a ReLU DeepUFM without pattern, smoothing or relu_features")
    dead = _dead_units(kink_masks(prob, params, dead_tol)[0])
    params, fixed = _frozen_dead(params, dead)
    on, kink = kink_masks(prob, params, tol)
    flat, unravel = ravel_pytree(params)
    free = np.flatnonzero(~fixed)

    def embed(v):
        return unravel(jnp.zeros_like(flat).at[free].set(v))

    kidx = [np.flatnonzero((np.asarray(Kk) > 0) & ~d[:, None]) for Kk, d in zip(kink, dead)]
    idx = tuple(_independent_kinks(prob, kidx, embed, flat[free]))
    piece = dataclasses.replace(prob, pattern=tuple(jnp.asarray(M) for M in on))
    nf = free.size

    def F(v):
        def lagrangian(w):
            x = embed(w[:nf])
            Zs = _kink_values(prob, idx, x)
            return piece.objective(x) + jnp.dot(w[nf:], Zs), Zs

        g, Zs = jax.grad(lagrangian, has_aux=True)(v)
        return jnp.concatenate([g[:nf], Zs])

    F_j, J_j = jax.jit(F), jax.jit(jax.jacfwd(F))
    v = jnp.concatenate([flat[free], jnp.zeros(sum(i.size for i in idx), flat.dtype)])
    r = np.asarray(F_j(v))
    if r.size > nf:  # least-squares multipliers at the start
        A = np.asarray(J_j(v))[:nf, nf:]
        v = v.at[nf:].set(np.linalg.lstsq(A, -r[:nf], rcond=None)[0])
    v, r, it = _lagrange_newton(F_j, J_j, v, gtol, max_iters)
    return embed(v[:nf]), np.asarray(v[nf:]), float(np.linalg.norm(r)), it


# ---- the host polish of the local solve -------------------------------------------------------------
def polish_piece(prob: Problem, run: Run, key: jax.Array, opts: SolveOptions, x0: Any = None,
                 rounds: int = 2) -> tuple:
    r"""Certify a piecewise-smooth (ReLU) model on its activation piece (host side).

    Deep-neural-collapse points of ReLU models sit on kinks (exact zeros of the pre-activations),
    where a gradient method stalls with a residual that does not vanish. Up to ``rounds`` times
    (:func:`_piece_rounds`): freeze the activation pattern of the current point
    (``prob.smooth_piece``, entries below ``1e-3`` of the layer's largest pre-activation count as
    off), run the whole solve on that smooth piece from the point, and check with
    ``prob.piece_report`` that the result lies on the same piece. The polished point is kept when
    it is consistent, certified on the piece, and not above the unpolished value. If no round
    succeeds for an uncertified point of a ReLU model without ``relu_features``, a sharp
    continuation runs from the point reached (``prob.smoothed(beta)``, ``beta = 1e3 .. 1e8``,
    first order, at most 3000 steps each), then :func:`_kink_rounds` (the Newton polish onto the
    kink manifold and the Clarke certificate, for the low-rank points below the DNC value). If
    that fails too and ``x0`` is given, a continuation from ``x0`` (``beta = 10 .. 1e6``, warm
    starts; ``beta`` is an array leaf, no recompilation), then the piece polish of its end point.

    Returns:
        ``(run, info)``: ``info`` the piece report (``consistent``, ``kinks``: ``(layer, unit,
        sample)`` exactly at a kink, ``gap``, ``rounds``), or ``None`` for smooth problems.
    """
    piece = prob.smooth_piece(run.params)
    if piece is None:
        return run, None
    certified = int(run.result) == RESULTS.successful
    if certified:
        rep = prob.piece_report(piece, run.params)
        if not rep["kinks"]:  # a smooth point of the ReLU model: nothing to polish
            return run, dict(rep, rounds=0)
    polished, info = _piece_rounds(prob, piece, run, key, opts, rounds)
    if polished is None and not certified and not prob.relu_features:
        # the low-rank (kink) points: a sharp continuation from the point reached, then the kink polish
        sharp = dataclasses.replace(opts, max_steps=min(opts.max_steps, 3000), second=None)
        near = _continuation(prob, run.params, run, key, sharp, (1e3, 1e4, 1e5, 1e6, 1e7, 1e8))
        polished, info_k = _kink_rounds(prob, near, opts, info)
        if polished is not None:
            return polished, dict(info_k, continuation="sharp")
        if "clarke" in info_k:  # what the kink polish reached, kept in the report of what follows
            c = info_k["clarke"]
            info = dict(info, kink_attempt=dict(value=c["value"], kkt=c["kkt"], kinks=len(c["kinks"]),
                                                polish_residual=c["polish_residual"]))
    if polished is not None or x0 is None or prob.smoothed(1.0) is None or certified:
        return (polished if polished is not None else run), info
    cont = _continuation(prob, x0, run, key, opts, (1e1, 1e2, 1e3, 1e4, 1e5, 1e6))
    polished, info2 = _piece_rounds(prob, prob.smooth_piece(cont.params), cont, key, opts, rounds)
    if polished is not None:
        return polished, dict(info2, continuation=True, **({"kink_attempt": info["kink_attempt"]}
                                                          if "kink_attempt" in info else {}))
    return run, info


def _add_counts(a: dict, b: dict) -> dict:
    return jax.tree_util.tree_map(lambda u, v: u + v, a, b)


def _continuation(prob, y, run: Run, key, opts: SolveOptions, betas) -> Run:
    """Solve ``prob.smoothed(beta)`` for each ``beta`` in turn (warm starts; ``beta`` is an array
    leaf, so one compiled solve serves them all); returns a Run at the last point, its ReLU
    value, ``max_steps_reached`` (nothing certified yet), ``run``'s certificate and the step
    counts added up."""
    total = run.counts
    for beta in betas:
        out = solve(prob.smoothed(jnp.asarray(beta)), y, key, opts)
        y, total = out.params, _add_counts(total, out.counts)
    return Run(y, prob.objective(y), jnp.int32(RESULTS.max_steps_reached), run.certificate, total)


def _piece_rounds(prob, piece, run: Run, key, opts: SolveOptions, rounds: int) -> tuple:
    """The piece rounds of :func:`polish_piece`: ``(polished run or None, report)``."""
    ref = float(run.value) if np.isfinite(float(run.value)) else np.inf
    # never above the point polished: 1e-12 relative for a certified point; for an uncertified one
    # 1e-4 relative (the piece drops entries below 1e-3 of a layer's largest, and a smoothed
    # start differs from its ReLU value by O(1/beta)); a jump onto a worse piece (for example the
    # dead-ReLU plateau, value about 1/2) is refused
    rel = 1e-12 if int(run.result) == RESULTS.successful else 1e-4
    tol = rel * max(1.0, abs(ref)) if np.isfinite(ref) else 0.0
    info = {"consistent": False, "kinks": [], "gap": np.nan, "rounds": 0}
    y = run.params
    for r in range(1, rounds + 1):
        out = solve(piece, y, key, opts)
        rep = prob.piece_report(piece, out.params)
        value = float(prob.objective(out.params))
        total = _add_counts(run.counts, out.counts)
        info = dict(rep, rounds=r)
        if rep["consistent"] and int(out.result) == RESULTS.successful and value <= ref + tol \
                and rep["gap"] <= 1e-10 * max(1.0, abs(value)):
            return Run(out.params, jnp.asarray(value), out.result, out.certificate, total), info
        if not np.isfinite(value):
            break
        y = out.params
        piece = prob.smooth_piece(y)
    return None, info


def _kink_rounds(prob, run: Run, opts: SolveOptions, info: dict, tol: float = 1e-5) -> tuple:
    r"""Certify a ReLU point that sits at kinks without being stationary on any adjacent piece.

    :func:`polish_kink` (Newton on the Lagrange system of the kink manifold, kink entries
    ``|Z| <= tol max|Z_l|``, dead units zeroed), then :func:`clarke_certificate` (kink set
    recomputed at ``1e-8``, slopes fitted in ``[0, 1]``). Kept when its ``kkt <= gtol max(1, |f|)``:
    the Certificate then says ``order == "first"`` (first order in the Clarke sense) with
    ``min_eig`` the smallest eigenvalue of the Hessian on the kink manifold; ``result`` is
    ``successful`` when that second order holds too (or only first order was asked), else
    ``saddle``. The report (``info["clarke"]``) names the kinks, the slopes and what is certified.
    Returns ``(run or None, info)``.
    """
    gtol, eig_tol = opts.gtol, opts.eig_tol
    scale = max(1.0, abs(float(run.value))) if np.isfinite(float(run.value)) else 1.0
    y, _, res, it = polish_kink(prob, run.params, tol=tol, gtol=1e-2 * gtol * scale)
    value = float(prob.objective(y))
    if not np.isfinite(value):
        return None, info
    c = clarke_certificate(prob, y, eig_tol=eig_tol, second=opts.second is not None)
    rep = dict(info, clarke=dict(c, kink_tol=tol, polish_residual=res, polish_steps=it))
    if c["kkt"] > gtol * max(1.0, abs(value)):
        return None, rep
    ok = opts.second is None or c["min_eig"] >= -eig_tol
    cert = Certificate(kkt=jnp.asarray(c["kkt"]), min_eig=jnp.asarray(c["min_eig"]), order_code=jnp.int32(1))
    total = dict(run.counts, newton_steps=run.counts["newton_steps"] + it)
    rep.update(consistent=True, gap=0.0, kinks=c["kinks"])
    result = jnp.int32(RESULTS.successful if ok else RESULTS.saddle)
    return Run(y, jnp.asarray(value), result, cert, total), rep
