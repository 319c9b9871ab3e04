"""Deep ReLU models: certification on the activation piece (the kinks of deep neural collapse)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ufm.solvers._minimize import minimize

__all__ = ["polish_relu"]


def polish_relu(prob: DeepUFM, params: DeepParams, *, rtol: float = 1e-3, gtol: float = 1e-12,
                max_newton: int = 200, throw: bool = True):
    r"""Certify a near-minimizer of a ReLU :class:`DeepUFM` on its activation piece.

    Deep-neural-collapse points of ReLU models sit on kinks: the orthogonal frames of the hidden
    class means have exact zeros, where ``relu`` is not differentiable. A gradient method then
    approaches the kink with a gradient norm that does not vanish (about ``1e-6`` relative), so
    :func:`ufm.minimize` cannot reach a ``1e-12`` certificate on ``prob`` itself. This function

    1. freezes the activation pattern ``M_l = 1[Z_l > rtol max|Z_l|]`` of ``params``
       (:meth:`DeepUFM.on_pattern`), a smooth (polynomial) piece of the objective;
    2. runs :func:`ufm.minimize` on that piece from ``params`` (Newton polish, certificate
       ``gtol``);
    3. checks that the result lies on the same piece: every pre-activation entry with
       ``M_l = 1`` is ``> 0`` and every other entry is ``<= 1e-8 max|Z_l|``, so that ReLU and the
       frozen pattern give the same objective (``pattern_gap``, the difference, is reported).

    Args:
        prob: a DeepUFM (any activation; for ``"linear"`` step 1 is skipped).
        params: a near-minimizer, e.g. ``ufm.minimize(prob, throw=False).params``.
        rtol: pre-activations ``Z_l <= rtol max|Z_l|`` are treated as inactive; the default
            ``1e-3`` is far above the ``~1e-6`` accuracy of the first-order stage.
        gtol, max_newton: passed to :func:`ufm.minimize` for the piece.
        throw: raise :class:`ufm.SolveError` when the piece's solve does not converge.

    Returns:
        The piece's :class:`ufm.Solution`, with ``value`` replaced by ``prob.objective`` at the
        polished point and ``stats["pattern_consistent"]`` (bool) and
        ``stats["pattern_gap"]`` (the largest ``|f_piece - f|``) added.

    References:
        Bertsekas, Nonlinear Programming (active-set identification then Newton on the
        identified manifold); the kinks of deep neural collapse: Súkeník, Mondelli & Lampert,
        NeurIPS 2023 (arXiv 2305.13165).
    """
    piece = prob if (prob.activation == "linear" or prob.pattern is not None) else prob.on_pattern(params, rtol)
    sol = minimize(piece, params0=params, gtol=gtol, max_newton=max_newton, throw=throw)
    consistent = True
    if piece.pattern is not None:
        pre, _ = piece.layers(sol.params)
        for M, Z in zip(piece.pattern, pre[:-1]):
            M, Z = np.asarray(M), np.asarray(Z)
            consistent &= bool(np.all(Z[M > 0] > 0) and np.all(Z[M == 0] <= 1e-8 * np.max(np.abs(Z))))
    value = float(prob.objective(sol.params))
    stats = dict(sol.stats, pattern_consistent=consistent, pattern_gap=abs(value - sol.value))
    return dataclasses.replace(sol, value=value, stats=stats)
