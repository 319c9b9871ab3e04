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
from proofs_check.catalog._common import (
    K, away_from, balanced_ok, c_expr, etf_invariants, evaluate, g, grad_norm_at, kappa, kappa_expr, lam_b,
    lam_H, lam_W, lams_for, n,
)
from proofs_check.catalog._structured import IJ
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Proof, Theorem, Threshold

ZHU = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375")
GUO = Citation("Guo, Andriopoulos, Zhao, Dong, Ling & Ross", 2025, "TMLR", "2402.03979",
               what=("closed-form global minimizers of the CE and label-smoothing UFM, in the paper's "
                     "scaling (only the abstract was read: ufm's scale is derived independently)"))
ETF_SOURCE = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375", where="Theorem 3.1",
                      what="every global minimizer is a simplex ETF with h = c w and b = 0", also=(GUO,))
kap = sp.symbols("kappa", positive=True)
c_sym = sp.symbols("c", positive=True)

phi = sp.log(1 + (K - 1) * sp.exp(-g)) + (K - 1) * kap * g
g_star = sp.log((1 - (K - 1) * kap) / kap)
a2_of_g = (K - 1) * g / (K * c_sym)  # ||w_k||^2 at gap g
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


def _etf_assemble(prob, ev) -> dict:
    """g* when kappa < threshold, else the zero solution g = 0; then the ETF invariants."""
    gv = ev.get("g*") if ev("kappa") < ev("threshold") else 0.0
    cv = ev("c") if gv != 0.0 else 1.0  # the zero solution does not depend on c
    return etf_invariants(prob, a2=ev("||w_k||^2", g=gv, c=cv), c=cv, value=ev("f(g)", g=gv))


# The expressions every CE theorem evaluates (kappa and c resolve by name inside the others).
CE_EXPRESSIONS = {"kappa": kappa_expr, "c": c_expr, "threshold": 1 / K, "g*": g_star,
                  "||w_k||^2": a2_of_g, "f(g)": phi}
THRESHOLD = 1 / K  # of kappa: the zero solution is optimal iff kappa >= 1/K


def _assume_ce(prob):
    ok, why = balanced_ok(prob, need_d=prob.K - 1, losses=(ufm.CrossEntropy,))
    return (ok, why) if not ok else away_from(kappa(prob), evaluate(THRESHOLD, prob), "kappa")


def kappa_distance(prob: ufm.UFM) -> float:
    """``kappa/(1/K) - 1``: positive beyond the threshold (the zero solution), the 5% band excluded."""
    return kappa(prob) / evaluate(THRESHOLD, prob) - 1


_KAPPA_WHAT = "kappa K - 1 (positive: kappa > 1/K, the zero solution)"


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
    citation=ETF_SOURCE,
    tag="paper",
    statement=("For d >= K-1, balanced classes and kappa < 1/K (this side only; beyond it: the zero-solution "
               "entry), every global minimizer has rows w_k "
               "forming a simplex ETF with ||w_k||^2 = ((K-1)/K) sqrt(n lam_H/lam_W) g*, "
               "g* = log((1-(K-1)kappa)/kappa), h_{k,i} = c w_k, b = 0 (lam_b > 0); the ETF is the "
               "paper's theorem; the explicit scale is derived here (Guo et al. give the CE and LS closed "
               "forms in their scaling)."),
    assumptions=lambda p: (_assume_ce(p) if not _assume_ce(p)[0] else
                           ((kappa(p) < 1 / p.K), f"needs kappa < 1/K (kappa={kappa(p):.4g})")),
    assemble=_etf_assemble,
    instances=_instances_nonzero,
    random_instance=lambda rng: _random_ce(rng, (0.05, 0.9)),
    measure=measure_ufm,
    expressions=CE_EXPRESSIONS,
    proofs=PROOFS_ETF,
    thresholds=(Threshold(kappa_distance, _KAPPA_WHAT, covers="below",
                          partner="CE UFM: zero solution beyond kappa = 1/K"),),
    assumed=("every global minimizer is a simplex ETF with h_{k,i} = c w_k and b = 0 (Zhu et al. 2021, "
             "Theorem 3.1); the proofs reduce the objective on that ansatz",),
)

CE_ZERO = Theorem(
    name="CE UFM: zero solution beyond kappa = 1/K",
    citation=ZHU,
    tag="derived",
    statement=("For kappa >= 1/K the unique global minimizer is W = H = 0 (b = 0), with value log K (this side "
               "only; below it: the simplex-ETF entry)."),
    assumptions=lambda p: (_assume_ce(p) if not _assume_ce(p)[0] else
                           ((kappa(p) > 1 / p.K), f"needs kappa > 1/K (kappa={kappa(p):.4g})")),
    assemble=_etf_assemble,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=lams_for(1.2 / 4, 5)[0],
                               lam_H=lams_for(1.2 / 4, 5)[1], lam_b=5e-3)],
    random_instance=lambda rng: _random_ce(rng, (1.1, 2.0)),
    measure=measure_ufm,
    expressions={k: v for k, v in CE_EXPRESSIONS.items() if k not in ("g*", "c")},
    proofs=PROOFS_ETF[2:4] + PROOFS_THRESHOLD,
    thresholds=(Threshold(kappa_distance, _KAPPA_WHAT, covers="above",
                          partner="CE UFM: simplex ETF with explicit scale"),),
    assumed=("the global minimizer lies on the simplex-ETF ansatz (Zhu et al. 2021, Theorem 3.1), on which "
             "phi is convex with phi'(0) >= 0 beyond the threshold",),
)


# ---- the origin ----------------------------------------------------------------------------

s_sym, lam_sym = sp.symbols("s lambda", real=True)
lam_min_expr = (lam_W + lam_H) / 2 - sp.sqrt(((lam_W - lam_H) / 2) ** 2 + 1 / (K**2 * n))


def _logit_gradient_gram_residual():
    """``(Y - 1_K 1_N^T/K)(Y - 1_K 1_N^T/K)^T - n P`` for symbolic ``K``, ``n`` (``N = n K``). By
    counting, ``Y Y^T = n I`` (``n`` samples per class), ``Y 1_N = n 1_K`` and ``1_N^T 1_N = N``,
    so the product is ``n I - (2n/K) J + (N/K^2) J``: a member of the family ``a I + b J``."""
    gram = IJ(n, -2 * n / K + (n * K) / K**2, K)
    return (gram - IJ(1, -1 / K, K).scale(n)).coefficients()


# With a bias the Hessian at the origin has a third block, decoupled from (W, H) there (dZ = db 1^T
# when W = H = 0): the mean CE Hessian in b is diag(p) - p p^T at p = 1/K, i.e. (1/K)(I - J/K),
# plus lam_b I: eigenvalue lam_b along 1 (0 for a free bias: the shift symmetry) and 1/K + lam_b
# on 1^perp. The smallest eigenvalue is then min(lambda_min, lam_b) (lambda_min <= min(lam_W,
# lam_H) < lam_b + 1/K is not needed: the Min takes care of it). Found by the thorough hypothesis
# profile: beyond kappa = 1/K with 0 < lam_b < lambda_min the old prediction missed the b block.
lam_min_bias_expr = sp.Min(lam_min_expr, lam_b)


def _origin_charpoly_residual(k: int, m: int, dd: int):
    """Gradient at 0 and characteristic polynomial of the Hessian at 0 of the CE UFM with a bias,
    for K = k, n = m, d = dd, with lam_W, lam_H, lam_b symbolic: the gradient vanishes and
    det(Hess - x I) = (x-lW)^a (x-lH)^c (x-lb) (x-lb-1/K)^(K-1) ((x-lW)(x-lH) - 1/(K^2 n))^((K-1) d)
    with a = d, c = d (N - K + 1) (the directions of W and H that meet no logit gradient)."""
    x = sp.Symbol("x")
    N = k * m
    Wm = sp.Matrix(k, dd, lambda i, j: sp.Symbol(f"w{i}_{j}"))
    Hm = sp.Matrix(dd, N, lambda i, j: sp.Symbol(f"h{i}_{j}"))
    bm = sp.Matrix(k, 1, lambda i, j: sp.Symbol(f"b{i}"))
    Z = Wm * Hm + bm * sp.ones(1, N)
    f = sum(sp.log(sum(sp.exp(Z[c, i]) for c in range(k))) - Z[i // m, i] for i in range(N)) / sp.Integer(N)
    f += (lam_W * sum(v**2 for v in Wm) + lam_H * sum(v**2 for v in Hm) + lam_b * sum(v**2 for v in bm)) / 2
    xs = list(Wm) + list(Hm) + list(bm)
    at0 = {v: 0 for v in xs}
    grad = [sp.diff(f, v).subs(at0) for v in xs]
    hess = sp.Matrix(len(xs), len(xs), lambda i, j: sp.diff(f, xs[i], xs[j]).subs(at0))
    want = ((x - lam_W) ** dd * (x - lam_H) ** (dd * (N - k + 1)) * (x - lam_b) * (x - lam_b - sp.Rational(1, k)) ** (k - 1)
            * ((x - lam_W) * (x - lam_H) - sp.Rational(1, k * k * m)) ** ((k - 1) * dd))
    return (*grad, sp.expand(hess.charpoly(x).as_expr() - want))


PROOFS_ORIGIN = (
    Proof("det([[lam_W, s], [s, lam_H]] - lambda_min I) = 0 with s = 1/(K sqrt(n))",
          lambda: sp.Matrix([[lam_W - lam_min_expr, 1 / (K * sp.sqrt(n))],
                             [1 / (K * sp.sqrt(n)), lam_H - lam_min_expr]]).det()),
    Proof("(Y - 1 1^T/K)(Y - 1 1^T/K)^T = n P for every K, n (Y Y^T = n I, Y 1 = n 1, 1^T 1 = N = nK; "
          "products in the family a I + b J): singular values sqrt(n), so the logit gradient (J/K - Y)/N "
          "has singular values 1/(K sqrt n)",
          _logit_gradient_gram_residual),
    Proof("with a bias, K = 3, n = 1, d = 1, lam_W, lam_H, lam_b symbolic: the origin is critical and the "
          "Hessian's characteristic polynomial is (x-lW)(x-lH)(x-lb)(x-lb-1/K)^(K-1)((x-lW)(x-lH)-1/(K^2 n))^((K-1)d): "
          "the b block (eigenvalues lb, lb + 1/K) is decoupled, so the smallest eigenvalue is min(lambda_min, lb)",
          lambda: _origin_charpoly_residual(3, 1, 1), kind="sample"),
)


def _origin_assemble(prob, ev):
    return {"hessian_min_eig_at_origin": ev("lambda_min_with_bias") if prob.has_bias else ev("lambda_min")}


def _origin_solve(prob):
    """No optimization: the point is the origin itself (its gradient is the certificate)."""
    zero = ufm.Params(jnp.zeros((prob.D, prob.d)), jnp.zeros((prob.d, prob.N)),
                      None if not prob.has_bias else jnp.zeros(prob.D))
    g_norm = grad_norm_at(prob, zero)
    return zero, {"grad_norm": g_norm, "converged": g_norm <= 1e-14}


def _origin_measure(prob, params, names):
    lam_min, _ = ufm.hessian_extreme_eigs(prob, params, method="dense")
    return {"hessian_min_eig_at_origin": lam_min}


CE_ORIGIN = Theorem(
    name="CE UFM: the origin is a strict saddle",
    citation=ZHU,
    tag="derived",
    statement=("W = H = 0 (b = 0) is a critical point. The (W, H) block of its Hessian has smallest "
               "eigenvalue lambda_min = (lam_W+lam_H)/2 - sqrt(((lam_W-lam_H)/2)^2 + 1/(K^2 n)) (multiplicity "
               "(K-1)d), negative iff lam_W lam_H < 1/(K^2 n), i.e. kappa < 1/K: then the origin is a strict "
               "saddle. With a bias the b block (1/K)(I - J/K) + lam_b I is decoupled at the origin and the "
               "smallest eigenvalue is min(lambda_min, lam_b) (lam_b = 0: the shift symmetry of a free bias)."),
    assumptions=lambda p: (balanced_ok(p, losses=(ufm.CrossEntropy,)) if not balanced_ok(p, losses=(ufm.CrossEntropy,))[0]
                           else away_from(kappa(p), evaluate(THRESHOLD, p), "kappa")),
    assemble=_origin_assemble,
    instances=lambda: [ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3, lam_b=5e-3),
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=2e-2, lam_H=1e-3),
                       # beyond the threshold, lam_b < lambda_min: the bias block holds the smallest eigenvalue
                       ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(), lam_W=0.2, lam_H=0.2, lam_b=5e-3)],
    random_instance=lambda rng: ufm.UFM(K=4, n=5, d=8, loss=ufm.CrossEntropy(),
                                        lam_W=float(rng.uniform(1e-3, 0.2)), lam_H=float(rng.uniform(1e-3, 0.2))),
    measure=_origin_measure,
    solve=_origin_solve,
    expressions={"lambda_min": lam_min_expr, "lambda_min_with_bias": lam_min_bias_expr},
    proofs=PROOFS_ORIGIN,
    thresholds=(Threshold(kappa_distance, "kappa K - 1 (positive: lambda_min > 0, a strict local minimum)"),),
)

THEOREMS = [CE_ETF, CE_ZERO, CE_ORIGIN]
