r"""Deep linear UFM (docs/theory.md#deep-reduction): deep neural collapse with K equal singular values per layer,
the jump of the scalar minimizer ``x*`` from ``(m-2)/(m-1)`` to 0 at ``gamma_c``, and the origin as
a strict local minimum when ``m = L + 1 >= 3``.

Sources: the collapse of the deep linear minimizers is Dang et al. (ICML 2023, arXiv 2301.00437)
and Garrod & Keating (arXiv 2404.06106); the jump and the origin entries are ufm's own analysis of
the h_m reduction (tagged ``derived``, cited as such).

The reduction to ``h_m``, the DNC closed form and what it determines are in
:mod:`proofs_check.catalog.deep_reduction`; :mod:`proofs_check.catalog.deep` lists the entries.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import grad_norm_at
from proofs_check.catalog.deep_reduction import (
    DEEP_LINEAR_SOURCE, DNC_EXPRESSIONS, OWN_ANALYSIS, REDUCTION, check_dnc_instance, deep_numbers, dnc_assemble,
    factor_proofs, gam, h_sym, jump_distance, jump_gamma, measure, ms, solve_deep, x,
)
from proofs_check.theorem import GTOL, Proof, Theorem, Threshold
from ufm import DeepUFM

__all__ = ["THEOREMS", "DEEP_LINEAR", "JUMP", "ORIGIN"]


_p = sp.symbols("p", positive=True)  # m = p + 2 > 2
_m_of_p = _p + 2


def _jump_residuals():
    hm = h_sym(_m_of_p)
    gc = DNC_EXPRESSIONS["gamma_c"].subs(ms, _m_of_p)
    xJ = (_m_of_p - 2) / (_m_of_p - 1)
    return (hm.subs({gam: gc, x: xJ}) - sp.Rational(1, 2), sp.diff(hm, x).subs({gam: gc, x: xJ}))


def _origin_residual():
    """(h_m(x) - h_m(0))/x^(2/m) - (m/2) gamma = x^(1-2/m)(x/2 - 1), with 1 - 2/m = p/(p+2) > 0."""
    hm = h_sym(_m_of_p)
    expo = 1 - 2 / _m_of_p
    ok = sp.simplify(sp.powsimp(sp.expand((hm - sp.Rational(1, 2)) / x ** (2 / _m_of_p) - _m_of_p / 2 * gam
                                          - x**expo * (x / 2 - 1)), force=True)) == 0
    return bool(ok and sp.simplify(expo - _p / (_p + 2)) == 0 and (_p / (_p + 2)).is_positive)


def _jump_proofs():
    return (
        Proof("jump, every m > 2 (m = p + 2, p > 0 symbolic): at gamma_c^m = (m-2)^(m-2)/(m-1)^(2(m-1)), "
              "h_m(x_J) = h_m(0) = 1/2 and h_m'(x_J) = 0 with x_J = (m-2)/(m-1)", _jump_residuals),
        Proof("m = 2: gamma_c = 1 (the expression at m = 2) and h_2'(1 - gamma) = 0, h_2'' = 1: "
              "x* = (1 - gamma)_+",
              lambda: (DNC_EXPRESSIONS["gamma_c"].subs(ms, 2) - 1, sp.diff(h_sym(2), x).subs(x, 1 - gam),
                       sp.diff(h_sym(2), x, 2) - 1)),
        Proof("d h_m/d gamma = (m/2) x^(2/m) >= 0 (every m): the optimal value h_m(x*(gamma)) is "
              "nondecreasing in gamma (envelope theorem), so the branches cross h = 1/2 once",
              lambda: sp.diff(h_sym(ms), gam) - ms / 2 * x ** (2 / ms)),
    )


def _origin_proofs():
    return (
        Proof("origin, every m > 2 (m = p + 2 symbolic): h_m'(x) = x - 1 + gamma x^(-p/(p+2)) -> +oo as "
              "x -> 0+", lambda: sp.Eq(sp.limit(sp.diff(h_sym(_m_of_p), x), x, 0, "+"), sp.oo)),
        Proof("origin, every m > 2: (h_m(x) - h_m(0))/x^(2/m) = (m/2) gamma + x^(1-2/m)(x/2 - 1) with "
              "1 - 2/m > 0, so h_m(x) > h_m(0) near 0+: x = 0 is a strict local minimum of h_m",
              _origin_residual),
        Proof("m = 2 is different: h_2'(0+) = gamma - 1 < 0 for gamma < 1 (the origin is a saddle)",
              lambda: sp.limit(sp.diff(h_sym(2), x), x, 0, "+") - (gam - 1)),
    )


_JUMP_WHAT = "gamma/gamma_c - 1 (gamma - 1 at m = 2; positive: x* = 0, the zero solution)"


# ---- instances ---------------------------------------------------------------------------------
def _linear(K_=3, L=2, lam=4e-3, n_=2, lam_H=4e-3, width=None):
    width = K_ + 2 if width is None else width
    return DeepUFM(K=K_, n=n_, widths=(width,) * L, loss=ufm.MSE(), lam_W=lam, lam_H=lam_H, activation="linear")


def _beyond_jump_lam(m=3, f=1.3):
    """``lam_W = lam_H`` giving ``gamma = f gamma_c`` at K = 3, n = 2 (``gamma = K n^(1/m) lam``)."""
    return f * jump_gamma(m) / (3 * 2 ** (1 / m))


def _lin_assume(prob):
    ok, why = check_dnc_instance(prob)
    if ok and prob.activation != "linear":
        return False, "activation must be 'linear'"
    return ok, why


def _lin_random(rng):
    L = int(rng.integers(1, 4))
    lams = rng.uniform(1e-3, 2e-2, size=L)
    return DeepUFM(K=3, n=2, widths=(5,) * L, loss=ufm.MSE(), lam_W=lams.tolist(),
                   lam_H=float(rng.uniform(1e-3, 2e-2)), activation="linear")


DEEP_LINEAR = Theorem(
    name="Deep linear MSE UFM: K copies of h_m, DNC with K equal singular values per layer",
    citation=DEEP_LINEAR_SOURCE,
    tag="derived",
    statement=("MSE, one-hot, no bias, balanced, linear layers, widths >= K, gamma away from the jump: "
               "f* = h_m(x*) (x* the global minimizer of h_m, m = L+1; x* = 0 beyond the jump), "
               "sigma(W_l) = Lambda^(1/2m) "
               "x*^(1/m)/sqrt(lam_l) (K equal values), class means of layer l an orthogonal frame "
               "c_l I."),
    assumptions=_lin_assume,
    assemble=dnc_assemble,
    # shapes shared with other entries (compiled once per run): widths (3, 3) and (3, 3, 3) with the
    # jump transition, the unequal widths (4, 3) with the deep scalar bound (duality)
    instances=lambda: [_linear(3, 2, width=3), _linear(3, 3, lam=[2e-3, 8e-3, 4e-3], width=3),
                       DeepUFM(K=3, n=2, widths=(4, 3), loss=ufm.MSE(), lam_W=[5e-3, 2e-3], lam_H=1e-2,
                               activation="linear"),
                       # beyond the jump (gamma = 1.3 gamma_c, past the last nonzero critical point of h_3
                       # at 1.19 gamma_c): x* = 0, the zero solution
                       _linear(3, 2, width=3, lam=_beyond_jump_lam(), lam_H=_beyond_jump_lam())],
    random_instance=_lin_random,
    measure=measure,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=factor_proofs() + _jump_proofs()[:2],
    thresholds=(Threshold(jump_distance, _JUMP_WHAT),),
    solve=solve_deep,
    assumed=(REDUCTION,),
)


def _jump_instances():
    out = []
    for m in (3, 4):
        for f in (0.8, 1.1):
            lam = f * jump_gamma(m) / (3 * 2 ** (1 / m))  # K = 3, n = 2: gamma = K n^(1/m) lam
            out.append(DeepUFM(K=3, n=2, widths=(3,) * (m - 1), loss=ufm.MSE(), lam_W=lam, lam_H=lam,
                               activation="linear"))
    return out


def _jump_solve(prob):
    """Best of starts at a large scale (the nonzero branch) and a small one (the origin's basin)."""
    runs = [ufm.minimize(prob, gtol=GTOL, starts=r, init_scale=s, throw=False) for s, r in ((1.0, 8), (1e-2, 1))]
    sol = min(runs, key=lambda s: s.value)
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged}


def _jump_assume(prob):
    if not isinstance(prob, DeepUFM) or prob.activation != "linear" or prob.L < 2:
        return False, "needs a linear DeepUFM with L >= 2"
    return check_dnc_instance(prob)


JUMP = Theorem(
    name="Deep UFM jump transition: x* jumps from (m-2)/(m-1) to 0 at gamma_c",
    citation=OWN_ANALYSIS,
    tag="derived",
    statement=("m >= 3: h_m's nonzero minimizer exists up to and beyond gamma_c^m = (m-2)^(m-2)/"
               "(m-1)^(2(m-1)), where h_m(x_J) = h_m(0) = 1/2 with x_J = (m-2)/(m-1); below gamma_c the "
               "solver's value is h_m(x*) < 1/2, above it the zero solution (value 1/2) is global."),
    assumptions=_jump_assume,
    assemble=dnc_assemble,
    instances=_jump_instances,
    measure=measure,
    expressions=DNC_EXPRESSIONS,
    variables=deep_numbers,
    proofs=_jump_proofs(),
    thresholds=(Threshold(jump_distance, _JUMP_WHAT),),
    solve=_jump_solve,
    assumed=(REDUCTION,),
)


def _origin_assemble(prob, ev):
    lams = [float(prob.lam_H)] + list(np.asarray(prob.lams, float))
    return {"hessian lambda_min at 0": min(lams), "hessian lambda_max at 0": max(lams)}


def _origin_measure(prob, params, names):
    lo, hi = ufm.hessian_extreme_eigs(prob, prob.zeros())
    return {"hessian lambda_min at 0": lo, "hessian lambda_max at 0": hi}


def _origin_solve(prob):
    """No optimization: the point is the origin itself; its gradient norm is the certificate (it must
    vanish: the data term's gradient is a product of factors that are all zero there)."""
    zero = prob.zeros()
    g = grad_norm_at(prob, zero)
    return zero, {"grad_norm": g, "converged": g <= 1e-14}


ORIGIN = Theorem(
    name="Deep UFM, m >= 3: the origin is a local minimum (Hessian = diag of the lams)",
    citation=OWN_ANALYSIS,
    tag="derived",
    statement=("For L >= 2 weight layers without bias the logits are products of >= 3 factors, so the "
               "data term has zero gradient and zero Hessian at 0: the Hessian there is diag(lam_H, "
               "lam_1, ..., lam_L) > 0, a strict local minimum (gradient methods started small stall)."),
    assumptions=lambda p: ((True, "") if isinstance(p, DeepUFM) and p.L >= 2 and not p.has_bias
                           else (False, "needs a DeepUFM with L >= 2 and no bias")),
    assemble=_origin_assemble,
    instances=lambda: [_linear(3, 2), DeepUFM(K=3, n=2, widths=(4, 4, 4), loss=ufm.CrossEntropy(),
                                              lam_W=[1e-3, 2e-3, 3e-3], lam_H=5e-3)],
    measure=_origin_measure,
    proofs=_origin_proofs(),
    solve=_origin_solve,
    no_closed_form=("no SymPy expression: the prediction is read off the problem, the Hessian at 0 being "
                    "diag(lam_H I, lam_1 I, ..., lam_L I) (extreme eigenvalues min and max of the lams); the "
                    "solver side is ufm.hessian_extreme_eigs"),
    assumed=("the data term has zero gradient and zero Hessian at 0 when every logit is a product of >= 3 "
             "factors (argued in the statement; the solve checks the gradient)",),
)

THEOREMS = [DEEP_LINEAR, JUMP, ORIGIN]
