r"""Imbalanced cross-entropy (and label smoothing, focal): checks through the class-level program.

Two kinds of statement, both numeric in their predictions (no closed form exists for imbalanced
CE), both tagged ``derived``:

1. **The UFM minimizer is the class-level convex program's** (docs/theory.md#canonical-objective, #lemma-collapse, #lemma-nuclear-norm): with ``Z' = W Hbar D^{1/2}``, ``D = diag(n_k)``,

   .. math:: \min_{Z', b} \sum_k \frac{n_k}N \ell(z'_k/\sqrt{n_k} + b, k)
       + \sqrt{\lambda_W\lambda_H}\lVert Z'\rVert_* + \frac{\lambda_b}2\lVert b\rVert^2 ,

   solved by :func:`proofs_check.convex.solve_class_level`; its invariants (value, ``W W^T``,
   ``Hbar^T Hbar``, ``W Hbar``, bias, zero within-class spread) are compared with
   :func:`ufm.minimize`'s. For the focal loss the program is not convex (focal is not convex in
   the logits), so there the check cross-validates a stationary point of the program against
   ``ufm.minimize`` and, in ``tests/test_convex.py``, against the 1-D focal scale of
   :func:`proofs_check.closed_forms.ce_family`.

2. **Minority collapse threshold** (Hong & Ling, JMLR 2024, arXiv 2309.09725: the finite threshold
   for CE with two groups of classes; Fang et al. 2021 introduce minority collapse in the
   norm-constrained layer-peeled model, as an imbalance ratio grows without bound). Found here (numerically
   and by the derivation below): two classes ``i, j`` with the same count ``n_B`` get identical
   classifiers *and* identical feature means iff

   .. math:: (1-\alpha)\sqrt{n_B} \le N\sqrt{\lambda_W\lambda_H}

   (``alpha`` the label-smoothing parameter, ``0`` for CE; the same for one-hot MSE), for every
   bias mode (none, ``lam_b = 0``, ``lam_b > 0``) and whatever the other classes are. The theory
   reference (section 4) states ``sqrt(n_B) <= N sqrt(lam_W lam_H)``: correct for CE (and
   one-hot MSE); for label smoothing the threshold is smaller by the factor ``1 - alpha``; for the
   focal loss neither formula holds (the measured threshold in ``sqrt(lam_W lam_H)`` is 1.05 to
   1.14 times ``sqrt(n_B)/N`` in the configurations tried, depending on counts and bias mode).
   Evidence: bisection on ``tau = sqrt(lam_W lam_H)`` with the convex program, counts
   ``(K_A, K_B, n_A, n_B)`` in ``(2,2,6,1), (3,2,5,2), (2,3,8,1), (1,2,9,3), (2,2,7,3)``, all three
   bias modes: collapse starts at ``tau / ((1-alpha) sqrt(n_B)/N) = 1.0000000`` (8 digits) for CE,
   LS (``alpha`` 0.05 and 0.2) and MSE; below it the gap ``max ||w_i - w_j|| / ||W||`` grows like
   ``0.9 sqrt(1 - tau/tau*)`` (``0.26, 0.088, 0.028, 0.0089`` at ``1 - tau/tau* = 1e-1 .. 1e-4``).

   Derivation. Let ``G = grad_{Z'}`` of the smooth part, ``G[r, c] = (sqrt(n_c)/N)
   d loss(z_c, c)/d z_r``, and ``u = (e_i - e_j)/sqrt 2``. If rows ``i, j`` of the logit matrix
   coincide (``w_i = w_j``, ``b_i = b_j``), every class sees ``p_i = p_j``, and for CE/LS
   (``grad loss = p - (1-alpha) e_y - alpha/K 1``) this gives exactly
   ``u^T G = -(1-alpha)(sqrt(n_B)/N) u^T`` (the first SymPy proof). A minimizer invariant under
   swapping ``i, j`` exists (average over the swap); at it ``u^T Z' = 0`` and ``Z' u = 0``, so
   ``u u^T`` lies in the part of the nuclear norm's subdifferential ``U V^T + M``
   (``U^T M = 0``, ``M V = 0``, ``||M|| <= 1``) that is free, and optimality
   ``-G = tau (U V^T + M)`` needs ``u^T M u = (1-alpha) sqrt(n_B)/(N tau) <= 1``. Conversely the
   minimizer of the program restricted to ``u^T Z' = 0`` extends to a full certificate whenever
   that number is ``<= 1`` (the swap-invariant ``M`` of the restricted problem has ``M u = 0``).

References:
    Hong & Ling, JMLR 2024 (arXiv 2309.09725): the nuclear-norm (class-level) program of the
    penalized CE UFM and the finite minority-collapse threshold; Fang, He, Long & Su, PNAS 2021
    (arXiv 2101.12699): the norm-constrained layer-peeled model and minority collapse as an
    asymptotic statement; Zhou et al., NeurIPS 2022 (arXiv 2210.02192),
    focal and label smoothing; Srebro et al. 2005 and Recht, Fazel & Parrilo 2010 (the
    nuclear-norm lemma); docs/theory.md#canonical-objective, #minority-collapse.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import sympy as sp

import ufm
from proofs_check.catalog._common import N, alpha, away_from, lams_for
from proofs_check.catalog.nuclear_norm import PROOFS_LEMMA
from proofs_check.catalog.zhou2022 import focal_distance, focal_threshold
from proofs_check.convex import solve_class_level
from proofs_check.measure import measure_ufm
from proofs_check.theorem import Citation, Evaluator, Proof, Theorem, Threshold

FANG = Citation("Fang, He, Long & Su", 2021, "PNAS", "2101.12699",
                what=("the layer-peeled model with norm constraints (not ufm's penalties) and minority collapse "
                      "as an asymptotic statement (imbalance ratio to infinity)"))
HONG_LING = Citation("Hong & Ling", 2024, "JMLR", "2309.09725",
                     what=("the penalized CE UFM convexified as a nuclear-norm program in the class-level "
                           "logits, and a finite minority-collapse threshold for two groups of classes"))
CLASS_LEVEL = Citation("Hong & Ling", 2024, "JMLR", "2309.09725", what=HONG_LING.what, also=(FANG,))
MINORITY = Citation("Hong & Ling", 2024, "JMLR", "2309.09725",
                    what=("the finite threshold for CE (two groups; notation differs); the label-smoothing "
                          "factor (1 - alpha) and the bias modes are ufm's derivation"), also=(FANG,))
ZHOU = Citation("Zhou et al.", 2022, "NeurIPS", "2210.02192")

# ---- the minority-collapse certificate --------------------------------------------------------

n_B_s, n_c_s, tau_s = sp.symbols("n_B n_c tau", positive=True)


def _minority_rows_residuals(loss_kind: str, factor):
    """``u^T G[:, c] + factor (sqrt(n_B)/N) u_c`` for ``u = e_i - e_j``, two classes of count ``n_B``
    whose rows of the logit matrix coincide, and a column ``c`` that is ``i``, ``j`` or any other
    class (count ``n_c``), for every ``K``: ``G[r, c] = (sqrt(n_c)/N) d loss(z_c, c)/d z_r``.

    Only ``z_i``, ``z_j`` vary; the other ``K - 2`` logits of the column enter the loss through
    ``R`` (the sum of their exponentials, in the log-partition) and ``T`` (their sum, in the uniform
    part of label smoothing), and for MSE through an additive term: symbols independent of
    ``z_i, z_j``.
    """
    zi, zj, z_c, m_, T, C = sp.symbols("z_i z_j z_c m T C", real=True)
    R, Kk = sp.symbols("R K", positive=True)
    out = []
    for c, (di, dj), n_col in (("i", (1, 0), n_B_s), ("j", (0, 1), n_B_s), ("other", (0, 0), n_c_s)):
        if loss_kind == "ls":  # -(1-alpha) log p_c - alpha/K sum_r log p_r
            z_true = di * zi + dj * zj + (1 - di - dj) * z_c
            loss = sp.log(sp.exp(zi) + sp.exp(zj) + R) - (1 - alpha) * z_true - alpha / Kk * (zi + zj + T)
        else:  # one-hot MSE: (1/2) sum_r (z_r - [r = c])^2
            loss = (zi - di) ** 2 / 2 + (zj - dj) ** 2 / 2 + C
        u_G = sp.sqrt(n_col) / N * (sp.diff(loss, zi) - sp.diff(loss, zj))
        out.append(u_G.subs({zi: m_, zj: m_}) + factor * sp.sqrt(n_B_s) / N * (di - dj))
    return tuple(out)


beta_expr = (1 - alpha) * sp.sqrt(n_B_s) / (N * tau_s)  # u^T M u at the collapsed point
tau_star = (1 - alpha) * sp.sqrt(n_B_s) / N

PROOFS_MINORITY = (
    Proof(
        "CE/LS (alpha = 0 is CE), every K and class counts (so the instances' K_A = K_B = 2): if rows i, j "
        "(both of count n_B) of the logit matrix coincide, (e_i - e_j)^T G = -(1-alpha) sqrt(n_B)/N "
        "(e_i - e_j)^T (G from sympy.diff of the loss in z_i, z_j; the other K - 2 logits of a column "
        "enter only through symbols), whatever the other logits",
        lambda: _minority_rows_residuals("ls", 1 - alpha),
    ),
    Proof(
        "one-hot MSE, same setting (every K: the other logits enter only through an additive symbol): "
        "(e_i - e_j)^T G = -sqrt(n_B)/N (e_i - e_j)^T",
        lambda: _minority_rows_residuals("mse", 1),
    ),
    Proof(
        "the free part of the dual certificate on u u^T is beta = (1-alpha) sqrt(n_B)/(N tau); "
        "beta <= 1 iff tau >= tau* = (1-alpha) sqrt(n_B)/N, with equality at tau*",
        lambda: beta_expr.subs(tau_s, tau_star) - 1,
        kind="definition",
    ),
)

# ---- assumptions -------------------------------------------------------------------------------


def _base_ok(prob, losses):
    if not isinstance(prob.loss, losses):
        return False, f"loss must be one of {[t.__name__ for t in losses]}"
    if isinstance(prob.loss, ufm.MSE) and prob.loss.encoding is not None:
        return False, "MSE: one-hot encoding only"
    if prob.nonneg:
        return False, "signed features (nonneg=False)"
    if float(prob.lam_W) <= 0 or float(prob.lam_H) <= 0:
        return False, "needs lam_W > 0 and lam_H > 0"
    if prob.d < min(prob.D, prob.K):
        return (
            False,
            f"needs d >= min(D, K) = {min(prob.D, prob.K)} so that d >= rank Z' (got d={prob.d})",
        )
    return True, ""


def _convex_ok(prob):
    ok, why = _base_ok(prob, (ufm.CrossEntropy, ufm.LabelSmoothing))
    if ok and len(minority_classes(prob)) >= 2 and len(minority_classes(prob)) < prob.K:
        return away_from(threshold_ratio(prob), 1.0, "N sqrt(lam_W lam_H)/((1-alpha) sqrt(n_B)) (minority collapse)")
    return ok, why


def _focal_ok(prob):
    ok, why = _base_ok(prob, (ufm.Focal,))
    if ok and not prob.balanced:
        return False, "balanced classes (the focal class-level program is not convex)"
    if ok:
        kap = float(np.sqrt(prob.n * float(prob.lam_W) * float(prob.lam_H)))
        return away_from(kap, focal_threshold(prob.K, float(prob.loss.gamma)), "kappa")
    return ok, why


def minority_classes(prob: ufm.UFM) -> list[int]:
    """Classes with the smallest count (the minority group ``B``)."""
    counts = np.asarray(prob.counts)
    return [int(k) for k in np.flatnonzero(counts == counts.min())]


def threshold_ratio(prob: ufm.UFM) -> float:
    """``N sqrt(lam_W lam_H) / ((1-alpha) sqrt(n_B))``: minority collapse iff ``>= 1``."""
    tau = Evaluator({"tau*": tau_star}, _minority_variables(prob))("tau*")
    return float(np.sqrt(prob.lam_W * prob.lam_H)) / tau


def minority_distance(prob: ufm.UFM) -> np.ndarray:
    """``threshold_ratio - 1`` (positive: minority collapse) where at least two classes, not all,
    share the smallest count; none otherwise."""
    B = minority_classes(prob)
    return np.array([threshold_ratio(prob) - 1]) if 2 <= len(B) < prob.K else np.zeros(0)


_MINORITY_WHAT = "N sqrt(lam_W lam_H)/((1-alpha) sqrt(n_B)) - 1 (positive: minority collapse)"


def _minority_ok(prob, side):
    ok, why = _base_ok(prob, (ufm.CrossEntropy, ufm.LabelSmoothing, ufm.MSE))
    if not ok:
        return ok, why
    counts = prob.counts
    if len(minority_classes(prob)) < 2 or len(set(counts)) != 2:
        return (
            False,
            f"two groups of classes with at least two minority classes (got counts {counts})",
        )
    r = threshold_ratio(prob)
    if side == "collapsed" and r < 1.1:
        return False, f"needs N sqrt(lam_W lam_H) >= 1.1 (1-alpha) sqrt(n_B) (ratio {r:.4g})"
    if side == "separated" and r > 1 / 1.1:
        return False, f"needs N sqrt(lam_W lam_H) <= (1-alpha) sqrt(n_B)/1.1 (ratio {r:.4g})"
    return True, ""


# ---- predictions -------------------------------------------------------------------------------


# The row that says whether the prediction's own solve converged (a ``certificate`` row that fails
# when it did not: a prediction from an unconverged program is never compared silently).
CLASS_LEVEL_CERTIFICATE = "certificate class-level program residual (the prediction's solve)"


def _convex_assemble(prob, ev) -> dict:
    sol = solve_class_level(prob)
    ev.certify(CLASS_LEVEL_CERTIFICATE, sol.residual, sol.converged)
    return sol.quantities(prob)


def _pair_gap(M, B) -> float:
    """``max_{i < j in B} ||M[i] - M[j]||`` over rows."""
    return max(float(np.linalg.norm(M[i] - M[j])) for i in B for j in B if i < j)


def _minority_variables(prob) -> dict:
    a = float(prob.loss.alpha) if isinstance(prob.loss, ufm.LabelSmoothing) else 0.0
    return {"alpha": a, "n_B": float(min(prob.counts)), "N": float(prob.N),
            "lambda_W": float(prob.lam_W), "lambda_H": float(prob.lam_H)}


def _minority_assemble(side):
    """Collapsed side: both gaps 0 when ``sqrt(lam_W lam_H) >= tau*`` (the expression). Separated
    side: the gaps of the class-level convex program when ``sqrt(lam_W lam_H) < tau*``, with the
    program's convergence as a certificate row (it fails if the solve did not converge). On the
    other side of tau* a theorem predicts nothing (NaN: reached only if tau* were replaced)."""

    def assemble(prob, ev) -> dict:
        collapsed = np.sqrt(float(prob.lam_W) * float(prob.lam_H)) >= ev("threshold tau*")
        names = ("minority_classifier_gap", "minority_feature_gap")
        if collapsed != (side == "collapsed"):
            return dict.fromkeys(names, float("nan"))
        if collapsed:
            return dict.fromkeys(names, 0.0)
        sol = solve_class_level(prob)
        B = minority_classes(prob)
        ev.certify(CLASS_LEVEL_CERTIFICATE, sol.residual, sol.converged)
        return dict(zip(names, (_pair_gap(sol.W, B), _pair_gap(sol.Hbar.T, B))))

    return assemble


def measure(prob: ufm.UFM, params: ufm.Params, names: Iterable[str]) -> dict:
    """:func:`proofs_check.measure.measure_ufm` plus ``minority_classifier_gap`` and
    ``minority_feature_gap`` (``max ||w_i - w_j||`` and ``max ||h_i - h_j||`` over minority
    pairs)."""
    B = minority_classes(prob)
    W, H = np.asarray(params.W), np.asarray(params.H)
    labels = prob.labels
    Hbar = np.stack([H[:, labels == k].mean(axis=1) for k in range(prob.K)], axis=1)
    extra = {
        "minority_classifier_gap": lambda: _pair_gap(W, B),
        "minority_feature_gap": lambda: _pair_gap(Hbar.T, B),
    }
    out = measure_ufm(prob, params, [q for q in names if q not in extra])
    out.update({q: extra[q]() for q in names if q in extra})
    return out


# ---- instances (three shapes in all: CE with a bias, LS without, balanced focal; the last is
# zhou2022.FOCAL's) ----------------------------------------------------------------------------

COUNTS = (6, 6, 1, 1)  # K_A = K_B = 2, n_A = 6, n_B = 1, N = 14
D_FEAT = 5  # d = K + 1


def _lams(ratio_to_threshold, n_B, N_, rho, a=0.0):
    """``(lam_W, lam_H)`` with ``N sqrt(lam_W lam_H) = ratio (1-a) sqrt(n_B)``, ``lam_W/lam_H = "
    "rho^2``."""
    tau = ratio_to_threshold * (1 - a) * np.sqrt(n_B) / N_
    return float(tau * rho), float(tau / rho)


def _ce(lam_W_, lam_H_, lam_b_):
    return ufm.UFM(
        K=4, n=COUNTS, d=D_FEAT, loss=ufm.CrossEntropy(), lam_W=lam_W_, lam_H=lam_H_, lam_b=lam_b_
    )


def _ls(a, lam_W_, lam_H_):
    return ufm.UFM(K=4, n=COUNTS, d=D_FEAT, loss=ufm.LabelSmoothing(a), lam_W=lam_W_, lam_H=lam_H_)


def _convex_instances():
    return [_ce(5e-3, 5e-3, 5e-3), _ce(0.2, 0.05, 5e-3), _ls(0.1, 5e-3, 5e-3)]


def _random_convex(rng):
    rho = float(np.exp(rng.uniform(-0.7, 0.7)))
    ratio = rng.uniform(0.2, 0.9) if rng.integers(2) else rng.uniform(1.1, 2.0)  # away from minority collapse
    if rng.integers(2):
        return _ce(*_lams(ratio, 1, 14, rho), float(rng.uniform(1e-3, 1.0)))
    a = float(rng.uniform(0.0, 0.3))
    return _ls(a, *_lams(ratio, 1, 14, rho, a=a))


def _focal(gamma_, lam_W_, lam_H_):
    # the shape of zhou2022.FOCAL's instance (K = 4, n = 5, d = 8, a bias): one compiled solve
    return ufm.UFM(
        K=4, n=5, d=8, loss=ufm.Focal(gamma_), lam_W=lam_W_, lam_H=lam_H_, lam_b=5e-3
    )


def _minority_instances(side):
    r = 0.7 if side == "separated" else 1.4
    return [_ce(*_lams(r, 1, 14, 2.0), 5e-3), _ls(0.1, *_lams(r, 1, 14, 0.7, a=0.1))]


def _random_minority(rng, side):
    r = rng.uniform(0.3, 0.9) if side == "separated" else rng.uniform(1.1, 2.0)
    rho = float(np.exp(rng.uniform(-0.7, 0.7)))
    if rng.integers(2):
        return _ce(*_lams(r, 1, 14, rho), float(rng.uniform(1e-3, 1.0)))
    a = float(rng.uniform(0.0, 0.3))
    return _ls(a, *_lams(r, 1, 14, rho, a=a))


CONVEX_IMBALANCED = Theorem(
    name="Imbalanced CE/LS UFM minimizer = class-level convex program",
    citation=CLASS_LEVEL,
    tag="derived",
    statement=(
        "For lam_W, lam_H > 0, d >= K and any class counts, the global minimum and the invariants "
        "of every "
        "global minimizer (W W^T, Hbar^T Hbar, W Hbar, b, zero within-class spread) of the CE or "
        "label-smoothing UFM are those of the convex program min_{Z',b} sum_k n_k/N "
        "loss(z'_k/sqrt(n_k) + b, k) "
        "+ sqrt(lam_W lam_H)||Z'||_* + lam_b/2||b||^2, Z' = W Hbar D^(1/2) (docs/theory.md#class-level-program; "
        "the nuclear-norm program of Hong & Ling 2024)."
    ),
    assumptions=_convex_ok,
    assemble=_convex_assemble,
    instances=_convex_instances,
    random_instance=_random_convex,
    measure=measure_ufm,
    proofs=PROOFS_LEMMA,
    thresholds=(Threshold(minority_distance, _MINORITY_WHAT),),
    no_closed_form=("no closed form exists for imbalanced CE: the prediction is the class-level convex "
                    "program solved by proofs_check.convex.solve_class_level (accelerated proximal gradient "
                    "on Z', independent of ufm.minimize)"),
    assumed=("the reduction of the UFM to the class-level program (collapse of every minimizer, Hong & Ling "
             "2024; docs/theory.md; the nuclear-norm lemma's equality case (balanced "
             "factors of any size) is proved here; its matrix lower bound is cited)",),
)

CONVEX_FOCAL = Theorem(
    name="Balanced focal UFM minimizer = class-level program (focal scale cross-check)",
    citation=ZHOU,
    tag="derived",
    statement=(
        "For balanced classes, lam_W, lam_H > 0 and d >= K, the focal UFM's global minimizer has "
        "the "
        "invariants of the class-level program (not convex for focal: its stationary point found "
        "by "
        "proximal gradient from Z' = 0 is cross-checked against ufm.minimize here and against the "
        "ETF "
        "scale of closed_forms.ce_family in the tests)."
    ),
    assumptions=_focal_ok,
    assemble=_convex_assemble,
    # beyond the focal threshold too (kappa = 1.3 kappa_0): the zero solution
    instances=lambda: [_focal(2.0, 1e-2, 3e-3), _focal(2.0, *lams_for(1.3 * focal_threshold(4, 2.0), 5))],
    random_instance=lambda rng: _focal(
        float(rng.uniform(0.5, 3.0)),
        *_lams(rng.uniform(0.2, 0.6), 5, 20, float(np.exp(rng.uniform(-0.7, 0.7)))),
    ),
    measure=measure_ufm,
    proofs=PROOFS_LEMMA[:2],
    thresholds=(Threshold(focal_distance, "kappa/kappa_0 - 1, kappa_0 the focal threshold (positive: the zero "
                                          "solution)"),),
    no_closed_form=("the prediction is a stationary point of the (nonconvex for focal) class-level program "
                    "found by proofs_check.convex.solve_class_level from Z' = 0"),
    assumed=("the reduction to the class-level program; that its stationary point found from Z' = 0 is the "
             "global minimizer (the focal program is not convex)",),
)

_MINORITY_STATEMENT = (
    "Two groups of classes (counts n_A > n_B, at least two minority classes), CE or label "
    "smoothing (alpha) or one-hot "
    "MSE, any bias mode, d >= K: the minority classifiers and feature means are identical (w_i = "
    "w_j, h_i = h_j) iff "
    "(1-alpha) sqrt(n_B) <= N sqrt(lam_W lam_H). The form sqrt(n_B) <= N "
    "sqrt(lam_W lam_H) without the factor: "
    "confirmed for CE and MSE; label smoothing moves it by (1-alpha); not valid for focal. "
)

MINORITY_COLLAPSED = Theorem(
    name="Minority collapse: identical minority classifiers beyond the threshold",
    citation=MINORITY,
    tag="derived",
    statement=_MINORITY_STATEMENT
    + "Checked here on the collapsed side (ratio >= 1.1): both gaps are 0.",
    assumptions=lambda p: _minority_ok(p, "collapsed"),
    assemble=_minority_assemble("collapsed"),
    instances=lambda: _minority_instances("collapsed"),
    random_instance=lambda rng: _random_minority(rng, "collapsed"),
    measure=measure,
    expressions={"threshold tau*": tau_star},
    variables=_minority_variables,
    proofs=PROOFS_MINORITY,
    thresholds=(Threshold(minority_distance, _MINORITY_WHAT, covers="above",
                          partner="Minority collapse: distinct minority classifiers below the threshold"),),
    assumed=("sufficiency: beyond tau* the restricted program's minimizer extends to a full dual "
             "certificate (argued in the module docstring, not proved in SymPy); the proofs show the "
             "necessary direction: coinciding minority rows force (1-alpha) sqrt(n_B) <= N tau",),
)

MINORITY_SEPARATED = Theorem(
    name="Minority collapse: distinct minority classifiers below the threshold",
    citation=MINORITY,
    tag="derived",
    statement=_MINORITY_STATEMENT
    + (
        "Checked here on the separated side (ratio <= 1/1.1): the gaps are those of the "
        "class-level convex program, nonzero."
    ),
    assumptions=lambda p: _minority_ok(p, "separated"),
    assemble=_minority_assemble("separated"),
    instances=lambda: _minority_instances("separated"),
    random_instance=lambda rng: _random_minority(rng, "separated"),
    measure=measure,
    expressions={"threshold tau*": tau_star},
    variables=_minority_variables,
    proofs=PROOFS_MINORITY,
    thresholds=(Threshold(minority_distance, _MINORITY_WHAT, covers="below",
                          partner="Minority collapse: identical minority classifiers beyond the threshold"),),
    no_closed_form=("below tau* the gaps are those of the class-level convex program "
                    "(proofs_check.convex.solve_class_level); the proofs show why they cannot vanish: "
                    "coinciding minority rows need (1-alpha) sqrt(n_B) <= N tau"),
    assumed=("the minority gaps of the UFM minimizer equal those of the class-level program (the reduction "
             "of docs/theory.md#canonical-objective)",),
)

THEOREMS = [CONVEX_IMBALANCED, CONVEX_FOCAL, MINORITY_COLLAPSED, MINORITY_SEPARATED]
