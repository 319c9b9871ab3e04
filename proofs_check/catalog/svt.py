r"""The proximal map of the nuclear norm, one singular value at a time (singular-value thresholding).

For ``min_Z (1/2N)||Z - M||^2 + mu||Z||_*`` von Neumann's trace inequality aligns the singular
vectors of ``Z`` with those of ``M``, so the problem splits into one scalar problem per singular
value ``sigma`` of ``M``,

.. math:: \phi(s) = \frac{(s - \sigma)^2}{2N} + \mu s, \quad s \ge 0, \qquad
    s^* = (\sigma - N\mu)_+ ,

which SymPy solves below; ``s*`` and the value ``phi(s*)`` are the expressions that
:func:`svt_prediction` evaluates, with ``mu = sqrt(lam_W lam_H)`` (the nuclear-norm lemma: the
factored penalty is ``sqrt(lam_W lam_H)||W H||_*`` at its minimum). Shared by the per-sample-target
entries (``regression``, ``multilabel``, ``imbalanced_mse``; listed by ``targets``).

References:
    Cai, Candès & Shen, SIAM J. Optim. 2010 (singular-value thresholding); Srebro, Rennie &
    Jaakkola, NeurIPS 2005 (the nuclear-norm lemma).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from proofs_check.catalog._common import lam_H, lam_W
from proofs_check.theorem import Evaluator, Proof

__all__ = ["s", "sig", "Nn", "mu", "phi", "S_STAR", "V_STAR", "MU", "PROOFS_SVT", "SVT_EXPRESSIONS",
           "svt_prediction", "away_from_threshold", "sv_distance", "SVT_WHAT"]

s, sig, Nn, mu = sp.symbols("s sigma N mu", positive=True)
phi = (s - sig) ** 2 / (2 * Nn) + mu * s
s_pos = sig - Nn * mu
S_STAR = sp.Piecewise((s_pos, sig > Nn * mu), (0, True))
V_STAR = sp.Piecewise((phi.subs(s, s_pos), sig > Nn * mu), (sig**2 / (2 * Nn), True))
MU = sp.sqrt(lam_W * lam_H)

PROOFS_SVT = (
    Proof("phi(s) = (s - sigma)^2/(2N) + mu s is stationary at s* = sigma - N mu",
          lambda: sp.diff(phi, s).subs(s, s_pos)),
    Proof("phi is strictly convex (phi'' = 1/N > 0), so s* is its global minimizer when s* > 0",
          lambda: sp.simplify(sp.diff(phi, s, 2) - 1 / Nn) == 0 and (1 / Nn).is_positive),
    Proof("boundary: phi'(0) = mu - sigma/N >= 0 iff sigma <= N mu, then s* = 0 and the value is sigma^2/(2N)",
          lambda: (sp.diff(phi, s).subs(s, 0) - (mu - sig / Nn), phi.subs(s, 0) - sig**2 / (2 * Nn))),
    Proof("value at s*: phi(s*) = mu sigma - N mu^2/2 (continuous with sigma^2/(2N) at sigma = N mu)",
          lambda: (phi.subs(s, s_pos) - (mu * sig - Nn * mu**2 / 2),
                   (mu * sig - Nn * mu**2 / 2 - sig**2 / (2 * Nn)).subs(sig, Nn * mu))),
    Proof("lemma (scalar): w = (lam_H/lam_W)^(1/4) sqrt(z), h = z/w give lam_W/2 w^2 + lam_H/2 h^2 = "
          "sqrt(lam_W lam_H) z, the minimum over w h = z",
          lambda: (lam_W / 2 * ((lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(s)) ** 2
                   + lam_H / 2 * (s / ((lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(s))) ** 2 - MU * s,
                   sp.diff(lam_W / 2 * sig**2 + lam_H / 2 * (s / sig) ** 2, sig).subs(
                       sig, (lam_H / lam_W) ** sp.Rational(1, 4) * sp.sqrt(s)))),
)

SVT_EXPRESSIONS = {"mu": MU, "s*": S_STAR, "value*": V_STAR}


def svt_prediction(ev: Evaluator, M: np.ndarray) -> dict:
    """Minimizer of ``(1/2N)||Z - M||^2 + mu||Z||_*``: each singular value of ``M`` through the
    expressions ``s*`` and ``value*`` (``ev`` evaluates them), then the factor Grams
    ``(Z Z^T)^{1/2}``, ``(Z^T Z)^{1/2}``."""
    U, sv, Vt = np.linalg.svd(M, full_matrices=False)
    st = np.broadcast_to(ev("s*", sigma=sv), sv.shape)
    vals = np.broadcast_to(ev("value*", sigma=sv), sv.shape)
    return {"Z": (U * st) @ Vt, "value": float(np.sum(vals)),
            "ZZt_sqrt": (U * st) @ U.T, "ZtZ_sqrt": (Vt.T * st) @ Vt}


SVT_WHAT = ("s/tau - 1 for each nonzero singular value s, tau the SVT threshold (positive: the direction is "
            "kept, negative: shrunk to 0)")


def sv_distance(M: np.ndarray, tau: float) -> np.ndarray:
    """``s/tau - 1`` for every nonzero singular value ``s`` of ``M`` (the zeros of a rank-deficient
    ``M`` are left out, as in :func:`away_from_threshold`): the signed distances to the SVT threshold."""
    sv = np.linalg.svd(M, compute_uv=False)
    return sv[sv > 1e-12 * max(1.0, tau)] / tau - 1


def away_from_threshold(sv: np.ndarray, tau: float, what: str) -> tuple[bool, str]:
    """``(False, reason)`` when a nonzero singular value in ``sv`` is within 5% of the threshold
    ``tau`` (the minimizer is degenerate there), else ``(True, "")``."""
    sv = sv[sv > 1e-12 * max(1.0, tau)]
    if np.all(np.abs(sv / tau - 1) > 0.05):
        return True, ""
    return False, f"a singular value of {what} within 5% of the threshold {tau:.4g} (degenerate minimizer)"
