r"""Cross-entropy UFM without regularization: gradient flow converges in direction to the max-margin
simplex ETF (Ji, Lu, Zhang, Deng & Su, ICLR 2022, arXiv 2110.02796).

Ji et al. study the *unconstrained layer-peeled model* (the UFM with cross-entropy and no weight
decay); their abstract states that gradient flow converges in direction to a KKT point of the
minimum-norm separation problem, whose global solutions show neural collapse, and that the
landscape is benign. Only the abstract and summaries were read here (not the theorems, nor a
rate), so the entry is **derived**: the margin bound, its proof and the measured approach below
are ufm's.

**The max-margin problem.** The logits ``Z = W H`` are 2-homogeneous in ``theta = (W, H)``. Put
``rho^2 = ||W||^2 + ||H||^2`` and the normalized margin
``gamma(theta) = min_i min_{c != y_i} (z_{y_i,i} - z_{c,i}) / (rho^2/2)`` (scale free). Its largest
value is the inverse of the value of ``min rho^2/2  s.t.  every margin >= 1``.

**The bound (balanced, n per class, proved for all K, n).** For any ``theta`` with positive
margin ``m``: ``rho^2/2 >= ||Z||_*`` (``||W||^2 + ||H||^2 >= 2 ||W H||_*``, AM-GM on the singular
values); ``||Z||_* >= <Z, M Y>`` with ``M = P/sqrt(n)``, ``P = I - J/K``, because
``(M Y)(M Y)^T = P^2 = P`` has operator norm 1 (``P^2 = P`` proved from ``J^2 = K J``); and
``<Z, M Y> = (1/sqrt(n)) sum_i (z_{y_i} - mean_c z_c) = 1/(K sqrt(n)) sum_i sum_{c != y_i}
(z_{y_i} - z_c) >= N (K-1) m/(K sqrt(n)) = sqrt(n) (K-1) m``. Hence
``gamma <= gamma* = 1/(sqrt(n) (K-1))`` at every point.

**The ETF attains it (proved).** Rows ``w_k`` of a simplex ETF of norm ``a``, features
``h_{k,i} = c w_k``: margin ``c a^2 K/(K-1)``, ``rho^2/2 = K a^2 (1 + n c^2)/2``, so
``gamma = 2c/((K-1)(1 + n c^2))``, largest at ``c = 1/sqrt(n)`` where it equals ``gamma*``.

**A smoothed margin below gamma (proved).** With ``f`` the mean CE, ``N f = sum_i l_i`` and
``exp(N f) - 1 = prod_i (1 + s_i) - 1 >= max_i s_i >= e^{-m}`` (``s_i = sum_{c != y_i}
e^{-(z_{y_i} - z_c)}``), so ``gamma~ = log(1/(exp(N f) - 1)) / (rho^2/2) <= gamma``. Lyu & Li
(ICLR 2020, arXiv 1906.05890; abstract read) show that a smoothed normalized margin of this kind
increases along gradient flow once the loss is small, and that the direction converges to a KKT
point of the max-margin problem.

**The check.** :func:`ufm.gradient_flow` (adaptive steps, ``lam_W = lam_H = 0``, the seed-0 random
start at entry scale 1e-2), recorded at log-spaced times up to ``t1 = 1e5``. Rows: ``gamma(t1) <=
gamma*`` (a bound every point satisfies, so a solve could break it); over the recordings after
``t1/100`` the gap ``gamma* - gamma`` shrinks at every step, the smoothed margin never decreases
and neither Gram distance to the ETF increases (counted: monotone approach); at ``t1`` the
normalized Grams ``W W^T`` and ``Hc^T Hc`` (centred class means) are within 0.3 of the ETF Gram
(``1`` on the diagonal, ``-1/(K-1)`` off it, normalized) and the within-class spread is below 3e-2
of the class-mean scale. The distance rows are wide because the direction converges only
logarithmically (the loss falls roughly like ``1/t`` while the norm grows like ``sqrt(log t)``), so
what remains at ``t1`` depends on the start: they separate the ETF from other directions (the
rank-2 "square" of ``K = 4`` is at distance 0.61), they do not measure a limit. The rate is not
checked (the paper's statement of it was not read).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import K, grad_norm_at, n
from proofs_check.theorem import Citation, Proof, Theorem, problem_numbers

__all__ = ["THEOREMS", "JI_IMPLICIT_BIAS", "JI", "GAMMA_STAR", "normalized_margin", "smoothed_margin"]

JI = Citation(
    "Ji, Lu, Zhang, Deng & Su", 2022, "ICLR", "2110.02796",
    what=("gradient flow on the unregularized CE UFM (the unconstrained layer-peeled model) converges in "
          "direction to a KKT point of the minimum-norm separation problem, whose global solutions are "
          "neural collapse; the landscape is benign (the abstract and summaries were read); the margin "
          "bound, its proof and the measured approach are ufm's"),
    also=(Citation("Lyu & Li", 2020, "ICLR", "1906.05890",
                   what=("along gradient flow of a homogeneous model a smoothed normalized margin increases "
                         "once the loss is small, and converges to the value at a KKT point of the "
                         "max-margin problem (the abstract was read)")),))

T1 = 1e5
LATE = 1e-2  # the recordings at t >= LATE * T1 are the "late" ones (monotone approach)
SAVE = np.geomspace(1.0, T1, 26)
INIT_SCALE = 1e-2
RTOL, ATOL = 1e-9, 1e-12

cc, aa, mm = sp.symbols("c a m", positive=True)
GAMMA_STAR = 1 / (sp.sqrt(n) * (K - 1))
ETF_COS = -1 / (K - 1)
EXPRESSIONS = {"gamma*": GAMMA_STAR, "ETF cosine": ETF_COS}

_GAMMA_ETF = 2 * cc / ((K - 1) * (1 + n * cc**2))  # the ETF family's normalized margin


def _etf_family_residuals():
    """margin and rho^2/2 of the ETF family give gamma = 2c/((K-1)(1+nc^2)), largest at c = 1/sqrt(n)
    where it is gamma*."""
    margin = cc * (aa**2 - aa**2 * ETF_COS)  # w_k.h_k - w_j.h_k with h_k = c w_k
    half_rho2 = (K * aa**2 + n * K * cc**2 * aa**2) / 2
    return (margin / half_rho2 - _GAMMA_ETF, sp.diff(_GAMMA_ETF, cc).subs(cc, 1 / sp.sqrt(n)),
            _GAMMA_ETF.subs(cc, 1 / sp.sqrt(n)) - GAMMA_STAR)


def _projector_residual():
    """P = I - J/K is idempotent: K^2 ((1 - J/K)^2 - (1 - J/K)) reduced modulo J^2 - K J (I and J
    commute; the remainder of the polynomial division in J)."""
    j = sp.Symbol("J")
    return sp.rem(sp.expand(K**2 * ((1 - j / K) ** 2 - (1 - j / K))), j**2 - K * j, j)


def _induction_residual():
    s1, S = sp.symbols("s_1 S", nonnegative=True)
    return sp.expand((1 + s1) * (1 + S) - 1 - s1 - S * (1 + s1))


PROOFS = (
    Proof("every K, n: P = I - J/K satisfies P^2 = P (from J^2 = K J), so (M Y)(M Y)^T = P (Y Y^T = n I, "
          "M = P/sqrt(n)) and ||M Y||_op = 1", _projector_residual),
    Proof("every K, n: sum of the N = nK per-sample margin sums (each >= (K-1) m) over K sqrt(n) is "
          "sqrt(n)(K-1) m, so ||Z||_* >= <Z, M Y> >= sqrt(n)(K-1) m and gamma <= 1/(sqrt(n)(K-1))",
          lambda: n * K * (K - 1) * mm / (K * sp.sqrt(n)) - sp.sqrt(n) * (K - 1) * mm),
    Proof("every K, n: the ETF family (h_k = c w_k) has gamma = 2c/((K-1)(1+nc^2)); its derivative "
          "vanishes at c = 1/sqrt(n), where gamma = gamma* (the bound is attained)", _etf_family_residuals),
    Proof("smoothed margin, induction on the samples: if prod_{i>=2} (1 + s_i) = 1 + S with S >= 0, then "
          "(1 + s_1)(1 + S) - 1 - s_1 = S (1 + s_1) >= 0; so exp(N f) - 1 = prod_i (1 + s_i) - 1 >= max s_i "
          ">= e^(-m) and gamma~ <= gamma", _induction_residual),
)


# ---- measured on a trajectory -----------------------------------------------------------------
def normalized_margin(prob: ufm.UFM, W: np.ndarray, H: np.ndarray) -> float:
    """``min_i min_{c != y_i} (z_{y_i,i} - z_{c,i}) / ((||W||^2 + ||H||^2)/2)`` for ``Z = W H``."""
    Z = W @ H
    y = np.asarray(prob.labels)
    own = Z[y, np.arange(y.size)]
    gaps = np.where(np.arange(prob.K)[:, None] == y[None, :], np.inf, own[None, :] - Z)
    return float(gaps.min() / (0.5 * (np.sum(W**2) + np.sum(H**2))))


def smoothed_margin(prob: ufm.UFM, value: float, W: np.ndarray, H: np.ndarray) -> float:
    """``log(1/(exp(N f) - 1)) / ((||W||^2 + ||H||^2)/2)`` with ``f`` the mean CE (``lam = 0``):
    a lower bound of :func:`normalized_margin` (proved in the module docstring)."""
    return float(-np.log(np.expm1(prob.N * value)) / (0.5 * (np.sum(W**2) + np.sum(H**2))))


def _unit_gram(G: np.ndarray) -> np.ndarray:
    return G / np.linalg.norm(G)


def _grams(prob: ufm.UFM, W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    y = np.asarray(prob.labels)
    Hbar = np.stack([H[:, y == k].mean(axis=1) for k in range(prob.K)], axis=1)
    Hc = Hbar - Hbar.mean(axis=1, keepdims=True)
    spread = np.linalg.norm(H - Hbar[:, y]) / np.linalg.norm(Hbar[:, y])
    return _unit_gram(W @ W.T), _unit_gram(Hc.T @ Hc), float(spread)


def _flow(prob: ufm.UFM) -> tuple[dict, dict]:
    tr = ufm.gradient_flow(prob, t1=T1, saveat=ufm.SaveAt(ts=jnp.asarray(SAVE)), init_scale=INIT_SCALE,
                           rtol=RTOL, atol=ATOL, throw=False)
    rec = {"t": np.asarray(tr.times), "value": np.asarray(tr.values),
           "W": np.asarray(tr.params.W), "H": np.asarray(tr.params.H)}
    late = rec["t"] >= LATE * T1
    ok = int(tr.result) == int(ufm.RESULTS.successful) and bool(np.all(np.diff(rec["value"][late]) < 0))
    return rec, {"grad_norm": grad_norm_at(prob, tr.final), "converged": ok}


_Q_BOUND = "normalized margin at t1 (<= gamma* at every point)"
_Q_GAP = "late recordings where the gap gamma* - gamma does not shrink"
_Q_SMOOTH = "late recordings where the smoothed margin decreases"
_Q_DIST = "late recordings where a Gram distance to the ETF increases"
_Q_W = "normalized W W^T at t1 (ETF Gram)"
_Q_H = "normalized centred class-mean Gram at t1 (ETF Gram)"
_Q_SPREAD = "within-class spread / class-mean scale at t1"
ROUNDING = 1e-12  # changes below this (float64 rounding of unit-scale numbers) are not counted


def _assemble(prob, ev):
    k = prob.K
    cos = ev("ETF cosine")
    etf = _unit_gram((1 - cos) * np.eye(k) + cos * np.ones((k, k)))
    return {_Q_BOUND: ev("gamma*"), _Q_GAP: 0.0, _Q_SMOOTH: 0.0, _Q_DIST: 0.0, _Q_W: etf, _Q_H: etf,
            _Q_SPREAD: 0.0}


def _measure(prob, rec, names):
    W, H, v, t = rec["W"], rec["H"], rec["value"], rec["t"]
    late = np.flatnonzero(t >= LATE * T1)
    etf = _unit_gram(np.eye(prob.K) - np.ones((prob.K, prob.K)) / prob.K)
    gamma_star = float(GAMMA_STAR.subs({K: prob.K, n: prob.n}))
    gaps = np.array([gamma_star - normalized_margin(prob, W[i], H[i]) for i in late])
    smooth = np.array([smoothed_margin(prob, float(v[i]), W[i], H[i]) for i in late])
    dists = np.array([[np.linalg.norm(g - etf) for g in _grams(prob, W[i], H[i])[:2]] for i in late])
    gW, gH, spread = _grams(prob, W[-1], H[-1])
    out = {_Q_BOUND: normalized_margin(prob, W[-1], H[-1]), _Q_GAP: float(np.sum(np.diff(gaps) >= 0)),
           _Q_SMOOTH: float(np.sum(np.diff(smooth) < -ROUNDING)),
           _Q_DIST: float(np.sum(np.diff(dists, axis=0) > ROUNDING)), _Q_W: gW, _Q_H: gH, _Q_SPREAD: spread}
    return {q: out[q] for q in names}


def _assume(prob: Any) -> tuple[bool, str]:
    if not isinstance(prob, ufm.UFM) or type(prob.loss) is not ufm.CrossEntropy:
        return False, "needs a cross-entropy ufm.UFM"
    if prob.has_bias or prob.nonneg:
        return False, "no bias and signed features (the unconstrained layer-peeled model)"
    if float(prob.lam_W) != 0.0 or float(prob.lam_H) != 0.0:
        return False, "needs lam_W = lam_H = 0 (no regularization)"
    if not prob.balanced:
        return False, "needs balanced classes (gamma* = 1/(sqrt(n)(K-1)))"
    if prob.d < prob.K - 1:
        return False, f"a simplex ETF needs d >= K-1 (got d={prob.d}, K={prob.K})"
    return True, ""


def _variables(prob: ufm.UFM) -> dict[str, float]:
    return problem_numbers(prob)


def _random(rng: np.random.Generator) -> ufm.UFM:
    k = int(rng.integers(2, 5))
    return ufm.UFM(K=k, n=int(rng.integers(1, 4)), d=int(rng.integers(k - 1, k + 2)), loss=ufm.CrossEntropy(),
                   lam_W=0.0, lam_H=0.0)


_TOL_GRAM = (0.3, "distance of unit-norm Grams at t1 = 1e5: the direction converges only logarithmically, "
                  "so what remains at t1 depends on the start; 0.3 still separates the ETF from other "
                  "directions (at K = 4 the rank-2 square's normalized Gram is 0.61 away)")

JI_IMPLICIT_BIAS = Theorem(
    name="Unregularized CE UFM: gradient flow approaches the max-margin simplex ETF in direction",
    citation=JI,
    tag="derived",
    statement=("CE UFM, balanced, no bias, no regularization, d >= K-1: every point has normalized margin "
               "min margin/((||W||^2+||H||^2)/2) <= gamma* = 1/(sqrt(n)(K-1)), attained exactly by the "
               "simplex ETF; gradient flow from a small random start approaches it in direction: at "
               "t1 = 1e5 the normalized Grams of W and of the centred class means are within 0.3 of the ETF "
               "Gram and the within-class spread below 3e-2; over the late recordings the gap to gamma* "
               "shrinks, a smoothed margin increases and the Gram distances never grow."),
    assumptions=_assume,
    assemble=_assemble,
    # one flow (about 6 s with its compilation); --random draws K in 2..4, d in K-1..K+1
    instances=lambda: [ufm.UFM(K=3, n=2, d=3, loss=ufm.CrossEntropy(), lam_W=0.0, lam_H=0.0)],
    random_instance=_random,
    measure=_measure,
    solve=_flow,
    expressions=EXPRESSIONS,
    variables=_variables,
    proofs=PROOFS,
    upper_bounds=(_Q_BOUND,),
    tolerances={_Q_GAP: (0.5, "absolute: a count, 0 when the gap shrinks between every two late recordings"),
                _Q_W: _TOL_GRAM, _Q_H: _TOL_GRAM,
                _Q_SPREAD: (3e-2, "absolute ratio: collapse is approached, not reached, at t1"),
                _Q_SMOOTH: (0.5, "absolute: a count, 0 when the smoothed margin never decreases (beyond 1e-12)"),
                _Q_DIST: (0.5, "absolute: a count, 0 when neither Gram distance increases (beyond 1e-12)")},
    no_closed_form=("gamma* and the ETF Gram are closed forms; the flow's direction at t1 is compared with "
                    "them at the stated distances"),
    assumed=("that gradient flow converges in direction to a KKT point of the max-margin problem and that "
             "from a small random start it is the global one (Ji et al. 2022; Lyu & Li 2020 for the KKT "
             "convergence): measured here at t1, not proved; ||W||^2 + ||H||^2 >= 2 ||W H||_* (AM-GM on "
             "singular values) and ||Z||_* >= <Z, A> for ||A||_op <= 1 (duality of norms)",),
)

THEOREMS = [JI_IMPLICIT_BIAS]
