r"""Deep linear cross-entropy UFM: deep neural collapse is a critical point but not the global minimum
(Garrod & Keating, NeurIPS 2025, arXiv 2410.23169), checked at ``K = 4``, ``L = 3``.

Garrod & Keating prove that the deep linear CE UFM has no DNC global minimizer for ``K >= 4,
L >= 3`` (and ``K >= 6, L = 2``), and that DNC is a critical point whose Hessian is positive
semidefinite for small regularization. Only the paper's abstract and summaries were read here, so
both entries are **derived**: the argument below is ufm's, for one configuration of their theorem.

**Reduction on a family.** Balanced, one-hot, no bias, every width ``K``; ``m = L + 1`` factors
``H_1, W_1, .., W_L`` with weights ``mu_0 = n lam_H``, ``mu_l = lam_l`` and
``Lambda = prod mu_i``. For a symmetric pattern ``B`` with ``B^2 = B`` (an orthogonal projector)
put every class-mean factor at ``a_i B`` with ``a_i = Lambda^{1/(2m)} x^{1/m} / sqrt(mu_i)``
(balanced: ``mu_i a_i^2`` is the same for every factor). The class logits are ``x B`` and the
objective is ``CE(x B) + (m/2) Lambda^{1/m} x^{2/m} rank(B)``.

- DNC: ``B = P = I - J/K`` (rank ``K-1``, margin ``x`` to every other class):
  ``f_DNC(x) = log(1 + (K-1)e^{-x}) + (m(K-1)/2) Lambda^{1/m} x^{2/m}``.
- The square (ufm's candidate, ``K = 4``): ``B = Q Q^T`` with the rows of ``Q`` the unit vectors
  at angles ``2 pi k/K`` scaled by ``sqrt(2/K)`` (rank 2; logit ``x/2`` on the own class, ``0`` on
  the two neighbours, ``-x/2`` on the opposite one):
  ``f_sq(x) = 2 log(1 + e^{-x/2}) + m Lambda^{1/m} x^{2/m}``.

**Not global (K = 4, L = 3, proved).** With ``t = e^{-u}``, ``f_DNC(u) - f_sq(2u) =
log((1+3t)/(1+t)^2) + (6 - 4 sqrt 2) Lambda^{1/4} u^{1/2}``; ``(1+3t) - (1+t)^2 = t(1-t) > 0`` for
``u > 0`` and ``6 > 4 sqrt 2``, so the square is strictly below every nonzero DNC point, for every
``Lambda``. The minimizer of ``f_DNC`` is nonzero for the instances here (small ``lam``).

**Critical, with a PSD Hessian (measured).** By the class-permutation symmetry the gradient in
each factor at ``a_i P`` is a multiple of ``P``; its coefficient times ``a_l`` is
``x CE'(x) + (K-1) mu_l a_l^2 = x f_DNC'(x)`` (proved below for symbolic ``m``), zero at the
minimizer ``x*`` of ``f_DNC``. The Hessian there has exact zero eigenvalues (the rotations
``W_{l+1} R^T, R W_l`` leave the objective unchanged), so "PSD" is "smallest eigenvalue 0": measured
with :func:`ufm.hessian_extreme_eigs`. Both points are built explicitly; ``x`` is found from
``ufm``'s own objective along the family (Brent, then Newton steps with JAX derivatives), not from
the SymPy expressions, so the value rows compare two independent computations.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from scipy.optimize import brentq, minimize_scalar

import ufm
from proofs_check.catalog._common import grad_norm_at
from proofs_check.theorem import Citation, Evaluator, Proof, Theorem
from ufm import DeepParams, DeepUFM

__all__ = ["THEOREMS", "GARROD_KEATING_2025", "DNC_NOT_GLOBAL", "DNC_CRITICAL", "EXPRESSIONS", "family_point"]

GARROD_KEATING_2025 = Citation(
    "Garrod & Keating", 2025, "NeurIPS", "2410.23169",
    what=("deep linear CE UFM: no DNC global minimizer for K >= 4, L >= 3 or K >= 6, L = 2; DNC is a "
          "critical point with a PSD Hessian for small lam (the abstract and summaries were read); the "
          "square candidate, the proof at K = 4, L = 3 and the instances are ufm's"))

xs, Lm, Ks, ms = sp.symbols("x Lambda K m", positive=True)
t_, u_ = sp.symbols("t u", positive=True)
F_DNC = sp.log(1 + (Ks - 1) * sp.exp(-xs)) + ms * (Ks - 1) / 2 * Lm ** (1 / ms) * xs ** (2 / ms)
F_SQ = 2 * sp.log(1 + sp.exp(-xs / 2)) + ms * Lm ** (1 / ms) * xs ** (2 / ms)
EXPRESSIONS = {"f_DNC(x)": F_DNC, "f_square(x)": F_SQ}


def _gap_residual():
    """f_DNC(u) - f_sq(2u) minus its claimed form, at K = 4, m = 4 (symbolic u, Lambda)."""
    sub = {Ks: 4, ms: 4}
    diff = F_DNC.subs(sub).subs(xs, u_) - F_SQ.subs(sub).subs(xs, 2 * u_)
    claimed = (sp.log(1 + 3 * sp.exp(-u_)) - 2 * sp.log(1 + sp.exp(-u_))
               + (6 - 4 * sp.sqrt(2)) * Lm ** sp.Rational(1, 4) * sp.sqrt(u_))
    return sp.expand_log(diff - claimed, force=True)


def _factor_residuals():
    """a_l df/da_l = x CE'(x) + (K-1) mu a^2 equals x f_DNC'(x) at a = Lambda^(1/2m) x^(1/m)/sqrt(mu)."""
    mu = sp.Symbol("mu", positive=True)
    a = Lm ** (1 / (2 * ms)) * xs ** (1 / ms) / sp.sqrt(mu)
    ce = sp.log(1 + (Ks - 1) * sp.exp(-xs))
    lhs = xs * sp.diff(ce, xs) + (Ks - 1) * mu * a**2
    return sp.powsimp(sp.expand(lhs - xs * sp.diff(F_DNC, xs)), force=True)


def _penalty_gap_positive():
    u, lam = sp.Symbol("u", positive=True), sp.Symbol("Lambda", positive=True)
    return sp.Gt((6 - 4 * sp.sqrt(2)) * lam ** sp.Rational(1, 4) * sp.sqrt(u), 0)


PROOFS_NOT_GLOBAL = (
    Proof("K = 4, m = 4 (L = 3), symbolic u > 0 and Lambda > 0: f_DNC(u) - f_square(2u) = "
          "log((1+3t)/(1+t)^2) + (6 - 4 sqrt 2) Lambda^(1/4) sqrt(u), t = e^(-u)", _gap_residual),
    Proof("(1+3t) - (1+t)^2 = t(1-t): positive for 0 < t = e^(-u) < 1, so the log term is > 0",
          lambda: sp.expand((1 + 3 * t_) - (1 + t_) ** 2 - t_ * (1 - t_))),
    Proof("(6 - 4 sqrt 2) Lambda^(1/4) sqrt(u) > 0 for symbolic u > 0, Lambda > 0 (exact): the penalty term is "
          "positive, so f_square(2u) < f_DNC(u) for every u > 0 and every Lambda", _penalty_gap_positive),
)
PROOFS_CRITICAL = (
    Proof("every m, K: at the balanced factors a_l = Lambda^(1/2m) x^(1/m)/sqrt(mu_l), a_l df/da_l = "
          "x CE'(x) + (K-1) mu_l a_l^2 = x f_DNC'(x): each factor's gradient coefficient vanishes at the "
          "minimizer of f_DNC", _factor_residuals),
)


# ---- the explicit points ------------------------------------------------------------------------
def _patterns(K: int) -> dict[str, np.ndarray]:
    th = 2 * np.pi * np.arange(K) / K
    Q = np.stack([np.cos(th), np.sin(th)], axis=1) * np.sqrt(2.0 / K)  # orthonormal columns
    return {"dnc": np.eye(K) - np.ones((K, K)) / K, "square": Q @ Q.T}


def family_point(prob: DeepUFM, pattern: str, x: Any) -> DeepParams:
    """Every class-mean factor ``a_i B`` (``B`` the ``"dnc"`` or ``"square"`` projector), balanced
    (``a_i = Lambda^{1/(2m)} x^{1/m}/sqrt(mu_i)``), with class logits ``x B``; the features repeat
    the class means ``n`` times. ``x > 0`` and the problem's lams may be JAX tracers."""
    return _factors(prob, jnp.asarray(_patterns(prob.K)[pattern]), x)


def _along(prob: DeepUFM, x: Any, B: Any) -> Any:
    return prob.objective(_factors(prob, B, x))


def _factors(prob: DeepUFM, B: Any, x: Any) -> DeepParams:
    mus = jnp.concatenate([jnp.reshape(prob.n * jnp.asarray(prob.lam_H, jnp.float64), (1,)),
                           jnp.asarray(prob.lams, jnp.float64)])
    m = prob.L + 1
    a = jnp.prod(mus) ** (1 / (2 * m)) * x ** (1 / m) / jnp.sqrt(mus)
    return DeepParams(Ws=tuple(a[i + 1] * B for i in range(prob.L)), H=jnp.repeat(a[0] * B, prob.n, axis=1),
                      b=None)


# compiled once per shape, for both patterns (the lams are array leaves of the problem)
_F = jax.jit(_along)
_D1 = jax.jit(jax.grad(_along, argnums=1))


def _best_x(prob: DeepUFM, pattern: str) -> float:
    """The minimizer of ``prob.objective`` along the family (ufm's objective, no SymPy): Brent on
    ``x in (0, 80]``, then the root of the JAX derivative along ``x`` next to it (Brent)."""
    B = jnp.asarray(_patterns(prob.K)[pattern])
    r = minimize_scalar(lambda v: float(_F(prob, jnp.float64(v), B)), bounds=(1e-6, 80.0), method="bounded",
                        options={"xatol": 1e-10})
    d = lambda v: float(_D1(prob, jnp.float64(v), B))  # noqa: E731
    lo, hi = float(r.x) * (1 - 1e-4), float(r.x) * (1 + 1e-4)
    while d(lo) > 0:
        lo *= 0.9
    while d(hi) < 0:
        hi *= 1.1
    return float(brentq(d, lo, hi, xtol=1e-15, rtol=1e-15))


def _solve(prob: DeepUFM) -> tuple[dict, dict]:
    pts = {p: family_point(prob, p, jnp.float64(_best_x(prob, p))) for p in ("dnc", "square")}
    g = grad_norm_at(prob, pts["dnc"])
    return pts, {"grad_norm": g, "converged": g <= 1e-12}


# ---- predictions and measurements ---------------------------------------------------------------
def _variables(prob: DeepUFM) -> dict[str, float]:
    mus = [prob.n * float(prob.lam_H)] + [float(v) for v in np.asarray(prob.lams)]
    return {"K": float(prob.K), "m": float(prob.L + 1), "Lambda": float(np.prod(mus))}


def _argmin(ev: Evaluator, name: str) -> float | None:
    """The interior local minimizer of the expression on ``x > 0``: the root where its derivative
    turns from negative to positive (grid on ``[1e-4, 300]``, then Brent); ``None`` when the
    derivative is never negative there (the minimizer is then the zero point)."""
    grid = np.geomspace(1e-4, 300.0, 400)
    d = np.array([ev.diff(name, "x", x=v) for v in grid])
    up = np.flatnonzero((d[:-1] < 0) & (d[1:] >= 0))
    if up.size == 0:
        return None
    i = int(up[-1])
    return float(brentq(lambda v: ev.diff(name, "x", x=v), grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15))


def _argmin_or_raise(ev: Evaluator, name: str) -> float:
    x_star = _argmin(ev, name)
    if x_star is None:
        raise ValueError(f"{name} has no interior minimizer on (1e-4, 300): outside the theorem's regime")
    return x_star


def _assemble_not_global(prob, ev):
    v_dnc = ev("f_DNC(x)", x=_argmin_or_raise(ev, "f_DNC(x)"))
    v_sq = ev("f_square(x)", x=_argmin_or_raise(ev, "f_square(x)"))
    return {"DNC value f_DNC(x*)": v_dnc, "square value f_square(x*)": v_sq,
            "DNC value - square value (> 0)": v_dnc - v_sq}


def _measure_not_global(prob, pts, names):
    v = {p: float(prob.objective(pts[p])) for p in pts}
    return {"DNC value f_DNC(x*)": v["dnc"], "square value f_square(x*)": v["square"],
            "DNC value - square value (> 0)": v["dnc"] - v["square"]}


def _assemble_critical(prob, ev):
    return {"DNC value f_DNC(x*)": ev("f_DNC(x)", x=_argmin_or_raise(ev, "f_DNC(x)")),
            "gradient norm at the DNC point": 0.0, "Hessian lambda_min at the DNC point (PSD: 0)": 0.0}


def _measure_critical(prob, pts, names):
    lo, _ = ufm.hessian_extreme_eigs(prob, pts["dnc"], method="dense")
    return {"DNC value f_DNC(x*)": float(prob.objective(pts["dnc"])),
            "gradient norm at the DNC point": grad_norm_at(prob, pts["dnc"]),
            "Hessian lambda_min at the DNC point (PSD: 0)": lo}


def _assume(prob: Any, *, k4l3: bool) -> tuple[bool, str]:
    if not isinstance(prob, DeepUFM) or prob.activation != "linear" or not isinstance(prob.loss, ufm.CrossEntropy):
        return False, "needs a linear ufm.DeepUFM with cross-entropy"
    if prob.has_bias or not prob.balanced or prob.relu_features:
        return False, "no bias, balanced classes, signed features"
    if any(w != prob.K for w in prob.widths):
        return False, f"every width = K (the explicit points have K x K factors), got {list(prob.widths)}"
    if k4l3 and (prob.K, prob.L) != (4, 3):
        return False, f"the proof is for K = 4, L = 3 (got K = {prob.K}, L = {prob.L})"
    if prob.L < 2 or min([float(prob.lam_H)] + [float(v) for v in np.asarray(prob.lams)]) <= 0:
        return False, "L >= 2 and every lam > 0"
    ev = Evaluator(EXPRESSIONS, _variables(prob))
    x_star = _argmin(ev, "f_DNC(x)")
    if x_star is None or ev("f_DNC(x)", x=x_star) >= np.log(prob.K) * (1 - 0.05):
        return False, "needs the DNC branch well below the zero point (small lam)"
    return True, ""


def _instances():
    return [DeepUFM(K=4, n=1, widths=(4, 4, 4), loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3, activation="linear"),
            DeepUFM(K=4, n=1, widths=(4, 4, 4), loss=ufm.CrossEntropy(), lam_W=[2e-2, 1e-2, 3e-2], lam_H=2e-2,
                    activation="linear")]


def _random(rng):
    return DeepUFM(K=4, n=1, widths=(4, 4, 4), loss=ufm.CrossEntropy(),
                   lam_W=np.exp(rng.uniform(np.log(1e-3), np.log(3e-2), size=3)).tolist(),
                   lam_H=float(np.exp(rng.uniform(np.log(1e-3), np.log(3e-2)))), activation="linear")


_TOL_VALUE = (1e-10, "the points are built from x found on ufm's objective; both sides are float64 "
                     "evaluations of the same number")

DNC_NOT_GLOBAL = Theorem(
    name="Deep linear CE UFM, K = 4, L = 3: DNC is not the global minimum (a rank-2 point is lower)",
    citation=GARROD_KEATING_2025,
    tag="derived",
    statement=("Deep linear CE UFM, K = 4, L = 3, balanced, no bias, widths K, any lam > 0: the rank-2 "
               "'square' point (class logits x Q Q^T, classes at the vertices of a square) has "
               "f_square(2u) < f_DNC(u) for every u > 0, so no nonzero DNC point is a global minimizer "
               "(an instance of Garrod & Keating's theorem, proved here for this configuration)."),
    assumptions=lambda p: _assume(p, k4l3=True),
    assemble=_assemble_not_global,
    instances=_instances,
    random_instance=_random,
    measure=_measure_not_global,
    solve=_solve,
    expressions=EXPRESSIONS,
    variables=_variables,
    proofs=PROOFS_NOT_GLOBAL,
    tolerances={"DNC value f_DNC(x*)": _TOL_VALUE, "square value f_square(x*)": _TOL_VALUE},
    assumed=("that the balanced factorization a_i B is optimal within each family (the Hölder bound of "
             "docs/theory.md#deep-reduction; only its value is used, as an explicit point)",),
)

DNC_CRITICAL = Theorem(
    name="Deep linear CE UFM: DNC is a critical point with a PSD Hessian (small lam)",
    citation=GARROD_KEATING_2025,
    tag="derived",
    statement=("Deep linear CE UFM, balanced, no bias, widths K, small lam: the DNC point (every factor a "
               "multiple of P = I - J/K, logits x* P, x* the minimizer of f_DNC) is a critical point of "
               "the full objective and its Hessian is positive semidefinite (smallest eigenvalue 0, from "
               "the rotations between layers)."),
    assumptions=lambda p: _assume(p, k4l3=False),
    assemble=_assemble_critical,
    instances=_instances,
    random_instance=_random,
    measure=_measure_critical,
    solve=_solve,
    expressions={"f_DNC(x)": F_DNC},
    variables=_variables,
    proofs=PROOFS_CRITICAL,
    tolerances={"DNC value f_DNC(x*)": _TOL_VALUE,
                "gradient norm at the DNC point": (1e-12, "absolute: the first-order certificate of ufm"),
                "Hessian lambda_min at the DNC point (PSD: 0)": (
                    1e-10, "absolute: the zero eigenvalues of the rotation symmetry, computed densely in "
                           "float64 at a point whose gradient is <= 1e-12")},
    assumed=("that the gradient in each factor at a_i P is a multiple of P (class-permutation symmetry, "
             "argued in the module docstring); PSD is measured, not proved",),
)

THEOREMS = [DNC_NOT_GLOBAL, DNC_CRITICAL]
