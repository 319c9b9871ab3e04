r"""Global-optimality certificates (docs/theory.md#global-bounds, derived in full here and in
the docstring of ``ufm.global_certificate``).

**Shallow UFM.** For a loss convex in the logits, every point satisfies

.. math:: f(W,H,b) \ge P^\star \ge \mathcal D(s) = -\sum_k a_k \ell_k^*(s_k) - \beta(r),
    \qquad a_k = n_k/N,\ r = -\textstyle\sum_k a_k s_k,

for every dual point with ``||Lambda||_2 <= sqrt(lam_W lam_H)``, ``lambda_k = -(sqrt(n_k)/N) s_k``
(collapse by Jensen; the factored penalty ``>= mu ||U||_*``; weak duality). The proofs below
check the ingredients: the two conjugates (CE/LS: negative entropy on the shifted simplex; MSE:
``<s, t> + ||s||^2/2``), Fenchel-Young equality at ``s = grad ell(v)`` (why the gap vanishes at a
minimizer), that the scaling ``tau`` and the free-bias correction keep the dual point in the
conjugate's domain, and the AM-GM step of the factored penalty. The numeric checks: the gap at
``ufm.minimize``'s solution vanishes (``<= 1e-9``) and the bound equals the closed-form minimum;
below the rank (``d < K``) and with ``H >= 0`` the bound stays below the minimum (not tight):
a strict bound row shows ``lower_bound <= (1 - margin) v`` for a value ``v <= min f`` (the
``d >= K`` signed minimum below the rank, where the rank constraint raises the minimum; the
catalog's nonnegative minimum, ``nguyen2023``, with ``H >= 0``, where the bound equals the
signed minimum and so stays below it).

**Deep linear MSE UFM.** ``f >= sum_j min_x (x - s_j)^2/(2N) + (m/2) Lambda'^{1/m} x^{2/m}``
for any widths (Schatten-quasi-norm Hölder + Mirsky); balanced one-hot, it is ``min_x h_m(x)``
(the substitution ``x -> sqrt(n) x`` is proved below), attained by deep neural collapse.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog.deep_reduction import DNC_EXPRESSIONS, deep_numbers, x_star
from proofs_check.catalog.dispatch import closed_form, closed_form_assumptions
from proofs_check.catalog.nguyen2023 import POSITIVE_FRAME
from proofs_check.theorem import Citation, Proof, Theorem, minimize_solver

__all__ = ["THEOREMS"]

SREBRO = Citation("Srebro, Rennie & Jaakkola", 2005, "NeurIPS")
ZHU = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375")
SUKENIK = Citation("Súkeník, Mondelli & Lampert", 2023, "NeurIPS", "2305.13165")

# ---- symbols --------------------------------------------------------------------------------
v1, v2, v3, s1, s2, s3, t1, t2, t3 = sp.symbols("v1 v2 v3 s1 s2 s3 t1 t2 t3", real=True)
p1, p2, tau, theta = sp.symbols("p1 p2 tau theta", positive=True)
w, hh, lW, lH, mu = sp.symbols("w h lambda_W lambda_H mu", positive=True)
xs, nn, Lp, KK = sp.symbols("x n Lambda_p K", positive=True)
V = sp.Matrix([v1, v2, v3])
lse = sp.log(sum(sp.exp(v) for v in V))


def _ce_conjugate_residual():
    """At ``v* = log p`` the concave function ``<s,v> - lse(v) + v_1`` (``s = p - e_1``) is
    stationary and equals ``sum p log p``."""
    p = sp.Matrix([p1, p2, 1 - p1 - p2])
    s = p - sp.Matrix([1, 0, 0])
    obj = (s.T * V)[0] - lse + v1
    at = {v1: sp.log(p[0]), v2: sp.log(p[1]), v3: sp.log(p[2])}
    grad = [sp.diff(obj, v).subs(at) for v in V]
    value = obj.subs(at) - sum(pi * sp.log(pi) for pi in p)
    return tuple(grad) + (value,)


def _mse_conjugate_residual():
    s, t = sp.Matrix([s1, s2, s3]), sp.Matrix([t1, t2, t3])
    obj = (s.T * V)[0] - ((V - t).T * (V - t))[0] / 2
    at = {v1: t1 + s1, v2: t2 + s2, v3: t3 + s3}
    grad = [sp.diff(obj, v).subs(at) for v in V]
    return tuple(grad) + (obj.subs(at) - ((s.T * t)[0] + (s.T * s)[0] / 2),)


def _ce_fenchel_young_residual():
    """``ell(v) + ell^*(grad ell(v)) - <grad ell(v), v> = 0`` with ``p = softmax(v)``."""
    Z = sum(sp.exp(v) for v in V)
    p = sp.Matrix([sp.exp(v) / Z for v in V])
    ell = lse - v1
    grad = p - sp.Matrix([1, 0, 0])
    conj = sum(pi * sp.log(pi) for pi in p)
    return sp.expand_log(ell + conj - (grad.T * V)[0], force=True)


def _scaling_residual():
    """``tau (p - t) + t = tau p + (1 - tau) t`` sums to 1 (and is >= 0 as a convex combination)."""
    p = sp.Matrix([p1, p2, 1 - p1 - p2])
    t = sp.Matrix([t1, t2, 1 - t1 - t2])
    return sum(tau * (p - t) + t) - 1


def _free_bias_residual():
    """Columns ``theta p_k + (tbar - theta m)``, ``m = sum_k a_k p_k``: ``a``-mean is ``tbar``."""
    a1, a2 = sp.symbols("a1 a2", positive=True)
    q1, q2, tb = sp.symbols("q1 q2 tbar", real=True)  # one coordinate j of p_1, p_2 and tbar
    m = a1 * q1 + a2 * q2
    cols = [theta * q + (tb - theta * m) for q in (q1, q2)]
    return (a1 * cols[0] + a2 * cols[1] - tb).subs(a2, 1 - a1)


def _amgm_residual():
    """``lam_W/2 w^2 + lam_H/2 h^2 - sqrt(lam_W lam_H) w h = (sqrt(lam_W) w - sqrt(lam_H) h)^2/2 >= 0``."""
    return (lW / 2 * w**2 + lH / 2 * hh**2 - sp.sqrt(lW * lH) * w * hh
            - (sp.sqrt(lW) * w - sp.sqrt(lH) * hh) ** 2 / 2)


def _deep_substitution_residual(m):
    """``K * [(sqrt(n) x - sqrt(n))^2/(2Kn) + (m/2) Lambda'^{1/m} (sqrt(n) x)^{2/m}] = h_m(x)``
    with ``gamma = K (n Lambda')^{1/m}``."""
    term = (sp.sqrt(nn) * xs - sp.sqrt(nn)) ** 2 / (2 * KK * nn) \
        + sp.Rational(m, 2) * Lp ** sp.Rational(1, m) * (sp.sqrt(nn) * xs) ** sp.Rational(2, m)
    h_m = (xs - 1) ** 2 / 2 + sp.Rational(m, 2) * KK * (nn * Lp) ** sp.Rational(1, m) * xs ** sp.Rational(2, m)
    return sp.powsimp(sp.expand(KK * term - h_m), force=True)


def _deep_amgm_residual():
    """m = 3 scalar factors: at the balanced point ``mu_i a_i^2 = c`` the penalty
    ``sum mu_i a_i^2/2`` equals ``(3/2)(mu_1 mu_2 mu_3)^{1/3} |a_1 a_2 a_3|^{2/3}`` (the AM-GM
    equality case; the inequality is AM-GM)."""
    m1, m2, m3, c = sp.symbols("mu1 mu2 mu3 c", positive=True)
    a = [sp.sqrt(c / mi) for mi in (m1, m2, m3)]
    lhs = sum(mi * ai**2 / 2 for mi, ai in zip((m1, m2, m3), a))
    rhs = sp.Rational(3, 2) * (m1 * m2 * m3) ** sp.Rational(1, 3) * (a[0] * a[1] * a[2]) ** sp.Rational(2, 3)
    return sp.powsimp(sp.simplify(lhs - rhs), force=True)


DUAL_PROOFS = (
    Proof("CE conjugate: sup_v <s,v> - ell_1(v) = sum_j p_j log p_j for s = p - e_1, p in the simplex "
          "(stationary at v = log p; K = 3)", _ce_conjugate_residual),
    Proof("MSE conjugate: sup_v <s,v> - ||v - t||^2/2 = <s,t> + ||s||^2/2 (stationary at v = t + s)",
          _mse_conjugate_residual),
    Proof("Fenchel-Young equality at s = grad ell(v) (CE): the dual point built at a minimizer is tight",
          _ce_fenchel_young_residual),
    Proof("scaling by tau in [0,1] keeps p = tau(p - t) + t in the simplex (sum 1, convex combination)",
          _scaling_residual),
    Proof("free bias: columns theta p_k + (tbar - theta m) have a-weighted mean tbar (r = 0)",
          _free_bias_residual),
    Proof("factored penalty: lam_W/2 w^2 + lam_H/2 h^2 - sqrt(lam_W lam_H) w h is a square",
          _amgm_residual),
)

DEEP_PROOFS = (
    Proof("balanced one-hot: K copies of the scalar term equal h_m(x) after x -> sqrt(n) x (m = 3)",
          lambda: _deep_substitution_residual(3)),
    Proof("balanced one-hot: the same substitution for m = 4", lambda: _deep_substitution_residual(4)),
    Proof("m = 3: the factored penalty equals (m/2) Lambda^{1/m} sigma^{2/m} at its balanced point",
          _deep_amgm_residual),
)


# ---- numeric side ---------------------------------------------------------------------------
NOT_TIGHT = "lower_bound (strictly below min f: not tight)"


def _certificate(prob, params, names):
    cert = ufm.global_certificate(prob, params)
    out = {"gap": float(cert.gap), "lower_bound": float(cert.lower_bound), "value": float(cert.value),
           NOT_TIGHT: float(cert.lower_bound)}
    return {k: out[k] for k in names}


def _tight_assume(prob):
    if not isinstance(prob, ufm.UFM) or not isinstance(prob.loss, (ufm.CrossEntropy, ufm.LabelSmoothing, ufm.MSE)):
        return False, "a ufm.UFM with CE, LS or MSE"
    ok, why = closed_form_assumptions(prob)
    if not ok:
        return False, f"needs a closed form for the minimum: {why}"
    return True, ""


def _tight_assemble(prob, ev):
    """Gap 0; the bound equals the minimum predicted by the instance's own catalog theorem (its
    SymPy expressions, through :mod:`proofs_check.catalog.dispatch`)."""
    return {"gap": 0.0, "lower_bound": closed_form(prob)["value"]}


def _tight_instances():
    # the shapes (K, n, d, loss, bias mode) of zhu2021.CE_ETF and mse.MSE_ENCODING, at other lams:
    # one compiled solve per shape and run
    base = dict(K=4, n=5, d=8, lam_W=1e-2, lam_H=3e-3)
    return [ufm.UFM(loss=ufm.CrossEntropy(), lam_b=5e-3, **base),
            ufm.UFM(loss=ufm.MSE(2 * np.eye(4) - 1), **base)]


def _tight_random(rng):
    loss = [ufm.CrossEntropy(), ufm.LabelSmoothing(float(rng.uniform(0, 0.3))), ufm.MSE()][rng.integers(3)]
    lam = float(rng.uniform(1e-3, 8e-3))
    return ufm.UFM(K=4, n=3, d=5, loss=loss, lam_W=lam, lam_H=lam, lam_b=[None, 0.0, 5e-3][rng.integers(3)])


DUAL_TIGHT = Theorem(
    name="Class-level dual certificate: the gap vanishes at the global minimizer",
    citation=SREBRO,
    tag="derived",
    statement=("Shallow UFM, loss convex in the logits (CE, LS, MSE with any encoding), any bias mode: "
               "the dual of the class-level nuclear-norm program at the dual point Lambda = -grad g(U) "
               "built from the candidate (free-bias correction, scaled into ||Lambda||_2 <= sqrt(lam_W lam_H)) "
               "is a lower bound on min f for every d; at the minimizer with d >= rank(U*) it equals "
               "the closed-form minimum and the gap vanishes."),
    assumptions=_tight_assume,
    assemble=_tight_assemble,
    instances=_tight_instances,
    random_instance=_tight_random,
    measure=_certificate,
    tolerances={"gap": (1e-9, "absolute: the predicted gap is 0 and the solve stops at KKT 1e-12, so "
                              "the measured gap is of order the certificate times the dual scale")},
    no_closed_form=("the bound is evaluated numerically by ufm.global_certificate; its predicted value is "
                    "the instance's closed-form minimum from the catalog theorem that covers it"),
    proofs=DUAL_PROOFS,
)


def _valid_assume(prob):
    if not isinstance(prob, ufm.UFM) or not isinstance(prob.loss, (ufm.CrossEntropy, ufm.LabelSmoothing, ufm.MSE)):
        return False, "a ufm.UFM with CE, LS or MSE"
    ok, why = closed_form_assumptions(dataclasses.replace(prob, d=max(prob.K, prob.D), nonneg=False))
    if not ok:
        return False, f"the d >= K signed instance needs a closed form: {why}"
    if prob.nonneg:
        ok, why = POSITIVE_FRAME.assumptions(prob)
        if not ok:
            return False, f"with H >= 0 the 'not tight' row needs the nonnegative minimum's closed form: {why}"
    elif prob.d >= prob.K:
        return False, f"below the rank (d < K) or with H >= 0 (got d={prob.d}, K={prob.K}, signed)"
    return True, ""


def _valid_assemble(prob, ev):
    """``lower_bound``: the minimum of the d >= K signed instance, <= the minimum of ``prob`` (rank
    constraint or ``H >= 0`` added), hence an upper bound for the lower bound. The 'not tight' row:
    a value ``<= min f`` the bound stays strictly below: the same signed minimum below the rank;
    with ``H >= 0`` the catalog's nonnegative minimum (the bound ignores ``H >= 0``, so it is at
    most the signed minimum, which the nonnegative one exceeds)."""
    signed = closed_form(dataclasses.replace(prob, d=max(prob.K, prob.D), nonneg=False))["value"]
    below = POSITIVE_FRAME.predict(prob)["value"] if prob.nonneg else signed
    return {"lower_bound": signed, NOT_TIGHT: below}


DUAL_VALID = Theorem(
    name="Class-level dual certificate: valid below the rank and with H >= 0 (not tight)",
    citation=SREBRO,
    tag="derived",
    statement=("For d < K or H >= 0 the dual bound at minimize's solution stays below the minimum "
               "of the d >= K signed instance (which is <= this instance's minimum), and strictly below "
               "this instance's minimum (not tight): below the rank it is strictly below the signed "
               "minimum; with H >= 0 strictly below the nonnegative minimum (nguyen2023's closed form)."),
    assumptions=_valid_assume,
    assemble=_valid_assemble,
    no_closed_form=("the bound is evaluated numerically by ufm.global_certificate and compared with the "
                    "closed-form minimum of the d >= K signed instance (its catalog theorem)"),
    # d = K - 1 = 3 at n = 5: the shape of zhu2021.CE_ETF's d < K instance (shape-only compilations shared)
    instances=lambda: [ufm.UFM(K=4, n=5, d=3, loss=ufm.MSE(), lam_W=3e-3, lam_H=3e-3),
                       ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2,
                               nonneg=True)],
    measure=_certificate,
    upper_bounds=("lower_bound",),
    strict_upper_bounds=(NOT_TIGHT,),
    proofs=(Proof("collapse (Jensen, MSE): the mean of two samples' losses exceeds the loss of their mean "
                  "logit by (v1 - v2)^2/4, so collapsing features never raises f (any d, also H >= 0)",
                  lambda: ((v1 - t1) ** 2 + (v2 - t1) ** 2) / 4 - ((v1 + v2) / 2 - t1) ** 2 / 2 - (v1 - v2) ** 2 / 8),),
)


def _deep_assume(prob):
    if not isinstance(prob, ufm.DeepUFM) or prob.activation != "linear" or not isinstance(prob.loss, ufm.MSE):
        return False, "a linear ufm.DeepUFM with MSE"
    if not prob.balanced or prob.loss.encoding is not None or prob.has_bias:
        return False, "balanced, one-hot, no bias (for the h_m closed form)"
    if min(prob.widths) < prob.K:
        return False, "every width >= K (for the gap to vanish)"
    return True, ""


DEEP_BOUND = Theorem(
    name="Deep linear MSE UFM: the scalar reduction bounds the minimum for any widths",
    citation=SUKENIK,
    tag="derived",
    statement=("Deep linear MSE UFM with m = L + 1 factors: f >= sum_j min_x (x - s_j)^2/(2N) + "
               "(m/2) Lambda'^{1/m} x^{2/m} for any widths (Hölder for Schatten quasi-norms, Mirsky); "
               "balanced one-hot this is min_x h_m(x), attained (gap 0) when every width >= K."),
    assumptions=_deep_assume,
    assemble=lambda prob, ev: {"gap": 0.0, "lower_bound": ev("h(x)", x=x_star(ev)[0])},
    # unequal widths ("any widths"); the shape is shared with an instance of deep.DEEP_LINEAR
    instances=lambda: [ufm.DeepUFM(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=4e-3, lam_H=4e-3,
                                   activation="linear")],
    measure=_certificate,
    solve=functools.partial(minimize_solver, starts=3),
    tolerances={"gap": (1e-9, "absolute: the predicted gap is 0; the solve stops at KKT 1e-12")},
    expressions={k: DNC_EXPRESSIONS[k] for k in ("gamma", "h(x)", "gamma_c")},
    variables=deep_numbers,
    proofs=DEEP_PROOFS,
)

THEOREMS = [DUAL_TIGHT, DUAL_VALID, DEEP_BOUND]
