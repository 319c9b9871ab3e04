r"""The catalog's phase thresholds along one hyper-parameter, for sweeps and phase diagrams.

``ufm.sweeps`` measures boundaries (:func:`ufm.sweeps.locate_boundary`) but never imports the
catalog; this module turns the catalog's SymPy threshold expressions into numbers for a given
problem and field, and compares them with measured boundaries:

- CE zero threshold (Zhu et al. 2021): ``kappa = sqrt(n lam_W lam_H) = 1/K``; label smoothing
  (Zhou et al. 2022): ``kappa = (1 - alpha)/K``;
- MSE zero threshold, no bias (Tirer & Bruna 2022): ``x* = 1 - K kappa = 0``;
- MSE regularized-bias transition (ETF to orthogonal): ``lam_b = K kappa / (1 - K kappa)``;
- minority collapse (CE/LS/MSE, imbalanced): ``sqrt(lam_W lam_H) = (1-alpha) sqrt(n_B) / N``.

Each equation is the catalog's own expression (imported, not restated), solved for the swept field
with the problem's other values substituted.
"""

from __future__ import annotations

import sympy as sp

import ufm
from proofs_check.catalog import imbalanced_ce, mse, zhou2022, zhu2021
from proofs_check.symbols import K, N, alpha, kappa_expr, lam_b, lam_H, lam_W, n
from ufm.sweeps import compare_thresholds

__all__ = ["catalog_thresholds", "compare"]

_FIELDS = {"lam_W": lam_W, "lam_H": lam_H, "lam_b": lam_b, "loss.alpha": alpha}


def _equations(prob):
    """(transition, theorem name, lhs - rhs) for every catalog threshold that applies to prob."""
    loss, out = prob.loss, []
    imbalanced = not prob.balanced
    if isinstance(loss, (ufm.CrossEntropy, ufm.LabelSmoothing)) and not imbalanced:
        if isinstance(loss, ufm.LabelSmoothing):
            out.append(("zero threshold", zhou2022.LS_ETF.name,
                        kappa_expr - zhou2022.LS_ETF.expressions["threshold"]))
        else:
            out.append(("zero threshold", zhu2021.CE_ZERO.name,
                        kappa_expr - zhu2021.CE_ZERO.expressions["threshold"]))
    if isinstance(loss, ufm.MSE) and loss.encoding is None and not imbalanced:
        if not prob.has_bias:
            out.append(("zero threshold", mse.MSE_BIAS_FREE.name,
                        mse.MSE_BIAS_FREE.expressions["x*"].subs(mse.kap, kappa_expr)))
        elif float(prob.lam_b) > 0:
            # the theorem's y* = 1 - K kappa (1 + lam_b)/lam_b vanishes at the transition; times
            # lam_b it is linear in lam_b and increasing (K kappa < 1), as lam_b - boundary was
            out.append(("regularized-bias transition", mse.MSE_REG_BIAS.name,
                        sp.expand(lam_b * mse.MSE_REG_BIAS.expressions["y*"].subs(mse.kap, kappa_expr))))
    if imbalanced and isinstance(loss, (ufm.CrossEntropy, ufm.LabelSmoothing, ufm.MSE)):
        n_B = min(prob.counts)
        thm = imbalanced_ce.MINORITY_COLLAPSED
        tau_star = thm.expressions["threshold tau*"].subs({imbalanced_ce.n_B_s: n_B, N: prob.N})
        out.append(("minority collapse", thm.name,
                    sp.sqrt(lam_W * lam_H) - tau_star))
    return out


def _values(prob):
    vals = {K: prob.K, n: prob.n if prob.balanced else None, lam_W: float(prob.lam_W),
            lam_H: float(prob.lam_H)}
    if prob.has_bias:
        vals[lam_b] = float(prob.lam_b)
    vals[alpha] = float(prob.loss.alpha) if isinstance(prob.loss, ufm.LabelSmoothing) else 0.0
    return {k: v for k, v in vals.items() if v is not None}


def catalog_thresholds(prob, field: str) -> list[dict]:
    r"""Predicted thresholds along ``field`` with the other values of ``prob`` fixed.

    .. math:: \text{solve } e(\theta_\mathrm{field}) = 0 \text{ for each catalog threshold } e

    Args:
        prob: a :class:`ufm.UFM`.
        field: ``"lam_W"``, ``"lam_H"``, ``"lam_b"`` or ``"loss.alpha"``.

    Returns:
        ``[{"transition", "theorem", "field", "predicted"}]``, one per positive real root.
    """
    if field not in _FIELDS:
        raise ValueError(f"field must be one of {sorted(_FIELDS)}, got field={field!r}")
    sym = _FIELDS[field]
    vals = {k: v for k, v in _values(prob).items() if k is not sym}
    rows = []
    for transition, theorem, expr in _equations(prob):
        e = sp.sympify(expr).subs(vals)
        if sym not in e.free_symbols:
            continue
        for root in sp.solve(sp.Eq(e, 0), sym):
            r = complex(sp.N(root, 30))
            if abs(r.imag) < 1e-14 and r.real > 0:
                rows.append({"transition": transition, "theorem": theorem, "field": field,
                             "predicted": float(r.real)})
    return rows


def compare(prob, measured) -> list[dict]:
    r"""Measured boundaries (:func:`ufm.sweeps.locate_boundary`) against the catalog.

    .. math:: \mathrm{rel\_error} = |x_\mathrm{measured} - x_\mathrm{predicted}| / |x_\mathrm{predicted}|

    Each measured boundary is matched with the nearest predicted threshold on its field.
    """
    measured = [measured] if isinstance(measured, dict) else list(measured)
    rows = []
    for m in measured:
        preds = catalog_thresholds(prob, m["field"])
        if not preds:
            continue
        best = min(preds, key=lambda p: abs(p["predicted"] - m["boundary"]))
        row = compare_thresholds(m, {m["field"]: best["predicted"]})[0]
        row.update(transition=best["transition"], theorem=best["theorem"])
        rows.append(row)
    return rows
