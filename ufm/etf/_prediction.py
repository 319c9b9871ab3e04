r"""The neural-collapse prediction of a balanced UFM under the simplex-ETF ansatz, for any symmetric loss.

:func:`etf_prediction` reduces the model to the one-dimensional problem of :mod:`ufm.etf._reduction` (the
logit gap ``g``, plus a common offset where the loss is not shift-invariant and the model has a
bias), takes its global minimum, and turns it into the invariants a solver can be held against:
the objective value, the norms of the classifier rows and of the features, the bias, whether the
zero solution wins, and the zero threshold in ``kappa``. :func:`etf_params` builds the point.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ufm.etf._reduction import (
    check_permutation_symmetric, etf_solve, etf_zero_threshold, is_shift_invariant,
)
from ufm.geometry import simplex_etf
from ufm.problems import UFM, Params

__all__ = ["ETFPrediction", "etf_prediction", "etf_params"]


class ETFPrediction(NamedTuple):
    r"""What the simplex-ETF ansatz predicts for a balanced UFM (:func:`etf_prediction`).

    Attributes:
        value: the objective at the best ETF (or zero) point, ``phi_kappa(g)``.
        g: the logit gap (own logit minus any other), ``0.0`` for the zero solution.
        offset: the common logit offset ``beta``: the bias is ``b = beta 1`` (``0.0`` without a
            bias or for a shift-invariant loss).
        w_norm: ``||w_k||`` of every classifier row, ``sqrt((K-1) g / (K c))``.
        h_norm: ``||h_{k,i}||`` of every feature, ``c ||w_k||``.
        zero: whether the zero solution ``W = H = 0`` is the global minimum of the reduction.
        kappa: ``sqrt(n lam_W lam_H)`` of the problem.
        kappa_threshold: ``kappa*``: ``zero`` holds exactly when ``kappa >= kappa*``.
        value_zero: the objective of the zero solution, ``phi_kappa(0)``.
        bias: ``"none"``, ``"free"`` or ``"reg"``.
        shift_invariant: whether the loss depends on the logits only through their differences.
    """

    value: float
    g: float
    offset: float
    w_norm: float
    h_norm: float
    zero: bool
    kappa: float
    kappa_threshold: float
    value_zero: float
    bias: str
    shift_invariant: bool


def _bias_mode(prob) -> str:
    if prob.lam_b is None:
        return "none"
    return "free" if float(prob.lam_b) == 0.0 else "reg"


def _check_problem(prob) -> None:
    if not isinstance(prob, UFM):
        raise ValueError(f"etf_prediction needs a ufm.UFM, got {type(prob).__name__}")
    if not prob.balanced:
        raise ValueError(f"etf_prediction needs balanced classes (an int n), got counts {prob.counts}")
    if prob.nonneg:
        raise ValueError("etf_prediction needs signed features (nonneg=False): a simplex ETF is not "
                         "nonnegative")
    if prob.d < prob.K - 1:
        raise ValueError(f"d={prob.d} < K-1={prob.K - 1}: a simplex ETF of K={prob.K} vectors needs d >= K-1")
    for name in ("lam_W", "lam_H"):
        if not float(getattr(prob, name)) > 0:
            raise ValueError(f"{name} must be > 0 for the ETF reduction (kappa > 0), got "
                             f"{name}={float(getattr(prob, name))}")
    if prob.loss.out_dim(prob.K) != prob.K:
        raise ValueError(f"etf_prediction needs K={prob.K} logits; the loss has {prob.loss.out_dim(prob.K)} "
                         "(an MSE encoding with D != K)")
    check_permutation_symmetric(prob.loss, prob.K)


def etf_prediction(prob: UFM) -> ETFPrediction:
    r"""The simplex-ETF prediction of a balanced UFM with a permutation-symmetric loss.

    Under the ansatz (rows ``w_k`` a simplex ETF of norm ``a``, ``h_{k,i} = c w_k``,
    ``c = sqrt(lam_W/(n lam_H))``, ``b = beta 1``) the objective is

    .. math::

        \phi_\kappa(g) = \min_\beta\ \ell\big(g(e_y - \tfrac1K\mathbf 1) + \beta\mathbf 1,\ y\big)
            + \tfrac{\lambda_b K}{2}\beta^2 + (K-1)\kappa g, \qquad
        g = \frac{K c a^2}{K-1},\quad \kappa = \sqrt{n\lambda_W\lambda_H},

    (``beta = 0`` without a bias or for a shift-invariant loss; ``lam_b = 0`` for a free bias).
    Its GLOBAL minimum over ``g >= 0`` is found by bracketing the whole range on a grid and
    refining by bisection (:mod:`ufm.etf._reduction`); then ``||w_k||^2 = (K-1) g / (K c)`` and
    ``||h_{k,i}|| = c ||w_k||``. The zero threshold is
    ``kappa* = sup_{g>0} (phi_0(0) - phi_0(g)) / ((K-1) g)`` with ``phi_0`` the loss part.

    This is a prediction, not a theorem: it is the minimizer *within the ansatz*.
    :func:`ufm.etf_verdict` checks it against certified solves. For CE, label smoothing and
    focal loss it equals the closed forms of Zhu et al. (2021) and Zhou et al. (2022).

    Args:
        prob: a balanced :class:`ufm.UFM` with ``d >= K-1``, ``lam_W, lam_H > 0``, signed
            features and a loss symmetric under relabelling the classes (built-in or
            :class:`ufm.CustomLoss`).

    Returns:
        An :class:`ETFPrediction`.

    Raises:
        ValueError: the problem is outside these assumptions (the message says which), the loss
            is not permutation-symmetric, float64 is off, or the reduction is unbounded below.

    References:
        Zhu et al., NeurIPS 2021 (arXiv 2105.02375); Zhou et al., NeurIPS 2022 (arXiv 2210.02192).
    """
    _check_problem(prob)
    K, n = prob.K, prob.n
    lam_W, lam_H = float(prob.lam_W), float(prob.lam_H)
    kappa = math.sqrt(n * lam_W * lam_H)
    c = math.sqrt(lam_W / (n * lam_H))
    bias = _bias_mode(prob)
    lam_b = None if prob.lam_b is None else float(prob.lam_b)
    sol = etf_solve(prob.loss, K, kappa, bias=bias, lam_b=lam_b)
    threshold = etf_zero_threshold(prob.loss, K, bias=bias, lam_b=lam_b)
    a = math.sqrt((K - 1) * sol.g / (K * c))
    return ETFPrediction(value=sol.value, g=sol.g, offset=sol.beta if bias != "none" else 0.0,
                         w_norm=a, h_norm=c * a, zero=sol.zero, kappa=kappa, kappa_threshold=threshold,
                         value_zero=sol.value_zero, bias=bias,
                         shift_invariant=is_shift_invariant(prob.loss, K))


def etf_params(prob: UFM, prediction: ETFPrediction | None = None, *, seed: int | None = None) -> Params:
    r"""The UFM point of the prediction: ``W`` a simplex ETF with row norm ``w_norm``,
    ``h_{k,i} = c w_k``, ``b = offset 1``.

    .. math:: W W^T = a^2 \frac{K}{K-1} P, \qquad H = c\, W^T Y, \qquad b = \beta \mathbf 1

    Args:
        prob: as for :func:`etf_prediction`.
        prediction: ``etf_prediction(prob)`` (computed when omitted).
        seed: a random rotation of the feature space (``None``: the deterministic frame).

    Returns:
        :class:`ufm.Params` whose objective equals ``prediction.value``.

    References:
        Papyan, Han & Donoho, PNAS 2020 (the simplex ETF); Zhu et al., NeurIPS 2021.
    """
    pred = etf_prediction(prob) if prediction is None else prediction
    c = math.sqrt(float(prob.lam_W) / (prob.n * float(prob.lam_H)))
    if pred.zero or pred.w_norm == 0.0:
        W = jnp.zeros((prob.K, prob.d))
    else:
        W = simplex_etf(prob.K, prob.d, pred.w_norm, key_or_seed=seed)
    H = c * jnp.asarray(W).T[:, np.asarray(prob.labels)]
    b = None if prob.lam_b is None else jnp.full((prob.K,), pred.offset, dtype=jnp.float64)
    return Params(jnp.asarray(W, dtype=jnp.float64), H, b)


