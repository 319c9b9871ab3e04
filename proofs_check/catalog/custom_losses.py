r"""Losses brought by the user, written once as SymPy expressions of the true-class probability
(:mod:`proofs_check.custom`): the reduction, its stationary point and threshold are derived and
proved by SymPy, the numbers are lambdified from the same expression, and the solver sees the
:class:`ufm.CustomLoss` built from it.

PolyLoss-1 (Leng et al., ICLR 2022, arXiv 2204.12511): ``l(p) = -log p + eps (1 - p)``. On the ETF,
``phi'(g) = 0`` is the quadratic ``(1 - p)(1 + eps p) = (K-1) kappa``, whose root in ``(1/K, 1)`` is

.. math:: p^* = \frac{2(1 - (K-1)\kappa)}{1 - \epsilon + \sqrt{(1 - \epsilon)^2 + 4\epsilon(1 - (K-1)\kappa)}}

(the quadratic's root with its numerator rationalized, so ``eps -> 0`` gives CE's ``1 - (K-1) kappa``),

the zero threshold is ``kappa_0 = (1 + eps/K)/K`` (``= (K + eps)/K^2``), and
``phi''(g) = p(1-p)(1 - eps + 2 eps p) > 0`` for ``|eps| <= 1``: the threshold is exact and ``g*``
the global minimizer of the reduction. The ETF itself is [derived] here (the loss is convex in the
logits for ``0 <= eps <= 1``, so the class-level convex program and permutation averaging give a
symmetric minimizer; the numerical check confirms it).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import balanced_ok, kappa, lams_for
from proofs_check.custom import SymbolicLoss, p
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Theorem, Threshold

LENG = Citation("Leng et al.", 2022, "ICLR", "2204.12511")
eps = sp.Symbol("eps", real=True)
POLY1 = SymbolicLoss(-sp.log(p) + eps * (1 - p), {"eps": 1.0}, "poly1")


def _assume(prob):
    ok, why = balanced_ok(prob, need_d=prob.K - 1)
    if not ok:
        return ok, why
    if not isinstance(prob.loss, type(POLY1.loss())):
        return False, "loss must be PolyLoss-1 (proofs_check.catalog.custom_losses.POLY1.loss(eps))"
    e = float(prob.loss.eps)
    if not 0.0 <= e <= 1.0:
        return False, f"needs 0 <= eps <= 1 (phi convex, loss convex in the logits), got eps={e}"
    if abs(_distance(prob)) < 0.05:
        return False, f"kappa within 5% of the threshold {(1 + e / prob.K) / prob.K:.4g} (degenerate minimizer)"
    return True, ""


def _distance(prob) -> float:
    """``kappa/kappa_0 - 1``, ``kappa_0 = (K + eps)/K^2``: positive beyond the threshold (W = H = 0)."""
    return kappa(prob) / ((1 + float(prob.loss.eps) / prob.K) / prob.K) - 1


def _instance(frac, e, lam_b=5e-3, K=4, n=5, rho=1.0):
    lw, lh = lams_for(frac * (1 + e / K) / K, n, rho)
    # d = 2K: for K = 4, n = 5 the shape of the CE instances (their shape-only compilations are shared)
    return ufm.UFM(K=K, n=n, d=2 * K, loss=POLY1.loss(eps=e), lam_W=lw, lam_H=lh, lam_b=lam_b)


def _assemble(prob, ev):
    """ETF invariants from the theorem's expressions (:attr:`SymbolicLoss.expressions`): the
    threshold, the root ``p*`` of ``phi'(p)`` in ``(1/K, 1)`` (bisection: ``phi'`` increases in ``p``
    there, the convexity proof), the gap ``g* = g(p*)``, ``f* = phi(g*)``, ``c`` and
    ``||w_k||^2 = (K-1) g*/(K c)``; ``h_k = c w_k``."""
    Kv = prob.K
    e = {"eps": float(prob.loss.eps)}  # the loss parameter: a value, not a formula
    gv = 0.0
    if ev("kappa") < ev("threshold", **e):
        lo, hi = 1.0 / Kv, 1.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ev("phi'(p)", p=mid, **e) < 0 else (lo, mid)
        gv = ev("g(p)", p=0.5 * (lo + hi))
    value = ev("phi(g)", g=gv, **e)
    c, a2 = ev("c"), ev("||w_k||^2", g=gv)
    P = np.eye(Kv) - np.ones((Kv, Kv)) / Kv
    return {"value": value, "W_gram": a2 * Kv / (Kv - 1) * P, "Hbar_gram": c**2 * a2 * Kv / (Kv - 1) * P,
            "w_norm2": np.full(Kv, a2), "h_norm2": np.full(Kv, c**2 * a2), "within_class_spread": 0.0}


POLY1_ETF = Theorem(
    name="PolyLoss-1 UFM: simplex ETF, closed-form scale, threshold (K + eps)/K^2",
    citation=LENG,
    tag="derived",
    statement=("Balanced, d >= K-1, 0 <= eps <= 1: the minimizer is a simplex ETF with b = 0 whose logit gap "
               "is g* = log((K-1)p*/(1-p*)), p* the root in (1/K, 1) of (1-p)(1+eps p) = (K-1) kappa, "
               "for kappa < (K + eps)/K^2, and W = H = 0 beyond."),
    assumptions=_assume,
    assemble=_assemble,
    instances=lambda: [_instance(0.5, 1.0), _instance(0.3, 0.5, lam_b=None), _instance(1.3, 1.0)],
    random_instance=lambda rng: _instance(float(rng.choice([rng.uniform(0.05, 0.9), rng.uniform(1.1, 2.0)])),
                                          float(rng.uniform(0.0, 1.0)),
                                          lam_b=[None, 0.0, 5e-3][int(rng.integers(3))],
                                          rho=float(np.exp(rng.uniform(-0.5, 0.5)))),
    measure=measure_ufm,
    expressions=POLY1.expressions,
    proofs=POLY1.proofs(),
    thresholds=(Threshold(_distance, "kappa K^2/(K + eps) - 1 (positive: the zero solution)"),),
)

THEOREMS = [POLY1_ETF]
