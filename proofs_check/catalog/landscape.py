r"""Landscape theorems, measured with ``ufm.landscape.census``: where random starts end.

- **Strict saddles, no spurious minima** (Zhu et al. 2021, CE [paper]; Zhou et al. 2022, MSE
  [derived: the paper's theorem has no regularized bias, the check here uses ``lam_b = 5e-3``, an
  extension measured by ufm]): for the shallow UFM with ``d > K`` every second-order point is a
  global minimizer. Measured:
  every end point of ``ufm.minimize`` (second-order certified, saddles escaped) from random starts
  has global gap (``ufm.global_certificate``) ``<= 1e-9``. Default run: 8 starts; the slow
  variant (``ufm verify --all``): 200 starts.
- **Spurious minima exist** [derived, measured]: with ``H >= 0`` (CE) some starts end at a
  strict local minimum above a value that another start reached; in the deep linear MSE model
  with ``m = 3`` factors, starts near the origin stay there (a strict local minimum, since
  ``h_m'(0+) = +inf``), whose global gap is ``h_m(0) - h_m(x*) > 0``. Measured: at least one
  such end point is found; the shares are printed by ``examples/landscape_basins.py`` (K = 3,
  d = 4, H >= 0: 7 of 48 plain-descent end points are strict local minima at f = 0.18006 against
  f* = 0.13203).

  What counts: only end points of kind ``"minimum"`` (the classification of
  :func:`ufm.landscape.kind_of`, which the census applies to every end point: stationary, no
  negative and no zero Hessian eigenvalue off the symmetry directions). Degenerate end points
  (second order with a flat direction, which higher-order terms may turn into a saddle) are
  counted apart, in a ``count`` row, never as minima. "Spurious" (not a global minimizer) is
  judged against a value that is *shown*, never the predicted one: the global certificate's
  lower bound (:func:`ufm.global_certificate`) where that bound is proven to be the minimum (deep
  linear MSE, widths >= K, no bias: the ``h_m`` reduction is attained), else the lowest value a
  certified (stationary) end point of the same census reached (an attained value, so a point
  above it is not a global minimizer). The nonnegative CE family has a certificate, but its
  bound is not tight under ``H >= 0`` (``duality``'s "not tight" entry), so it is judged by the
  best value found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import K, lam_H, lam_W, n
from proofs_check.catalog.deep_reduction import OWN_ANALYSIS, h_sym, x
from proofs_check.catalog.nguyen2023 import POSITIVE_FRAME
from proofs_check.theorem import Citation, Proof, Theorem

__all__ = ["THEOREMS", "run_census", "spurious_reference"]

ZHU = Citation("Zhu et al.", 2021, "NeurIPS", "2105.02375")
NGUYEN = Citation("Nguyen et al.", 2023, "ICLR", "2206.05530")
ZHOU_MSE = Citation("Zhou et al.", 2022, "ICML", "2203.01238",
                    what=("benign landscape of the MSE UFM without a regularized bias; the check here adds "
                          "lam_b = 5e-3, ufm's extension (measured, not the paper's theorem)"))

GAP_TOL = 1e-9
SPURIOUS = "spurious strict local minimum found (kind 'minimum', value above the reference)"
STRICT_COUNT = "end points of kind 'minimum' (strict local minima)"
DEGENERATE_COUNT = "degenerate end points (second order with a flat direction; not counted as minima)"
SPURIOUS_COUNT = "spurious strict local minima (kind 'minimum', above the reference)"
REFERENCE = "reference value (the certificate's bound, or the best value found)"
SPURIOUS_TOL = 1e-7  # relative: a value this far above the reference is not the same value


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
    # the claim covers every second-order point, so degenerate end points are held to it too
    second = (cen.kind == "minimum") | (cen.kind == "degenerate")
    gaps = cen.gap[second] / np.maximum(1.0, np.abs(cen.value[second]))
    out = {"max relative global gap at second-order end points": float(np.max(gaps)) if gaps.size else np.inf,
           "second-order end points found (>= 1)": float(min(1, int(second.sum()))),
           STRICT_COUNT: float(np.sum(cen.kind == "minimum")),
           DEGENERATE_COUNT: float(np.sum(cen.kind == "degenerate"))}
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
        counts=(STRICT_COUNT, DEGENERATE_COUNT),
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


def spurious_reference(cen: Any, reference: str) -> float:
    """The value "spurious" is judged against: ``"certificate"``, the largest lower bound
    ``value - gap`` of :func:`ufm.global_certificate` over the end points (for a family whose bound
    is the minimum); ``"best found"``, the lowest value of a stationary end point (attained)."""
    if reference == "certificate":
        bounds = (cen.value - cen.gap)[np.isfinite(cen.gap)]
        if not bounds.size:
            raise ValueError("reference='certificate' needs a family with ufm.global_certificate")
        return float(np.max(bounds))
    if reference == "best found":
        certified = cen.kind != "not stationary"
        return float(np.min(cen.value[certified])) if certified.any() else float("inf")
    raise ValueError(f"reference must be 'certificate' or 'best found', got reference={reference!r}")


def _spurious_measure(reference: str):
    def measure(prob, cen, names):
        strict = cen.kind == "minimum"
        ref = spurious_reference(cen, reference)
        spurious = strict & (cen.value > ref + SPURIOUS_TOL * max(1.0, abs(ref)))
        out = {SPURIOUS: float(spurious.any()), STRICT_COUNT: float(strict.sum()),
               DEGENERATE_COUNT: float(np.sum(cen.kind == "degenerate")), SPURIOUS_COUNT: float(spurious.sum()),
               REFERENCE: ref}
        return {k: out[k] for k in names}
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
                                                      [5e-3, 1e-2, 1e-2], rtol=1e-12, atol=0.0):
        return False, ("the existence of spurious minima is measured only at K = 3, n = 2, d = 4, CE, "
                       "lam_W = 5e-3, lam_H = lam_b = 1e-2 (H >= 0)")
    return True, ""


NONNEG_SPURIOUS = Theorem(
    name="Nonnegative CE UFM: spurious second-order points exist",
    citation=NGUYEN,
    tag="derived",
    statement=("With H >= 0 (CE, d >= K) some random starts end at a strict local minimum (kind 'minimum': "
               "positive free Hessian) above the value another start reached, so not a global minimizer: "
               "the nonnegative landscape is not benign. Measured on 48 starts (7 of 48 spurious at K = 3, "
               "d = 4); degenerate end points are counted apart."),
    assumptions=_nonneg_assume,
    assemble=lambda prob, ev: {SPURIOUS: 1.0},
    no_closed_form=("a measured claim: the end points of a census of random starts (ufm.landscape.census), "
                    "each classified by its Hessian and its global gap (ufm.global_certificate)"),
    instances=lambda: [ufm.UFM(K=3, n=2, d=4, loss=ufm.CrossEntropy(), lam_W=5e-3, lam_H=1e-2, lam_b=1e-2,
                               nonneg=True)],
    # the certificate's bound is not tight under H >= 0: judged against the best value found
    measure=_spurious_measure("best found"),
    counts=(STRICT_COUNT, DEGENERATE_COUNT, SPURIOUS_COUNT, REFERENCE),
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
    if min(prob.widths) < prob.K:
        return False, "every width >= K (so that the certificate's bound is the minimum)"
    return True, ""


DEEP_SPURIOUS = Theorem(
    name="Deep linear MSE UFM (m = 3): starts near the origin stay at a non-global local minimum",
    citation=OWN_ANALYSIS,
    tag="derived",
    statement=("m >= 3 factors: h_m'(0+) = +inf, so the origin is a strict local minimum with value "
               "h_m(0) = 1/2 > h_m(x*); starts at scale 1e-3 end there (kind 'minimum', value above the "
               "global certificate's bound, which is the minimum here: global gap > 0)."),
    assumptions=_deep_assume,
    assemble=lambda prob, ev: {SPURIOUS: 1.0},
    no_closed_form=("a measured claim: the end points of a census of random starts (ufm.landscape.census), "
                    "each classified by its Hessian and its global gap (ufm.global_certificate)"),
    instances=lambda: [ufm.DeepUFM(K=3, n=2, widths=(4, 4), loss=ufm.MSE(), lam_W=4e-3, lam_H=4e-3,
                                   activation="linear")],
    # the scalar-reduction bound is the minimum for widths >= K without bias (duality's DEEP_BOUND)
    measure=_spurious_measure("certificate"),
    counts=(STRICT_COUNT, DEGENERATE_COUNT, SPURIOUS_COUNT, REFERENCE),
    solve=lambda prob: (lambda c: (c, _info(c)))(run_census(prob, 4, (1e-3,))),
    proofs=(Proof("every m > 2 (m = p + 2, p > 0 symbolic; the instance has m = 3): h_m'(x) -> +inf as x -> 0+ "
                  "(the origin is a local minimum of the reduction)",
                  lambda: sp.Eq(sp.limit(sp.diff(h_sym(_p + 2), x), x, 0, "+"), sp.oo)),),
)

THEOREMS = [CE_NO_SPURIOUS, MSE_NO_SPURIOUS, NONNEG_SPURIOUS, DEEP_SPURIOUS, CE_NO_SPURIOUS_200,
            MSE_NO_SPURIOUS_200]
