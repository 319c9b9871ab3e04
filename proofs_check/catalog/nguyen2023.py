r"""Nonnegative features (Nguyen, Levie, Lienen, Kutyniok & Huellermeier, ICLR 2023,
arXiv 2206.05530, section 3).

Features after a ReLU are nonnegative. With ``H >= 0`` and ``d >= K`` the class means of a
minimizer form an *orthogonal frame* (disjoint supports), ``h_k = rho e_k`` up to a permutation
of coordinates, and the classifier rows form a simplex ETF aligned with the centred means,
``w_k = a kp (e_k - 1/K 1)`` with ``kp = sqrt(K/(K-1))`` (``||e_k - 1/K 1|| = 1/kp``).

Reduction (derived here for ufm's canonical objective): the margin is ``delta = a rho kp``, the
penalty ``lam_W/2 K a^2 + lam_H/2 n K rho^2 >= K sqrt(n lam_W lam_H) a rho = (cc/kp) delta``
(equality at ``lam_W a^2 = n lam_H rho^2``), so with ``beta = cc/kp + alpha(K-1)/K``,
``cc = K sqrt(n lam_W lam_H)``:

.. math:: \phi(\delta) = \log(1 + (K-1)e^{-\delta}) + \beta\delta,\qquad
    \delta^* = \log\big((K-1)(1/\beta - 1)\big)\ \text{iff}\ \beta < (K-1)/K.

The nonnegative landscape has spurious local minima (seen here: 3 of 8 random starts of a
K = 3 instance ended at a higher critical point), so the check keeps the best of several starts.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import ufm
from proofs_check import closed_forms as cf
from proofs_check.catalog._common import K, P, alpha, evaluate, lam_H, lam_W, n
from proofs_check.theorem import GTOL, Citation, Proof, Theorem

NGUYEN = Citation("Nguyen et al.", 2023, "ICLR", "2206.05530")
delta, bet, a, rho = sp.symbols("delta beta a rho", positive=True)
kp = sp.sqrt(K / (K - 1))
cc = K * sp.sqrt(n * lam_W * lam_H)
beta_expr = cc / kp + alpha * (K - 1) / K
phi = sp.log(1 + (K - 1) * sp.exp(-delta)) + bet * delta
delta_star = sp.log((K - 1) * (1 / bet - 1))

PROOFS = (
    Proof("||e_k - 1/K 1||^2 = (K-1)/K = 1/kp^2", lambda: ((1 - 1 / K) ** 2 + (K - 1) / K**2) - 1 / kp**2),
    Proof("margin: w_k . h_k - w_j . h_k = a kp rho (1 - 1/K) - a kp rho (-1/K) = a rho kp",
          lambda: (a * kp * rho * (1 - 1 / K) - a * kp * rho * (-1 / K)) - a * rho * kp),
    Proof("balanced penalty: at lam_W a^2 = n lam_H rho^2, lam_W/2 K a^2 + lam_H/2 n K rho^2 = "
          "K sqrt(n lam_W lam_H) a rho",
          lambda: (lam_W / 2 * K * a**2 + lam_H / 2 * n * K * rho**2).subs(rho, a * sp.sqrt(lam_W / (n * lam_H)))
          - K * sp.sqrt(n * lam_W * lam_H) * a * (a * sp.sqrt(lam_W / (n * lam_H)))),
    Proof("phi'(delta*) = 0 at delta* = log((K-1)(1/beta - 1))", lambda: sp.diff(phi, delta).subs(delta, delta_star)),
    Proof("threshold: delta* = 0 at beta = (K-1)/K", lambda: delta_star.subs(bet, (K - 1) / K)),
    Proof("kp^2 = K/(K-1) = 1 + 1/(K-1) > 1, so kp < K/(K-1): per unit of penalty the nonnegative "
          "model buys a smaller margin than the signed one (whose factor is K/(K-1))",
          lambda: kp**2 - (1 + 1 / (K - 1))),
)


def _predict(prob):
    K_ = prob.K
    alpha_v = float(prob.loss.alpha) if isinstance(prob.loss, ufm.LabelSmoothing) else 0.0
    b = evaluate(beta_expr, prob, alpha=alpha_v)
    d = evaluate(delta_star.subs(bet, b), prob) if b < (K_ - 1) / K_ else 0.0
    kpv = np.sqrt(K_ / (K_ - 1))
    lw, lh, nv = float(prob.lam_W), float(prob.lam_H), prob.n
    a2 = d / kpv * np.sqrt(lh * nv / lw)
    r2 = d / kpv * np.sqrt(lw / (lh * nv))
    data = np.log1p((K_ - 1) * np.exp(-d)) + alpha_v * (K_ - 1) * d / K_
    q = {"value": data + (b - alpha_v * (K_ - 1) / K_) * d,
         "W_gram": a2 * K_ / (K_ - 1) * P(K_), "Hbar_gram": r2 * np.eye(K_),
         "within_class_spread": 0.0}
    if prob.has_bias and float(prob.lam_b) > 0:
        q["bias"] = np.zeros(K_)
    return q


def _solve(prob):
    sol = ufm.minimize(prob, gtol=GTOL, restarts=6, throw=False)
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged}


def _assume(prob):
    if not prob.nonneg:
        return False, "needs nonneg=True"
    if not isinstance(prob.loss, (ufm.CrossEntropy, ufm.LabelSmoothing)) or not prob.balanced:
        return False, "CE or LS, balanced classes"
    if prob.d < prob.K:
        return False, f"an orthogonal frame needs d >= K (got d={prob.d})"
    if prob.has_bias and float(prob.lam_b) == 0.0:
        return False, "no bias or a regularized one"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "lam_W, lam_H > 0"
    return True, ""


POSITIVE_FRAME = Theorem(
    name="Nonnegative features: orthogonal-frame means, ETF classifier, margin log((K-1)(1/beta-1))",
    citation=NGUYEN,
    tag="derived",
    statement=("H >= 0, d >= K, balanced, CE or LS(alpha): class means form an orthogonal frame, "
               "W a simplex ETF with w_k parallel to h_k - h_G, margin delta* = log((K-1)(1/beta-1)) "
               "with beta = K sqrt(n lam_W lam_H)/kp + alpha(K-1)/K, nonzero iff beta < (K-1)/K; "
               "||w_k|| ||h_k|| = delta*/kp and lam_W ||W||^2 = lam_H ||H||^2. The geometry is the "
               "paper's; the explicit scale is derived here."),
    assumptions=_assume,
    predict=_predict,
    instances=lambda: [ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2, nonneg=True),
                       ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(0.2), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2, nonneg=True)],
    random_instance=lambda rng: ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=float(rng.uniform(1e-3, 5e-2)),
                                        lam_H=float(rng.uniform(1e-3, 5e-2)), lam_b=1e-2, nonneg=True),
    measure=cf.measure,
    solve=_solve,
    expressions={"kp": kp, "beta": beta_expr, "delta*": delta_star},
    proofs=PROOFS,
)

THEOREMS = [POSITIVE_FRAME]
