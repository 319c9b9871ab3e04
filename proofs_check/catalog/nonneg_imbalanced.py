r"""Imbalanced cross-entropy with nonnegative (ReLU) features: orthogonal class means of unequal
lengths (Dang, Tran, Tran, Ho, Osher & Nguyen 2024, arXiv 2401.02058).

The paper studies the CE UFM whose features pass through a ReLU (``H >= 0``) with imbalanced
classes and states that the features of a class collapse to their mean, that the class means are
mutually orthogonal with lengths that depend on the class counts, and that the classifier aligns
with scaled, centred class means. Only the abstract was readable here, so the entry is **derived**:
ufm checks the two statements that are invariants without a closed form of the lengths.

**The check.** For ``ufm.UFM(..., nonneg=True)`` without a bias and any class counts, the certified
minimizer has within-class spread 0 and class-mean cosines 0 (every pair of distinct classes),
measured to the solve's accuracy (inner products over the largest squared mean length, so that a
mean of length 0 counts as orthogonal). The lengths are reported, not predicted: the minority
classes' means are the longer ones on the default instances, and a random draw (counts (1, 3, 6, 4),
d = K = 4) ended with a class mean of length 0, which the report counts. With a *free* bias the statement fails for strong imbalance (counts
(8, 4, 2, 1): the majority class's mean is 0 and the others are not orthogonal), so the entry
assumes no bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import ufm
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Proof, Theorem

__all__ = ["THEOREMS", "ORTHOGONAL_MEANS", "DANG"]

DANG = Citation(
    "Dang, Tran, Tran, Ho, Osher & Nguyen", 2024, "ICML", "2401.02058",
    what=("within-class collapse and orthogonal class means of unequal lengths for imbalanced CE with "
          "ReLU features (the abstract was read); the measured checks are ufm's"))

_COSINE = "largest |<m_i, m_j>| / max_k ||m_k||^2 over distinct class means"
_SPREAD = "within-class spread"
_RATIO = "mean length of the smallest class over that of the largest (reported)"
_ZERO = "class means of length 0 (reported; orthogonal to every other)"

EXPRESSIONS = {_COSINE: sp.Integer(0), _SPREAD: sp.Integer(0)}


def _assume(prob: Any) -> tuple[bool, str]:
    if not isinstance(prob, ufm.UFM) or type(prob.loss) is not ufm.CrossEntropy:
        return False, "needs a cross-entropy ufm.UFM"
    if not prob.nonneg or prob.has_bias:
        return False, "needs nonneg=True (ReLU features) and no bias"
    if prob.d < prob.K:
        return False, f"needs d >= K for K orthogonal nonnegative means (got d={prob.d}, K={prob.K})"
    return True, ""


def _assemble(prob: Any, ev: Any) -> dict:
    return {_COSINE: ev(_COSINE), _SPREAD: ev(_SPREAD)}


def _measure(prob: ufm.UFM, params: Any, names: Any) -> dict:
    inv = measure_ufm(prob, params, ("Hbar_gram", "within_class_spread"))
    G = inv["Hbar_gram"]
    norms2 = np.diag(G)
    off = np.abs((G / norms2.max())[~np.eye(prob.K, dtype=bool)])
    counts = np.asarray(prob.counts)
    small, large = int(np.argmin(counts)), int(np.argmax(counts))
    zero = float(np.sum(norms2 <= 1e-16 * norms2.max()))
    return {_COSINE: float(off.max()), _SPREAD: inv["within_class_spread"],
            _RATIO: float(np.sqrt(norms2[small] / norms2[large])), _ZERO: zero}


def _random(rng: np.random.Generator) -> ufm.UFM:
    K = int(rng.integers(2, 5))
    counts = tuple(int(c) for c in rng.integers(1, 7, size=K))
    lam = float(10 ** rng.uniform(-3, -2))
    return ufm.UFM(K=K, n=counts, d=K + int(rng.integers(0, 3)), loss=ufm.CrossEntropy(), lam_W=lam,
                   lam_H=lam, nonneg=True)


def _disjoint_supports():
    """Each term of <m_i, m_j> = sum_r m_ir m_jr is >= 0 for nonnegative means (symbolic entries)."""
    a, b = sp.symbols("a b", nonnegative=True)
    return sp.And(sp.Ge(a * b, 0), sp.Eq(sp.Max(a * b, 0), a * b))


ORTHOGONAL_MEANS = Theorem(
    name="Imbalanced CE UFM with H >= 0: collapse and orthogonal class means of unequal lengths",
    citation=DANG,
    tag="derived",
    statement=("CE UFM with nonnegative features, no bias, any class counts, d >= K: every class's features "
               "collapse to its mean and distinct class means are orthogonal (their lengths depend on the "
               "counts: reported, not predicted; a mean may have length 0)."),
    assumptions=_assume,
    assemble=_assemble,
    expressions=EXPRESSIONS,
    instances=lambda: [ufm.UFM(K=4, n=(6, 6, 2, 2), d=6, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3,
                               nonneg=True),
                       ufm.UFM(K=4, n=(8, 4, 2, 1), d=6, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=5e-3,
                               nonneg=True)],
    measure=_measure,
    random_instance=_random,
    counts=(_RATIO, _ZERO),
    tolerances={_COSINE: (1e-6, "absolute: a normalized inner product of means of features certified to "
                                "gtol 1e-12 (KKT residual)"),
                _SPREAD: (1e-6, "absolute: root-mean-square distance of features certified to gtol 1e-12 "
                                "from their class means")},
    no_closed_form=("the lengths of the class means have no closed form here; the prediction is the "
                    "structure (cosines and spread 0), measured on ufm.minimize's certified solution"),
    proofs=(Proof("entries a, b >= 0 (symbolic, any dimension): every term a b of <m_i, m_j> = sum_r m_ir m_jr "
                  "is >= 0, so nonnegative class means are orthogonal exactly when their supports are "
                  "disjoint, and K nonzero ones need d >= K coordinates (the assumption d >= K)",
                  _disjoint_supports),),
    assumed=("the statement of the paper's abstract (the proof is not reproduced here)",),
)

THEOREMS = [ORTHOGONAL_MEANS]
