r"""Conversions between papers' regularization scalings and ufm's canonical objective.

ufm's canonical objective (Zhu et al., NeurIPS 2021; ``docs/theory.md#canonical-objective``:

.. math::
    f = \frac1N\sum_i \ell(W h_i + b, y_i) + \frac{\lambda_W}2\lVert W\rVert_F^2
        + \frac{\lambda_H}2\lVert H\rVert_F^2 + \frac{\lambda_b}2\lVert b\rVert^2

Each ``from_*`` function takes a paper's numbers and returns ufm's ``(lam_W, lam_H[, lam_b])``
such that the paper's objective equals ``factor * f`` for a constant ``factor`` (so both have the
same minimizers); each ``to_*`` function is its inverse. The factor is returned by the matching
``*_factor`` function, which the tests use to check the identity of the objectives.

- Tirer & Bruna, ICML 2022 (arXiv 2202.08087), balanced MSE:
  ``(1/2Kn)||WH - Y||^2 + lam_W^T/(2K)||W||^2 + lam_H^T/(2Kn)||H||^2``; this equals ``f`` (factor
  1) with ``lam_W = lam_W^T / K`` and ``lam_H = lam_H^T / (K n)``.
- Sum instead of mean over samples, ``sum_i loss + lam'/2 ||.||^2``: ``= N f`` with
  ``lam = lam' / N``.
- No 1/2 on the penalties, ``mean loss + lam' ||.||^2``: ``= f`` with ``lam = 2 lam'``.
"""

from __future__ import annotations

from ufm._internal.validation import check_int, check_nonneg

__all__ = [
    "from_tirer_bruna",
    "to_tirer_bruna",
    "from_sum_loss",
    "to_sum_loss",
    "sum_loss_factor",
    "from_no_half",
    "to_no_half",
]


def _check(**lams):
    for name, value in lams.items():
        if value is not None:
            check_nonneg(name, value)


def from_tirer_bruna(lam_W_T: float, lam_H_T: float, *, K: int, n: int) -> tuple[float, float]:
    r"""Tirer & Bruna's ``(lam_W^T, lam_H^T)`` -> ufm's ``(lam_W, lam_H) = (lam_W^T/K, lam_H^T/(K n))``.

    Their objective ``(1/2Kn)||WH - Y||^2 + lam_W^T/(2K)||W||^2 + lam_H^T/(2Kn)||H||^2`` is then
    exactly ufm's MSE objective (factor 1). Balanced classes, ``n`` samples each.

    References: Tirer & Bruna, "Extended unconstrained features model for exploring deep neural
    collapse", ICML 2022 (arXiv 2202.08087).
    """
    check_int("K", K, 2)
    check_int("n", n, 1)
    _check(lam_W_T=lam_W_T, lam_H_T=lam_H_T)
    return lam_W_T / K, lam_H_T / (K * n)


def to_tirer_bruna(lam_W: float, lam_H: float, *, K: int, n: int) -> tuple[float, float]:
    r"""Inverse of :func:`from_tirer_bruna`: ``(lam_W^T, lam_H^T) = (K lam_W, K n lam_H)``."""
    check_int("K", K, 2)
    check_int("n", n, 1)
    _check(lam_W=lam_W, lam_H=lam_H)
    return K * lam_W, K * n * lam_H


def from_sum_loss(*lams: float, N: int) -> tuple[float, ...]:
    r"""A sum-over-samples objective ``sum_i loss + lam'/2 ||.||^2`` -> ufm's ``lam = lam'/N``.

    The sum objective equals ``N f`` (see :func:`sum_loss_factor`). Pass the paper's lams in
    any order (``lam_W', lam_H'[, lam_b']``); they come back in the same order.
    """
    check_int("N", N, 1)
    _check(**{f"lam[{i}]": v for i, v in enumerate(lams)})
    return tuple(v / N for v in lams)


def to_sum_loss(*lams: float, N: int) -> tuple[float, ...]:
    r"""Inverse of :func:`from_sum_loss`: ``lam' = N lam``."""
    check_int("N", N, 1)
    _check(**{f"lam[{i}]": v for i, v in enumerate(lams)})
    return tuple(v * N for v in lams)


def sum_loss_factor(N: int) -> float:
    """The sum-loss objective is ``N`` times ufm's canonical one."""
    return float(check_int("N", N, 1))


def from_no_half(*lams: float) -> tuple[float, ...]:
    r"""Penalties written without the 1/2, ``lam' ||.||^2`` -> ufm's ``lam = 2 lam'`` (factor 1)."""
    _check(**{f"lam[{i}]": v for i, v in enumerate(lams)})
    return tuple(2.0 * v for v in lams)


def to_no_half(*lams: float) -> tuple[float, ...]:
    r"""Inverse of :func:`from_no_half`: ``lam' = lam / 2``."""
    _check(**{f"lam[{i}]": v for i, v in enumerate(lams)})
    return tuple(0.5 * v for v in lams)
