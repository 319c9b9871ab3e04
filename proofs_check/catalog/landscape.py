r"""Landscape theorems, measured with ``ufm.landscape.census``: where random starts end.

- **Strict saddles, no spurious minima** (Zhu et al. 2021, CE [paper]; Zhou et al. 2022, MSE
  [derived: the paper's theorem has no regularized bias, the check here uses ``lam_b = 5e-3``, an
  extension measured by ufm]): for the shallow UFM with ``d > K`` every second-order point is a
  global minimizer. Measured:
  every end point of ``ufm.minimize`` (second-order certified, saddles escaped) from random starts
  has global gap (``ufm.global_certificate``) ``<= 1e-9``. Default run: 8 starts; the slow
  variant (``ufm verify --all``): 200 starts.
- **Spurious minima exist** [derived, measured]: with ``H >= 0`` (CE) some starts end at a
  second-order point above the closed-form minimum of ``nguyen2023``; in the deep linear MSE model
  with ``m = 3`` factors, starts near the origin stay there (a strict local minimum, since
  ``h_m'(0+) = +inf``), whose global gap is ``h_m(0) - h_m(x*) > 0``. Measured: at least one
  such end point is found; the shares are printed by ``examples/landscape_basins.py`` (K = 3,
  d = 4, H >= 0: 7 of 48 plain-descent end points are strict local minima at f = 0.18006 against
  f* = 0.13203).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import K, lam_H, lam_W, n
from proofs_check.catalog.deep_reduction import OWN_ANALYSIS, dnc_prediction, h_sym, x
from proofs_check.catalog.nguyen2023 import POSITIVE_FRAME
from proofs_check.theorem import Citation, Proof, Theorem

__all__ = ["THEOREMS", "run_census"]

ZHU = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375")
NGUYEN = Citation("Nguyen et al.", 2023, "ICLR", "2206.05530")
ZHOU_MSE = Citation("Zhou et al.", 2022, "ICML", "2203.01238",
                    what=("benign landscape of the MSE UFM without a regularized bias; the check here adds "
                          "lam_b = 5e-3, ufm's extension (measured, not the paper's theorem)"))

GAP_TOL = 1e-9


def run_census(prob: Any, starts: int, init_scales: tuple = (None,), order: str = "auto") -> Any:
    """``ufm.landscape.census`` (``order="auto"``: second-order certified end points, saddles
    escaped; ``"first"``: where plain descent stops, each end point classified).

    For a shallow UFM the default scale (``None``) is passed as its value ``1/sqrt(d)`` (the same
    starts): the census compiles once per default/explicit kind of scale, so explicit scales share
    one compiled census."""
    if isinstance(prob, ufm.UFM):
        init_scales = tuple(1.0 / np.sqrt(prob.d) if s is None else s for s in init_scales)
    return ufm.landscape.census(prob, starts=starts, init_scales=init_scales, order=order, gtol=1e-11)


def _info(cen):
    stationary = cen.kind != "not stationary"
    return {"grad_norm": float(np.max(cen.kkt)), "converged": bool(np.all(stationary))}


def _no_spurious_measure(prob, cen, names):
    second = (cen.kind == "minimum") | (cen.kind == "degenerate")
    gaps = cen.gap[second] / np.maximum(1.0, np.abs(cen.value[second]))
    out = {"max relative global gap at second-order end points": float(np.max(gaps)) if gaps.size else np.inf,
           "second-order end points found (>= 1)": float(min(1, int(second.sum())))}
    return {k: out[k] for k in names}


def _no_spurious_assemble(prob, ev):
    return {"max relative global gap at second-order end points": 0.0, "second-order end points found (>= 1)": 1.0}


def _no_spurious_assume(losses):
    def assume(prob):
        if not isinstance(prob, ufm.UFM) or not isinstance(prob.loss, losses):
            return False, f"a ufm.UFM with {[t.__name__ for t in losses]}"
        if prob.nonneg:
            return False, "signed features"
        if prob.d <= prob.K:
            return False, f"needs d > K (got d={prob.d}, K={prob.K})"
        if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
            return False, "lam_W, lam_H > 0"
        return True, ""
    return assume


ORIGIN_PROOFS = (
    Proof("CE origin: the 2x2 block [[lam_W, 1/(K sqrt n)], [1/(K sqrt n), lam_H]] of the Hessian has "
          "determinant lam_W lam_H - 1/(K^2 n), zero exactly at kappa = 1/K and negative below it (one "
          "negative eigenvalue per block: a strict saddle)",
          lambda: sp.Matrix([[lam_W, 1 / (K * sp.sqrt(n))], [1 / (K * sp.sqrt(n)), lam_H]]).det()
          .subs(lam_H, 1 / (K**2 * n * lam_W))),
)


def _make_no_spurious(name, citation, loss, starts, slow, tag="paper"):
    losses = (ufm.CrossEntropy, ufm.LabelSmoothing) if isinstance(loss, ufm.CrossEntropy) else (ufm.MSE,)
    return Theorem(
        name=name,
        citation=citation,
        tag=tag,
        statement=(f"Shallow UFM with d > K: every second-order point is a global minimizer. Measured on "
                   f"{starts} random starts: every second-order end point has global gap <= {GAP_TOL:g}."),
        assumptions=_no_spurious_assume(losses),
        assemble=_no_spurious_assemble,
        no_closed_form=("a measured claim: the end points of a census of random starts (ufm.landscape.census), "
                        "each classified by its Hessian and its global gap (ufm.global_certificate)"),
        instances=lambda: [ufm.UFM(K=3, n=2, d=4, loss=loss, lam_W=5e-3, lam_H=5e-3, lam_b=5e-3)],
        random_instance=lambda rng: ufm.UFM(K=3, n=2, d=4, loss=loss, lam_W=float(rng.uniform(1e-3, 1e-2)),
                                            lam_H=float(rng.uniform(1e-3, 1e-2)), lam_b=5e-3),
        measure=_no_spurious_measure,
        solve=lambda prob: (lambda c: (c, _info(c)))(run_census(prob, starts, (None, 1e-2))),
        tolerances={"max relative global gap at second-order end points":
                    (GAP_TOL, "absolute: the claim is gap <= 1e-9 relative at every second-order end point "
                              "(the census stops at KKT 1e-11)")},
        proofs=ORIGIN_PROOFS,
        slow=slow,
    )


CE_NO_SPURIOUS = _make_no_spurious("CE UFM, d > K: no spurious second-order points (8 starts)", ZHU,
                                   ufm.CrossEntropy(), 4, False)
# checked with a regularized bias: ufm's extension of Zhou et al.'s theorem, hence "derived"
MSE_NO_SPURIOUS = _make_no_spurious("MSE UFM, d > K: no spurious second-order points (8 starts)", ZHOU_MSE,
                                    ufm.MSE(), 4, False, tag="derived")
CE_NO_SPURIOUS_200 = _make_no_spurious("CE UFM, d > K: no spurious second-order points (200 starts)", ZHU,
                                       ufm.CrossEntropy(), 100, True)
MSE_NO_SPURIOUS_200 = _make_no_spurious("MSE UFM, d > K: no spurious second-order points (200 starts)",
                                        ZHOU_MSE, ufm.MSE(), 100, True, tag="derived")


# ---- spurious minima ----------------------------------------------------------------------------
def _spurious_measure(f_star_fn):
    def measure(prob, cen, names):
        second = (cen.kind == "minimum") | (cen.kind == "degenerate")
        f_star = f_star_fn(prob)
        spurious = second & (cen.value > f_star + 1e-7 * max(1.0, abs(f_star)))
        return {"spurious second-order end point found": float(spurious.any())}
    return measure


def _nonneg_assume(prob):
    """An existence claim measured at one configuration: K = 3, n = 2, d = 4, CE with a bias, H >= 0,
    lam_W = 5e-3, lam_H = lam_b = 1e-2. Elsewhere spurious minima need not exist (the thorough
    property run found none at K = 3, n = 1, d = 6, lam_W = lam_H = 2/3, no bias), so no other
    problem is accepted."""
    ok, why = POSITIVE_FRAME.assumptions(prob)
    if not ok:
        return ok, why
    if (prob.K, prob.n if prob.balanced else None, prob.d) != (3, 2, 4) or not isinstance(prob.loss, ufm.CrossEntropy) \
            or prob.lam_b is None or not np.allclose([float(prob.lam_W), float(prob.lam_H), float(prob.lam_b)],
                                                      [5e-3, 1e-2, 1e-2]):
        return False, ("the existence of spurious minima is measured only at K = 3, n = 2, d = 4, CE, "
                       "lam_W = 5e-3, lam_H = lam_b = 1e-2 (H >= 0)")
    return True, ""


NONNEG_SPURIOUS = Theorem(
    name="Nonnegative CE UFM: spurious second-order points exist",
    citation=NGUYEN,
    tag="derived",
    statement=("With H >= 0 (CE, d >= K) some random starts end at a strict local minimum (positive "
               "free Hessian) above the closed-form minimum (orthogonal-frame means): the nonnegative "
               "landscape is not benign. Measured on 48 starts (7 of 48 spurious at K = 3, d = 4)."),
    assumptions=_nonneg_assume,
    assemble=lambda prob, ev: {"spurious second-order end point found": 1.0},
    no_closed_form=("a measured claim: the end points of a census of random starts (ufm.landscape.census), "
                    "each classified by its Hessian and its global gap (ufm.global_certificate)"),
    instances=lambda: [ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2,
                               nonneg=True)],
    measure=_spurious_measure(lambda prob: POSITIVE_FRAME.predict(prob)["value"]),
    solve=lambda prob: (lambda c: (c, _info(c)))(run_census(prob, 24, (None, 0.1), "first")),
    proofs=(Proof("(K/(K-1))^2 - K/(K-1) = K/(K-1)^2 > 0: per unit of penalty the signed margin factor "
                  "K/(K-1) exceeds the nonnegative one kp (kp^2 = K/(K-1)), so the signed bound is not "
                  "tight under H >= 0", lambda: (K / (K - 1)) ** 2 - K / (K - 1) - K / (K - 1) ** 2),),
)


_p = sp.Symbol("p", positive=True)  # m = p + 2 > 2 factors


def _deep_assume(prob):
    if not isinstance(prob, ufm.DeepUFM) or prob.activation != "linear" or prob.L < 2:
        return False, "a linear ufm.DeepUFM with L >= 2 (m >= 3 factors)"
    if not isinstance(prob.loss, ufm.MSE) or prob.loss.encoding is not None or prob.has_bias or not prob.balanced:
        return False, "MSE, one-hot, no bias, balanced (the h_m closed form)"
    return True, ""


DEEP_SPURIOUS = Theorem(
    name="Deep linear MSE UFM (m = 3): starts near the origin stay at a non-global local minimum",
    citation=OWN_ANALYSIS,
    tag="derived",
    statement=("m >= 3 factors: h_m'(0+) = +inf, so the origin is a strict local minimum with value "
               "h_m(0) = 1/2 > h_m(x*); starts at scale 1e-3 end there (global gap > 0)."),
    assumptions=_deep_assume,
    assemble=lambda prob, ev: {"spurious second-order end point found": 1.0},
    no_closed_form=("a measured claim: the end points of a census of random starts (ufm.landscape.census), "
                    "each classified by its Hessian and its global gap (ufm.global_certificate)"),
    instances=lambda: [ufm.DeepUFM(K=3, n=2, widths=(4, 4), loss=ufm.MSE(), lam_W=4e-3, lam_H=4e-3,
                                   activation="linear")],
    measure=_spurious_measure(lambda prob: dnc_prediction(prob)["value"]),
    solve=lambda prob: (lambda c: (c, _info(c)))(run_census(prob, 4, (1e-3,))),
    proofs=(Proof("every m > 2 (m = p + 2, p > 0 symbolic; the instance has m = 3): h_m'(x) -> +inf as x -> 0+ "
                  "(the origin is a local minimum of the reduction)",
                  lambda: sp.Eq(sp.limit(sp.diff(h_sym(_p + 2), x), x, 0, "+"), sp.oo)),),
)

THEOREMS = [CE_NO_SPURIOUS, MSE_NO_SPURIOUS, NONNEG_SPURIOUS, DEEP_SPURIOUS, CE_NO_SPURIOUS_200,
            MSE_NO_SPURIOUS_200]
