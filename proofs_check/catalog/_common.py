"""Matrices, assumption and instance helpers shared by the catalog modules (siblings only)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import sympy as sp

import ufm
from proofs_check.symbols import K, N, alpha, c_expr, g, gamma, kappa_expr, lam_b, lam_H, lam_W, n

# The symbols are defined in proofs_check.symbols; the helpers below use them and the sibling
# modules import them from here, with the helpers.
__all__ = ["K", "n", "N", "lam_W", "lam_H", "lam_b", "alpha", "gamma", "g", "kappa_expr", "c_expr", "P",
           "scalars", "evaluate", "kappa", "lams_for", "balanced_ok", "etf_invariants", "grad_norm_at",
           "away_from"]


def P(k: int) -> np.ndarray:
    """Centring matrix ``I - 11^T/K``."""
    return np.eye(k) - np.ones((k, k)) / k


def scalars(prob: ufm.UFM) -> dict:
    """Numeric values of the catalog symbols for a balanced problem."""
    out = {K: prob.K, n: prob.n, lam_W: float(prob.lam_W), lam_H: float(prob.lam_H)}
    if prob.lam_b is not None:
        out[lam_b] = float(prob.lam_b)
    if isinstance(prob.loss, ufm.LabelSmoothing):
        out[alpha] = float(prob.loss.alpha)
    if isinstance(prob.loss, ufm.Focal):
        out[gamma] = float(prob.loss.gamma)
    return out


def evaluate(expr: sp.Expr, prob: ufm.UFM, **extra: float) -> float:
    """Evaluate a SymPy expression at the problem's numbers (float64 via lambdify)."""
    subs = {sym.name: v for sym, v in scalars(prob).items()}
    subs.update(extra)  # by symbol name, e.g. n_k=2.0, N=16.0
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    missing = [s.name for s in free if s.name not in subs]
    if missing:
        raise ValueError(f"evaluate: no value for symbol(s) {missing}")
    fn = sp.lambdify(free, expr, modules="numpy")
    return float(fn(*[subs[s.name] for s in free]))


def kappa(prob: ufm.UFM) -> float:
    """``kappa = sqrt(n lam_W lam_H)`` of a balanced problem (the number of ``kappa_expr``)."""
    return float(np.sqrt(prob.n * float(prob.lam_W) * float(prob.lam_H)))


def lams_for(kappa_value: float, n_value: int, rho: float = 1.0) -> tuple[float, float]:
    """``(lam_W, lam_H)`` with ``sqrt(n lam_W lam_H) = kappa`` and ``lam_W/lam_H = rho^2``."""
    return kappa_value * rho / np.sqrt(n_value), kappa_value / (rho * np.sqrt(n_value))


def balanced_ok(prob: ufm.UFM, *, need_d: int | None = None,
                losses: tuple | None = None) -> tuple[bool, str]:
    """Common assumptions: balanced classes, lam_W, lam_H > 0, d large enough, loss type."""
    if losses is not None and not isinstance(prob.loss, losses):
        return False, f"loss must be one of {[t.__name__ for t in losses]}"
    if not prob.balanced:
        return False, "needs balanced classes"
    if prob.nonneg:
        return False, "signed features (nonneg=False)"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "needs lam_W > 0 and lam_H > 0"
    if need_d is not None and prob.d < need_d:
        return False, f"needs d >= {need_d} (got d={prob.d})"
    return True, ""


def etf_invariants(prob: ufm.UFM, a2: float, c: float, value: float) -> dict:
    r"""Invariants of the simplex-ETF configuration (``a2 = 0``: the zero solution).

    Rows ``w_k`` of squared norm ``a2`` forming a simplex ETF, ``h_{k,i} = c w_k``:
    ``W W^T = a2 K/(K-1) P``, ``Hbar^T Hbar = c^2 W W^T``, no within-class spread, ``b = 0``
    (centred when ``lam_b = 0``); ``value`` is passed through (it comes from the theorem's
    expression of the reduced objective).
    """
    k = prob.K
    q = {
        "value": float(value),
        "W_gram": a2 * k / (k - 1) * P(k),
        "Hbar_gram": c**2 * a2 * k / (k - 1) * P(k),
        "w_norm2": np.full(k, a2),
        "h_norm2": np.full(k, c**2 * a2),
        "within_class_spread": 0.0,
    }
    if prob.has_bias:
        q["bias_centred" if float(prob.lam_b) == 0.0 else "bias"] = np.zeros(k)
    return q


def grad_norm_at(prob: Any, params: Any) -> float:
    """``||grad f(params)||`` (Euclidean over every leaf) of an unconstrained problem."""
    leaves = jax.tree_util.tree_leaves(jax.grad(prob.objective)(params))
    return float(np.sqrt(sum(float(np.sum(np.asarray(x) ** 2)) for x in leaves)))


def away_from(value: float, threshold: float, what: str, band: float = 0.05) -> tuple[bool, str]:
    """``(False, reason)`` when ``value`` is within ``band`` (relative) of ``threshold``."""
    if abs(value / threshold - 1) < band:
        return False, f"{what} = {value:.4g} within {band:.0%} of its threshold {threshold:.4g} (degenerate minimizer)"
    return True, ""
