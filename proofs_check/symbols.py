r"""SymPy symbols of the canonical objective (docs/theory.md#canonical-objective), shared by the catalog.

``K`` classes, ``n`` samples per class (balanced), ``N`` samples in all, the penalties
``lambda_W``, ``lambda_H``, ``lambda_b``, the label-smoothing ``alpha`` and focal ``gamma``
parameters and the ETF logit gap ``g``. A symbol's name is the key under which
:func:`proofs_check.measure.problem_numbers` gives its value for a problem, so an expression in
these symbols evaluates at a problem's numbers.

.. math:: \kappa = \sqrt{n\lambda_W\lambda_H}, \qquad c = \sqrt{\lambda_W/(n\lambda_H)} .
"""

from __future__ import annotations

import sympy as sp

__all__ = ["K", "n", "N", "lam_W", "lam_H", "lam_b", "alpha", "gamma", "g", "kappa_expr", "c_expr"]

# Positive symbols of the canonical objective (docs/theory.md#canonical-objective).
K, n, N = sp.symbols("K n N", positive=True)
lam_W, lam_H, lam_b = sp.symbols("lambda_W lambda_H lambda_b", positive=True)
alpha, gamma = sp.symbols("alpha gamma", nonnegative=True)
g = sp.symbols("g", real=True)  # logit gap (true class minus another class)
kappa_expr = sp.sqrt(n * lam_W * lam_H)
c_expr = sp.sqrt(lam_W / (n * lam_H))
