r"""The regression UFM (Andriopoulos et al., NeurIPS 2024, arXiv 2409.04180): real-valued targets.

The paper states the global minima of its regression UFM in Theorem 4.1 (collapse of the features
onto the span of the classifier, NRC1-NRC2, for positive regularization; none without) and the
classifier Gram as a function of the target covariance in Corollary 4.2 (NRC3), in its own scaling.
The entry restates them for ufm's canonical objective (docs/theory.md#canonical-objective), tagged
**derived** because the restatement (the SVT form, the scaling) is ufm's, and checks them against
:func:`ufm.minimize`: ``W H`` is the
singular-value thresholding of the (centred) targets (:mod:`proofs_check.catalog.svt`), and the
Grams follow from the nuclear-norm lemma,
``W W^T = sqrt(lam_H/lam_W)(Z Z^T)^{1/2}``, ``H^T H = sqrt(lam_W/lam_H)(Z^T Z)^{1/2}``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog.svt import (
    PROOFS_SVT, SVT_EXPRESSIONS, SVT_WHAT, away_from_threshold, sv_distance, svt_prediction,
)
from proofs_check.theorem import Citation, Proof, Theorem, Threshold

__all__ = ["THEOREMS", "REGRESSION", "ANDRIOPOULOS"]

ANDRIOPOULOS = Citation("Andriopoulos, Dong, Guo, Zhao & Ross", 2024, "NeurIPS", "2409.04180",
                        where="Theorem 4.1, Corollary 4.2",
                        what=("the global minima of the regression UFM and W W^T as a function of the target "
                              "covariance, in the paper's scaling; ufm's SVT form is the same statement in "
                              "its canonical scaling"))


def _centre(Y):
    return Y - Y.mean(axis=1, keepdims=True)


def _reg_assume(prob):
    if not isinstance(prob, ufm.RegressionUFM):
        return False, "needs a ufm.RegressionUFM"
    if prob.has_bias and float(prob.lam_b) != 0.0:
        return False, "no bias or a free bias (lam_b=None or 0); a regularized bias is not covered"
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    if lw <= 0 or lh <= 0:
        return False, "lam_W > 0 and lam_H > 0 (with lam = 0 there is no collapse)"
    if prob.d < min(prob.D, prob.N):
        return False, f"d >= min(D, N) (got d={prob.d})"
    Y = np.asarray(prob.Y)
    M = _centre(Y) if prob.has_bias else Y
    return away_from_threshold(np.linalg.svd(M, compute_uv=False), prob.N * np.sqrt(lw * lh),
                                "the (centred) targets")


def _reg_distance(prob):
    Y = np.asarray(prob.Y)
    return sv_distance(_centre(Y) if prob.has_bias else Y, prob.N * np.sqrt(float(prob.lam_W) * float(prob.lam_H)))


def _reg_assemble(prob, ev):
    Y = np.asarray(prob.Y)
    lw, lh = float(prob.lam_W), float(prob.lam_H)
    M = _centre(Y) if prob.has_bias else Y
    p = svt_prediction(ev, M)
    q = {"value": p["value"], "logits": p["Z"] + (Y.mean(axis=1, keepdims=True) if prob.has_bias else 0.0),
         "W_gram": np.sqrt(lh / lw) * p["ZZt_sqrt"], "H_gram": np.sqrt(lw / lh) * p["ZtZ_sqrt"]}
    if prob.has_bias:
        q["bias"] = Y.mean(axis=1)  # b* = mean target: W H 1 = 0 at the optimum (Z = SVT of centred Y)
    return q


def _reg_measure(prob, params, names):
    W, H = np.asarray(params.W), np.asarray(params.H)
    b = None if params.b is None else np.asarray(params.b)
    table = {"value": lambda: float(prob.objective(params)),
             "logits": lambda: np.asarray(prob.logits(params)),
             "W_gram": lambda: W @ W.T, "H_gram": lambda: H.T @ H, "bias": lambda: b}
    return {k: table[k]() for k in names}


def _bias_residual():
    """Every N: with ``S1 = sum_i (z_i - y_i)`` and ``S2 = sum_i (z_i - y_i)^2`` the objective in ``b`` is
    ``(1/2N)(S2 + 2 b S1 + N b^2)`` (the expanded sum); it is stationary at ``b = -S1/N = mean(y - z)``."""
    b, S1 = sp.symbols("b S1", real=True)
    S2, Ns = sp.Symbol("S2", nonnegative=True), sp.Symbol("N", positive=True)
    return sp.diff((S2 + 2 * b * S1 + Ns * b**2) / (2 * Ns), b).subs(b, -S1 / Ns)


PROOFS_REG_BIAS = (
    Proof("free bias: for fixed Z the optimal b is the mean residual, d/db (1/2N) sum_i (z_i + b - y_i)^2 "
          "= 0 at b = mean(y - z) (every N, through the sums of z_i - y_i and of its square)",
          _bias_residual),
)


def _rand_targets(rng, D, N):
    return rng.standard_normal((D, N)) * np.exp(rng.uniform(-0.5, 0.5, size=(D, 1)))


def _reg_random(rng):
    D, N = int(rng.integers(1, 4)), int(rng.integers(4, 8))
    Y = _rand_targets(rng, D, N)
    lam = float(np.exp(rng.uniform(np.log(1e-3), np.log(5e-2))))
    ratio = float(np.exp(rng.uniform(-1, 1)))
    lam_b = None if rng.random() < 0.5 else 0.0
    return ufm.RegressionUFM(Y=Y, d=N + 1, lam_W=lam * ratio, lam_H=lam / ratio, lam_b=lam_b)


REGRESSION = Theorem(
    name="Regression UFM: W H = SVT of the (centred) targets; Grams from the target covariance",
    citation=ANDRIOPOULOS,
    tag="derived",
    statement=("MSE against real targets Y (D x N), lam_W, lam_H > 0, d >= min(D, N): W H + b 1^T = "
               "SVT_tau(Y_c) + b 1^T with tau = N sqrt(lam_W lam_H), Y_c = Y (no bias) or Y - ybar 1^T "
               "and b = ybar (free bias); W W^T = sqrt(lam_H/lam_W)(Z Z^T)^{1/2} = sqrt(lam_H/lam_W) "
               "sqrt(N)(Sigma^{1/2} - sqrt(N lam_W lam_H) I)_+ with Sigma = Y_c Y_c^T/N the target "
               "covariance (NRC3's 'function of the target covariance'); H^T H = sqrt(lam_W/lam_H)"
               "(Z^T Z)^{1/2}, so the features span at most D directions (NRC1/NRC2). Derived in ufm's "
               "scaling (the paper's Theorem 4.1 and Corollary 4.2)."),
    assumptions=_reg_assume,
    assemble=_reg_assemble,
    instances=lambda: [
        ufm.RegressionUFM(Y=_rand_targets(np.random.default_rng(3), 3, 6), d=7, lam_W=1e-2, lam_H=2e-2, lam_b=0.0),
        # the first instance's shape (D = 3, N = 6, d = 7) without a bias (shape-only compilations
        # shared); the threshold N sqrt(lam_W lam_H) = 1.90 removes the smallest direction (s = 1.19)
        ufm.RegressionUFM(Y=_rand_targets(np.random.default_rng(4), 3, 6), d=7, lam_W=0.5, lam_H=0.2),
    ],
    random_instance=_reg_random,
    measure=_reg_measure,
    expressions=SVT_EXPRESSIONS,
    proofs=PROOFS_SVT + PROOFS_REG_BIAS,
    thresholds=(Threshold(_reg_distance, SVT_WHAT + "; the (centred) targets, tau = N sqrt(lam_W lam_H)"),),
    assumed=("the nuclear-norm lemma: min over W H = Z of lam_W/2||W||^2 + lam_H/2||H||^2 is sqrt(lam_W lam_H)||Z||_* (attained for d >= rank Z; Srebro et al. 2005)",
             "the proximal map of mu||.||_* is singular-value soft-thresholding (von Neumann trace inequality; Cai, Candes & Shen 2010)",
             "free bias: ||Z P_N||_* <= ||Z||_* (P_N = I - 11^T/N a projection), so the optimal Z has centred rows"),
)

THEOREMS = [REGRESSION]
