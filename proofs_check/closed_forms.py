r"""Closed-form minimizers of the regularized UFM, evaluated numerically in float64.

The numbers come from the catalog's SymPy expressions (``Theorem.predict``, lambdified): this
module only dispatches a problem to its theorem. Every function takes a :class:`ufm.UFM` and
returns a :class:`Prediction`: the invariants the theory predicts (objective value, Gram matrices, norms, bias), never raw ``W`` or ``H``, which are
only defined up to a rotation. The formulas are those of ``shared/theory/README.md``; each
function states its source, tag and assumptions, and :func:`assumptions` tells whether a problem
is inside them (with the reason when it is not).

Notation (balanced classes, ``n`` per class): ``kappa = sqrt(n lam_W lam_H)``,
``c = sqrt(lam_W / (n lam_H))``, ``P = I - 11^T/K``, ``J = 11^T``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import ufm

__all__ = ["Prediction", "ce_family", "mse", "predict", "assumptions", "measure", "rel_error"]


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


def _theorem_for(prob):
    """The catalog theorem whose expressions give the closed form for ``prob``."""
    from proofs_check.catalog import mse as mse_cat
    from proofs_check.catalog import zhou2022, zhu2021

    loss = prob.loss
    if isinstance(loss, ufm.MSE):
        if not prob.has_bias:
            return mse_cat.MSE_ENCODING  # the general bias-free SVT (any counts, any encoding)
        return mse_cat.MSE_FREE_BIAS if float(prob.lam_b) == 0.0 else mse_cat.MSE_REG_BIAS
    return {ufm.CrossEntropy: zhu2021.CE_ETF, ufm.LabelSmoothing: zhou2022.LS_ETF,
            ufm.Focal: zhou2022.FOCAL_ETF}[type(loss)]


def _prediction(prob) -> Prediction:
    th = _theorem_for(prob)
    return Prediction(theorem=th.name, source=th.source, tag=th.tag, quantities=th.predict(prob))


def ce_family(prob) -> Prediction:
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


def mse(prob) -> Prediction:
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

def assumptions(prob) -> tuple[bool, str]:
    """Whether :func:`predict` has a closed form for ``prob``, and why not when it has none."""
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


def predict(prob) -> Prediction:
    """The closed form that applies to ``prob`` (raises ``ValueError`` outside the assumptions)."""
    ok, why = assumptions(prob)
    if not ok:
        raise ValueError(f"no closed form for this problem: {why}")
    return _prediction(prob)


# ---- the same invariants measured on a solution --------------------------------------------

def measure(prob, params, names) -> dict:
    """The invariants named in a Prediction, computed from ``params`` (float64 NumPy)."""
    W, H = np.asarray(params.W), np.asarray(params.H)
    labels = prob.labels
    Hbar = np.stack([H[:, labels == k].mean(axis=1) for k in range(prob.K)], axis=1)
    out = {}
    for name in names:
        if name == "value":
            out[name] = float(prob.objective(params))
        elif name == "W_gram":
            out[name] = W @ W.T
        elif name == "Hbar_gram":
            out[name] = Hbar.T @ Hbar
        elif name == "w_norm2":
            out[name] = np.sum(W**2, axis=1)
        elif name == "h_norm2":
            out[name] = np.sum(Hbar**2, axis=0)
        elif name == "logit_means":
            out[name] = W @ Hbar
        elif name == "within_class_spread":
            out[name] = float(np.sqrt(np.sum((H - Hbar[:, labels]) ** 2) / H.shape[1]))
        elif name == "bias":
            out[name] = np.asarray(params.b)
        elif name == "bias_centred":
            b = np.asarray(params.b)
            out[name] = b - b.mean()
        else:
            raise KeyError(f"unknown invariant {name!r}")
    return out


def rel_error(measured, predicted) -> float:
    """``||m - p|| / ||p||`` (Frobenius), or the absolute ``||m - p||`` when ``p = 0``."""
    m, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    scale = np.linalg.norm(p)
    err = np.linalg.norm(m - p)
    return float(err / scale) if scale > 0 else float(err)
