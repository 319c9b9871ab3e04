r"""Per-sample targets: the regression UFM, the multi-label (pick-all-label) UFM, and the imbalanced
MSE UFM with a free bias (one layer, and L >= 2 linear layers through the deep UFM's h_m); the
catalog's entries in order, and their names.

| module | entries |
|---|---|
| ``svt`` | the scalar SVT problem, its proofs and expressions (no entry) |
| ``regression`` | the regression UFM (Andriopoulos et al. 2024) |
| ``multilabel`` | the multi-label PAL-CE UFM (Li et al. 2024) |
| ``imbalanced_mse`` | the imbalanced MSE UFM with a free bias, L = 1 and L >= 2 (arXiv 2411.17278) |

Only the abstracts of the three papers could be read here (arXiv 2409.04180, 2310.15903,
2411.17278), so every statement below is **derived** for ufm's canonical objective
(``docs/theory.md``, the canonical objective) and checked against :func:`ufm.minimize`; where a paper's abstract states a
shape of the result, the docstring says how the derived statement matches it.

Two reductions carry everything (both standard, stated here and not re-proved in SymPy):

1. the nuclear-norm lemma ``min_{W H = Z} lam_W/2||W||^2 + lam_H/2||H||^2 = sqrt(lam_W lam_H)||Z||_*``
   (attained when ``d >= rank Z``), with ``W W^T = sqrt(lam_H/lam_W)(Z Z^T)^{1/2}`` and
   ``H^T H = sqrt(lam_W/lam_H)(Z^T Z)^{1/2}``;
2. the proximal map of the nuclear norm is singular-value soft-thresholding (von Neumann's trace
   inequality aligns the singular vectors), so a squared-error problem splits into one scalar
   problem per singular value, ``phi(s) = (s - sigma)^2/(2N) + mu s`` on ``s >= 0``, which SymPy
   solves (module ``svt``); its minimizer ``s* = (sigma - N mu)_+`` and value are the expressions
   that ``predict`` lambdifies.
"""

from __future__ import annotations

from proofs_check.catalog.imbalanced_mse import (
    EXT_EXPRESSIONS, IMB_EXT, IMBALANCED_EXTENDED, IMBALANCED_FREE_BIAS,
)
from proofs_check.catalog.multilabel import LI_MLAB, MLAB_EXPRESSIONS, MULTILABEL
from proofs_check.catalog.regression import ANDRIOPOULOS, REGRESSION
from proofs_check.catalog.svt import MU, PROOFS_SVT, SVT_EXPRESSIONS, svt_prediction

__all__ = ["THEOREMS", "REGRESSION", "MULTILABEL", "IMBALANCED_FREE_BIAS", "IMBALANCED_EXTENDED",
           "ANDRIOPOULOS", "LI_MLAB", "IMB_EXT", "MU", "PROOFS_SVT", "SVT_EXPRESSIONS", "MLAB_EXPRESSIONS",
           "EXT_EXPRESSIONS", "svt_prediction"]

THEOREMS = [REGRESSION, MULTILABEL, IMBALANCED_FREE_BIAS, IMBALANCED_EXTENDED]
