r"""The UFM landscape when the feature dimension equals the number of classes, ``d = K`` (Shen & Gu,
arXiv 2407.10702, 2024).

Zhu et al. (NeurIPS 2021) proved that the regularized CE UFM is a strict saddle function for
``d > K`` (every critical point is a global minimizer or has a direction of negative curvature);
Shen & Gu prove the same at ``d = K`` for the CE and the MSE UFMs (their abstract and summaries
were read: every critical point is either a global minimum or a strict saddle that negative
curvature escapes; no spurious local minima). The statement is the paper's (tag **paper**); which
bias term their models carry was not read, so the CE check is run without a bias and with a
regularized one (Zhu et al.'s model), and the MSE check without a bias.

**The check (measured).** :func:`ufm.landscape.census` with ``order="first"``: plain descent from
random starts (two entry scales, one of them near the origin), each end point classified by its
free Hessian (``"minimum"``, ``"saddle"``: a negative eigenvalue, ``"degenerate"``: a zero one
beyond the rotation symmetry) and given its gap to :func:`ufm.global_certificate`'s lower bound,
which vanishes at a global minimizer when ``d >= K``. The theorem predicts: no end point of kind
``"minimum"`` with a relative gap above ``1e-9`` (no spurious minimum, judged against the proven
bound, not a predicted value), no ``"degenerate"`` end point with a positive gap (every non-global
critical point is a *strict* saddle), and at least one certified minimum. Default run: one
instance, 6 starts; ``ufm verify --all`` adds ``K = 4``, a bias, the MSE UFM and more starts.

**The origin (proved, every K, n).** The origin is a critical point of every instance. Its Hessian
restricted to a top singular pair of the logit gradient ``G`` (``sigma = ||G||_2 = 1/(K sqrt(n))``
for CE and for MSE) is ``[[lam_W, -sigma], [-sigma, lam_H]]``, whose smallest eigenvalue
``(lam_W + lam_H)/2 - sqrt(((lam_W - lam_H)/2)^2 + 1/(K^2 n))`` is negative exactly when
``kappa = sqrt(n lam_W lam_H) < 1/K``: below that threshold the origin is a strict saddle, above it
a strict local minimum (for CE, no bias: Zhu et al.'s zero solution, the global minimizer). The row
compares this closed form with the dense Hessian at the origin; the instances sit on both sides of
the threshold.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import K, lam_H, lam_W, n
from proofs_check.catalog.zhu2021 import kappa_distance
from proofs_check.theorem import Citation, Proof, Theorem, Threshold

__all__ = ["THEOREMS", "SHEN_GU", "CE_SQUARE", "CE_SQUARE_SLOW", "MSE_SQUARE_SLOW"]

SHEN_GU = Citation(
    "Shen & Gu", 2024, "preprint", "2407.10702",
    what=("at d = K the CE and MSE UFMs are strict saddle functions: every critical point is a global "
          "minimizer or a strict saddle (the abstract and summaries were read; the models' bias terms were "
          "not); the census and its counts are ufm's measurement"),
    also=(Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375",
                   what="the same for d > K, and the regularized CE UFM with a bias"),))

GAP_TOL = 1e-9
GTOL = 1e-11

# The origin is a critical point of every instance (CE and MSE, with or without a bias). With
# G = grad of the data term in the logits at Z = 0 (-(P Y)/N for CE, -Y/N for MSE, top singular value
# sqrt(n)/N = 1/(K sqrt(n)) for both), the Hessian's quadratic form in (dW, dH) is
# lam_W ||dW||^2 + lam_H ||dH||^2 + 2 <G, dW dH>: on each top singular pair it is the 2 x 2 block
# [[lam_W, -sigma], [-sigma, lam_H]]; the data term's own curvature enters only at fourth order (and
# in the bias, where it adds a positive semidefinite block).
sig, lam = sp.symbols("sigma lambda", positive=True)
SIGMA2 = 1 / (K**2 * n)
_MIN_EIG_SIGMA = (lam_W + lam_H) / 2 - sp.sqrt(((lam_W - lam_H) / 2) ** 2 + sig**2)
MIN_EIG_ORIGIN = _MIN_EIG_SIGMA.subs(sig, 1 / (K * sp.sqrt(n)))
EXPRESSIONS = {"min Hessian eigenvalue at the origin": MIN_EIG_ORIGIN}
_BLOCK = sp.Matrix([[lam_W, -sig], [-sig, lam_H]])
PROOFS = (
    Proof("every K, n: the 2 x 2 block [[lam_W, -sigma], [-sigma, lam_H]] with sigma^2 = 1/(K^2 n) has the "
          "eigenvalue (lam_W + lam_H)/2 - sqrt(((lam_W - lam_H)/2)^2 + sigma^2) (a root of its characteristic "
          "polynomial)",
          lambda: sp.expand((_BLOCK - lam * sp.eye(2)).det().subs(lam, _MIN_EIG_SIGMA).subs(sig, 1 / (K * sp.sqrt(n))))),
    Proof("every K, n: the two eigenvalues multiply to lam_W lam_H - 1/(K^2 n), so the origin has negative "
          "curvature (a strict saddle, never a spurious minimum) exactly when kappa = sqrt(n lam_W lam_H) < 1/K",
          lambda: sp.expand(MIN_EIG_ORIGIN * (lam_W + lam_H - MIN_EIG_ORIGIN) - (lam_W * lam_H - SIGMA2))),
)

_Q_SPURIOUS = "end points of kind minimum with relative global gap > 1e-9"
_Q_DEGENERATE = "degenerate end points with relative global gap > 1e-9 (non-strict saddles)"
_Q_FOUND = "certified global minima found (>= 1)"
_Q_ORIGIN = "min Hessian eigenvalue at the origin (< 0 iff kappa < 1/K)"


def _census(prob: ufm.UFM, starts: int) -> Any:
    scales = (1.0 / np.sqrt(prob.d), 1e-2)
    return ufm.landscape.census(prob, starts=starts, init_scales=scales, order="first", gtol=GTOL)


def _relative_gaps(cen: Any) -> np.ndarray:
    return cen.gap / np.maximum(1.0, np.abs(cen.value))


def _origin(prob: ufm.UFM) -> Any:
    b = None if prob.lam_b is None else jnp.zeros(prob.K)
    return ufm.Params(W=jnp.zeros((prob.K, prob.d)), H=jnp.zeros((prob.d, prob.N)), b=b)


def _measure(prob: ufm.UFM, cen: Any, names: list) -> dict:
    if _Q_ORIGIN in names:
        names = [q for q in names if q != _Q_ORIGIN]
        lo, _ = ufm.hessian_extreme_eigs(prob, _origin(prob), method="dense")
        return {**_measure(prob, cen, names), _Q_ORIGIN: float(lo)}
    gaps = _relative_gaps(cen)
    minimum, degenerate = cen.kind == "minimum", cen.kind == "degenerate"
    out = {_Q_SPURIOUS: float(np.sum(minimum & ~(gaps <= GAP_TOL))),
           _Q_DEGENERATE: float(np.sum(degenerate & ~(gaps <= GAP_TOL))),
           _Q_FOUND: float(min(1, int(np.sum(minimum & (gaps <= GAP_TOL)))))}
    return {q: out[q] for q in names}


def _assemble(prob: ufm.UFM, ev: Any) -> dict:
    return {_Q_SPURIOUS: 0.0, _Q_DEGENERATE: 0.0, _Q_FOUND: 1.0,
            _Q_ORIGIN: ev("min Hessian eigenvalue at the origin")}


def _solver(starts: int):
    def solve(prob: ufm.UFM) -> tuple[Any, dict]:
        cen = _census(prob, starts)
        stationary = cen.kind != "not stationary"
        return cen, {"grad_norm": float(np.max(cen.kkt)), "converged": bool(np.all(stationary))}
    return solve


def _assume(losses: tuple):
    def assume(prob: Any) -> tuple[bool, str]:
        if not isinstance(prob, ufm.UFM) or type(prob.loss) not in losses:
            return False, f"needs a ufm.UFM with {[t.__name__ for t in losses]}"
        if prob.nonneg:
            return False, "signed features (nonneg=False)"
        if prob.d != prob.K:
            return False, f"the theorem is for d = K (got d={prob.d}, K={prob.K}; d > K: Zhu et al.)"
        if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
            return False, "needs lam_W > 0 and lam_H > 0"
        if prob.has_bias and float(prob.lam_b) <= 0:
            return False, "no bias or a regularized one (lam_b > 0)"
        return True, ""
    return assume


_TOLS = {_Q_SPURIOUS: (0.5, "absolute: a count, 0 when no minimum lies above the global bound"),
         _Q_DEGENERATE: (0.5, "absolute: a count, 0 when no non-global end point lacks negative curvature"),
         _Q_FOUND: (0.5, "absolute: 1 when at least one end point is a certified global minimum")}


def _make(name: str, loss: Any, instances, starts: int, slow: bool, statement_tail: str) -> Theorem:
    losses = (type(loss),)
    return Theorem(
        name=name,
        citation=SHEN_GU,
        tag="paper",
        statement=("UFM with d = K, lam_W, lam_H > 0: every critical point is a global minimizer or a strict "
                   "saddle (no spurious local minima). Measured: " + statement_tail),
        assumptions=_assume(losses),
        assemble=_assemble,
        instances=instances,
        random_instance=lambda rng: ufm.UFM(
            K=3, n=2, d=3, loss=loss, lam_W=float(10 ** rng.uniform(-3, -1.5)),
            lam_H=float(10 ** rng.uniform(-3, -1.5))),
        measure=_measure,
        solve=_solver(starts),
        tolerances=_TOLS,
        expressions=EXPRESSIONS,
        proofs=PROOFS,
        thresholds=(Threshold(kappa_distance, "kappa K - 1 (positive: the origin is a strict local minimum, "
                                              "negative: a strict saddle)"),),
        no_closed_form=("the census is a measured claim: the end points of random starts (ufm.landscape.census), "
                        "each classified by its free Hessian and its gap to ufm.global_certificate; the origin's "
                        "curvature is a closed form"),
        assumed=("Shen & Gu's theorem (the census samples it, it does not prove it); the global certificate's "
                 "bound, tight at global minimizers for d >= K",),
        slow=slow,
    )


def _ce(K: int, lam_b: float | None = None, lam: float = 5e-3) -> ufm.UFM:
    return ufm.UFM(K=K, n=2, d=K, loss=ufm.CrossEntropy(), lam_W=lam, lam_H=lam, lam_b=lam_b)


def _mse(K: int, lam: float = 5e-3) -> ufm.UFM:
    return ufm.UFM(K=K, n=2, d=K, loss=ufm.MSE(), lam_W=lam, lam_H=lam)


CE_SQUARE = _make("CE UFM, d = K: no spurious minima, strict saddles (6 starts)", ufm.CrossEntropy(),
                  lambda: [_ce(3), _ce(3, lam=0.3)], 3, False,
                  "6 plain-descent end points at K = 3 (two entry scales), kappa = 0.007 and 0.42 (both sides "
                  "of 1/K): none is a minimum above the global bound or a degenerate point above it.")
CE_SQUARE_SLOW = _make("CE UFM, d = K: no spurious minima, strict saddles (48 starts)", ufm.CrossEntropy(),
                       lambda: [_ce(3), _ce(4), _ce(4, lam_b=5e-3), _ce(3, lam=0.3)], 24, True,
                       "48 plain-descent end points per instance (K = 3, 4; without and with a regularized bias; "
                       "kappa = 0.42 > 1/K at K = 3, where the origin is the global minimum).")
MSE_SQUARE_SLOW = _make("MSE UFM, d = K: no spurious minima, strict saddles (48 starts)", ufm.MSE(),
                        lambda: [_mse(3), _mse(4), _mse(3, lam=0.3)], 24, True,
                        "48 plain-descent end points per instance (K = 3, 4, no bias; kappa = 0.42 > 1/K at K = 3, "
                        "where the origin is the global minimum).")

THEOREMS = [CE_SQUARE, CE_SQUARE_SLOW, MSE_SQUARE_SLOW]
