r"""The Newton polish of a deep ReLU point onto a stationary point of its kink manifold.

:func:`polish_kink` zeroes the dying units (:func:`dead_units`, :func:`frozen_dead`), keeps an
independent subset of the kink constraints ``Z_S = 0`` (:func:`independent_kinks`) and solves the
Lagrange system of the on-piece objective on that manifold (:func:`lagrange_newton`). Nothing
here is certified by itself: :func:`ufm.solvers._relu_clarke.clarke_certificate` checks the result.

References:
    Nocedal & Wright, Numerical Optimization, ch. 18 (Newton on the Lagrange system); the kink
    (low-rank) points of the deep ReLU UFM: Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ufm.problems import DeepParams, DeepUFM
from ufm.solvers._relu_clarke import pre_jacobian, kink_masks, kink_rows

__all__ = ["dead_units", "frozen_dead", "independent_kinks", "lagrange_newton", "polish_kink"]


def dead_units(on):
    """Per hidden layer, the units with no positive pre-activation (post-activation identically 0)."""
    return [~(np.asarray(M) > 0).any(axis=1) for M in on]


def frozen_dead(params, dead):
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


def independent_kinks(kidx: list, JS: np.ndarray) -> list:
    """Per hidden layer, the kink indices of an independent subset of the constraints ``Z_S = 0``
    (``JS``: their Jacobian, rows in the order of ``kidx``; pivoted QR: dependent rows would leave
    the multipliers undetermined)."""
    from scipy.linalg import qr

    if not sum(i.size for i in kidx):
        return kidx
    _, R, piv = qr(JS.T, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    keep = np.sort(piv[: int(np.sum(d > 1e-6 * d[0]))]) if d.size and d[0] > 0 else np.zeros(0, int)
    offs = np.cumsum([0] + [i.size for i in kidx])
    return [i[keep[(keep >= lo) & (keep < hi)] - lo] for i, lo, hi in zip(kidx, offs[:-1], offs[1:])]


def _hidden_pre(prob, params):
    pre, _ = prob.layers(params)
    return jnp.concatenate([Z.ravel() for Z in pre[:-1]])


@jax.jit
def _lagrange_parts(cons, piece, params, x, mu):
    """``(grad_x L, Z)`` at the flat point ``x``: ``L = f_piece(x) + mu . Z(x)`` with ``Z`` every
    hidden pre-activation entry of ``cons`` (the ReLU model, or the frozen piece; ``mu`` is zero
    off the constraints kept), so one executable serves every kink set of a problem shape."""
    unravel = ravel_pytree(params)[1]

    def lagrangian(v):
        Z = _hidden_pre(cons, unravel(v))
        return piece.objective(unravel(v)) + jnp.dot(mu, Z), Z

    return jax.grad(lagrangian, has_aux=True)(x)


@jax.jit
def _lagrange_jacobian(cons, piece, params, x, mu):
    """The derivatives of :func:`_lagrange_parts` with respect to ``x`` (the multiplier columns are
    the constraint rows, assembled on the host)."""
    return jax.jacfwd(lambda v: _lagrange_parts(cons, piece, params, v, mu))(x)


CUTS = (1e-10, 1e-8, 1e-6, 1e-4)  # relative eigenvalue cuts of the truncated pseudo-inverse, tried in turn
# A step on the last eigendecomposition is kept when it shrinks the residual at least this much:
# at the singular (symmetric, degenerate) solutions of the kink manifold Newton itself contracts
# only linearly, by about 1/2 a step, and a chord step about as well.
REUSE = 0.7


def _try_steps(F_j, v, step, ts, r0: float, best):
    """``best`` replaced by ``(|F|, v + t step, F)`` for the ``t`` in ``ts`` with the smallest finite
    ``|F(v + t step)|``, when that is below ``r0`` and below ``best``'s."""
    for t in ts:
        rt = np.asarray(F_j(v + t * step))
        nt = float(np.linalg.norm(rt))
        if np.isfinite(nt) and nt < r0 and (best is None or nt < best[0]):
            best = (nt, v + t * step, rt)
    return best


def _best_step(F_j, v, r, dec):
    """The best of the steps ``-t J^+ r`` (``J^+`` from ``dec = (lam, U)``, truncated at the first cut
    in :data:`CUTS` that decreases the residual; ``t`` in ``2, 1, 1/2, 1/4``): ``(|F|, v, F)`` or None."""
    lam, U = dec
    c = U.T @ r
    r0, best = float(np.linalg.norm(r)), None
    for cut in CUTS:
        keep = np.abs(lam) > cut * np.max(np.abs(lam))
        best = _try_steps(F_j, v, -U[:, keep] @ (c[keep] / lam[keep]), (2.0, 1.0, 0.5, 0.25), r0, best)
        if best is not None:
            return best
    return None


def _damped_step(F_j, v, r, dec):
    """The best Levenberg-Marquardt step ``-(J^2 + mu I)^{-1} J r`` (``J`` symmetric, from ``dec``)
    over ``mu`` in ``1e2 .. 1e-12`` and ``t`` in ``1, 1/4, 1/16, 1/256`` that decreases ``|F|``:
    ``(|F|, v, F)`` or None. Large ``mu`` is a short step along ``-J r``, the gradient of
    ``|F|^2/2``, so it decreases ``|F|`` wherever ``F`` is smooth and ``J r != 0``."""
    lam, U = dec
    c = U.T @ r
    r0, best = float(np.linalg.norm(r)), None
    for mu in (1e2, 1.0, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12):
        best = _try_steps(F_j, v, -U @ (lam * c / (lam**2 + mu)), (1.0, 0.25, 1 / 16, 1 / 256), r0, best)
    return best


def lagrange_newton(F_j, J_j, v, gtol: float, max_iters: int, damped: bool = False):
    """Newton on ``F(v) = 0`` through the eigendecomposition of the symmetric ``J`` (directions
    below ``cut |lambda|_max`` dropped, :func:`_best_step`). The decomposition is reused (a chord
    step) while the step shrinks the residual by :data:`REUSE` or more, and recomputed at the
    current point otherwise: the dense ``eigh`` is the cost of a step, and near the solution the
    chord step contracts almost as Newton's does. With ``damped``, where no truncated Newton step
    decreases the residual (at a singular solution the smallest eigenvalues fall below the cuts),
    a Levenberg-Marquardt step does (:func:`_damped_step`). Returns ``(v, F(v), iterations)``."""
    r = np.asarray(F_j(v))
    it, dec = 0, None
    for it in range(1, max_iters + 1):
        r0 = float(np.linalg.norm(r))
        if r0 <= gtol:
            it -= 1
            break
        best = _best_step(F_j, v, r, dec) if dec is not None else None
        if best is None or best[0] > REUSE * r0:
            J = np.asarray(J_j(v))
            dec = np.linalg.eigh(0.5 * (J + J.T))
            fresh = _best_step(F_j, v, r, dec)
            best = fresh if best is None or (fresh is not None and fresh[0] < best[0]) else best
        if best is None and damped:
            best = _damped_step(F_j, v, r, dec)
        if best is None:
            break
        _, v, r = best
    return v, r, it


def polish_kink(prob: DeepUFM, params: DeepParams, *, tol: float = 1e-5, dead_tol: float = 1e-2,
                gtol: float = 1e-12, max_iters: int = 100, on_piece: bool = False) -> tuple:
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

    with the constraints reduced to an independent subset (:func:`independent_kinks`) and
    Newton steps on the symmetric Lagrange matrix (:func:`lagrange_newton`: a truncated
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
        max_iters: Newton and chord steps at most.
        on_piece: constrain the frozen piece's pre-activations (polynomial: a smooth Lagrange
            system where an on or off entry crosses zero), not the ReLU model's (they agree on
            the manifold), and take Levenberg-Marquardt steps where Newton's fail.

    Returns:
        ``(params, multipliers, residual, iterations)``.

    References:
        Nocedal & Wright, Numerical Optimization, ch. 18 (Newton on the Lagrange system); the kink
        (low-rank) points of the deep ReLU UFM: Súkeník, Mondelli & Lampert 2024 (arXiv 2405.14468).
    """
    if (prob.activation != "relu" or prob.pattern is not None or prob.smoothing is not None
            or prob.relu_features):
        raise ValueError("polish_kink needs a ReLU DeepUFM without pattern, smoothing or relu_features")
    dead = dead_units(kink_masks(prob, params, dead_tol)[0])
    params, fixed = frozen_dead(params, dead)
    on, kink = kink_masks(prob, params, tol)
    flat = np.asarray(ravel_pytree(params)[0])
    free = np.flatnonzero(~fixed)
    kidx = [np.flatnonzero((np.asarray(Kk) > 0) & ~d[:, None]) for Kk, d in zip(kink, dead)]
    if sum(i.size for i in kidx):
        JS = np.asarray(pre_jacobian(prob, params))[kink_rows(kink, kidx)][:, free]
        kidx = independent_kinks(kidx, JS)
    rows = kink_rows(kink, kidx)
    piece = dataclasses.replace(prob, pattern=tuple(jnp.asarray(M) for M in on))
    cons = piece if on_piece else prob  # the model whose pre-activations are constrained
    nf, n_pre = free.size, sum(int(np.size(M)) for M in on)

    def full(v):
        x, mu = np.zeros(flat.size), np.zeros(n_pre)
        x[free], mu[rows] = v[:nf], v[nf:]
        return x, mu

    def F_j(v):
        g, Z = _lagrange_parts(cons, piece, params, *full(v))
        return np.concatenate([np.asarray(g)[free], np.asarray(Z)[rows]])

    def J_j(v):
        Jg, JZ = _lagrange_jacobian(cons, piece, params, *full(v))
        JS = np.asarray(JZ)[np.ix_(rows, free)]
        return np.block([[np.asarray(Jg)[np.ix_(free, free)], JS.T], [JS, np.zeros((rows.size, rows.size))]])

    v = np.concatenate([flat[free], np.zeros(rows.size)])
    r = F_j(v)
    if r.size > nf:  # least-squares multipliers at the start
        A = J_j(v)[:nf, nf:]
        v[nf:] = np.linalg.lstsq(A, -r[:nf], rcond=None)[0]
    v, r, it = lagrange_newton(F_j, J_j, v, gtol, max_iters, damped=on_piece)
    x, mu = full(v)
    return ravel_pytree(params)[1](jnp.asarray(x)), mu[rows], float(np.linalg.norm(r)), it
