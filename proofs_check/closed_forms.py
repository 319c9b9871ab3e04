r"""Closed-form minimizers of the regularized UFM, evaluated numerically in float64.

The numbers come from the catalog's SymPy expressions (``Theorem.predict``, lambdified): this
module only dispatches a problem to its theorem (through :mod:`proofs_check.catalog.dispatch`; it
sits above the catalog, which never imports it). Every function takes a :class:`ufm.UFM` and
returns a :class:`Prediction`: the invariants the theory predicts (objective value, Gram matrices,
norms, bias), never raw ``W`` or ``H``, which are only defined up to a rotation; :func:`measure`
(:func:`proofs_check.measure.measure_ufm`) computes the same invariants from a solution. The
formulas are those of ``docs/theory.md``; each function states its source, tag and
assumptions, and :func:`assumptions` tells whether a problem is inside them (with the reason when
it is not).

Notation (balanced classes, ``n`` per class): ``kappa = sqrt(n lam_W lam_H)``,
``c = sqrt(lam_W / (n lam_H))``, ``P = I - 11^T/K``, ``J = 11^T``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ufm
from proofs_check.catalog.dispatch import closed_form_assumptions, closed_form_theorem
from proofs_check.measure import measure_ufm, rel_error
from proofs_check.theorem import Theorem

__all__ = ["Prediction", "ce_family", "mse", "predict", "assumptions", "theorem_for", "measure", "rel_error"]

# the invariants of a solution, named as in a Prediction (defined below the catalog, in
# proofs_check.measure, so that the catalog's theorems measure with it)
measure = measure_ufm


@dataclass(frozen=True)
class Prediction:
    """Predicted invariants of the global minimizer.

    ``quantities`` maps a name to a float or a NumPy array; names are read by
    :func:`measure` to compute the same invariant from a solution.
    """

    theorem: str
    source: str
    tag: str
    quantities: dict = field(default_factory=dict)


def theorem_for(prob: ufm.UFM) -> Theorem:
    """The catalog theorem whose expressions give the closed form for ``prob``."""
    return closed_form_theorem(prob)


_theorem_for = theorem_for  # the former private name, kept for existing callers


def _prediction(prob: ufm.UFM) -> Prediction:
    th = theorem_for(prob)
    return Prediction(theorem=th.name, source=th.source, tag=th.tag, quantities=th.predict(prob))


def ce_family(prob: ufm.UFM) -> Prediction:
    r"""Simplex-ETF global minimizer of the CE, label-smoothing and focal UFM.

    With the ETF ansatz (rows ``w_k`` of equal norm ``a``, ``h_k = c w_k``) the objective reduces
    to the logit gap ``g = c a^2 K/(K-1)``:

    .. math:: \phi(g) = \ell\Big(p_y = \frac1{1 + (K-1)e^{-g}}\Big) + (K-1)\kappa g .

    The numbers are those of the catalog's SymPy expressions (one source of truth):
    :data:`proofs_check.catalog.zhu2021.CE_ETF` (CE: ``g = log((1-(K-1)kappa)/kappa)`` if
    ``kappa < 1/K``, else the zero solution), :data:`proofs_check.catalog.zhou2022.LS_ETF` and
    ``FOCAL_ETF`` (``g`` the global minimizer of ``phi``).

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375) [paper: ETF; derived: explicit scale];
        Zhou et al., NeurIPS 2022 (arXiv 2210.02192) [derived: LS and focal scale].
    """
    if isinstance(prob.loss, ufm.MSE):
        raise ValueError("ce_family: loss must be CrossEntropy, LabelSmoothing or Focal, got MSE")
    return _prediction(prob)


def mse(prob: ufm.UFM) -> Prediction:
    r"""Global minimizer of the MSE UFM through the convex class-level program.

    With ``Z = W Hbar`` (``D x K``) and counts ``D_n = diag(n_k)``, the lemma
    ``min_{W Ht = Z'} lam_W/2||W||^2 + lam_H/2||Ht||^2 = sqrt(lam_W lam_H)||Z'||_*`` gives:
    no bias: ``Z' = SVT_tau(E D_n^{1/2})``, ``tau = N sqrt(lam_W lam_H)``; free bias
    (balanced): ``Z = SVT_{K kappa}(E P)``, ``b = E 1/K``; regularized bias (balanced, one-hot):
    ``Z = x P + y J/K``, ``x = (1-K kappa)_+``, ``y = (1 - K kappa (1+lam_b)/lam_b)_+``,
    ``b = (1-y)/(K(1+lam_b)) 1``. The numbers are the catalog's expressions
    (:mod:`proofs_check.catalog.mse`).

    References:
        Tirer & Bruna, ICML 2022 (arXiv 2202.08087) [paper]; Zhou et al., ICML 2022
        (arXiv 2203.01238) [derived, free bias]; Dang et al., ICML 2023 (arXiv 2301.00437)
        [derived, imbalance]; Massion, Makhlouf & Massart 2026 (arXiv 2606.00344) [derived,
        regularized bias and encodings].
    """
    if not isinstance(prob.loss, ufm.MSE):
        raise ValueError(f"mse: loss must be MSE, got {type(prob.loss).__name__}")
    return _prediction(prob)


# ---- dispatch ------------------------------------------------------------------------------

def assumptions(prob: ufm.UFM) -> tuple[bool, str]:
    """Whether :func:`predict` has a closed form for ``prob``, and why not when it has none."""
    return closed_form_assumptions(prob)


def predict(prob: ufm.UFM) -> Prediction:
    """The closed form that applies to ``prob`` (raises ``ValueError`` outside the assumptions)."""
    ok, why = assumptions(prob)
    if not ok:
        raise ValueError(f"no closed form for this problem: {why}")
    return _prediction(prob)
