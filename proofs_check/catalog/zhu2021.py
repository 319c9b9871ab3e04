r"""Cross-entropy UFM (Zhu et al., NeurIPS 2021, arXiv 2105.02375).

Reduction used by every proof here: under the simplex-ETF ansatz (rows ``w_k`` of equal norm
``a``, ``h_k = c w_k`` with ``c = sqrt(lam_W/(n lam_H))``), the logit of the true class exceeds
every other logit by ``g = c a^2 K/(K-1)``, the penalty is ``lam_W K a^2 = (K-1) kappa g``, and the
objective becomes the 1-D function

.. math:: \phi(g) = \log\big(1 + (K-1)e^{-g}\big) + (K-1)\kappa g, \qquad \kappa = \sqrt{n\lambda_W\lambda_H}.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import sympy as sp

import ufm
from proofs_check import closed_forms as cf
from proofs_check.catalog._common import (
    K, balanced_ok, c_expr, evaluate, g, kappa, kappa_expr, lam_H, lam_W, lams_for, n,
)
from proofs_check.theorem import Citation, Proof, Theorem

ZHU = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375")
kap = sp.symbols("kappa", positive=True)

phi = sp.log(1 + (K - 1) * sp.exp(-g)) + (K - 1) * kap * g
g_star = sp.log((1 - (K - 1) * kap) / kap)
a2_star = (K - 1) * g_star / (K * c_expr)  # ||w_k||^2
value_star = -sp.log(1 - (K - 1) * kap) + lam_W * K * a2_star


def _in_terms_of_lams(expr):
    return expr.subs(kap, kappa_expr)


PROOFS_ETF = (
    Proof("penalty of the ansatz: lam_W/2 K a^2 + lam_H/2 n K c^2 a^2 = lam_W K a^2",
          lambda: (lam_W / 2 * K + lam_H / 2 * n * K * c_expr**2) - lam_W * K),
    Proof("penalty in the gap: lam_W K a^2 = (K-1) kappa g with g = c a^2 K/(K-1)",
          lambda: (lam_W * K * (K - 1) * g / (K * c_expr)) - (K - 1) * kappa_expr * g),
    Proof("phi'(g*) = 0 at g* = log((1-(K-1)kappa)/kappa)", lambda: sp.diff(phi, g).subs(g, g_star)),
    Proof("phi is convex: phi''(g) = (K-1)e^-g / (1+(K-1)e^-g)^2 > 0",
          lambda: sp.simplify(sp.diff(phi, g, 2) - (K - 1) * sp.exp(-g) / (1 + (K - 1) * sp.exp(-g)) ** 2)),
    Proof("value: phi(g*) = -log(1-(K-1)kappa) + lam_W K ||w_k||^2 (loss term and penalty term)",
          lambda: ((1 + (K - 1) * sp.exp(-g_star)) - 1 / (1 - (K - 1) * kap),
                   _in_terms_of_lams((K - 1) * kap * g_star) - lam_W * K * a2_star.subs(kap, kappa_expr))),
    Proof("true-class probability at g*: 1/(1+(K-1)e^-g*) = 1-(K-1)kappa",
          lambda: 1 / (1 + (K - 1) * sp.exp(-g_star)) - (1 - (K - 1) * kap)),
)

PROOFS_THRESHOLD = (
    Proof("threshold: g*(kappa = 1/K) = 0", lambda: g_star.subs(kap, 1 / K)),
    Proof("phi'(0) = (K-1)(kappa - 1/K): >= 0 iff kappa >= 1/K, so g = 0 (W = H = 0) is optimal there",
          lambda: sp.diff(phi, g).subs(g, 0) - (K - 1) * (kap - 1 / K)),
)


def _etf_predict(prob) -> dict:
    """Evaluate g* (SymPy, lambdified) when kappa < 1/K, else the zero solution g = 0."""
    g_value = evaluate(g_star.subs(kap, kappa_expr), prob) if kappa(prob) < 1 / prob.K else 0.0
    return cf.etf_invariants(prob, g_value)


def _assume_ce(prob):
    ok, why = balanced_ok(prob, need_d=prob.K - 1, losses=(ufm.CrossEntropy,))
    return ok, why


def _instances_nonzero():
    lw, lh = lams_for(0.5 / 4, 5)
    return [
        ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
        ufm.UFM(K=4, n=5, d=3, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3),
        ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=0.0),
        ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=lh, lam_b=5e-3),
    ]


def _random_ce(rng, frac_range):
    frac = rng.uniform(*frac_range)
    lw, lh = lams_for(frac / 4, 5, rho=float(np.exp(rng.uniform(-0.7, 0.7))))
    lam_b = [None, 0.0, float(rng.uniform(1e-3, 1.0))][rng.integers(3)]
    return ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=lw, lam_H=lh, lam_b=lam_b)


CE_ETF = Theorem(
    name="CE UFM: simplex ETF with explicit scale",
    citation=ZHU,
    tag="paper",
    statement=("For d >= K-1, balanced classes and kappa < 1/K, every global minimizer has rows w_k "
               "forming a simplex ETF with ||w_k||^2 = ((K-1)/K) sqrt(n lam_H/lam_W) g*, "
               "g* = log((1-(K-1)kappa)/kappa), h_{k,i} = c w_k, b = 0 (lam_b > 0); the ETF is the "
               "paper's theorem, the explicit scale is derived here."),
    assumptions=lambda p: (_assume_ce(p) if not _assume_ce(p)[0] else
                           ((kappa(p) < 1 / p.K), f"needs kappa < 1/K (kappa={kappa(p):.4g})")),
    predict=_etf_predict,
    instances=_instances_nonzero,
    random_instance=lambda rng: _random_ce(rng, (0.05, 0.9)),
    measure=cf.measure,
    expressions={"g*": g_star, "||w_k||^2": a2_star, "f*": value_star, "kappa": kappa_expr, "c": c_expr},
    proofs=PROOFS_ETF,
)

CE_ZERO = Theorem(
    name="CE UFM: zero solution beyond kappa = 1/K",
    citation=ZHU,
    tag="derived",
    statement="For kappa >= 1/K the unique global minimizer is W = H = 0 (b = 0), with value log K.",
    assumptions=lambda p: (_assume_ce(p) if not _assume_ce(p)[0] else
                           ((kappa(p) > 1 / p.K), f"needs kappa > 1/K (kappa={kappa(p):.4g})")),
    predict=_etf_predict,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=lams_for(1.2 / 4, 5)[0],
                               lam_H=lams_for(1.2 / 4, 5)[1], lam_b=5e-3)],
    random_instance=lambda rng: _random_ce(rng, (1.1, 2.0)),
    measure=cf.measure,
    expressions={"threshold": 1 / K},
    proofs=PROOFS_THRESHOLD,
)


# ---- the origin ----------------------------------------------------------------------------

s_sym, lam_sym = sp.symbols("s lambda", real=True)
lam_min_expr = (lam_W + lam_H) / 2 - sp.sqrt(((lam_W - lam_H) / 2) ** 2 + 1 / (K**2 * n))


def _logit_gradient_gram_is_nP(k: int, m: int):
    """(Y - J/K)(Y - J/K)^T == n P for concrete K, n (exact rational arithmetic)."""
    Y = sp.Matrix(k, k * m, lambda i, j: 1 if j // m == i else 0)
    R = Y - sp.ones(k, k * m) / k
    return (R * R.T - m * (sp.eye(k) - sp.ones(k, k) / k)) == sp.zeros(k, k)


PROOFS_ORIGIN = (
    Proof("det([[lam_W, s], [s, lam_H]] - lambda_min I) = 0 with s = 1/(K sqrt(n))",
          lambda: sp.Matrix([[lam_W - lam_min_expr, 1 / (K * sp.sqrt(n))],
                             [1 / (K * sp.sqrt(n)), lam_H - lam_min_expr]]).det()),
    Proof("(Y - J/K)(Y - J/K)^T = n P for K in 2..5, n in 1..3 (singular values sqrt(n), so the "
          "logit gradient (J/K - Y)/N has singular values 1/(K sqrt n))",
          lambda: all(_logit_gradient_gram_is_nP(k, m) for k in range(2, 6) for m in range(1, 4))),
)


def _origin_predict(prob):
    return {"hessian_min_eig_at_origin": evaluate(lam_min_expr, prob)}


def _origin_solve(prob):
    """No optimization: the point is the origin itself (its gradient is the certificate)."""
    zero = ufm.Params(jnp.zeros((prob.D, prob.d)), jnp.zeros((prob.d, prob.N)),
                      None if not prob.has_bias else jnp.zeros(prob.D))
    g_norm = float(ufm.solvers.grad_norm(prob, zero))
    return zero, {"grad_norm": g_norm, "converged": g_norm <= 1e-14}


def _origin_measure(prob, params, names):
    lam_min, _ = ufm.hessian_extreme_eigs(prob, params, method="dense")
    return {"hessian_min_eig_at_origin": lam_min}


CE_ORIGIN = Theorem(
    name="CE UFM: the origin is a strict saddle",
    citation=ZHU,
    tag="derived",
    statement=("W = H = 0 is a critical point whose Hessian has smallest eigenvalue "
               "(lam_W+lam_H)/2 - sqrt(((lam_W-lam_H)/2)^2 + 1/(K^2 n)) (multiplicity (K-1)d), "
               "negative iff lam_W lam_H < 1/(K^2 n), i.e. kappa < 1/K."),
    assumptions=lambda p: balanced_ok(p, losses=(ufm.CrossEntropy,)),
    predict=_origin_predict,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=2e-2, lam_H=1e-3)],
    random_instance=lambda rng: ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(),
                                        lam_W=float(rng.uniform(1e-3, 0.2)), lam_H=float(rng.uniform(1e-3, 0.2))),
    measure=_origin_measure,
    solve=_origin_solve,
    expressions={"lambda_min": lam_min_expr},
    proofs=PROOFS_ORIGIN,
)

THEOREMS = [CE_ETF, CE_ZERO, CE_ORIGIN]
