r"""Label smoothing and focal loss share the ETF minimizers (Zhou et al., NeurIPS 2022,
arXiv 2210.02192); the scale is derived here for ufm's canonical objective.

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

import numpy as np
import sympy as sp

import ufm
from proofs_check import closed_forms as cf
from proofs_check.catalog._common import K, alpha, balanced_ok, evaluate, g, gamma, kappa, kappa_expr, lams_for
from proofs_check.theorem import Citation, Proof, Theorem

ZHOU = Citation("Zhou et al.", 2022, "NeurIPS", "2210.02192")
kap = sp.symbols("kappa", positive=True)
logp = -sp.log(1 + (K - 1) * sp.exp(-g))

# ---- label smoothing -----------------------------------------------------------------------
ls_loss_on_etf = -(1 - alpha) * logp - (alpha / K) * (logp + (K - 1) * (logp - g))
phi_ls = sp.log(1 + (K - 1) * sp.exp(-g)) + (K - 1) * (alpha / K + kap) * g
q_ls = (K - 1) * (alpha / K + kap)
g_ls = sp.log((K - 1) * (1 - q_ls) / q_ls)

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


def _ls_threshold(prob):
    return (1 - float(prob.loss.alpha)) / prob.K


def _ls_predict(prob):
    nonzero = kappa(prob) < _ls_threshold(prob)
    return cf.etf_invariants(prob, evaluate(g_ls.subs(kap, kappa_expr), prob) if nonzero else 0.0)


def _ls_assume(prob):
    ok, why = balanced_ok(prob, need_d=prob.K - 1, losses=(ufm.LabelSmoothing,))
    if ok and abs(kappa(prob) / _ls_threshold(prob) - 1) < 0.05:
        return False, "kappa within 5% of the threshold (1-alpha)/K, where the minimizer is degenerate"
    return ok, why


def _ls_random(rng):
    a = float(rng.uniform(0.0, 0.4))
    frac = float(rng.choice([rng.uniform(0.05, 0.9), rng.uniform(1.1, 1.8)]))
    lw, lh = lams_for(frac * (1 - a) / 4, 5, rho=float(np.exp(rng.uniform(-0.7, 0.7))))
    return ufm.UFM(K=4, n=5, d=8, loss=ufm.LabelSmoothing(a), lam_W=lw, lam_H=lh, lam_b=float(rng.uniform(1e-3, 1)))


LS_ETF = Theorem(
    name="Label smoothing UFM: ETF, smaller scale, threshold (1-alpha)/K",
    citation=ZHOU,
    tag="derived",
    statement=("Balanced, d >= K-1: the minimizer is a simplex ETF with b = 0 and logit gap "
               "g* = log((K-1)(1-q)/q), q = (K-1)(alpha/K + kappa), nonzero iff kappa < (1-alpha)/K; "
               "g* decreases with alpha."),
    assumptions=_ls_assume,
    predict=_ls_predict,
    instances=lambda: [
        ufm.UFM(K=4, n=5, d=8, loss=ufm.LabelSmoothing(0.1), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
        ufm.UFM(K=4, n=5, d=8, loss=ufm.LabelSmoothing(0.3), lam_W=lams_for(1.2 * 0.7 / 4, 5)[0],
                lam_H=lams_for(1.2 * 0.7 / 4, 5)[1], lam_b=5e-3),
    ],
    random_instance=_ls_random,
    measure=cf.measure,
    expressions={"q": q_ls, "g*": g_ls, "threshold": (1 - alpha) / K},
    proofs=PROOFS_LS,
)

# ---- focal ---------------------------------------------------------------------------------
focal_on_etf = -((1 - sp.exp(logp)) ** gamma) * logp
phi_focal = focal_on_etf + (K - 1) * kap * g
_p, _q = sp.symbols("p q", positive=True)


def _dphi_matches_closed_form():
    """The derivative used by the numeric bisection equals SymPy's derivative (K = 4, gamma = 2, 1/2)."""
    out = []
    for kv, gv in ((4, 2), (4, sp.Rational(1, 2)), (3, 3)):
        expr = phi_focal.subs({K: kv, gamma: gv})
        exact = sp.diff(expr, g)
        for gval in (sp.Rational(1, 3), 1, 3):
            num = float(exact.subs({g: gval, kap: sp.Rational(1, 50)}))
            ours = cf._focal_dphi(float(gval), kv, float(gv), 1 / 50)
            out.append(abs(num - ours) <= 1e-12 * max(1.0, abs(num)))
    return all(out)


PROOFS_FOCAL = (
    Proof("gamma = 0 recovers the CE reduction phi(g)", lambda: phi_focal.subs(gamma, 0)
          - (sp.log(1 + (K - 1) * sp.exp(-g)) + (K - 1) * kap * g)),
    Proof("the closed-form phi'(g) used by the 1-D solver equals SymPy's derivative", _dphi_matches_closed_form),
)


def _focal_predict(prob):
    K_, gam = prob.K, float(prob.loss.gamma)
    return cf.etf_invariants(prob, cf._focal_gap(K_, gam, kappa(prob)))


FOCAL_ETF = Theorem(
    name="Focal UFM: ETF whose scale minimizes a 1-D function",
    citation=ZHOU,
    tag="derived",
    statement=("Balanced, d >= K-1: the minimizer is a simplex ETF with b = 0 whose logit gap g "
               "globally minimizes phi(g) = -(1-p(g))^gamma log p(g) + (K-1) kappa g, "
               "p(g) = 1/(1+(K-1)e^{-g})."),
    assumptions=lambda p: balanced_ok(p, need_d=p.K - 1, losses=(ufm.Focal,)),
    predict=_focal_predict,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(2.0), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(0.5), lam_W=2e-2, lam_H=1e-2, lam_b=5e-3)],
    random_instance=lambda rng: ufm.UFM(K=4, n=5, d=8, loss=ufm.Focal(float(rng.uniform(0, 3))),
                                        lam_W=float(rng.uniform(1e-3, 3e-2)), lam_H=float(rng.uniform(1e-3, 3e-2)),
                                        lam_b=5e-3),
    measure=cf.measure,
    expressions={"phi(g)": phi_focal},
    proofs=PROOFS_FOCAL,
)

THEOREMS = [LS_ETF, FOCAL_ETF]
