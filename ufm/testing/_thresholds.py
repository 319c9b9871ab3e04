"""Zero-solution thresholds of balanced UFMs: where the strategies place ``kappa`` (plain functions)."""

from __future__ import annotations

import math

import jax
import numpy as np

from ufm.etf import etf_zero_threshold
from ufm.losses import MSE, Focal, LabelSmoothing, Loss
from ufm.problems import UFM

__all__ = ["kappa", "kappa_threshold", "code_singular_values"]

_THRESHOLDS: dict = {}


def kappa(prob: UFM) -> float:
    """``kappa = sqrt(n lam_W lam_H)`` of a balanced :class:`ufm.UFM`.

    Raises:
        ValueError: the problem is imbalanced (there is no single ``n``).
    """
    if not prob.balanced:
        raise ValueError(f"kappa needs balanced classes, got counts {prob.counts}")
    return math.sqrt(prob.n * float(prob.lam_W) * float(prob.lam_H))


def _etf_threshold(loss: Loss, K: int) -> float:
    """:func:`ufm.etf.etf_zero_threshold`, cached per loss type, hyper-parameters and ``K``."""
    key = (type(loss).__name__, K, tuple(float(np.asarray(x)) for x in jax.tree_util.tree_leaves(loss)))
    if key not in _THRESHOLDS:
        _THRESHOLDS[key] = etf_zero_threshold(loss, K)
    return _THRESHOLDS[key]


def code_singular_values(loss: MSE, K: int, bias_mode: str) -> np.ndarray:
    """Singular values of the code that MSE fits: ``E`` (no bias) or ``E P`` (bias), descending."""
    E = np.eye(K) if loss.encoding is None else np.asarray(loss.encoding, dtype=float)
    if bias_mode != "none":
        E = E @ (np.eye(K) - np.ones((K, K)) / K)
    return np.linalg.svd(E, compute_uv=False)


def kappa_threshold(loss: Loss, K: int, *, bias: str = "none", nonneg: bool = False) -> float:
    r"""Zero-solution threshold ``kappa*`` (balanced classes): the minimizer is nonzero iff
    ``kappa < kappa*``.

    - CE: ``1/K``; label smoothing: ``(1 - alpha)/K`` (Zhu et al. 2021 and section 2, [derived]);
    - focal: ``sup_g (l(0) - l(g)) / ((K-1) g)``. It equals ``1/K`` only at ``gamma = 0`` (for
      ``K = 2, gamma = 3`` it is about ``0.385/K``), so ``1/K`` would be a poor approximation.
      CE, label smoothing and focal are all computed numerically by the simplex-ETF reduction
      (:func:`ufm.etf.etf_zero_threshold`: bracketing plus bisection in ``kappa``), not from the
      closed forms above (the catalog checks those against it);
    - MSE, one-hot, any bias mode: ``1/K`` (``K kappa = 1``: Tirer & Bruna 2022; free and
      regularized bias, section 3). MSE with an encoding ``E`` and no or free bias: ``s_max/K``
      with ``s_max`` the largest singular value of ``E`` (no bias) or ``E P`` (bias), from the
      singular-value threshold ``SVT_{K kappa}``;
    - nonnegative features (section 5, [derived]): CE/LS ``(1-alpha)/K sqrt((K-1)/K)``; bias-free
      one-hot MSE ``1/K`` (its orthogonal-frame minimizer is nonnegative up to a rotation).

    Args:
        loss: a :class:`ufm.Loss`.
        K: number of classes.
        bias: ``"none"``, ``"free"`` or ``"reg"``.
        nonneg: features constrained ``H >= 0``.

    Raises:
        ValueError: no threshold is known for the combination (MSE with an encoding and a
            regularized bias; nonnegative focal or MSE with a bias or an encoding).
    """
    if isinstance(loss, MSE):
        if nonneg and (bias != "none" or loss.encoding is not None):
            raise ValueError(
                "no known zero threshold for nonnegative MSE with a bias or an encoding"
            )
        if loss.encoding is not None and bias == "reg":
            raise ValueError(
                "no known zero threshold for MSE with an encoding and a regularized bias"
            )
        return float(code_singular_values(loss, K, bias)[0]) / K
    alpha = float(loss.alpha) if isinstance(loss, LabelSmoothing) else 0.0
    if nonneg:
        if isinstance(loss, Focal):
            raise ValueError("no known zero threshold for the focal loss with nonnegative features")
        return (1.0 - alpha) / K * math.sqrt((K - 1) / K)
    return _etf_threshold(loss, K)
