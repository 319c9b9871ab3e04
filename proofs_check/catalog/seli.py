r"""Imbalanced cross-entropy without regularization: the SELI geometry (Thrampoulidis, Kini, Vakilian &
Behnia, NeurIPS 2022, arXiv 2208.05512).

The paper proves that, for any class counts, the CE UFM with vanishing regularization (its
max-margin limit) interpolates the *simplex-encoded label* (SEL) matrix, with the classifier and
feature geometries given by the SVD of that matrix. Only the abstract was read here, so the entry
is **derived**: the certificate below is ufm's argument.

**The max-margin problem.** With ``lam_W = lam_H``, the regularized minimizers converge in
direction, as ``lam -> 0``, to the solutions of
``min (||W||^2 + ||H||^2)/2  s.t.  (w_{y_i} - w_c)^T h_i >= 1`` (every sample, every ``c != y_i``),
whose value is ``min ||Z||_*`` over logit matrices ``Z`` with unit margins (the nuclear-norm lemma).

**SEL is optimal (a dual certificate).** Let ``Y`` be the one-hot label matrix, ``D = diag(n_k)``,
``P = I - J/K`` and ``Zhat = P Y`` (column ``i`` is ``e_{y_i} - 1/K``: every margin is exactly 1).
Then ``Zhat Zhat^T = P D P`` and ``U V^T = (P D P)^{+1/2} Zhat = M Y`` with ``M = (P D P)^{+1/2}``
(``M P = M``). KKT for the nuclear-norm program asks for multipliers ``mu_{ic} >= 0`` with
``sum_c mu_{ic} (e_{y_i} - e_c) = U V^T e_i = M e_{y_i}`` (an element of the subdifferential).
Column ``y`` of ``M`` sums to 0 (``1^T M = 0``), so this holds with ``mu_{ic} = -M[c, y_i]``,
which is ``>= 0`` exactly when **every off-diagonal entry of M is <= 0**. Measured on every
instance (the count of positive ones is 0). Then ``W W^T = (P D P)^{1/2}`` (the classifier Gram),
``h_i^T h_j = M[y_i, y_j]`` (features collapse, class-mean Gram ``M``) and the value is
``tr (P D P)^{1/2}``.

**The check.** The normalized margin ``gamma = min margin / ((||W||^2 + ||H||^2)/2)`` of *any*
point is at most ``1 / tr (P D P)^{1/2}`` when SEL is optimal (an upper bound a solve could break);
``ufm.minimize`` at ``lam`` and at ``lam/100`` gives points below it, closer at the smaller
``lam`` (the approach along the regularization path, at the slow ``1/log(1/lam)`` rate the
measured values show: 0.91 and 0.93 of the bound at ``lam = 1e-3, 1e-5`` for counts (5, 1, 1)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import ufm
from proofs_check.theorem import GTOL, Citation, Proof, Theorem

__all__ = ["THEOREMS", "SELI", "THRAMPOULIDIS", "sel_geometry"]

THRAMPOULIDIS = Citation(
    "Thrampoulidis, Kini, Vakilian & Behnia", 2022, "NeurIPS", "2208.05512",
    what=("the CE UFM with vanishing regularization interpolates the simplex-encoded label matrix for any "
          "class counts, with geometries from its SVD (the abstract was read); the dual certificate and "
          "the checks are ufm's"))


def sel_geometry(counts: Any) -> dict[str, Any]:
    """``(P D P)^{1/2}`` (classifier Gram), ``M = (P D P)^{+1/2}`` (class-mean Gram and the dual
    certificate) and the max-margin value ``tr (P D P)^{1/2}`` for class counts ``counts``."""
    d = np.asarray(counts, dtype=float)
    k = d.size
    P = np.eye(k) - np.ones((k, k)) / k
    w, U = np.linalg.eigh(P @ np.diag(d) @ P)
    keep = w > 1e-12 * w.max()
    root = (U[:, keep] * np.sqrt(w[keep])) @ U[:, keep].T
    M = (U[:, keep] / np.sqrt(w[keep])) @ U[:, keep].T
    return {"W_gram": root, "M": M, "value": float(np.sum(np.sqrt(w[keep])))}


def _normalized_margin(prob: ufm.UFM, params: Any) -> float:
    W, H = np.asarray(params.W), np.asarray(params.H)
    Z = W @ H
    y = np.repeat(np.arange(prob.K), prob.counts)
    own = Z[y, np.arange(y.size)]
    others = np.where(np.arange(prob.K)[:, None] == y[None, :], np.inf, own[None, :] - Z)
    return float(others.min() / (0.5 * (np.sum(W**2) + np.sum(H**2))))


def _at(prob: ufm.UFM, lam: float) -> ufm.UFM:
    return ufm.UFM(K=prob.K, n=tuple(int(c) for c in prob.counts), d=prob.d, loss=ufm.CrossEntropy(), lam_W=lam,
                   lam_H=lam)


def _solve(prob: ufm.UFM) -> tuple[dict, dict]:
    lam = float(prob.lam_W)
    sols = {s: ufm.minimize(_at(prob, lam * s), gtol=GTOL, starts=2, throw=False) for s in (1.0, 1e-2)}
    worst = max(sols.values(), key=lambda s: s.grad_norm)
    return ({s: sol.params for s, sol in sols.items()},
            {"grad_norm": worst.grad_norm, "converged": all(s.converged for s in sols.values())})


_Q1 = "normalized margin at lam (<= 1/value of SEL)"
_Q2 = "normalized margin at lam/100 (<= 1/value of SEL)"
_Q3 = "SVM gap at lam/100 over the gap at lam (< 1: closer along the path)"
_Q4 = "positive off-diagonal entries of the certificate (P D P)^(+1/2)"


def _assemble(prob, ev):
    bound = 1.0 / sel_geometry(prob.counts)["value"]
    return {_Q1: bound, _Q2: bound, _Q3: 1.0, _Q4: 0.0}


def _measure(prob, params, names):
    geo = sel_geometry(prob.counts)
    g1, g2 = (_normalized_margin(prob, params[s]) for s in (1.0, 1e-2))
    M = geo["M"]
    off = M[~np.eye(prob.K, dtype=bool)]
    return {_Q1: g1, _Q2: g2, _Q3: (1 - g2 * geo["value"]) / (1 - g1 * geo["value"]), _Q4: float(np.sum(off > 0))}


def _assume(prob: Any) -> tuple[bool, str]:
    if not isinstance(prob, ufm.UFM) or not isinstance(prob.loss, ufm.CrossEntropy) or isinstance(
            prob.loss, (ufm.LabelSmoothing, ufm.Focal)):
        return False, "needs a cross-entropy ufm.UFM"
    if prob.has_bias or prob.nonneg:
        return False, "no bias and signed features (the max-margin problem of the paper)"
    if float(prob.lam_W) != float(prob.lam_H) or not 0 < float(prob.lam_W) <= 1e-2:
        return False, "needs lam_W = lam_H in (0, 1e-2] (the small-regularization end of the path)"
    if prob.d < prob.K:
        return False, f"needs d >= K (got d={prob.d})"
    return True, ""


def _balanced_certificate():
    """Balanced, K = 3: M = (P n I P)^{+1/2} = P/sqrt(n), off-diagonal -1/(3 sqrt(n)) < 0."""
    n_ = sp.Symbol("n", positive=True)
    P3 = sp.eye(3) - sp.ones(3, 3) / 3
    M = P3 / sp.sqrt(n_)
    return sp.And(sp.simplify(M * (n_ * P3) * M - P3) == sp.zeros(3, 3),
                  sp.simplify(M[0, 1] + 1 / (3 * sp.sqrt(n_))) == 0, (-1 / (3 * sp.sqrt(n_))).is_negative)


def _random(rng):
    lam = float(10 ** rng.uniform(-4, -2))
    counts = tuple(int(c) for c in rng.integers(1, 7, size=3))
    return ufm.UFM(K=3, n=counts, d=4, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam)


SELI = Theorem(
    name="Imbalanced CE UFM without regularization: SELI (SEL logits, Grams from its SVD)",
    citation=THRAMPOULIDIS,
    tag="derived",
    statement=("CE UFM, no bias, any class counts: the max-margin limit of the regularized minimizers has "
               "logits W H = P Y (the simplex-encoded labels), W W^T = (P D P)^(1/2), class-mean Gram "
               "(P D P)^(+1/2) and value tr (P D P)^(1/2): every point has normalized margin <= "
               "1/tr (P D P)^(1/2), and ufm.minimize's points approach it as lam -> 0."),
    assumptions=_assume,
    assemble=_assemble,
    # one majority class, then two of three
    instances=lambda: [ufm.UFM(K=3, n=(5, 1, 1), d=4, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3),
                       ufm.UFM(K=3, n=(3, 3, 1), d=4, loss=ufm.CrossEntropy(), lam_W=1e-3, lam_H=1e-3)],
    # four solves at small lam (two per instance; the counts are static, so each instance compiles):
    # 24-30 s per instance on a 2-core CPU, hence ufm verify --all only
    slow=True,
    random_instance=_random,
    measure=_measure,
    solve=_solve,
    upper_bounds=(_Q1, _Q2, _Q3),
    tolerances={_Q4: (0.5, "absolute: a count of entries, 0 when the certificate holds")},
    no_closed_form=("the Grams are matrix square roots of P D P (an eigendecomposition); the predicted bound "
                    "is 1/tr (P D P)^(1/2)"),
    proofs=(Proof("balanced, K = 3 (symbolic n): the certificate M = P/sqrt(n) satisfies M (n P) M = P and has "
                  "off-diagonal entries -1/(3 sqrt(n)) < 0", _balanced_certificate, kind="sample"),),
    assumed=("that the regularized CE minimizers converge in direction to the max-margin solutions as lam -> 0 "
             "(margin maximization along the regularization path for homogeneous models; the solves show "
             "the approach, not the limit); the KKT argument of the module docstring",),
)

THEOREMS = [SELI]
