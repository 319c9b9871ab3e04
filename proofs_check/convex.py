r"""The class-level convex program: an independent ground truth for the UFM's global minimizer.

The theory page (``docs/theory.md#canonical-objective, #lemma-collapse, #lemma-nuclear-norm``). For ``lam_H > 0`` and a
loss convex in the logits every minimizer of the UFM is collapsed (``h_i = h_{y_i}``), so
``||H||_F^2 = ||Hbar D^{1/2}||_F^2`` with ``D = diag(n_k)``. The nuclear-norm lemma

.. math:: \min_{W \tilde H = Z'} \tfrac{\lambda_W}2\lVert W\rVert_F^2
    + \tfrac{\lambda_H}2\lVert \tilde H\rVert_F^2 = \sqrt{\lambda_W\lambda_H}\,\lVert Z'\rVert_*

(attained iff ``W W^T = sqrt(lam_H/lam_W)(Z'Z'^T)^{1/2}`` and
``Ht^T Ht = sqrt(lam_W/lam_H)(Z'^T Z')^{1/2}``; possible whenever the inner dimension ``d`` is at
least ``rank Z'``) applied with ``Ht = Hbar D^{1/2}`` turns the UFM into a convex program in the
class-logit matrix ``Z = W Hbar`` (``K x K``, ``D_out x K`` for MSE encodings), or equivalently in
``Z' = Z D^{1/2}``:

.. math:: \min_{Z', b}\; \sum_{k=1}^K \frac{n_k}N\,\ell\big(z'_k/\sqrt{n_k} + b,\; k\big)
    + \sqrt{\lambda_W\lambda_H}\,\lVert Z'\rVert_* + \frac{\lambda_b}2\lVert b\rVert^2 .

Without a bias ``b = 0`` is absent; ``lam_b = 0`` is a free bias. The program is convex when the
loss is convex in the logits (cross-entropy, label smoothing, MSE); the focal loss is not (its
logit Hessian has negative eigenvalues for ``gamma > 0``), and for it the solver returns a
stationary point of the program, which must be cross-checked. The equivalence holds when
``d >= rank Z'`` at the optimum, which ``d >= K`` (``d >= min(D_out, K)``) guarantees; with
smaller ``d`` the program is only a lower bound of the UFM.

:func:`solve_class_level` solves this program by accelerated proximal gradient (FISTA with
backtracking and gradient-based adaptive restart; the prox of ``t ||.||_*`` is singular-value
soft-thresholding) in float64 inside one jitted ``lax.while_loop``, and reports the minimizer's
invariants (value, Gram matrices from the SVD of ``Z'``, bias) with its optimality residual.

References:
    Srebro, Rennie & Jaakkola, NeurIPS 2005 (max-margin matrix factorization: the nuclear norm as
    the minimal Frobenius factorization); Recht, Fazel & Parrilo, SIAM Review 2010
    (arXiv 0706.4138), Lemma 5.1; Beck & Teboulle, SIAM J. Imaging Sci. 2009 (FISTA);
    O'Donoghue & Candes, Found. Comput. Math. 2015 (adaptive restart); Cai, Candes & Shen,
    SIAM J. Optim. 2010 (singular-value thresholding).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import ufm

__all__ = ["ClassLevelSolution", "class_level_objective", "solve_class_level"]

_ROUND_OFF_BIAS = 1e-12  # a bias of smaller norm is a zero bias up to round-off


@dataclass(frozen=True)
class ClassLevelSolution:
    """Minimizer of the class-level convex program and the UFM invariants it determines.

    Attributes:
        Z: ``(D, K)`` class-logit matrix ``W Hbar`` (column ``k``: the logits of class ``k``
            without the bias).
        b: ``(D,)`` bias, or ``None`` for the bias-free model (with ``lam_b = 0`` and a
            shift-invariant loss only ``b - mean(b)`` is determined).
        value: the optimal objective, equal to the UFM's global minimum when ``d >= rank``.
        W_gram: ``W W^T = sqrt(lam_H/lam_W) (Z' Z'^T)^{1/2}``, ``Z' = Z D^{1/2}``.
        Hbar_gram: ``Hbar^T Hbar = sqrt(lam_W/lam_H) D^{-1/2} (Z'^T Z')^{1/2} D^{-1/2}``.
        W, Hbar: one minimizer in factored form with ``d = min(D, K)``: ``W = c^{1/2} U S^{1/2}``
            (``(D, r)``), ``Hbar = c^{-1/2} S^{1/2} V^T D^{-1/2}`` (``(r, K)``) with
            ``Z' = U S V^T`` and ``c = sqrt(lam_H/lam_W)``; every minimizer with ``d >= rank``
            is ``(W Q, Q^T Hbar)`` for an orthogonal ``Q`` (padded with zeros).
        singular_values: of ``Z'``, descending, exact zeros where thresholded; ``rank`` counts the
            nonzero ones.
        residual: the prox-gradient mapping norm ``||L M (x - prox(x - (L M)^{-1} grad f(x)))||``
            (gradient units; 0 exactly at a minimizer) of the last iterate ``x``; the returned
            point is that prox output.
        iterations: FISTA iterations used; ``converged``: ``residual <= tol``.
    """

    Z: np.ndarray
    b: np.ndarray | None
    value: float
    W_gram: np.ndarray
    Hbar_gram: np.ndarray
    W: np.ndarray
    Hbar: np.ndarray
    singular_values: np.ndarray
    rank: int
    residual: float
    iterations: int
    converged: bool

    def quantities(self, prob: ufm.UFM) -> dict:
        """The invariants in :func:`proofs_check.closed_forms.measure`'s names.

        ``bias`` (``bias_centred`` for a free bias with a softmax loss, whose ``b`` is defined up
        to ``c 1``); a bias of norm ``<= 1e-12`` is reported as exactly zero.
        """
        q = {
            "value": self.value,
            "W_gram": self.W_gram,
            "Hbar_gram": self.Hbar_gram,
            "logit_means": self.Z,
            "w_norm2": np.diag(self.W_gram).copy(),
            "h_norm2": np.diag(self.Hbar_gram).copy(),
            "within_class_spread": 0.0,
        }
        if self.b is not None:
            if float(prob.lam_b) == 0.0 and not isinstance(prob.loss, ufm.MSE):
                name, b = "bias_centred", self.b - self.b.mean()  # softmax: b is defined up to c 1
            else:
                name, b = "bias", self.b
            # A zero bias (e.g. balanced classes) comes out as round-off; report it as exactly 0 so
            # that it is compared in absolute terms (a relative error against 1e-16 means nothing).
            q[name] = np.zeros_like(b) if np.linalg.norm(b) <= _ROUND_OFF_BIAS else b
        return q


class _State(NamedTuple):
    x: tuple  # (Z' (D, K), b (D,)) float64: the current iterate (a prox output)
    y: tuple  # (Z' (D, K), b (D,)) float64: the extrapolated point
    t: jax.Array  # shape=(), float64: FISTA momentum parameter
    L: jax.Array  # shape=(), float64: curvature estimate (the step is 1/(L m) per block)
    k: jax.Array  # shape=(), int32: iteration count
    res_y: jax.Array  # shape=(), float64: prox-gradient mapping norm at y (gradient units)
    res_x: jax.Array  # shape=(), float64: the same at x, evaluated once res_y <= tol (else inf)


def class_level_objective(prob: ufm.UFM, Zp: jax.Array, b: jax.Array | None) -> jax.Array:
    """Smooth part ``sum_k n_k/N loss(z'_k/sqrt(n_k) + b, k) + lam_b/2 ||b||^2`` (no nuclear norm).

    Args:
        prob: a :class:`ufm.UFM`.
        Zp: ``(D, K)`` the scaled class logits ``Z' = Z D^{1/2}``.
        b: ``(D,)`` bias (ignored without one).
    """
    counts = jnp.asarray(prob.counts, dtype=jnp.float64)
    logits = Zp / jnp.sqrt(counts)[None, :]
    if prob.has_bias:
        logits = logits + b[:, None]
    data = jnp.sum(counts / prob.N * prob.loss(logits, jnp.arange(prob.K)))
    return data + (0.5 * prob.lam_b * jnp.sum(b**2) if prob.has_bias else 0.0)


def _svt_factors(M, thr):
    """Singular-value soft threshold as factors ``(U, max(s - thr, 0), V^T)`` (exact zeros)."""
    U, s, Vt = jnp.linalg.svd(M, full_matrices=False)
    return U, jnp.maximum(s - thr, 0.0), Vt


def _svt(M, thr):
    """Singular-value soft threshold ``U max(s - thr, 0) V^T``."""
    U, s, Vt = _svt_factors(M, thr)
    return (U * s[None, :]) @ Vt


def _dot(a, b, m=(1.0, 1.0)):
    """Block inner product ``m_Z <a_Z, b_Z> + m_b <a_b, b_b>``."""
    return m[0] * jnp.sum(a[0] * b[0]) + m[1] * jnp.sum(a[1] * b[1])


def _sub(a, b):
    return a[0] - b[0], a[1] - b[1]


@functools.partial(jax.jit, static_argnames=("max_iters",))
def _fista(prob, x0, tol, max_iters):
    """FISTA in the block metric ``L diag(m_Z I, m_b I)``, ``m_Z = 1/N``, ``m_b = 1``.

    The metric matches the curvature of the smooth part (``d^2 f / dz'_k^2 = Hess(loss)/N``,
    ``d^2 f / db^2 = mean Hess(loss) + lam_b``); ``L`` is found by backtracking on the averaged
    curvature ``<grad f(p) - grad f(y), p - y> <= L ||p - y||_m^2``, a test that, unlike the
    function-value test, stays meaningful down to round-off.
    """
    tau = jnp.sqrt(prob.lam_W * prob.lam_H)
    m = (1.0 / prob.N, 1.0)
    grad = jax.grad(lambda x: class_level_objective(prob, *x))

    def prox(y, g, L):
        return _svt(y[0] - g[0] / (L * m[0]), tau / (L * m[0])), y[1] - g[1] / (L * m[1])

    def too_curved(y, g, p, L):
        d = _sub(p, y)
        return _dot(_sub(grad(p), g), d) > L * _dot(d, d, m)

    def mapping(x, L):
        """One prox-gradient step from ``x`` in factored form (exact zeros) and its mapping norm."""
        g = grad(x)
        U, sv, Vt = _svt_factors(x[0] - g[0] / (L * m[0]), tau / (L * m[0]))
        b = x[1] - g[1] / (L * m[1])
        d = _sub(x, ((U * sv[None, :]) @ Vt, b))
        return (U, sv, Vt, b), L * jnp.sqrt(_dot(d, d, (m[0] ** 2, m[1] ** 2)))

    def backtrack(y, g, L0):
        def ls_cond(c):
            L, p, it = c
            return too_curved(y, g, p, L) & (it < 100)

        def ls_body(c):
            L, _, it = c
            return 2.0 * L, prox(y, g, 2.0 * L), it + 1

        L, p, _ = jax.lax.while_loop(ls_cond, ls_body, (L0, prox(y, g, L0), 0))
        return L, p

    def body(s: _State) -> _State:
        L, p = backtrack(s.y, grad(s.y), 0.95 * s.L)
        dyp, dpx = _sub(s.y, p), _sub(p, s.x)
        restart = _dot(dyp, dpx, m) > 0.0  # O'Donoghue & Candes gradient restart
        t = jnp.where(restart, 1.0, s.t)
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
        y = (p[0] + (t - 1.0) / t_new * dpx[0], p[1] + (t - 1.0) / t_new * dpx[1])
        res_y = L * jnp.sqrt(_dot(dyp, dyp, (m[0] ** 2, m[1] ** 2)))
        res_x = jax.lax.cond(res_y <= tol, lambda: mapping(p, L)[1], lambda: jnp.float64(jnp.inf))
        return _State(p, y, t_new, L, s.k + 1, res_y, res_x)

    def cond(s: _State):
        return (s.res_x > tol) & (s.k < max_iters)

    inf = jnp.float64(jnp.inf)
    s = jax.lax.while_loop(
        cond, body, _State(x0, x0, jnp.float64(1.0), jnp.float64(1.0), jnp.int32(0), inf, inf)
    )
    # One more prox-gradient step from the last iterate, kept in factored form so that the
    # thresholded singular values are exact zeros; the mapping norm at x is the residual.
    (U, sv, Vt, b), res = mapping(s.x, s.L)
    return U, sv, Vt, b, s.k, res


def _check(prob):
    if not isinstance(prob, ufm.UFM):
        raise TypeError(f"solve_class_level needs a ufm.UFM, got {type(prob).__name__}")
    if prob.nonneg:
        raise ValueError(
            "nonneg=True: the nuclear-norm reduction needs signed features (nonneg=False)"
        )
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    if lw <= 0 or lh <= 0:
        raise ValueError(
            f"lam_W and lam_H must be > 0 (got lam_W={lw}, lam_H={lh}): with either "
            "zero the program has no nuclear-norm term and may have no minimizer"
        )


def solve_class_level(prob: ufm.UFM, *, tol: float = 1e-13, max_iters: int = 100_000) -> ClassLevelSolution:
    r"""Solve the class-level convex program of a UFM (module docstring) to round-off.

    .. math:: \min_{Z', b}\; \sum_k \frac{n_k}N\,\ell(z'_k/\sqrt{n_k} + b, k)
        + \sqrt{\lambda_W\lambda_H}\lVert Z'\rVert_* + \frac{\lambda_b}2\lVert b\rVert^2,
        \qquad Z' = Z D^{1/2},\; D = \mathrm{diag}(n_k).

    Its value is the UFM's global minimum and its invariants (``W W^T``, ``Hbar^T Hbar``,
    ``W Hbar``, ``b``) are those of every global minimizer whenever ``d >= rank Z'`` (guaranteed by
    ``d >= K``; docs/theory.md#canonical-objective, #lemma-collapse, #lemma-nuclear-norm). ``prob.d`` is not used: for
    ``d < rank Z'`` the value is a lower bound of the UFM and the factorization below does not fit.

    Method: FISTA (Beck & Teboulle 2009) on ``(Z', b)`` in a block metric matched to the
    curvature (``1/N`` on ``Z'``, ``1`` on ``b``), backtracking on the averaged curvature,
    gradient-based adaptive restart (O'Donoghue & Candes 2015), prox of the nuclear norm by
    singular-value soft-thresholding; the smooth part is ``prob.loss`` itself on the ``K`` class
    columns (weights ``n_k/N``) differentiated by ``jax.grad``, so every loss works (CE, label
    smoothing, focal, MSE with any encoding). One jitted ``lax.while_loop``, float64. The loop
    stops when the prox-gradient mapping norm at the iterate (gradient units) is ``<= tol``
    (checked once the cheaper one at the extrapolated point is); the returned
    point is one prox-gradient step further, factored as ``U diag(s) V^T`` with exact zeros, so
    ``W W^T`` and ``Hbar^T Hbar`` come from the SVD of ``Z'`` (no square roots of round-off).
    Typical cost for ``K <= 6``: tens to a few hundred iterations, a few milliseconds after a
    compile of about a second.

    Main arguments:
        prob: a :class:`ufm.UFM` with ``lam_W, lam_H > 0`` and ``nonneg=False``, any counts, any
            loss, any bias mode.

    Other arguments:
        tol: stopping tolerance on the prox-gradient mapping norm (absolute, gradient units).
        max_iters: iteration cap (``converged`` is then ``False``).

    Returns:
        A :class:`ClassLevelSolution`.

    Raises:
        ValueError: ``lam_W`` or ``lam_H`` not positive, or ``nonneg=True``.
        TypeError: ``prob`` is not a ``ufm.UFM``.

    References:
        The theory page (``docs/theory.md#canonical-objective``); Srebro, Rennie & Jaakkola,
        NeurIPS 2005; Recht, Fazel & Parrilo, SIAM Review 2010 (arXiv 0706.4138), Lemma 5.1.
    """
    _check(prob)
    D, K = prob.D, prob.K
    x0 = (jnp.zeros((D, K), dtype=jnp.float64), jnp.zeros((D,), dtype=jnp.float64))
    U, s, Vt, b, k, res = map(np.asarray, _fista(prob, x0, tol, max_iters))
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    sq = np.sqrt(np.asarray(prob.counts, dtype=float))
    Zp = (U * s) @ Vt
    smooth = float(class_level_objective(prob, jnp.asarray(Zp), jnp.asarray(b)))
    value = smooth + np.sqrt(lw * lh) * float(s.sum())
    W = (lh / lw) ** 0.25 * U * np.sqrt(s)
    Hbar = (lw / lh) ** 0.25 * (np.sqrt(s)[:, None] * Vt) / sq
    return ClassLevelSolution(
        Z=Zp / sq,
        b=b if prob.has_bias else None,
        value=value,
        W_gram=np.sqrt(lh / lw) * (U * s) @ U.T,
        Hbar_gram=np.sqrt(lw / lh) * ((Vt.T * s) @ Vt) / np.outer(sq, sq),
        W=W,
        Hbar=Hbar,
        singular_values=s,
        rank=int(np.count_nonzero(s)),
        residual=float(res),
        iterations=int(k),
        converged=bool(res <= tol),
    )
