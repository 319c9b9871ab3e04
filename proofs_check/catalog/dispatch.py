"""Which catalog theorem holds the closed-form minimizer of a shallow UFM, and when one exists.

A problem goes to the theorem of its loss: MSE without a bias to ``mse.MSE_ENCODING`` (the general
bias-free SVT: any counts, any encoding), with a free bias to ``mse.MSE_FREE_BIAS``, with a
regularized one to ``mse.MSE_REG_BIAS``; cross-entropy to ``zhu2021.CE_ETF``, label smoothing to
``zhou2022.LS_ETF``, focal to ``zhou2022.FOCAL_ETF``. The numbers are that theorem's SymPy
expressions (``Theorem.predict``). :func:`closed_form_assumptions` says whether the problem is
inside the closed forms, and why not when it is not.

Used by the catalog's own entries (the global certificates of ``duality`` compare with the
closed-form minimum) and by :mod:`proofs_check.closed_forms`, the public face above the catalog.
"""

from __future__ import annotations

from typing import Any

import ufm
from proofs_check.catalog.mse import MSE_ENCODING, MSE_FREE_BIAS, MSE_REG_BIAS
from proofs_check.catalog.zhou2022 import FOCAL_ETF, LS_ETF
from proofs_check.catalog.zhu2021 import CE_ETF
from proofs_check.theorem import Theorem

__all__ = ["closed_form_theorem", "closed_form_assumptions", "closed_form"]


def closed_form_theorem(prob: ufm.UFM) -> Theorem:
    """The catalog theorem whose expressions give the closed form for ``prob`` (by its loss and
    bias mode; the assumptions are not checked here: :func:`closed_form_assumptions`)."""
    loss = prob.loss
    if isinstance(loss, ufm.MSE):
        if not prob.has_bias:
            return MSE_ENCODING  # the general bias-free SVT (any counts, any encoding)
        return MSE_FREE_BIAS if float(prob.lam_b) == 0.0 else MSE_REG_BIAS
    return {ufm.CrossEntropy: CE_ETF, ufm.LabelSmoothing: LS_ETF, ufm.Focal: FOCAL_ETF}[type(loss)]


def closed_form_assumptions(prob: ufm.UFM) -> tuple[bool, str]:
    """Whether the catalog has a closed form for ``prob``, and why not when it has none."""
    if prob.nonneg:
        return False, "nonnegative features: see the positive-feature theorems (section 5)"
    loss = prob.loss
    if isinstance(loss, ufm.MSE):
        if prob.has_bias and not prob.balanced:
            return False, "MSE with a bias needs balanced classes for a closed form"
        if prob.has_bias and float(prob.lam_b) > 0 and loss.encoding is not None:
            return False, "MSE with a regularized bias: closed form only for the one-hot code"
        if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
            return False, "needs lam_W > 0 and lam_H > 0"
        if prob.d < min(prob.D, prob.K):
            return False, f"needs d >= rank of the fitted logits (d={prob.d} < min(D, K)); the minimizer is not unique"
        return True, ""
    if not prob.balanced:
        return False, "cross-entropy closed forms need balanced classes"
    if prob.d < prob.K - 1:
        return False, f"a simplex ETF needs d >= K-1 (d={prob.d}, K={prob.K})"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "needs lam_W > 0 and lam_H > 0 (otherwise no minimizer exists)"
    return True, ""


def closed_form(prob: ufm.UFM) -> dict[str, Any]:
    """The predicted invariants of ``prob``'s global minimizer (its theorem's ``predict``); raises
    ``ValueError`` outside :func:`closed_form_assumptions`."""
    ok, why = closed_form_assumptions(prob)
    if not ok:
        raise ValueError(f"no closed form for this problem: {why}")
    return closed_form_theorem(prob).predict(prob)
