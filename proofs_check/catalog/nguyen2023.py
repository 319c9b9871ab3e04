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
from proofs_check.catalog._common import K, P, alpha, away_from, lam_H, lam_W, n
from proofs_check.catalog._structured import dot
from proofs_check.measure import measure_ufm
from proofs_check.theorem import GTOL, Citation, Proof, Theorem, Threshold, problem_numbers

NGUYEN = Citation("Nguyen et al.", 2023, "ICLR", "2206.05530")
delta, bet, a, rho = sp.symbols("delta beta a rho", positive=True)
kp = sp.sqrt(K / (K - 1))
cc = K * sp.sqrt(n * lam_W * lam_H)
beta_expr = cc / kp + alpha * (K - 1) / K
phi = sp.log(1 + (K - 1) * sp.exp(-delta)) + bet * delta
delta_star = sp.log((K - 1) * (1 / bet - 1))
threshold = (K - 1) / K  # of beta: the zero solution is optimal iff beta >= (K-1)/K
w_norm2 = delta / kp * sp.sqrt(n * lam_H / lam_W)  # ||w_k||^2 = a^2 at margin delta
h_norm2 = delta / kp * sp.sqrt(lam_W / (n * lam_H))  # ||h_k||^2 = rho^2 at margin delta


def _frame_residuals():
    """Every K: w_k = a kp (e_k - 1/K 1), h_k = rho e_k, inner products in the span of e_i, e_j
    (i != j) and 1, where e_i . e_j = 0, e_i . 1 = 1 and 1 . 1 = K."""
    c_i, c_j = (1, 0, -1 / K), (0, 1, -1 / K)  # e_i - 1/K 1, e_j - 1/K 1
    w_i, w_j = tuple(a * kp * v for v in c_i), tuple(a * kp * v for v in c_j)
    h_i = (rho, 0, 0)
    return (dot(c_i, c_i, K) - 1 / kp**2,
            dot(w_i, h_i, K) - dot(w_j, h_i, K) - a * rho * kp,
            dot(w_i, w_i, K) - a**2,
            dot(w_i, w_j, K) - a**2 * (-1 / (K - 1)))


PROOFS = (
    Proof("frame (every K; inner products in the span of e_k, e_j, 1): ||e_k - 1/K 1||^2 = 1/kp^2, every margin "
          "w_k.h_k - w_j.h_k = a rho kp, and w_k.w_j = a^2 (-1/(K-1)) for j != k (a simplex ETF of norm a)",
          _frame_residuals),
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


def _variables(prob):
    alpha_v = float(prob.loss.alpha) if isinstance(prob.loss, ufm.LabelSmoothing) else 0.0
    return {**problem_numbers(prob), "alpha": alpha_v}


def _assemble(prob, ev):
    b = ev("beta")
    d = ev.get("delta*") if b < ev("threshold") else 0.0
    K_ = prob.K
    q = {"value": ev("f(delta)", delta=d),
         "W_gram": ev("||w_k||^2", delta=d) * K_ / (K_ - 1) * P(K_), "Hbar_gram": ev("||h_k||^2", delta=d) * np.eye(K_),
         "within_class_spread": 0.0}
    if prob.has_bias and float(prob.lam_b) > 0:
        q["bias"] = np.zeros(K_)
    return q


def _solve(prob):
    sol = ufm.minimize(prob, gtol=GTOL, starts=6, throw=False)
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
    ev = POSITIVE_FRAME.evaluator(prob) if "POSITIVE_FRAME" in globals() else None
    return away_from(ev("beta"), ev("threshold"), "beta") if ev is not None else (True, "")


def beta_distance(prob: ufm.UFM) -> float:
    """``beta/((K-1)/K) - 1`` (the expressions): positive beyond the threshold (the zero solution)."""
    ev = POSITIVE_FRAME.evaluator(prob)
    return ev("beta") / ev("threshold") - 1


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
    assemble=_assemble,
    instances=lambda: [ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2, nonneg=True),
                       ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(0.2), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2,
                               nonneg=True),
                       # beta = 0.80 > (K-1)/K = 2/3: the zero solution
                       ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=0.23, lam_H=0.23, lam_b=1e-2,
                               nonneg=True)],
    random_instance=lambda rng: ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=float(rng.uniform(1e-3, 5e-2)),
                                        lam_H=float(rng.uniform(1e-3, 5e-2)), lam_b=1e-2, nonneg=True),
    measure=measure_ufm,
    solve=_solve,
    expressions={"beta": beta_expr, "threshold": threshold, "delta*": delta_star, "||w_k||^2": w_norm2,
                 "||h_k||^2": h_norm2, "f(delta)": phi},
    proofs=PROOFS,
    variables=_variables,
    thresholds=(Threshold(beta_distance, "beta K/(K-1) - 1 (positive: the zero solution)"),),
    assumed=("the class means of every global minimizer form an orthogonal frame and W a simplex ETF "
             "aligned with them (Nguyen et al. 2023, section 3); the proofs reduce the objective on that "
             "ansatz",),
)

THEOREMS = [POSITIVE_FRAME]
