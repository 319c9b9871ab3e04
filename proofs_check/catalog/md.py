r"""Memorization-dilation (Nguyen, Levie, Lienen, Kutyniok & Huellermeier, ICLR 2023, arXiv 2206.05530,
section 4; docs/theory.md#memorization-dilation). All statements here are derived for ufm's formulation
(:class:`ufm.MemorizationDilation`), not the paper's (whose M-D objective could not be read).

**LS finite margin.** The positive-feature margin ``delta*(beta) = log((K-1)(1/beta - 1))`` of
``nguyen2023`` (``beta = cc/kp + alpha(K-1)/K``, ``cc = K sqrt(n lam_W lam_H)``) increases as
``cc -> 0`` to ``delta_inf = log(1 + K(1-alpha)/alpha)`` for LS, and to infinity for CE. The limit
is attained exactly by the ``lam_W = lam_H = 0`` problem: there every sample's logit gap to every
other class equals ``delta_inf`` (its softmax equals the smoothed target). That is the statement
checked numerically (the finite-lam margin is already checked by ``nguyen2023``).

**Binary fixed frame.** K = 2, ``W`` and the clean means frozen at the positive optimum of the clean
problem (``w_k = a kp (e_k - 1/2 1)``, ``h_k = rho e_k``, ``kp = sqrt 2``, ``a rho = delta0/kp``,
``lam_W a^2 = n lam_H rho^2``, ``delta0 = log(1/beta - 1)``, no bias), ``g = ||w_1 - w_0|| = 2a``.
One noisy feature ``h >= 0`` of true class 0 labelled 1 minimizes its own loss plus the expressivity
cost, ``F(h) = l(W h, 1) + lam_eff ||h - h_0||`` (MD-P: ``lam_eff = lam``; MD-R with ``M = eta n``
noisy samples sharing the radius: ``lam_eff = lam/eta``); the feature ridge ``lam_H/2 ||h||^2`` of
the noisy feature is left out of this sub-problem (with it the optimum leaves the line and has no
closed form). ``F`` is convex, so its KKT point is the global minimizer. With
``q = lam_eff/g + alpha/2`` (``alpha = 0`` for CE) and ``sigma(delta0) = 1 - beta``:

- ``q >= sigma(delta0)``: no dilation, ``h = h_0``;
- ``beta <= q < sigma(delta0)``: ``h = h_0 + D u``, ``u = (w_1 - w_0)/g``, noisy margin
  ``m = log(1/q - 1)``, ``D = (m + delta0)/g <= sqrt(2) rho``;
- ``q < beta = sigma(-delta0)`` (**correction** of the capped form ``min(., sqrt 2 rho)``):
  the line leaves the orthant at ``D = sqrt 2 rho`` (where ``h = h_1``), and the minimizer continues
  on the face ``h = t e_1``, ``t > rho``, the root of ``(sigma(-kp a t) - alpha/2) kp a =
  lam_eff t/sqrt(rho^2 + t^2)``; ``D = sqrt(rho^2 + t^2) > sqrt 2 rho``.
- **Dilation is not memorization**: the noisy sample is classified as its wrong label (``m > 0``) iff
  ``q < 1/2``; for ``1/2 <= q < sigma(delta0)`` it is dilated but still classified as its true class.

Hence (same frame) ``D`` decreases in ``alpha`` (``D_LS < D_CE``), the dilation threshold
``lam* = g (sigma(delta0) - alpha/2)`` (times ``eta`` for MD-R) decreases in ``alpha``, and in MD-R
``D`` increases with ``eta``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from scipy.optimize import brentq

import ufm
from proofs_check.catalog._common import K, alpha, away_from
from proofs_check.catalog.nguyen2023 import NGUYEN, POSITIVE_FRAME, delta_star
from proofs_check.catalog.nguyen2023 import bet as beta_sym
from proofs_check.theorem import GTOL, Evaluator, Proof, Theorem, Threshold

__all__ = ["THEOREMS", "fixed_frame", "fixed_frame_prediction"]

# ---- symbols ---------------------------------------------------------------------------------
D, m, q, a, rho, lam, eta, t, cc = sp.symbols("D m q a rho lambda eta t c", positive=True)
d0 = sp.symbols("delta0", positive=True)
sig = lambda x: 1 / (1 + sp.exp(-x))
delta_inf = sp.log(1 + K * (1 - alpha) / alpha)
q_expr = lam / (2 * a) + alpha / 2  # MD-P; MD-R replaces lam by lam/eta
m_expr = sp.log(1 / q - 1)
Q_R = lam / (eta * 2 * a) + alpha / 2  # MD-R
D_expr = (m_expr + d0) / (2 * a)
lam_eff, eps_s = sp.symbols("lambda_eff epsilon", positive=True)
kp2 = sp.sqrt(2)
# The expressions of the fixed-frame theorems (q, m, delta0 resolve by name inside the others).
FF_EXPRESSIONS = {
    "q": lam_eff / (2 * a) + alpha / 2,
    "delta0": kp2 * a * rho,
    "q_none": sig(d0),  # no dilation iff q >= sigma(delta0)
    "q_face": sig(-d0),  # the line leaves the orthant iff q < sigma(-delta0)
    "m": m_expr,
    "D": (m + d0) / (2 * a),
    "face(t)": (sig(-kp2 * a * t) - alpha / 2) * kp2 * a - lam_eff * t / sp.sqrt(rho**2 + t**2),
    "D_face": sp.sqrt(rho**2 + t**2),
    "margin_face": kp2 * a * t,
    "none(D)": lam_eff * D / sp.sqrt(D**2 + eps_s**2) - 2 * a * (sig(d0 - 2 * a * D) - alpha / 2),
    "margin(D)": 2 * a * D - d0,
}


def _ls_binary(mm):
    """Binary LS(alpha) loss of a sample whose labelled-class logit exceeds the other by mm."""
    return -(1 - alpha / 2) * sp.log(sig(mm)) - alpha / 2 * sp.log(sig(-mm))


def _ls_K(gap):
    """LS(alpha) loss with K classes when the labelled logit exceeds every other one by gap."""
    p_y = 1 / (1 + (K - 1) * sp.exp(-gap))
    p_j = sp.exp(-gap) / (1 + (K - 1) * sp.exp(-gap))
    return -(1 - alpha + alpha / K) * sp.log(p_y) - alpha * (K - 1) / K * sp.log(p_j)


PROOFS_LS = (
    Proof("lam = 0: d/dgap LS(gap) = 0 at gap = log(1 + K(1-alpha)/alpha)",
          lambda: sp.diff(_ls_K(t), t).subs(t, delta_inf)),
    Proof("lam = 0: the softmax equals the smoothed target there, p_y = 1 - alpha + alpha/K",
          lambda: (1 / (1 + (K - 1) * sp.exp(-delta_inf))) - (1 - alpha + alpha / K)),
    Proof("delta*(beta) -> delta_inf as cc -> 0 (beta = cc/kp + alpha(K-1)/K)",
          lambda: delta_star.subs(beta_sym, alpha * (K - 1) / K) - delta_inf),
    Proof("d delta*/d beta = -1/(beta(1-beta)) < 0: delta*(lam) < delta_inf for every lam > 0",
          lambda: sp.diff(delta_star, beta_sym) + 1 / (beta_sym * (1 - beta_sym))),
    Proof("CE (alpha -> 0): delta_inf = oo for every K (the CE margin diverges as lam -> 0)",
          lambda: sp.Eq(sp.limit(delta_inf, alpha, 0, "+"), sp.oo)),
)

def _W():
    """The frozen classifier as an exact 2 x 2 matrix (rows w_0, w_1)."""
    e = sp.eye(2)
    return sp.Matrix([[a * kp2 * (e[k, j] - sp.Rational(1, 2)) for j in range(2)] for k in range(2)])


PROOFS_FF = (
    Proof("binary frame (K = 2 is the model; explicit vectors w_k = a sqrt2 (e_k - 1/2 1), h_0 = rho e_0): "
          "the clean margin (w_0 - w_1).h_0 is delta0 = sqrt2 a rho and g = ||w_1 - w_0|| = 2a",
          lambda: ((_W()[0, :] - _W()[1, :]).dot(rho * sp.eye(2)[0, :]) - FF_EXPRESSIONS["delta0"],
                   sp.sqrt((_W()[1, :] - _W()[0, :]).dot(_W()[1, :] - _W()[0, :])) - 2 * a)),
    Proof("stationarity on the line h_0 + D u: d/dD [LS(-delta0 + gD) + lam D] = 0 at D = (log(1/q-1) + delta0)/g",
          lambda: sp.simplify((sp.diff(_ls_binary(-d0 + 2 * a * D), D) + lam).subs(D, D_expr).subs(q, q_expr))),
    Proof("threshold: the one-sided slope at D = 0+ is lam - g(sigma(delta0) - alpha/2) = g (q - sigma(delta0)), "
          "so D > 0 iff q < sigma(delta0) (convex F: the slope is increasing)",
          lambda: (sp.diff(_ls_binary(-d0 + 2 * a * D), D).subs(D, 0) + lam)
          - 2 * a * (q_expr - sig(d0))),
    Proof("the formula gives D = 0 exactly at q = sigma(delta0) (continuity at the threshold)",
          lambda: D_expr.subs(q, sig(d0))),
    Proof("the line leaves H >= 0 at D = sqrt2 rho, i.e. exactly when q = sigma(-delta0) (delta0 = sqrt2 a rho)",
          lambda: D_expr.subs(q, sig(-d0)).subs(d0, sp.sqrt(2) * a * rho) - sp.sqrt(2) * rho),
    Proof("memorization (noisy margin m > 0) iff q < 1/2: m = log(1/q - 1) vanishes at q = 1/2",
          lambda: m_expr.subs(q, sp.Rational(1, 2))),
    Proof("D_LS < D_CE in a common frame: dD/dalpha = -1/(4a q(1-q)) < 0",
          lambda: sp.diff(D_expr.subs(q, q_expr), alpha) + 1 / (4 * a * q_expr * (1 - q_expr))),
    Proof("dilation threshold lam* = g(sigma(delta0) - alpha/2) has d lam*/d alpha = -a < 0 (LS switches off first)",
          lambda: sp.diff(2 * a * (sig(d0) - alpha / 2), alpha) + a),
    Proof("MD-R (q = lam/(eta g) + alpha/2): dD/deta = lam/(4 a^2 eta^2 q(1-q)) > 0, dilation grows with noise",
          lambda: sp.diff((sp.log(1 / Q_R - 1) + d0) / (2 * a), eta) - lam / (4 * a**2 * eta**2 * Q_R * (1 - Q_R))),
    Proof("boundary face h = t e_1: d/dt [LS(kp a t) + lam sqrt(rho^2+t^2)] = 0 is "
          "(sigma(-kp a t) - alpha/2) kp a = lam t/sqrt(rho^2+t^2)",
          lambda: sp.simplify(sp.diff(_ls_binary(sp.sqrt(2) * a * t) + lam * sp.sqrt(rho**2 + t**2), t)
                              + (sig(-sp.sqrt(2) * a * t) - alpha / 2) * sp.sqrt(2) * a - lam * t / sp.sqrt(rho**2 + t**2))),
    Proof("boundary face: the multiplier of h[0] >= 0 is dF/dh[0] = lam (t - rho)/sqrt(rho^2+t^2) at the face "
          "stationary point, >= 0 iff t >= rho; at t = rho (the point D = sqrt2 rho) the face slope is "
          "g (q - sigma(-delta0))/sqrt2 < 0 when q < sigma(-delta0), so D = sqrt2 rho is not a minimizer",
          lambda: (sp.simplify((-(sig(-sp.sqrt(2) * a * t) - alpha / 2) * sp.sqrt(2) * a * (-1)
                               + lam * (0 - rho) / sp.sqrt(rho**2 + t**2)).subs(
                                   sig(-sp.sqrt(2) * a * t) - alpha / 2, lam * t / (sp.sqrt(2) * a * sp.sqrt(rho**2 + t**2)))
                               - lam * (t - rho) / sp.sqrt(rho**2 + t**2)),
                   sp.simplify((-(sig(-sp.sqrt(2) * a * rho) - alpha / 2) * sp.sqrt(2) * a + lam * rho / sp.sqrt(2 * rho**2))
                               - sp.sqrt(2) * a * (lam / (2 * a) + alpha / 2 - sig(-sp.sqrt(2) * a * rho))))),
)


# ---- the fixed-frame sub-problem (ufm.FixedFrame) ---------------------------------------------
def fixed_frame(loss: Any, lam_: float, variant: str = "per_sample", M: int = 1, n_: int = 4,
                lw: float = 5e-3, lh: float = 5e-3, d: int = 3) -> ufm.FixedFrame:
    """A :class:`ufm.FixedFrame` whose frame is the binary positive optimum of the clean problem
    ``(n, lam_W, lam_H, loss)``, from the expressions of ``nguyen2023.POSITIVE_FRAME`` (K = 2):
    ``a^2 = ||w_k||^2`` and ``rho^2 = ||h_k||^2`` at the margin ``delta*``."""
    clean = ufm.UFM(K=2, n=n_, d=2, loss=loss, lam_W=lw, lam_H=lh, nonneg=True)
    ev = POSITIVE_FRAME.evaluator(clean)
    if ev("beta") >= ev("threshold"):
        raise ValueError(f"the clean positive optimum is zero (beta = {ev('beta'):.4g} >= 1/2)")
    dl = ev("delta*")
    return ufm.FixedFrame(n=n_, d=d, loss=loss, a=float(np.sqrt(ev("||w_k||^2", delta=dl))),
                          rho=float(np.sqrt(ev("||h_k||^2", delta=dl))), lam=lam_, variant=variant, M=M)


def ff_numbers(prob: ufm.FixedFrame) -> dict:
    """``a``, ``rho``, ``alpha``, ``lambda_eff`` (``lam``, or ``lam/eta`` for MD-R), ``epsilon``."""
    lam_e = float(prob.lam) / (prob.eta if prob.variant == "radius" else 1.0)
    return {"a": float(prob.a), "rho": float(prob.rho), "alpha": float(prob.alpha), "lambda_eff": lam_e,
            "epsilon": float(prob.eps)}


def _regime(ev) -> str:
    q_ = ev("q")
    return "none" if q_ >= ev("q_none") else ("line" if q_ >= ev.get("q_face", -np.inf) else "face")


def _ff_assemble(prob, ev) -> dict:
    """The regime from q, sigma(delta0), sigma(-delta0); then its closed form or 1-D root. A regime
    whose expressions the theorem lacks predicts NaN (reached only when an expression is replaced)."""
    regime = _regime(ev)
    nan = {"dilation": float("nan"), "noisy_margin": float("nan")}
    if regime == "line":
        if "D" not in ev:
            return nan
        return {"dilation": ev("D"), "noisy_margin": ev("m")}
    if regime == "face":
        if "face(t)" not in ev:
            return nan
        rho_ = float(prob.rho)
        hi = rho_
        for _ in range(60):
            if ev("face(t)", t=hi) <= 0:
                break
            hi *= 2
        else:
            return nan  # no sign change: no face stationary point beyond rho
        tt = brentq(lambda v: ev("face(t)", t=v), rho_, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
        return {"dilation": ev("D_face", t=tt), "noisy_margin": ev("margin_face", t=tt)}
    if "none(D)" not in ev:
        return nan
    # exact norm: D = 0; the smoothed norm leaves D_eps = O(eps) on the same line
    D_eps = brentq(lambda v: ev("none(D)", D=v), 0.0, 1.0, xtol=1e-300, rtol=1e-15, maxiter=500)
    return {"dilation": D_eps, "noisy_margin": ev("margin(D)", D=D_eps)}


def fixed_frame_prediction(prob: ufm.FixedFrame) -> dict:
    """``regime``, ``q``, ``dilation``, ``noisy_margin`` of a :class:`ufm.FixedFrame` (the
    expressions of this module)."""
    ev = Evaluator(FF_EXPRESSIONS, ff_numbers(prob))
    return {"regime": _regime(ev), "q": ev("q"), **_ff_assemble(prob, ev)}


def _ff_measure(prob, params, names):
    W, h0 = prob.frame()
    H = np.asarray(params.H)
    Wn = np.asarray(W)
    return {"dilation": float(np.mean(np.linalg.norm(H - np.asarray(h0)[:, None], axis=0))),
            "noisy_margin": float(np.mean((Wn[1] - Wn[0]) @ H))}


def _ff_solve(prob, gtol=GTOL):
    sol = ufm.minimize(prob, gtol=gtol, ctol=1e-12, throw=False)
    return sol.params, {"grad_norm": max(sol.kkt_residuals["stationarity"], sol.kkt_residuals["violation"],
                                         sol.kkt_residuals["complementarity"]), "converged": sol.converged}


def _ff_assume(regime):
    def assume(prob):
        if not isinstance(prob, ufm.FixedFrame):
            return False, "a ufm.FixedFrame sub-problem"
        ev = Evaluator(FF_EXPRESSIONS, ff_numbers(prob))
        half_alpha = float(prob.alpha) / 2  # q - alpha/2 = lam_eff/g: the band is 5% in lam
        for th_name in ("q_none", "q_face"):
            ok, why = away_from(ev("q") - half_alpha, ev(th_name) - half_alpha, f"lam_eff/g (threshold {th_name})")
            if not ok:
                return ok, why
        got = fixed_frame_prediction(prob)["regime"]
        return got in regime, f"needs regime {regime}, got {got!r} (q={fixed_frame_prediction(prob)['q']:.4g})"
    return assume


_ff = fixed_frame


def _q_distance(th_name):
    """``(q - alpha/2)/(q_th - alpha/2) - 1`` (= lam_eff/lam_th - 1): positive for larger lam."""
    def distance(prob):
        ev = Evaluator(FF_EXPRESSIONS, ff_numbers(prob))
        half_alpha = float(prob.alpha) / 2
        return (ev("q") - half_alpha) / (ev(th_name) - half_alpha) - 1
    return distance


_EDGE = "M-D fixed frame: beyond the orthant edge (q < sigma(-delta0)) D = sqrt(rho^2 + t^2) > sqrt2 rho"
_NONE = "M-D fixed frame: no dilation for q >= sigma(delta0)"
_EDGE_WHAT = "lam_eff/lam_eff(q = sigma(-delta0)) - 1 (positive: on the line, negative: beyond the orthant edge)"
_NONE_WHAT = "lam_eff/lam_eff(q = sigma(delta0)) - 1 (positive: no dilation)"


def _lam_for(prob_kwargs, q_target):
    """The lam giving ``q = q_target`` (MD-P scaling) for a frame, to place instances in a regime."""
    p = _ff(lam_=0.0, **prob_kwargs)
    a_ = float(p.a)
    lam_ = 2 * a_ * (q_target - float(p.alpha) / 2)
    return lam_ * (p.eta if p.variant == "radius" else 1.0)


def _q_interval(kw, regime):
    """The q-interval of a regime for the frame of ``kw`` (q >= alpha/2 since lam >= 0), 6% in lam
    inside the regime's thresholds (the assumptions exclude 5%); the no-dilation interval stops at
    1.2 times its threshold (beyond, the radius variant's certificate stalls near 1e-9)."""
    p = _ff(lam_=0.0, **kw)
    beta = float(Evaluator(FF_EXPRESSIONS, ff_numbers(p))("q_face"))  # sigma(-delta0) = beta
    h = float(getattr(kw["loss"], "alpha", 0.0)) / 2  # q = lam_eff/g + alpha/2; margins are 6% in lam
    lo, hi = {"line": (h + 1.06 * (beta - h), h + (1 - beta - h) / 1.06), "face": (h, h + (beta - h) / 1.06),
              "none": (h + 1.06 * (1 - beta - h), h + 1.2 * (1 - beta - h))}[regime]
    return lo, hi


def _ff_instances(regime, where=0.5):
    """CE and LS(0.1), MD-P and MD-R (M = 2), at relative position ``where`` of the regime's q-interval."""
    out = []
    for loss in (ufm.CrossEntropy(), ufm.LabelSmoothing(0.1)):
        for variant, M in (("per_sample", 1), ("radius", 2)):
            kw = {"loss": loss, "variant": variant, "M": M}
            lo, hi = _q_interval(kw, regime)
            out.append(_ff(lam_=_lam_for(kw, lo + where * (hi - lo)), **kw))
    return out


def _ff_random(regime):
    def draw(rng):
        loss = [ufm.CrossEntropy(), ufm.LabelSmoothing(float(rng.uniform(0.02, 0.3)))][rng.integers(2)]
        variant, M = [("per_sample", 1), ("radius", int(rng.integers(1, 3)))][rng.integers(2)]
        kw = {"loss": loss, "variant": variant, "M": M, "lw": float(rng.uniform(2e-3, 2e-2)), "lh": float(rng.uniform(2e-3, 2e-2))}
        lo, hi = _q_interval(kw, regime)
        if hi <= lo + 1e-3:
            return draw(rng)
        return _ff(lam_=_lam_for(kw, lo + rng.uniform(0.1, 0.9) * (hi - lo)), **kw)
    return draw


def _ls_instances():
    return [ufm.UFM(K=3, n=2, d=4, loss=ufm.LabelSmoothing(al), lam_W=0.0, lam_H=0.0, nonneg=True) for al in (0.1, 0.3)]


def _ls_assume(prob):
    if not isinstance(prob, ufm.UFM) or not isinstance(prob.loss, ufm.LabelSmoothing) or float(prob.loss.alpha) <= 0:
        return False, "a ufm.UFM with LabelSmoothing(alpha > 0)"
    if float(prob.lam_W) != 0 or float(prob.lam_H) != 0 or prob.has_bias:
        return False, "the lam_W = lam_H = 0 limit problem, no bias"
    return True, ""


def _ls_assemble(prob, ev):
    gap = ev("delta_inf")
    return {"min_gap": gap, "max_gap": gap}


def _ls_measure(prob, params, names):
    Z = np.asarray(params.W @ params.H)
    y = prob.labels
    gaps = Z[y, np.arange(Z.shape[1])][None, :] - Z
    gaps[y, np.arange(Z.shape[1])] = np.nan
    return {"min_gap": float(np.nanmin(gaps)), "max_gap": float(np.nanmax(gaps))}


def _ls_solve(prob):
    sol = ufm.minimize(prob, gtol=GTOL, throw=False)
    return sol.params, {"grad_norm": sol.grad_norm, "converged": sol.converged}


LS_FINITE_MARGIN = Theorem(
    name="M-D: label smoothing keeps a finite margin log(1 + K(1-alpha)/alpha) as lam -> 0",
    citation=NGUYEN,
    tag="derived",
    statement=("Nonnegative features, LS(alpha > 0): the regularized margin delta*(beta) = log((K-1)(1/beta-1)) "
               "increases to delta_inf = log(1 + K(1-alpha)/alpha) as lam_W lam_H -> 0 (CE: to infinity). At "
               "lam_W = lam_H = 0 (the limit problem, checked) every logit gap z_y - z_j of a minimizer equals "
               "delta_inf: the softmax equals the smoothed target."),
    assumptions=_ls_assume,
    assemble=_ls_assemble,
    instances=_ls_instances,
    random_instance=lambda rng: ufm.UFM(K=int(rng.integers(2, 4)), n=2, d=4, loss=ufm.LabelSmoothing(float(rng.uniform(0.02, 0.6))),
                                        lam_W=0.0, lam_H=0.0, nonneg=True),
    measure=_ls_measure,
    solve=_ls_solve,
    expressions={"delta_inf": delta_inf},
    proofs=PROOFS_LS,
)

_FF_ASSUMED = ("F is convex on the orthant, so its KKT point is the global minimizer (the loss is convex "
               "in the logits, the logits linear in h, the norm convex)")

_FF_STATEMENT = ("Binary fixed frame (W, clean means at the positive optimum; one noisy feature of class 0 "
                 "labelled 1 minimizing l(W h, 1) + lam_eff ||h - h_0||, h >= 0; lam_eff = lam (MD-P) or lam/eta "
                 "(MD-R)), q = lam_eff/g + alpha/2, g = 2a: ")

_LINE = "M-D fixed frame: dilation D = (log(1/q-1) + delta0)/g for sigma(-delta0) <= q < sigma(delta0)"

FF_LINE = Theorem(
    name=_LINE,
    citation=NGUYEN, tag="derived",
    statement=_FF_STATEMENT + ("for sigma(-delta0) <= q < sigma(delta0) the noisy feature moves along "
                               "(w_1 - w_0)/g to D = (m + delta0)/g <= sqrt2 rho, noisy margin m = log(1/q - 1) "
                               "(classified as the wrong label iff q < 1/2)."),
    assumptions=_ff_assume(("line",)), assemble=_ff_assemble, instances=lambda: _ff_instances("line", 0.3),
    random_instance=_ff_random("line"), measure=_ff_measure, solve=_ff_solve, variables=ff_numbers,
    expressions={k: FF_EXPRESSIONS[k] for k in ('q', 'delta0', 'q_none', 'q_face', 'm', 'D')},
    proofs=PROOFS_FF[:2] + PROOFS_FF[5:9], assumed=(_FF_ASSUMED,),
    thresholds=(Threshold(_q_distance("q_face"), _EDGE_WHAT, covers="above", partner=_EDGE),
                Threshold(_q_distance("q_none"), _NONE_WHAT, covers="below", partner=_NONE)),
)

FF_FACE = Theorem(
    name=_EDGE,
    citation=NGUYEN, tag="derived",
    statement=_FF_STATEMENT + ("for q < sigma(-delta0) the minimizer is h = t e_1 with t > rho the root of "
                               "(sigma(-kp a t) - alpha/2) kp a = lam_eff t/sqrt(rho^2+t^2); the capped form "
                               "D = min((m + delta0)/g, sqrt2 rho) is not stationary there."),
    assumptions=_ff_assume(("face",)), assemble=_ff_assemble, instances=lambda: _ff_instances("face"),
    random_instance=_ff_random("face"), measure=_ff_measure, solve=_ff_solve, variables=ff_numbers,
    expressions={k: FF_EXPRESSIONS[k] for k in ('q', 'delta0', 'q_none', 'q_face', 'face(t)', 'D_face', 'margin_face')},
    assumed=(_FF_ASSUMED,),
    proofs=(PROOFS_FF[4], *PROOFS_FF[9:]),
    thresholds=(Threshold(_q_distance("q_face"), _EDGE_WHAT, covers="below", partner=_LINE),),
)

FF_NONE = Theorem(
    name=_NONE,
    citation=NGUYEN, tag="derived",
    statement=_FF_STATEMENT + ("for q >= sigma(delta0) the noisy feature stays at its clean mean (D = 0; the smoothed "
                               "norm leaves D_eps = O(eps), predicted by the smoothed 1-D stationarity "
                               "lam_eff D/sqrt(D^2+eps^2) = g(sigma(delta0 - gD) - alpha/2) and matched to 1e-5 "
                               "(the noisy margin to 1e-8); the curvature 1/eps at D ~ eps limits the certificate to "
                               "gtol = 1e-10)."),
    assumptions=_ff_assume(("none",)), assemble=_ff_assemble, instances=lambda: _ff_instances("none"),
    random_instance=_ff_random("none"), measure=_ff_measure, solve=lambda p: _ff_solve(p, gtol=1e-10),
    variables=ff_numbers,
    expressions={k: FF_EXPRESSIONS[k] for k in ('q', 'delta0', 'q_none', 'none(D)', 'margin(D)')},
    tolerances={"dilation": (1e-5, "D_eps = O(eps) = 1e-6 sits where the smoothed norm's curvature is 1/eps, so "
                                   "the certificate stops at gtol = 1e-10 and D_eps is known to ~1e-5 relative")},
    assumed=(_FF_ASSUMED,),
    proofs=PROOFS_FF[2:4],
    thresholds=(Threshold(_q_distance("q_none"), _NONE_WHAT, covers="above", partner=_LINE),),
)

THEOREMS = [LS_FINITE_MARGIN, FF_LINE, FF_FACE, FF_NONE]
