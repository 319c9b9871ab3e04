r"""Label smoothing and focal loss share the ETF minimizers (Zhou et al., NeurIPS 2022,
arXiv 2210.02192); the scale is derived here for ufm's canonical objective (Guo et al., TMLR 2025,
arXiv 2402.03979, give the CE and label-smoothing closed forms in their own scaling).

On the simplex ETF with logit gap ``g`` (see :mod:`proofs_check.catalog.zhu2021`),
``log p_y = -log(1 + (K-1)e^{-g})`` and ``log p_j = log p_y - g`` for ``j != y``, so

- label smoothing: ``loss = -log p_y + alpha (K-1) g / K`` and
  ``phi(g) = log(1+(K-1)e^{-g}) + (K-1)(alpha/K + kappa) g``;
- focal: ``loss = -(1-p_y)^gamma log p_y`` and ``phi(g) = loss(g) + (K-1) kappa g``, minimized
  numerically (global minimum over a grid of ``g >= 0``, then bisection on ``phi'``); ``phi`` need
  not be convex, so the ETF scale is cross-checked against the class-level convex program in
  :mod:`proofs_check.catalog.imbalanced_ce`.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import (
    K, alpha, away_from, balanced_ok, c_expr, etf_invariants, evaluate, g, gamma, kappa, kappa_expr, lams_for,
)
from proofs_check.catalog.zhu2021 import GUO, PROOFS_ETF, a2_of_g
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Evaluator, Proof, Theorem, Threshold

ZHOU = Citation("Zhou et al.", 2022, "NeurIPS", "2210.02192")
LS_SOURCE = Citation("Zhou et al.", 2022, "NeurIPS", "2210.02192",
                     what="label smoothing keeps the simplex-ETF minimizers", also=(GUO,))
kap = sp.symbols("kappa", positive=True)
logp = -sp.log(1 + (K - 1) * sp.exp(-g))

# ---- label smoothing -----------------------------------------------------------------------
ls_loss_on_etf = -(1 - alpha) * logp - (alpha / K) * (logp + (K - 1) * (logp - g))
phi_ls = sp.log(1 + (K - 1) * sp.exp(-g)) + (K - 1) * (alpha / K + kap) * g
q_ls = (K - 1) * (alpha / K + kap)
q_sym = sp.symbols("q", positive=True)
g_of_q = sp.log((K - 1) * (1 - q_sym) / q_sym)
g_ls = g_of_q.subs(q_sym, q_ls)
threshold_ls = (1 - alpha) / K  # of kappa

PROOFS_LS = (
    Proof("LS loss on the ETF: -(1-a) log p_y - (a/K) sum_j log p_j = -log p_y + a (K-1) g / K",
          lambda: ls_loss_on_etf - (-logp + alpha * (K - 1) * g / K)),
    Proof("phi_LS'(g*) = 0 at g* = log((K-1)(1-q)/q), q = (K-1)(alpha/K + kappa)",
          lambda: sp.diff(phi_ls, g).subs(g, g_ls)),
    Proof("threshold: g* = 0 at kappa = (1-alpha)/K", lambda: g_ls.subs(kap, (1 - alpha) / K)),
    Proof("phi_LS'(0) = (K-1)(kappa - (1-alpha)/K): the zero solution is optimal iff kappa >= (1-alpha)/K",
          lambda: sp.diff(phi_ls, g).subs(g, 0) - (K - 1) * (kap - (1 - alpha) / K)),
    Proof("label smoothing shrinks the scale: d g*/d alpha = -(K-1)/(K q (1-q)) < 0",
          lambda: sp.diff(g_ls, alpha) + (K - 1) / (K * q_ls * (1 - q_ls))),
    Proof("alpha = 0 recovers the CE gap log((1-(K-1)kappa)/kappa)",
          lambda: g_ls.subs(alpha, 0) - sp.log((1 - (K - 1) * kap) / kap)),
)


def _ls_assemble(prob, ev):
    gv = ev.get("g*") if ev("kappa") < ev("threshold") else 0.0
    cv = ev("c") if gv != 0.0 else 1.0  # the zero solution does not depend on c
    return etf_invariants(prob, a2=ev("||w_k||^2", g=gv, c=cv), c=cv, value=ev("f(g)", g=gv))


def _ls_assume(prob):
    ok, why = balanced_ok(prob, need_d=prob.K - 1, losses=(ufm.LabelSmoothing,))
    return away_from(kappa(prob), evaluate(threshold_ls, prob), "kappa") if ok else (ok, why)


def _ls_random(rng):
    a = float(rng.uniform(0.0, 0.4))
    frac = float(rng.choice([rng.uniform(0.05, 0.9), rng.uniform(1.1, 1.8)]))
    lw, lh = lams_for(frac * (1 - a) / 4, 5, rho=float(np.exp(rng.uniform(-0.7, 0.7))))
    return ufm.UFM(K=4, n=5, d=8, loss=ufm.LabelSmoothing(a), lam_W=lw, lam_H=lh, lam_b=float(rng.uniform(1e-3, 1)))


def _ls_distance(prob) -> float:
    """``kappa/((1-alpha)/K) - 1``: positive beyond the threshold (the zero solution)."""
    return kappa(prob) / evaluate(threshold_ls, prob) - 1


LS_ETF = Theorem(
    name="Label smoothing UFM: ETF, smaller scale, threshold (1-alpha)/K",
    citation=LS_SOURCE,
    tag="derived",
    statement=("Balanced, d >= K-1: the minimizer is a simplex ETF with b = 0 and logit gap "
               "g* = log((K-1)(1-q)/q), q = (K-1)(alpha/K + kappa), nonzero iff kappa < (1-alpha)/K; "
               "g* decreases with alpha."),
    assumptions=_ls_assume,
    assemble=_ls_assemble,
    instances=lambda: [
        ufm.UFM(K=4, n=5, d=8, loss=ufm.LabelSmoothing(0.1), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
        ufm.UFM(K=4, n=5, d=8, loss=ufm.LabelSmoothing(0.3), lam_W=lams_for(1.2 * 0.7 / 4, 5)[0],
                lam_H=lams_for(1.2 * 0.7 / 4, 5)[1], lam_b=5e-3),
    ],
    random_instance=_ls_random,
    measure=measure_ufm,
    expressions={"kappa": kappa_expr, "c": c_expr, "threshold": threshold_ls, "q": q_ls, "g*": g_of_q,
                 "||w_k||^2": a2_of_g, "f(g)": phi_ls},
    proofs=PROOFS_ETF[:2] + PROOFS_LS,
    thresholds=(Threshold(_ls_distance, "kappa K/(1-alpha) - 1 (positive: the zero solution)"),),
    assumed=("every global minimizer is a simplex ETF with b = 0 (Zhou et al. 2022 for label smoothing); "
             "the proofs reduce the objective on that ansatz",),
)

# ---- focal ---------------------------------------------------------------------------------
focal_on_etf = -((1 - sp.exp(logp)) ** gamma) * logp
phi_focal = focal_on_etf + (K - 1) * kap * g


def _focal_gap(ev, kappa_value=None) -> float:
    """Global minimizer of the 1-D focal objective ``f(g)`` (the expression) over ``g >= 0``: a grid
    of 20001 points on [0, 80] locates the global basin, bisection on the SymPy derivative of
    ``f(g)`` refines the stationary point to round-off."""
    extra = {} if kappa_value is None else {"kappa": kappa_value}
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 80.0, 20001)])
    i = int(np.nanargmin(ev("f(g)", g=grid, **extra)))
    if i == 0:
        return 0.0
    lo, hi = grid[i - 1], grid[min(i + 1, grid.size - 1)]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ev.diff("f(g)", "g", g=mid, **extra) > 0 else (mid, hi)
    return float(0.5 * (lo + hi))


def _focal_assemble(prob, ev):
    gv = _focal_gap(ev)
    return etf_invariants(prob, a2=ev("||w_k||^2", g=gv), c=ev("c"), value=ev("f(g)", g=gv))


@functools.lru_cache(maxsize=256)
def focal_threshold(K_: int, gamma_: float) -> float:
    """The kappa beyond which the focal ETF's global minimizer is g = 0 (bisection on kappa: the
    minimizer's being nonzero is monotone in kappa, since phi(g) - phi(0) increases with kappa)."""
    ev = Evaluator({"f(g)": phi_focal}, {"K": float(K_), "gamma": float(gamma_)})
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _focal_gap(ev, kappa_value=mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _focal_assume(prob):
    ok, why = balanced_ok(prob, need_d=prob.K - 1, losses=(ufm.Focal,))
    if not ok:
        return ok, why
    return away_from(kappa(prob), focal_threshold(prob.K, float(prob.loss.gamma)), "kappa")


def focal_distance(prob: ufm.UFM) -> float:
    """``kappa/kappa_0 - 1`` with ``kappa_0`` the focal threshold: positive beyond it (g = 0)."""
    return kappa(prob) / focal_threshold(prob.K, float(prob.loss.gamma)) - 1


PROOFS_FOCAL = (
    Proof("focal loss on the ETF: -(1-p_y)^gamma log p_y with p_y = 1/(1+(K-1)e^-g), written through "
          "log p_y = -log(1+(K-1)e^-g)", lambda: focal_on_etf - (-((1 - 1 / (1 + (K - 1) * sp.exp(-g))) ** gamma)
                                                                 * -sp.log(1 + (K - 1) * sp.exp(-g))),
          kind="definition"),
    Proof("gamma = 0 recovers the CE reduction phi(g)", lambda: phi_focal.subs(gamma, 0)
          - (sp.log(1 + (K - 1) * sp.exp(-g)) + (K - 1) * kap * g)),
)


FOCAL_ETF = Theorem(
    name="Focal UFM: ETF whose scale minimizes a 1-D function",
    citation=ZHOU,
    tag="derived",
    statement=("Balanced, d >= K-1: the minimizer is a simplex ETF with b = 0 whose logit gap g "
               "globally minimizes phi(g) = -(1-p(g))^gamma log p(g) + (K-1) kappa g, "
               "p(g) = 1/(1+(K-1)e^{-g}); g = 0 (the zero solution) beyond the kappa_0 where that "
               "minimizer leaves g > 0."),
    assumptions=_focal_assume,
    assemble=_focal_assemble,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(2.0), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(0.5), lam_W=2e-2, lam_H=1e-2, lam_b=5e-3),
                       # beyond the threshold (kappa = 1.3 kappa_0): the zero solution
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(2.0), lam_W=lams_for(1.3 * focal_threshold(4, 2.0), 5)[0],
                               lam_H=lams_for(1.3 * focal_threshold(4, 2.0), 5)[1], lam_b=5e-3)],
    random_instance=lambda rng: ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(float(rng.uniform(0, 3))),
                                        lam_W=float(rng.uniform(1e-3, 3e-2)), lam_H=float(rng.uniform(1e-3, 3e-2)),
                                        lam_b=5e-3),
    measure=measure_ufm,
    expressions={"kappa": kappa_expr, "c": c_expr, "||w_k||^2": a2_of_g, "f(g)": phi_focal},
    proofs=PROOFS_ETF[:2] + PROOFS_FOCAL,
    thresholds=(Threshold(focal_distance, "kappa/kappa_0 - 1, kappa_0 the focal threshold (positive: g* = 0, "
                                          "the zero solution)"),),
    assumed=("every global minimizer is a simplex ETF with b = 0 (Zhou et al. 2022, for the focal loss)",
             "the global minimizer of the 1-D phi over g >= 0 is found numerically (grid of 20001 points on "
             "[0, 80], then bisection on phi'): phi need not be convex"),
)

THEOREMS = [LS_ETF, FOCAL_ETF]
