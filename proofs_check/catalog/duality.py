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
below the rank (``d < rank(U*)``, ``U*`` the class-level minimizer) and with ``H >= 0`` the
bound stays below the minimum (not tight):
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
from proofs_check.catalog.deep_reduction import DEEP_LINEAR_SOURCE, DNC_EXPRESSIONS, deep_numbers, x_star
from proofs_check.catalog.dispatch import closed_form, closed_form_assumptions
from proofs_check.catalog.nguyen2023 import POSITIVE_FRAME
from proofs_check.theorem import Citation, Proof, Theorem, Threshold, minimize_solver

__all__ = ["THEOREMS"]

SREBRO = Citation("Srebro, Rennie & Jaakkola", 2005, "NeurIPS")
ZHU = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375")
# the deep linear scalar reduction: Dang et al. 2023 and Garrod & Keating 2024 (deep_reduction)
DEEP_SOURCE = DEEP_LINEAR_SOURCE

# ---- symbols --------------------------------------------------------------------------------
v1, s1, t1 = sp.symbols("v1 s1 t1", real=True)
tau, theta = sp.symbols("tau theta", positive=True)
w, hh, lW, lH, mu = sp.symbols("w h lambda_W lambda_H mu", positive=True)
xs, nn, Lp, KK = sp.symbols("x n Lambda_p K", positive=True)


def _ce_conjugate_residual():
    """Every K: at ``v* = log p`` the concave function ``<s,v> - lse(v) + v_1`` (``s = p - e_1``) is
    stationary and equals ``sum p log p``. Coordinate ``j`` (``delta = [j = 1]``): the other
    coordinates enter ``lse`` through ``R = sum_{l != j} e^{v_l}``, which is ``1 - p_j`` at ``v*``;
    the value is a sum over coordinates, kept as the sums ``sum p_l log p_l`` and ``sum p_l = 1``."""
    vj, R, sum_p, sum_plogp, logp1 = sp.symbols("v_j R sum_p sum_plogp logp_1", real=True)
    pj, dlt = sp.symbols("p_j delta", nonnegative=True)
    obj_j = (pj - dlt) * vj - sp.log(sp.exp(vj) + R) + dlt * vj  # the terms of obj that depend on v_j
    grad_j = sp.diff(obj_j, vj).subs(vj, sp.log(pj)).subs(R, 1 - pj)
    value = (sum_plogp - logp1) - sp.log(sum_p) + logp1  # <p - e_1, log p> - lse(log p) + log p_1
    return grad_j, (value - sum_plogp).subs(sum_p, 1)


def _mse_conjugate_residual():
    """Coordinatewise (every dimension): ``s_j v_j - (v_j - t_j)^2/2`` is stationary at
    ``v_j = t_j + s_j`` with value ``s_j t_j + s_j^2/2``; the objective is the sum of these terms."""
    obj = s1 * v1 - (v1 - t1) ** 2 / 2
    at = {v1: t1 + s1}
    return sp.diff(obj, v1).subs(at), obj.subs(at) - (s1 * t1 + s1**2 / 2)


def _ce_fenchel_young_residual():
    """Every K: ``ell(v) + ell^*(grad ell(v)) - <grad ell(v), v> = 0`` with ``p = softmax(v)``,
    ``ell = L - v_1``, ``L = log E``, ``E = sum_l e^{v_l}``. Per coordinate ``log p_j = v_j - L``;
    then through the sums ``sum p_l v_l`` and ``sum p_l = E/E``: ``ell^* = sum p_l log p_l =
    sum p_l v_l - L sum p_l`` and ``<grad ell, v> = sum p_l v_l - v_1``."""
    vj, v_1, sum_pv = sp.symbols("v_j v_1 sum_pv", real=True)
    E = sp.Symbol("E", positive=True)
    L = sp.log(E)
    log_pj = sp.expand_log(sp.log(sp.exp(vj) / E), force=True)
    sum_p = E / E  # sum_l e^{v_l} / E
    conj = sum_pv - L * sum_p
    return log_pj - (vj - L), (L - v_1) + conj - (sum_pv - v_1)


def _scaling_residual():
    """Every dimension: ``sum_j tau (p_j - t_j) + t_j = tau (sum p - sum t) + sum t``, which is 1 for
    ``sum p = sum t = 1`` (and each entry is >= 0 as a convex combination)."""
    sum_p, sum_t = sp.symbols("sum_p sum_t", positive=True)
    return (tau * (sum_p - sum_t) + sum_t - 1).subs({sum_p: 1, sum_t: 1})


def _free_bias_residual():
    """Every K: columns ``theta q_k + (tbar - theta m)``, ``m = sum_k a_k q_k`` (one coordinate),
    weights ``a_k`` summing to ``A = 1``: the ``a``-mean is ``theta m + (tbar - theta m) A``."""
    A, M, tb = sp.symbols("A M tbar", real=True)  # A = sum_k a_k, M = sum_k a_k q_k = m
    a_mean = theta * M + (tb - theta * M) * A  # sum_k a_k (theta q_k + tbar - theta m)
    return (a_mean - tb).subs(A, 1)


def _amgm_residual():
    """``lam_W/2 w^2 + lam_H/2 h^2 - sqrt(lam_W lam_H) w h = (sqrt(lam_W) w - sqrt(lam_H) h)^2/2 >= 0``."""
    return (lW / 2 * w**2 + lH / 2 * hh**2 - sp.sqrt(lW * lH) * w * hh
            - (sp.sqrt(lW) * w - sp.sqrt(lH) * hh) ** 2 / 2)


def _deep_substitution_residual():
    """Every m (symbolic): ``K * [(sqrt(n) x - sqrt(n))^2/(2Kn) + (m/2) Lambda'^{1/m} (sqrt(n) x)^{2/m}]
    = h_m(x)`` with ``gamma = K (n Lambda')^{1/m}``."""
    m = sp.Symbol("m", positive=True)
    term = (sp.sqrt(nn) * xs - sp.sqrt(nn)) ** 2 / (2 * KK * nn) \
        + m / 2 * Lp ** (1 / m) * (sp.sqrt(nn) * xs) ** (2 / m)
    h_m = (xs - 1) ** 2 / 2 + m / 2 * KK * (nn * Lp) ** (1 / m) * xs ** (2 / m)
    return sp.powsimp(sp.expand(KK * term - h_m), force=True)


def _deep_amgm_residual():
    """Every m (symbolic) scalar factors: at the balanced point ``mu_i a_i^2 = c`` for each i, the
    penalty ``sum mu_i a_i^2/2`` is ``m c/2`` and ``prod_i mu_i a_i^2 = c^m``, so it equals
    ``(m/2)(prod mu_i)^{1/m} |prod a_i|^{2/m} = (m/2)(c^m)^{1/m}`` (the AM-GM equality case; the
    inequality is AM-GM)."""
    m, c, mu_i = sp.symbols("m c mu_i", positive=True)
    a_i = sp.sqrt(c / mu_i)
    term = mu_i * a_i**2 / 2  # the same for every i
    prod_mu_a2 = (mu_i * a_i**2) ** m  # prod_i mu_i a_i^2, each factor equal
    return sp.powsimp(sp.simplify(m * term - m / 2 * prod_mu_a2 ** (1 / m)), force=True)


def _jensen_residual():
    """Every class count n: ``(1/n) sum_i (v_i - t)^2/2 - (vbar - t)^2/2 = (S2 - S1^2/n)/(2n)``
    (``S1 = sum v_i``, ``S2 = sum v_i^2``, ``vbar = S1/n``), i.e. ``sum_i (v_i - vbar)^2/(2n)``."""
    S1, S2, nc = sp.Symbol("S1", real=True), sp.Symbol("S2", nonnegative=True), sp.Symbol("n", positive=True)
    mean_loss = (S2 - 2 * t1 * S1 + nc * t1**2) / (2 * nc)  # expanded sum of (v_i - t)^2/2, over n
    return mean_loss - (S1 / nc - t1) ** 2 / 2 - (S2 - S1**2 / nc) / (2 * nc)


DUAL_PROOFS = (
    Proof("CE conjugate: sup_v <s,v> - ell_1(v) = sum_j p_j log p_j for s = p - e_1, p in the simplex "
          "(stationary at v = log p; every K: per coordinate, the others through their sums)",
          _ce_conjugate_residual),
    Proof("MSE conjugate: sup_v <s,v> - ||v - t||^2/2 = <s,t> + ||s||^2/2 (stationary at v = t + s; "
          "coordinatewise, so in every dimension)",
          _mse_conjugate_residual),
    Proof("Fenchel-Young equality at s = grad ell(v) (CE): the dual point built at a minimizer is tight "
          "(every K: log p_j = v_j - lse(v) per coordinate, then sums)", _ce_fenchel_young_residual),
    Proof("scaling by tau in [0,1] keeps p = tau(p - t) + t in the simplex (sum 1, convex combination; "
          "every dimension)", _scaling_residual),
    Proof("free bias: columns theta p_k + (tbar - theta m) have a-weighted mean tbar (r = 0; every K: per "
          "coordinate, through the sums A = sum a_k = 1 and M = sum a_k q_k)",
          _free_bias_residual),
    Proof("factored penalty: lam_W/2 w^2 + lam_H/2 h^2 - sqrt(lam_W lam_H) w h is a square",
          _amgm_residual),
)

DEEP_PROOFS = (
    Proof("balanced one-hot: K copies of the scalar term equal h_m(x) after x -> sqrt(n) x (every m)",
          _deep_substitution_residual),
    Proof("every m: the factored penalty equals (m/2) Lambda^{1/m} sigma^{2/m} at its balanced point",
          _deep_amgm_residual),
)


# ---- numeric side ---------------------------------------------------------------------------
NOT_TIGHT = "lower_bound (strictly below min f: not tight)"


def _certificate(prob, params, names):
    cert = ufm.global_certificate(prob, params)
    out = {"gap": float(cert.gap), "lower_bound": float(cert.lower_bound), "value": float(cert.value),
           NOT_TIGHT: float(cert.lower_bound)}
    return {k: out[k] for k in names}


def _rank_distance(prob) -> np.ndarray:
    """``d - rank(U*) + 1/2`` for signed features, ``U*`` the class-level minimizer of the ``d >= K``
    instance (the rank of its closed-form ``W W^T``): positive where ``d >= rank(U*)`` (the bound is
    the minimum); none with ``H >= 0`` (a constraint, not a dimension)."""
    if prob.nonneg:
        return np.zeros(0)
    G = np.asarray(closed_form(dataclasses.replace(prob, d=max(prob.K, prob.D)))["W_gram"], dtype=float)
    ev = np.linalg.eigvalsh(G)
    return np.array([prob.d - int(np.sum(ev > 1e-9 * max(ev.max(), 1e-300))) + 0.5])


_RANK_WHAT = "d - rank(U*) + 1/2, signed features (positive: d >= rank(U*), the bound is tight)"
_VALID_NAME = "Class-level dual certificate: valid below the rank and with H >= 0 (not tight)"


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
               "the closed-form minimum and the gap vanishes (checked on this side of the rank; below it: "
               "the 'valid below the rank' entry)."),
    assumptions=_tight_assume,
    assemble=_tight_assemble,
    instances=_tight_instances,
    random_instance=_tight_random,
    measure=_certificate,
    tolerances={"gap": (1e-9, "absolute: the predicted gap is 0 and the solve stops at KKT 1e-12, so "
                              "the measured gap is of order the certificate times the dual scale")},
    thresholds=(Threshold(_rank_distance, _RANK_WHAT, band=0.0, covers="above", partner=_VALID_NAME),),
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
    elif (dist := float(_rank_distance(prob)[0])) > 0:  # d >= rank(U*): the bound is the minimum (tight)
        rank = int(prob.d - dist + 0.5)
        return False, (f"below the rank: signed features need d < rank(U*) = {rank} (got d={prob.d}, "
                       f"K={prob.K}), or H >= 0")
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
    name=_VALID_NAME,
    citation=SREBRO,
    tag="derived",
    statement=("For d < rank(U*) (the class-level minimizer's rank: K - 1 for CE/LS without a bias, K for "
               "one-hot MSE without a bias) or H >= 0 the dual bound at minimize's solution stays below the minimum "
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
    thresholds=(Threshold(_rank_distance, _RANK_WHAT, band=0.0, covers="below",
                          partner="Class-level dual certificate: the gap vanishes at the global minimizer"),),
    proofs=(Proof("collapse (Jensen, MSE): the mean of a class's n losses (v_i - t)^2/2 exceeds the loss of "
                  "their mean logit by sum_i (v_i - vbar)^2/(2n) >= 0 (every n, per coordinate, through the sums "
                  "S1 = sum v_i, S2 = sum v_i^2), so collapsing features never raises f (any d, also H >= 0)",
                  _jensen_residual),),
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
    citation=DEEP_SOURCE,
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
