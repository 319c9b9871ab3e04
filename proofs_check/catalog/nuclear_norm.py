r"""The nuclear-norm lemma (docs/theory.md#canonical-objective, #lemma-nuclear-norm), proved in SymPy.

.. math:: \min_{W \tilde H = Z'} \frac{\lambda_W}2\lVert W\rVert_F^2
    + \frac{\lambda_H}2\lVert \tilde H\rVert_F^2 = \sqrt{\lambda_W\lambda_H}\,\lVert Z'\rVert_* ,

attained by the balanced factors ``W = c^{1/2} U S^{1/2}``, ``Ht = c^{-1/2} S^{1/2} V^T``
(``Z' = U S V^T``, ``c = sqrt(lam_H/lam_W)``), with ``W W^T = sqrt(lam_H/lam_W)(Z'Z'^T)^{1/2}`` and
``Ht^T Ht = sqrt(lam_W/lam_H)(Z'^T Z')^{1/2}``. The proofs: the scalar lower bound (a square), its
equality case, and for ``Z'`` of any size and rank (noncommutative symbols reduced by
``U^T U = V^T V = I``) the balanced factors, their penalty and the Gram identities. The matrix
lower bound (``||W Ht||_* <= ||W||_F ||Ht||_F``, then the scalar bound) is the cited half. They
carry the class-level convex program of ``imbalanced_ce`` (the reduction of the UFM to it).

References:
    Srebro, Rennie & Jaakkola, NeurIPS 2005; Recht, Fazel & Parrilo, SIAM Review 2010.
"""

from __future__ import annotations

import sympy as sp

from proofs_check.catalog._common import lam_H, lam_W
from proofs_check.catalog._structured import reduce_words
from proofs_check.theorem import Proof

__all__ = ["PROOFS_LEMMA"]

w_s, h_s, z_s = sp.symbols("w h z", real=True)
zp = sp.symbols("z", positive=True)
trS = sp.symbols("tr_S", positive=True)  # trace of S: ||Z'||_*
# Z' = U S V^T of any size and rank r: U, V with orthonormal columns (U^T U = V^T V = I_r), S and
# S^{1/2} diagonal; as noncommutative symbols (Ut = U^T, Vt = V^T, Sh = S^{1/2})
U, Ut, V, Vt, S, Sh = sp.symbols("U U^T V V^T S S^(1/2)", commutative=False)
RELATIONS = {Ut * U: 1, Vt * V: 1, Sh * Sh: S}


def _balanced_factors():
    """``Z' = U S V^T`` (any size) and ``W = c^{1/2} U S^{1/2}``, ``Ht = c^{-1/2} S^{1/2} V^T`` with
    ``c = sqrt(lam_H/lam_W)``; with their transposes."""
    c = sp.sqrt(lam_H / lam_W)
    W, Ht = sp.sqrt(c) * U * Sh, Sh * Vt / sp.sqrt(c)
    return U * S * Vt, W, Ht, sp.sqrt(c) * Sh * Ut, V * Sh / sp.sqrt(c)


def _balanced_scalar_residuals():
    w = (lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(zp)
    h = (lam_W / lam_H) ** sp.Rational(1, 4) * sp.sqrt(zp)
    mu = sp.sqrt(lam_W * lam_H)
    pen = lam_W / 2 * w**2 + lam_H / 2 * h**2
    return w * h - zp, pen - mu * zp, lam_W * w - mu * h, lam_H * h - mu * w


def _factor_penalty_residuals():
    """``W Ht = Z'``, and the penalty by ``tr(W^T W) = c tr(S^{1/2} U^T U S^{1/2}) = c tr S`` (the
    trace is linear: the reduced word times ``tr S``)."""
    Zp, W, Ht, Wt, Htt = _balanced_factors()
    c = sp.sqrt(lam_H / lam_W)
    wtw, hht = reduce_words(Wt * W, RELATIONS), reduce_words(Ht * Htt, RELATIONS)
    trace = lambda word: word.subs(S, trS)  # a scalar times S: tr(c S) = c tr S
    pen = lam_W / 2 * trace(wtw) + lam_H / 2 * trace(hht)
    return (reduce_words(W * Ht - Zp, RELATIONS), wtw - c * S, hht - S / c,
            pen - sp.sqrt(lam_W * lam_H) * trS)


def _factor_gram_residuals():
    Zp, W, Ht, Wt, Htt = _balanced_factors()
    G_W, G_H = W * Wt, Htt * Ht
    ZpT = V * S * Ut  # Z'^T
    return (reduce_words(G_W * G_W - (lam_H / lam_W) * Zp * ZpT, RELATIONS),
            reduce_words(G_H * G_H - (lam_W / lam_H) * ZpT * Zp, RELATIONS))


PROOFS_LEMMA = (
    Proof(
        "lower bound: lam_W/2 w^2 + lam_H/2 h^2 - sqrt(lam_W lam_H) w h = (sqrt(lam_W) w - "
        "sqrt(lam_H) h)^2/2 "
        ">= 0, so the penalty of any factorization w h = z is >= sqrt(lam_W lam_H)|z|",
        lambda: (
            lam_W / 2 * w_s**2
            + lam_H / 2 * h_s**2
            - sp.sqrt(lam_W * lam_H) * w_s * h_s
            - (sp.sqrt(lam_W) * w_s - sp.sqrt(lam_H) * h_s) ** 2 / 2
        ),
    ),
    Proof(
        "equality at w = (lam_H/lam_W)^(1/4) sqrt z, h = (lam_W/lam_H)^(1/4) sqrt z: w h = z, "
        "the penalty is sqrt(lam_W lam_H) z, and the Lagrangian is stationary with multiplier "
        "sqrt(lam_W lam_H)",
        lambda: _balanced_scalar_residuals(),
    ),
    Proof(
        "matrix case (any size and rank; U, V with orthonormal columns, as noncommutative symbols "
        "reduced by U^T U = V^T V = I, S^(1/2) S^(1/2) = S): W = c^(1/2) U S^(1/2), Ht = c^(-1/2) "
        "S^(1/2) V^T (c = sqrt(lam_H/lam_W)) factor Z' = U S V^T, W^T W = c S, Ht Ht^T = S/c, and the "
        "penalty is sqrt(lam_W lam_H) tr S = sqrt(lam_W lam_H) ||Z'||_*",
        _factor_penalty_residuals,
    ),
    Proof(
        "Gram identities: (W W^T)^2 = (lam_H/lam_W) Z' Z'^T and (Ht^T Ht)^2 = (lam_W/lam_H) Z'^T "
        "Z', i.e. "
        "W W^T = sqrt(lam_H/lam_W)(Z'Z'^T)^(1/2), Ht^T Ht = sqrt(lam_W/lam_H)(Z'^T Z')^(1/2)",
        _factor_gram_residuals,
    ),
)
