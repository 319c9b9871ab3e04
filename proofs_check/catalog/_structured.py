r"""Structured arguments that let the catalog's proofs keep their sizes symbolic (siblings only).

- :class:`IJ`: the matrices ``a I_K + b J_K`` (``J = 11^T``) with ``K`` a symbol. The family is
  closed under products because ``J^2 = K J``; a member has ``a + b`` on the diagonal and ``b``
  off it, and eigenvalues ``a + K b`` (on ``1``) and ``a`` (``K - 1`` times, on ``1^perp``, where
  ``J`` vanishes). The simplex-ETF Gram ``P = I - J/K``, the one-hot targets and the ``+-1`` code
  ``2I - J`` are members, so identities between them hold for every ``K`` once their two
  coefficients agree.
- :func:`dot`: inner products of vectors in the span of ``e_i``, ``e_j`` (``i != j``) and ``1``
  in dimension ``K`` (``e_i . e_j = 0``, ``e_i . 1 = 1``, ``1 . 1 = K``).
- :func:`reduce_words`: products of matrices of any size as noncommutative symbols, reduced by
  their defining relations (``U^T U = I``, ``S^{1/2} S^{1/2} = S``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

__all__ = ["IJ", "dot", "E_I", "E_J", "ONE", "reduce_words"]


@dataclass(frozen=True)
class IJ:
    """``a I_K + b J_K`` with symbolic ``K`` (``a``, ``b`` SymPy expressions)."""

    a: Any
    b: Any
    k: Any

    def __add__(self, other: "IJ") -> "IJ":
        return IJ(self.a + other.a, self.b + other.b, self.k)

    def __sub__(self, other: "IJ") -> "IJ":
        return IJ(self.a - other.a, self.b - other.b, self.k)

    def scale(self, c: Any) -> "IJ":
        """``c (a I + b J)``."""
        return IJ(c * self.a, c * self.b, self.k)

    def __matmul__(self, other: "IJ") -> "IJ":
        """``(a I + b J)(a' I + b' J) = a a' I + (a b' + b a' + K b b') J`` (``J^2 = K J``)."""
        return IJ(self.a * other.a, self.a * other.b + self.b * other.a + self.k * self.b * other.b, self.k)

    def entries(self) -> tuple:
        """``(diagonal entry, off-diagonal entry)``."""
        return self.a + self.b, self.b

    def eigenvalues(self) -> tuple:
        """``((a + K b, 1), (a, K - 1))``: ``(eigenvalue, multiplicity)``."""
        return (self.a + self.k * self.b, 1), (self.a, self.k - 1)

    def frobenius2(self) -> Any:
        """``||a I + b J||_F^2`` from the entries: ``K (a+b)^2 + K(K-1) b^2``."""
        diag, off = self.entries()
        return self.k * diag**2 + self.k * (self.k - 1) * off**2

    def coefficients(self) -> tuple:
        """``(a, b)``: two members are equal iff both coefficients agree (``I``, ``J`` independent
        for ``K >= 2``)."""
        return self.a, self.b


E_I, E_J, ONE = (1, 0, 0), (0, 1, 0), (0, 0, 1)


def dot(u: tuple, v: tuple, k: Any) -> Any:
    """``u . v`` for ``u = u_0 e_i + u_1 e_j + u_2 1`` (and ``v`` alike) in ``R^K``, ``i != j``."""
    gram = ((1, 0, 1), (0, 1, 1), (1, 1, k))  # of the basis e_i, e_j, 1 (coordinates, not K-vectors)
    return sp.expand(sum(u[r] * gram[r][c] * v[c] for r in range(3) for c in range(3)))


def reduce_words(expr: Any, relations: dict) -> Any:
    """Expand ``expr`` (noncommutative symbols) and apply ``relations`` (``{word: value}``) until
    nothing changes."""
    expr = sp.expand(expr)
    while True:
        new = sp.expand(expr.subs(relations))
        if new == expr:
            return new
        expr = new
