r"""The nuclear-norm lemma (docs/theory.md#canonical-objective, #lemma-nuclear-norm), proved in SymPy.

.. math:: \min_{W \tilde H = Z'} \frac{\lambda_W}2\lVert W\rVert_F^2
    + \frac{\lambda_H}2\lVert \tilde H\rVert_F^2 = \sqrt{\lambda_W\lambda_H}\,\lVert Z'\rVert_* ,

attained by the balanced factors ``W = c^{1/2} U S^{1/2}``, ``Ht = c^{-1/2} S^{1/2} V^T``
(``Z' = U S V^T``, ``c = sqrt(lam_H/lam_W)``), with ``W W^T = sqrt(lam_H/lam_W)(Z'Z'^T)^{1/2}`` and
``Ht^T Ht = sqrt(lam_W/lam_H)(Z'^T Z')^{1/2}``. The proofs: the scalar lower bound (a square), its
equality case, the 2 x 2 matrix case with generic rotations, and the Gram identities. They carry
the class-level convex program of ``imbalanced_ce`` (the reduction of the UFM to it).

References:
    Srebro, Rennie & Jaakkola, NeurIPS 2005; Recht, Fazel & Parrilo, SIAM Review 2010.
"""

from __future__ import annotations

import sympy as sp

from proofs_check.catalog._common import lam_H, lam_W
from proofs_check.theorem import Proof

__all__ = ["PROOFS_LEMMA"]

w_s, h_s, z_s = sp.symbols("w h z", real=True)
zp = sp.symbols("z", positive=True)
s1, s2 = sp.symbols("s_1 s_2", positive=True)
th, ph = sp.symbols("theta phi", real=True)


def _rot(a):
    return sp.Matrix([[sp.cos(a), -sp.sin(a)], [sp.sin(a), sp.cos(a)]])


def _balanced_factors():
    """``Z' = U S V^T`` (2 x 2, generic rotations) and ``W = c^{1/2} U S^{1/2}``,
    ``Ht = c^{-1/2} S^{1/2} V^T`` with ``c = sqrt(lam_H/lam_W)``."""
    U, V = _rot(th), _rot(ph)
    S, S_half = sp.diag(s1, s2), sp.diag(sp.sqrt(s1), sp.sqrt(s2))
    c = sp.sqrt(lam_H / lam_W)
    return U * S * V.T, sp.sqrt(c) * U * S_half, S_half * V.T / sp.sqrt(c)


def _balanced_scalar_residuals():
    w = (lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(zp)
    h = (lam_W / lam_H) ** sp.Rational(1, 4) * sp.sqrt(zp)
    mu = sp.sqrt(lam_W * lam_H)
    pen = lam_W / 2 * w**2 + lam_H / 2 * h**2
    return w * h - zp, pen - mu * zp, lam_W * w - mu * h, lam_H * h - mu * w


def _factor_penalty_residuals():
    Zp, W, Ht = _balanced_factors()
    pen = lam_W / 2 * (W.T * W).trace() + lam_H / 2 * (Ht * Ht.T).trace()
    return (*tuple(W * Ht - Zp), pen - sp.sqrt(lam_W * lam_H) * (s1 + s2))


def _factor_gram_residuals():
    Zp, W, Ht = _balanced_factors()
    G_W, G_H = W * W.T, Ht.T * Ht
    return tuple(G_W * G_W - (lam_H / lam_W) * Zp * Zp.T) + tuple(
        G_H * G_H - (lam_W / lam_H) * Zp.T * Zp
    )


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
        "matrix case (2 x 2, generic rotations U, V): W = c^(1/2) U S^(1/2), Ht = c^(-1/2) "
        "S^(1/2) V^T "
        "(c = sqrt(lam_H/lam_W)) factor Z' = U S V^T with penalty sqrt(lam_W lam_H) ||Z'||_*",
        _factor_penalty_residuals,
    ),
    Proof(
        "Gram identities: (W W^T)^2 = (lam_H/lam_W) Z' Z'^T and (Ht^T Ht)^2 = (lam_W/lam_H) Z'^T "
        "Z', i.e. "
        "W W^T = sqrt(lam_H/lam_W)(Z'Z'^T)^(1/2), Ht^T Ht = sqrt(lam_W/lam_H)(Z'^T Z')^(1/2)",
        _factor_gram_residuals,
    ),
)
